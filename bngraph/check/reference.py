"""NumPy references for the normalization layers: the ground truth the engine is checked against.

Written from the math, independently of the symbolic engine, in float64.
Batch norm (training) normalises each feature over the batch of m values:

    μ = (1/m) Σ_j x_j     σ² = (1/m) Σ_j (x_j − μ)²  (biased)     x̂ = (x − μ)/√(σ² + ε)     y = γ x̂ + β

Layouts: ``x`` of shape (N, D) has statistics per feature over axis 0 (m = N);
(N, C, H, W) per channel over N·H·W ("spatial" batch norm, m = N·H·W); (m,) is one
feature with scalar γ, β.  Batch norm works on *rows*, a 2-D array (m, F) whose
statistics run down axis 0: :func:`to_rows` and :func:`from_rows` convert.
Layer norm normalises each row of an (N, D) array over its D entries instead.
"""

from dataclasses import dataclass

import numpy as np

from bngraph.errors import BngraphError

LAYERS = ("batchnorm", "batchnorm-eval", "layernorm")


@dataclass(frozen=True)
class NormCache:
    """What a forward keeps for its backward: the intermediates of the staged forward.

    Arrays are in the layer's working layout: rows (m, F) for batch norm, (N, D) for
    layer norm.  In eval mode ``xmu`` is x − running mean and ``var`` the running variance.
    """

    shape: tuple  # shape of x, to restore its layout
    param_shape: tuple  # shape of gamma, for dgamma and dbeta
    xmu: np.ndarray
    var: np.ndarray
    sqrtvar: np.ndarray
    ivar: np.ndarray
    xhat: np.ndarray
    gamma: np.ndarray
    eps: float


def to_rows(x):
    """Lay x out as rows (m, F), statistics over axis 0; floating dtypes are kept.

    >>> to_rows(np.zeros((2, 3, 4, 5))).shape      # (N, C, H, W) -> (N·H·W, C)
    (40, 3)
    >>> to_rows([1.0, 2.0, 3.0]).shape             # one feature
    (3, 1)
    """
    x = np.asarray(x)
    if not np.issubdtype(x.dtype, np.floating):
        x = x.astype(np.float64)
    if x.ndim == 1:
        return x[:, None]
    if x.ndim == 2:
        return x
    if x.ndim == 4:
        return x.transpose(0, 2, 3, 1).reshape(-1, x.shape[1])
    raise BngraphError(f"x must have shape (m,), (N, D) or (N, C, H, W), not {x.shape}")


def from_rows(rows, shape):
    """Undo :func:`to_rows` for an array x of the given shape.

    >>> x = np.arange(24.0).reshape(2, 3, 2, 2)
    >>> bool(np.array_equal(from_rows(to_rows(x), x.shape), x))
    True
    """
    if len(shape) == 4:
        n, c, h, w = shape
        return rows.reshape(n, h, w, c).transpose(0, 3, 1, 2)
    return rows.reshape(shape)


def _per_feature(param, name, n_features):
    values = np.asarray(param, dtype=np.float64).reshape(-1)
    if values.size != n_features:
        raise BngraphError(f"{name} has shape {np.shape(param)}; expected ({n_features},)")
    return values


def batchnorm_forward(x, gamma, beta, eps=1e-5):
    """Batch norm, training mode, as the nine stages of the staged graph.

    Returns ``(out, cache)``; gamma and beta have one entry per feature (channel).

    >>> out, cache = batchnorm_forward(np.array([[1.0], [2.0], [3.0]]), [2.0], [0.5], eps=0.0)
    >>> out.ravel().round(4).tolist()                # 2·(x − 2)/√(2/3) + 0.5
    [-1.9495, 0.5, 2.9495]
    """
    x = np.asarray(x, dtype=np.float64)
    rows = to_rows(x)
    m, n_features = rows.shape
    gamma_row = _per_feature(gamma, "gamma", n_features)
    beta_row = _per_feature(beta, "beta", n_features)
    batch_mean = rows.sum(axis=0) / m  # 1. μ
    xmu = rows - batch_mean  # 2. x − μ
    sq = xmu**2  # 3.
    var = sq.sum(axis=0) / m  # 4. σ², biased
    sqrtvar = np.sqrt(var + eps)  # 5.
    ivar = 1.0 / sqrtvar  # 6.
    xhat = xmu * ivar  # 7. x̂
    gammax = gamma_row * xhat  # 8.
    out = gammax + beta_row  # 9. y
    cache = NormCache(x.shape, np.shape(gamma), xmu, var, sqrtvar, ivar, xhat, gamma_row, eps)
    return from_rows(out, x.shape), cache


def _gradients(dx_rows, dgamma, dbeta, cache):
    return (
        from_rows(dx_rows, cache.shape),
        dgamma.reshape(cache.param_shape),
        dbeta.reshape(cache.param_shape),
    )


def batchnorm_backward_staged(dout, cache):
    """Backward of :func:`batchnorm_forward` stage by stage, from stage 9 down to 1.

    Returns ``(dx, dgamma, dbeta)``.

    >>> x = np.array([[1.0, 4.0], [2.0, 0.0], [6.0, 1.0]])
    >>> out, cache = batchnorm_forward(x, [1.0, 1.0], [0.0, 0.0])
    >>> dx, dgamma, dbeta = batchnorm_backward_staged(np.ones_like(x), cache)
    >>> bool(np.abs(dx).max() < 1e-12), dbeta.tolist()   # shifting all of y moves no x
    (True, [3.0, 3.0])
    """
    c = cache
    dout = to_rows(np.asarray(dout, dtype=np.float64))
    m = dout.shape[0]
    dbeta = dout.sum(axis=0)  # 9. out = gammax + beta
    dgammax = dout
    dgamma = (dgammax * c.xhat).sum(axis=0)  # 8. gammax = gamma · xhat
    dxhat = dgammax * c.gamma
    divar = (dxhat * c.xmu).sum(axis=0)  # 7. xhat = xmu · ivar
    dxmu1 = dxhat * c.ivar
    dsqrtvar = -divar / c.sqrtvar**2  # 6. ivar = 1 / sqrtvar
    dvar = 0.5 * dsqrtvar / np.sqrt(c.var + c.eps)  # 5. sqrtvar = √(var + ε)
    dsq = np.ones_like(dout) * dvar / m  # 4. var = (1/m) Σ sq
    dxmu2 = 2.0 * c.xmu * dsq  # 3. sq = xmu²
    dx1 = dxmu1 + dxmu2  # 2. xmu = x − μ: x directly, and through μ
    dmu = -dx1.sum(axis=0)
    dx2 = np.ones_like(dout) * dmu / m  # 1. μ = (1/m) Σ x
    return _gradients(dx1 + dx2, dgamma, dbeta, c)


def batchnorm_backward_compact(dout, cache):
    """Backward of :func:`batchnorm_forward` in closed form.

    dx = γ/(m√(σ²+ε)) · (m·dout − Σ dout − x̂·Σ(dout·x̂)); dγ = Σ dout·x̂; dβ = Σ dout.

    >>> x = np.array([[1.0], [2.0], [4.0]])
    >>> out, cache = batchnorm_forward(x, [3.0], [0.0])
    >>> dx, dgamma, dbeta = batchnorm_backward_compact(np.array([[1.0], [0.0], [0.0]]), cache)
    >>> dgamma.round(4).tolist(), bool(abs(dx.sum()) < 1e-12)   # dx sums to zero
    ([-1.069], True)
    """
    c = cache
    dout = to_rows(np.asarray(dout, dtype=np.float64))
    m = dout.shape[0]
    dgamma = (dout * c.xhat).sum(axis=0)
    dbeta = dout.sum(axis=0)
    dx = c.gamma * c.ivar / m * (m * dout - dbeta - c.xhat * dgamma)
    return _gradients(dx, dgamma, dbeta, c)


def batchnorm_eval_forward(x, gamma, beta, running_mean, running_var, eps=1e-5):
    """Batch norm, eval mode: normalise with the running statistics, not the batch's.

    >>> out, cache = batchnorm_eval_forward([[3.0]], [2.0], [1.0], [1.0], [4.0], eps=0.0)
    >>> out.tolist()                                 # 2·(3 − 1)/√4 + 1
    [[3.0]]
    """
    x = np.asarray(x, dtype=np.float64)
    rows = to_rows(x)
    n_features = rows.shape[1]
    gamma_row = _per_feature(gamma, "gamma", n_features)
    beta_row = _per_feature(beta, "beta", n_features)
    xmu = rows - _per_feature(running_mean, "running_mean", n_features)
    var = _per_feature(running_var, "running_var", n_features)
    sqrtvar = np.sqrt(var + eps)
    ivar = 1.0 / sqrtvar
    xhat = xmu * ivar
    cache = NormCache(x.shape, np.shape(gamma), xmu, var, sqrtvar, ivar, xhat, gamma_row, eps)
    return from_rows(gamma_row * xhat + beta_row, x.shape), cache


def batchnorm_eval_backward(dout, cache):
    """Backward of :func:`batchnorm_eval_forward`: an affine map, so dx = γ·dout/√(σ²_run+ε).

    >>> out, cache = batchnorm_eval_forward([[3.0]], [2.0], [1.0], [1.0], [4.0], eps=0.0)
    >>> [g.tolist() for g in batchnorm_eval_backward([[1.0]], cache)]
    [[[1.0]], [1.0], [1.0]]
    """
    c = cache
    dout = to_rows(np.asarray(dout, dtype=np.float64))
    dx = dout * c.gamma * c.ivar
    return _gradients(dx, (dout * c.xhat).sum(axis=0), dout.sum(axis=0), c)


def layernorm_forward(x, gamma, beta, eps=1e-5):
    """Layer norm: normalise each row of x (N, D) over its D entries; γ, β per feature (D,).

    >>> out, cache = layernorm_forward([[1.0, 3.0], [0.0, 10.0]], [1.0, 1.0], [0.0, 0.0], eps=0.0)
    >>> out.tolist()
    [[-1.0, 1.0], [-1.0, 1.0]]
    """
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2:
        raise BngraphError(f"layer norm takes x of shape (N, D), not {x.shape}")
    gamma_row = _per_feature(gamma, "gamma", x.shape[1])
    beta_row = _per_feature(beta, "beta", x.shape[1])
    xmu = x - x.mean(axis=1, keepdims=True)
    var = (xmu**2).mean(axis=1, keepdims=True)
    sqrtvar = np.sqrt(var + eps)
    ivar = 1.0 / sqrtvar
    xhat = xmu * ivar
    cache = NormCache(x.shape, np.shape(gamma), xmu, var, sqrtvar, ivar, xhat, gamma_row, eps)
    return gamma_row * xhat + beta_row, cache


def layernorm_backward(dout, cache):
    """Backward of :func:`layernorm_forward`; dgamma, dbeta are summed over the N rows.

    dx = 1/(D√(σ²+ε)) · (D·g − Σ g − x̂·Σ(g·x̂)) per row, with g = γ·dout.

    >>> out, cache = layernorm_forward([[1.0, 3.0, 8.0]], [1.0, 2.0, 3.0], [0.0, 0.0, 0.0])
    >>> dx, dgamma, dbeta = layernorm_backward([[1.0, 1.0, 1.0]], cache)
    >>> bool(abs(dx.sum()) < 1e-12), dbeta.tolist()
    (True, [1.0, 1.0, 1.0])
    """
    c = cache
    dout = np.asarray(dout, dtype=np.float64)
    d = dout.shape[1]
    g = dout * c.gamma  # adjoint of x̂
    dx = c.ivar / d * (
        d * g - g.sum(axis=1, keepdims=True) - c.xhat * (g * c.xhat).sum(axis=1, keepdims=True)
    )
    return _gradients(dx, (dout * c.xhat).sum(axis=0), dout.sum(axis=0), c)


def reference_forward(layer, x, gamma, beta, eps=1e-5, running_mean=None, running_var=None):
    """The output y of a built-in layer (one of :data:`LAYERS`).

    >>> reference_forward("layernorm", [[1.0, 3.0]], [1.0, 1.0], [0.0, 0.0], eps=1e-12).round(9).tolist()
    [[-1.0, 1.0]]
    >>> reference_forward("batchnorm", [[1.0], [2.0]], [1.0], [0.0], eps=0.0)
    Traceback (most recent call last):
    bngraph.errors.BngraphError: eps must be a positive number, got 0.0
    """
    validate_inputs(x, eps)
    return _forward(layer, x, gamma, beta, eps, running_mean, running_var)[0]


def reference_backward(layer, dout, x, gamma, beta, eps=1e-5, running_mean=None, running_var=None):
    """``(dx, dgamma, dbeta)`` of a built-in layer for upstream gradient dout.

    >>> dx, dgamma, dbeta = reference_backward("batchnorm", [[1.0], [0.0]], [[0.0], [2.0]], [1.0], [0.0], eps=1e-12)
    >>> dgamma.round(9).tolist(), dbeta.tolist()
    ([-1.0], [1.0])
    """
    validate_inputs(x, eps, dout)
    out, cache = _forward(layer, x, gamma, beta, eps, running_mean, running_var)
    backward = {
        "batchnorm": batchnorm_backward_compact,
        "batchnorm-eval": batchnorm_eval_backward,
        "layernorm": layernorm_backward,
    }[layer]
    return backward(dout, cache)


def validate_inputs(x, eps, dout=None):
    """Bad input is one clear error: ε a positive number, the arrays free of NaN and infinity.

    (The layer functions above accept ε = 0: the diagnosis of a forgotten ε needs it.)
    """
    if isinstance(eps, bool) or not isinstance(eps, (int, float, np.floating)) or not np.isfinite(eps) or eps <= 0:
        raise BngraphError(f"eps must be a positive number, got {eps!r}")
    for name, array in (("x", x), ("dout", dout)):
        if array is not None and not np.all(np.isfinite(np.asarray(array, dtype=np.float64))):
            raise BngraphError(f"{name} contains NaN or infinity")


def _forward(layer, x, gamma, beta, eps, running_mean, running_var):
    if layer == "batchnorm":
        return batchnorm_forward(x, gamma, beta, eps)
    if layer == "layernorm":
        return layernorm_forward(x, gamma, beta, eps)
    if layer == "batchnorm-eval":
        if running_mean is None or running_var is None:
            raise BngraphError("batchnorm-eval needs running_mean and running_var")
        return batchnorm_eval_forward(x, gamma, beta, running_mean, running_var, eps)
    raise BngraphError(f"unknown layer {layer!r}; built-in layers: {', '.join(LAYERS)}")


def update_running_stats(running_mean, running_var, x, momentum=0.1, variance="unbiased"):
    """Running statistics after one training batch: ``(new_mean, new_var)``.

    ``new = (1 − momentum)·old + momentum·batch_stat``: ``momentum`` is the weight of the
    *new* batch, as in PyTorch (default 0.1).  CS231n, Keras and TensorFlow write
    ``decay·old + (1 − decay)·batch`` and call ``decay`` (0.9, 0.99) "momentum": pass
    ``momentum = 1 − decay`` here.  The batch variance fed in is ``"unbiased"``
    (1/(m−1), PyTorch) or ``"biased"`` (1/m, CS231n, Keras); the batch is always
    normalised with the biased one.  m counts values per feature (N, or N·H·W).

    >>> x = np.array([[1.0], [2.0], [6.0]])            # mean 3, Σ(x − 3)² = 14
    >>> [v.tolist() for v in update_running_stats([0.0], [1.0], x)]
    [[0.30000000000000004], [1.6]]
    >>> [v.tolist() for v in update_running_stats([0.0], [1.0], x, variance="biased")]
    [[0.30000000000000004], [1.3666666666666667]]
    """
    rows = to_rows(np.asarray(x, dtype=np.float64))
    m, n_features = rows.shape
    if variance not in ("unbiased", "biased"):
        raise BngraphError(f"variance must be 'unbiased' or 'biased', not {variance!r}")
    if variance == "unbiased" and m < 2:
        raise BngraphError("the unbiased batch variance needs at least 2 values per feature")
    batch_mean = rows.mean(axis=0)
    batch_var = ((rows - batch_mean) ** 2).sum(axis=0) / (m - 1 if variance == "unbiased" else m)
    old_mean = _per_feature(running_mean, "running_mean", n_features)
    old_var = _per_feature(running_var, "running_var", n_features)
    new_mean = (1 - momentum) * old_mean + momentum * batch_mean
    new_var = (1 - momentum) * old_var + momentum * batch_var
    return new_mean.reshape(np.shape(running_mean)), new_var.reshape(np.shape(running_var))


def one_pass_variance(x, axis=0):
    """E[x²] − E[x]² in x's own dtype: one pass over the data, but it cancels catastrophically.

    >>> float(one_pass_variance(np.array([1.0, 2.0, 3.0, 6.0])))
    3.5
    """
    x = np.asarray(x)
    return np.mean(x * x, axis=axis) - np.mean(x, axis=axis) ** 2


def batchnorm_forward_one_pass(x, gamma, beta, eps=1e-5):
    """Batch norm (training) with the one-pass variance, computed in x's dtype.

    >>> batchnorm_forward_one_pass(np.array([[1.0], [3.0]]), [1.0], [0.0], eps=0.0).tolist()
    [[-1.0], [1.0]]
    """
    x = np.asarray(x)
    rows = to_rows(x)
    gamma_row = np.asarray(gamma, dtype=rows.dtype).reshape(-1)
    beta_row = np.asarray(beta, dtype=rows.dtype).reshape(-1)
    var = one_pass_variance(rows, axis=0)
    xhat = (rows - rows.mean(axis=0)) / np.sqrt(var + rows.dtype.type(eps))
    return from_rows(gamma_row * xhat + beta_row, x.shape)


@dataclass(frozen=True)
class VariancePrecision:
    """One-pass vs two-pass batch variance in float32 on data with a large mean, small spread."""

    mean: float
    std: float
    m: int
    exact_variance: float  # two-pass in float64 of the same float32 data
    one_pass_variance: float
    two_pass_variance: float
    one_pass_relative_error: float
    two_pass_relative_error: float

    def format(self):
        return (
            f"float32 batch variance, m={self.m}, mean {self.mean:g}, std {self.std:g}: "
            f"one-pass E[x²]−E[x]² = {self.one_pass_variance:.6g} "
            f"(relative error {self.one_pass_relative_error:.2g}), "
            f"two-pass = {self.two_pass_variance:.6g} "
            f"(relative error {self.two_pass_relative_error:.2g}), exact {self.exact_variance:.6g}"
        )


def one_pass_variance_precision(mean=1e4, std=1.0, m=256, seed=0):
    """How far the float32 one-pass variance is off, next to the two-pass (x − μ)² one.

    >>> result = one_pass_variance_precision(mean=1e4, std=1.0)
    >>> result.one_pass_relative_error > 0.1, result.two_pass_relative_error < 1e-6
    (True, True)
    """
    x = (mean + std * np.random.default_rng(seed).standard_normal(m)).astype(np.float32)
    exact = float(np.var(x.astype(np.float64)))
    one_pass = float(one_pass_variance(x))
    two_pass = float(np.mean((x - x.mean()) ** 2))
    return VariancePrecision(
        mean=mean,
        std=std,
        m=m,
        exact_variance=exact,
        one_pass_variance=one_pass,
        two_pass_variance=two_pass,
        one_pass_relative_error=abs(one_pass - exact) / exact,
        two_pass_relative_error=abs(two_pass - exact) / exact,
    )
