"""Forward passes written on NumPy arrays, in the styles real code uses; bngraph traces each
unchanged (``bngraph derive --function tests/data/numpy_forwards.py:NAME``).

Each is our own code, written after the style of the public source named in its
docstring (repository and path, or where the code index did not name the repository, the
pattern as found); nothing is copied. ``BN_EQUIVALENT`` lists those that compute Batch Norm
(training mode) of one feature: their closed form must be the built-in's, byte for byte.
``REFERENCE`` says, for each, which independent NumPy backward of tests/test_numpy_forwards.py
it must match, and with which constants.
"""
import numpy as np


def cs231n_np_var(x, gamma, beta, bn_param):
    """The course assignment's signature and dict, np.mean/np.var over axis 0, running averages,
    a tuple cache. Style: maoyangou147/HowToCoding operator/batchnorm.py (a solved cs231n
    assignment-2 batchnorm_forward)."""
    mode = bn_param["mode"]
    eps = bn_param.get("eps", 1e-5)
    momentum = bn_param.get("momentum", 0.9)
    N, D = x.shape
    running_mean = bn_param.get("running_mean", np.zeros(D, dtype=x.dtype))
    running_var = bn_param.get("running_var", np.zeros(D, dtype=x.dtype))
    out, cache = None, None
    if mode == "train":
        sample_mean = np.mean(x, axis=0)
        sample_var = np.var(x, axis=0)
        x_hat = (x - sample_mean) / np.sqrt(sample_var + eps)
        out = gamma * x_hat + beta
        cache = (gamma, x, sample_mean, sample_var, eps, x_hat)
        running_mean = momentum * running_mean + (1 - momentum) * sample_mean
        running_var = momentum * running_var + (1 - momentum) * sample_var
    elif mode == "test":
        out = gamma * (x - running_mean) / np.sqrt(running_var + eps) + beta
    else:
        raise ValueError(f"Invalid forward batchnorm mode {mode}")
    bn_param["running_mean"] = running_mean
    bn_param["running_var"] = running_var
    return out, cache


def cs231n_in_place(x, gamma, beta, bn_param):
    """x.mean(axis=0), a centred copy, np.mean of its square, in-place running averages
    (``*=`` and ``+=`` into np.zeros(D, dtype=x.dtype)). Style: jodusan/dstl README.md."""
    mode = bn_param["mode"]
    eps = bn_param.get("eps", 1e-5)
    momentum = bn_param.get("momentum", 0.9)
    N, D = x.shape
    running_mean = bn_param.get("running_mean", np.zeros(D, dtype=x.dtype))
    running_var = bn_param.get("running_var", np.zeros(D, dtype=x.dtype))
    if mode == "train":
        mu = x.mean(axis=0)
        xc = x - mu
        var = np.mean(xc**2, axis=0)
        std = np.sqrt(var + eps)
        xn = xc / std
        out = gamma * xn + beta
        cache = (mode, x, gamma, xc, std, xn, out)
        running_mean *= momentum
        running_mean += (1 - momentum) * mu
        running_var *= momentum
        running_var += (1 - momentum) * var
    else:
        raise ValueError(mode)
    bn_param["running_mean"] = running_mean
    bn_param["running_var"] = running_var
    return out, cache


def kratzert_nine_steps(x, gamma, beta, eps):
    """The nine-step staged forward: 1./N * np.sum, xmu, sq, sqrtvar, ivar, and (out, cache).
    Style: the Kratzert blog post, as kept in ForrestPi/ObjectDetection syncbn/batchNorm.md."""
    N, D = x.shape
    mu = 1.0 / N * np.sum(x, axis=0)
    xmu = x - mu
    sq = xmu**2
    var = 1.0 / N * np.sum(sq, axis=0)
    sqrtvar = np.sqrt(var + eps)
    ivar = 1.0 / sqrtvar
    xhat = xmu * ivar
    gammax = gamma * xhat
    out = gammax + beta
    cache = (xhat, gamma, xmu, ivar, sqrtvar, var, eps)
    return out, cache


def keepdims_dict_cache(x, gamma, beta, bn_param):
    """keepdims=True statistics of shape (1, D), a dict cache, running averages with alpha.
    Style: Elaineeeeeeeeeeee/implement-my-own-MLP-from-scratch mytorch/nn/batchnorm.py (its
    forward, written as a function) with the dict cache of course solutions."""
    eps, alpha = bn_param["eps"], bn_param.get("momentum", 0.9)
    running_M = bn_param.get("running_mean", np.zeros((1, x.shape[1]), dtype=x.dtype))
    M = np.mean(x, axis=0, keepdims=True)
    V = np.var(x, axis=0, keepdims=True)
    NZ = (x - M) / np.sqrt(V + eps)
    BZ = gamma * NZ + beta
    bn_param["running_mean"] = alpha * running_M + (1 - alpha) * M
    cache = {"x": x, "x_hat": NZ, "mean": M, "var": V, "gamma": gamma, "eps": eps}
    return BZ, cache


def one_pass_variance(x, gamma, beta, eps):
    """The one-pass variance E[x²] − E[x]² (as statistics code writes it, e.g.
    ``np.mean(X**2, axis=0) - mean**2`` in the code index), then Batch Norm."""
    mean = np.mean(x, axis=0)
    var = np.mean(x**2, axis=0) - mean**2
    x_hat = (x - mean) / np.sqrt(var + eps)
    return gamma * x_hat + beta


def std_squared(x, gamma, beta, eps):
    """The variance as np.std(...)**2 with keepdims, divided through by a root."""
    sigma = np.std(x, axis=0, keepdims=True)
    return gamma * (x - x.mean(axis=0, keepdims=True)) / np.sqrt(sigma**2 + eps) + beta


def transposed(x, gamma, beta, bn_param):
    """The transpose trick of cs231n's layer-norm solutions (work on x.T along axis 1, with
    gamma[:, np.newaxis], then transpose back), here over the batch. Style: a cs231n
    layernorm_forward in the code index (``np.mean(x.T, axis=0)`` … ``out = out.T``)."""
    eps = bn_param.get("eps", 1e-5)
    xt = x.T
    mu = np.mean(xt, axis=1, keepdims=True)
    var = np.var(xt, axis=1, keepdims=True)
    xhat = (xt - mu) / np.sqrt(var + eps)
    out = gamma[:, np.newaxis] * xhat + beta[:, np.newaxis]
    return out.T, {"xhat": xhat.T, "mu": mu, "var": var}


def numpy_ml_batchnorm1d(X, scaler, intercept, epsilon):
    """numpy-ml's BatchNorm1D.forward: ``X.mean(axis=0), X.var(axis=0)``, running statistics in a
    parameters dict, ``scaler * N + intercept``. Style: ddbourgin/numpy-ml
    numpy_ml/neural_nets/layers/layers.py (GPL-3.0: the style only, the code is ours)."""
    parameters = {"running_mean": np.zeros(X.shape[1:]), "running_var": np.ones(X.shape[1:])}
    mm = 0.9
    X_mean, X_var = X.mean(axis=0), X.var(axis=0)
    parameters["running_mean"] = mm * parameters["running_mean"] + (1.0 - mm) * X_mean
    parameters["running_var"] = mm * parameters["running_var"] + (1.0 - mm) * X_var
    N = (X - X_mean) / np.sqrt(X_var + epsilon)
    return scaler * N + intercept


def layernorm_last_axis(x, gamma, beta, eps):
    """LayerNorm over the last axis with keepdims, as transformer code writes it; x is one
    example of m entries. Style: ibusnowden/tiny_transformers core/norm.py."""
    mean = np.mean(x, axis=-1, keepdims=True)
    var = np.var(x, axis=-1, keepdims=True)
    return gamma * (x - mean) / np.sqrt(var + eps) + beta


def std_without_eps(x, gamma, beta, bn_param):
    """np.std with no ε at all (ε is in bn_param but unused), running std. Not Batch Norm
    (undefined at m = 1). Style: hmchen47/DataScience ML/MLNN-Hinton/src/batchnorm_forward.py."""
    momentum = bn_param.get("momentum", 0.9)
    running_std = bn_param.get("running_std", np.zeros(x.shape[1], dtype=x.dtype))
    m = np.mean(x, axis=0)
    s = np.std(x, axis=0)
    out = gamma * (x - m) / s + beta
    bn_param["running_std"] = momentum * running_std + (1 - momentum) * s
    return out, (x, gamma, beta, m, s)


def unbiased_ddof1(X, gamma, beta, eps):
    """Bessel's correction: np.var(X, axis=0, ddof=1), and the result as .tolist(). Not Batch
    Norm (undefined at m = 1). Style: a ``batchnorm1d_forward`` "with Bessel's correction" in
    the code index (repository not named by it)."""
    mean = np.mean(X, axis=0)
    var = np.var(X, axis=0, ddof=1)
    x_hat = (X - mean) / np.sqrt(var + eps)
    y = gamma * x_hat + beta
    return y.tolist()


def rmsnorm_cast(x, weight, eps):
    """RMSNorm: cast up, divide by sqrt(mean(x**2) + eps) over the last axis, scale, cast back.
    Style: hiawui/cs336-assignment1-basics cs336_basics/rms_norm.py (PyTorch, in NumPy here;
    it casts to float32, here to float64 so that finite differences resolve it)."""
    in_dtype = x.dtype
    x = x.astype(np.float64)
    result = x / np.sqrt(np.mean(x**2, axis=-1, keepdims=True) + eps) * weight
    return result.astype(in_dtype)


def rmsnorm_square(x, weight, eps):
    """RMSNorm step by step with np.square (a NumPy reference kernel in the code index:
    ``z = np.square(x); z = np.mean(z, axis=-1, keepdims=True); z = x / np.sqrt(z + eps)``)."""
    z = np.square(x)
    z = np.mean(z, axis=-1, keepdims=True)
    z = x / np.sqrt(z + eps)
    return z * weight


def normalise_only(x):
    """Normalisation with a literal ε and no γ, β. Style: Monairy/Deep-Learning-Framework
    data.py (``batch_normlize``)."""
    eps = 0.00001
    mean = x.mean(axis=0)
    variance = x.var(axis=0)
    return (x - mean) / np.sqrt(variance + eps)


def literal_eps(x, gamma, beta):
    """np.var and a literal 1e-8 inside the root, γ and β. Style: oilneck/prml_python
    prml/deepL_module/nn/layers/hipstar_tech.py (Batch_norm_Layer.forward)."""
    mu = np.mean(x, axis=0)
    xc = x - mu
    var = np.var(x, axis=0)
    x_norm = xc / np.sqrt(var + 1e-8)
    return gamma * x_norm + beta


BN_EQUIVALENT = ("cs231n_np_var", "cs231n_in_place", "kratzert_nine_steps", "keepdims_dict_cache",
                 "one_pass_variance", "std_squared", "transposed", "numpy_ml_batchnorm1d", "layernorm_last_axis")
# name: (reference backward, its constants: ε as a value or the name of the ε parameter; ddof; scale/shift)
REFERENCE = {
    **{name: ("batchnorm", {}) for name in BN_EQUIVALENT},
    "std_without_eps": ("batchnorm", {"eps": 0.0}),
    "unbiased_ddof1": ("batchnorm", {"ddof": 1}),
    "rmsnorm_cast": ("rmsnorm", {}),
    "rmsnorm_square": ("rmsnorm", {}),
    "normalise_only": ("batchnorm", {"eps": 1e-5, "affine": False}),
    "literal_eps": ("batchnorm", {"eps": 1e-8}),
}
