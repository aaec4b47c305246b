"""Wrong backwards that students really write, each with one slip; tests/test_check.py names them.

They share the correct CS231n-style ``batchnorm_forward`` (found from a name like
``batchnorm_backward_sign`` by cutting after "forward"), unless they take no cache.
"""
import numpy as np


def batchnorm_forward(x, gamma, beta, bn_param):
    eps = bn_param.get("eps", 1e-5)
    mu = x.mean(axis=0)
    xmu = x - mu
    var = (xmu**2).mean(axis=0)
    ivar = 1.0 / np.sqrt(var + eps)
    xhat = xmu * ivar
    return gamma * xhat + beta, (xhat, gamma, xmu, ivar, var, eps)


def batchnorm_backward_no_inv_n(dout, cache):
    xhat, gamma, xmu, ivar, var, eps = cache
    N = dout.shape[0]
    dbeta, dgamma = dout.sum(axis=0), (dout * xhat).sum(axis=0)
    dx = gamma * ivar * (N * dout - dbeta - xhat * dgamma)  # forgot the 1/N
    return dx, dgamma, dbeta


def batchnorm_backward_sign(dout, cache):
    xhat, gamma, xmu, ivar, var, eps = cache
    N = dout.shape[0]
    dbeta, dgamma = dout.sum(axis=0), (dout * xhat).sum(axis=0)
    dx = gamma * ivar / N * (N * dout - dbeta + xhat * dgamma)  # + instead of −
    return dx, dgamma, dbeta


def batchnorm_backward_n_minus_1(dout, cache):
    """Staged, but the variance step is differentiated as if σ² divided by N − 1."""
    xhat, gamma, xmu, ivar, var, eps = cache
    N, D = dout.shape
    dxhat = dout * gamma
    divar = np.sum(dxhat * xmu, axis=0)
    dvar = -0.5 * divar * ivar**3
    dxmu = dxhat * ivar + 2 * xmu * dvar / (N - 1)
    dx = dxmu - dxmu.mean(axis=0)
    return dx, (dout * xhat).sum(axis=0), dout.sum(axis=0)


def bn_backward_unbiased(dout, x, gamma, beta, eps):
    """No cache: recomputes the variance with np.var(ddof=1), the unbiased one."""
    N = x.shape[0]
    var = x.var(axis=0, ddof=1)
    xhat = (x - x.mean(axis=0)) / np.sqrt(var + eps)
    dbeta, dgamma = dout.sum(axis=0), (dout * xhat).sum(axis=0)
    dx = gamma / (N * np.sqrt(var + eps)) * (N * dout - dbeta - xhat * dgamma)
    return dx, dgamma, dbeta


def batchnorm_backward_dgamma_axis(dout, cache):
    xhat, gamma, xmu, ivar, var, eps = cache
    N = dout.shape[0]
    dbeta, dgamma = dout.sum(axis=0), (dout * xhat).sum(axis=0)
    dx = gamma * ivar / N * (N * dout - dbeta - xhat * dgamma)
    return dx, np.sum(dout * xhat, axis=1), dbeta  # axis=1: over the features


def bn_backward_no_eps(dout, x, gamma, beta, eps):
    """No cache, and ε forgotten: divides by the standard deviation itself."""
    N = x.shape[0]
    std = x.std(axis=0)
    xhat = (x - x.mean(axis=0)) / std
    dbeta, dgamma = dout.sum(axis=0), (dout * xhat).sum(axis=0)
    dx = gamma / (N * std) * (N * dout - dbeta - xhat * dgamma)
    return dx, dgamma, dbeta


def batchnorm_backward_constants(dout, cache):
    """Treats μ and σ² as constants: only the direct path x → x̂."""
    xhat, gamma, xmu, ivar, var, eps = cache
    return dout * gamma * ivar, (dout * xhat).sum(axis=0), dout.sum(axis=0)


def batchnorm_backward_two_slips(dout, cache):
    """Drops the Σ dout term and flips the sign of the x̂ term."""
    xhat, gamma, xmu, ivar, var, eps = cache
    N = dout.shape[0]
    dbeta, dgamma = dout.sum(axis=0), (dout * xhat).sum(axis=0)
    dx = gamma * ivar / N * (N * dout + xhat * dgamma)
    return dx, dgamma, dbeta


def batchnorm_backward_dbeta_not_summed(dout, cache):
    xhat, gamma, xmu, ivar, var, eps = cache
    N = dout.shape[0]
    dgamma = (dout * xhat).sum(axis=0)
    dx = gamma * ivar / N * (N * dout - dout.sum(axis=0) - xhat * dgamma)
    return dx, dgamma, dout


def batchnorm_backward_raises(dout, cache):
    raise NotImplementedError("TODO: implement the backward pass")


def batchnorm_backward_two_items(dout, cache):
    xhat, gamma, xmu, ivar, var, eps = cache
    return dout * gamma * ivar, (dout * xhat).sum(axis=0)


def batchnorm_backward_nan(dout, cache):
    xhat, gamma, xmu, ivar, var, eps = cache
    N = dout.shape[0]
    dbeta, dgamma = dout.sum(axis=0), (dout * xhat).sum(axis=0)
    dx = gamma * ivar / (N - N) * (N * dout - dbeta - xhat * dgamma)  # divides by zero
    return dx, dgamma, dbeta


def batchnorm_backward_transposed(dout, cache):
    xhat, gamma, xmu, ivar, var, eps = cache
    N = dout.shape[0]
    dbeta, dgamma = dout.sum(axis=0), (dout * xhat).sum(axis=0)
    dx = gamma * ivar / N * (N * dout - dbeta - xhat * dgamma)
    return dx.T, dgamma, dbeta


def batchnorm_backward_garbled(dout, cache):
    """Wrong in no way bngraph can name."""
    xhat, gamma, xmu, ivar, var, eps = cache
    return np.sin(dout) * xhat, (dout * xhat).sum(axis=0), dout.sum(axis=0)


def bn_forward_no_eps(x, gamma, beta, eps):
    """Forward that ignores ε, and its exact backward: the forward check flags it too."""
    xmu = x - x.mean(axis=0)
    std = np.sqrt((xmu**2).mean(axis=0))
    return gamma * xmu / std + beta, (xmu / std, gamma, std)


def bn_backward_no_eps_cached(dout, cache):
    xhat, gamma, std = cache
    N = dout.shape[0]
    dbeta, dgamma = dout.sum(axis=0), (dout * xhat).sum(axis=0)
    return gamma / (N * std) * (N * dout - dbeta - xhat * dgamma), dgamma, dbeta


def layernorm_forward(x, gamma, beta, ln_param):
    eps = ln_param.get("eps", 1e-5)
    xmu = x - x.mean(axis=1, keepdims=True)
    ivar = 1.0 / np.sqrt((xmu**2).mean(axis=1, keepdims=True) + eps)
    xhat = xmu * ivar
    return gamma * xhat + beta, (xhat, gamma, ivar)


def layernorm_backward_wrong_axis(dout, cache):
    """Layer norm normalises over axis 1, so the student sums dγ over axis 1 too."""
    xhat, gamma, ivar = cache
    D = dout.shape[1]
    g = dout * gamma
    dx = ivar / D * (D * g - g.sum(axis=1, keepdims=True) - xhat * (g * xhat).sum(axis=1, keepdims=True))
    return dx, (dout * xhat).sum(axis=1), dout.sum(axis=0)


def batchnorm_eval_forward(x, gamma, beta, running_mean, running_var, eps):
    xhat = (x - running_mean) / np.sqrt(running_var + eps)
    return gamma * xhat + beta, (x, xhat, gamma, eps)


def batchnorm_eval_backward(dout, cache):
    """Eval mode, but the training-mode formula with the batch's own statistics."""
    x, xhat_running, gamma, eps = cache
    N = x.shape[0]
    xhat = (x - x.mean(axis=0)) / np.sqrt(x.var(axis=0) + eps)
    dbeta, dgamma = dout.sum(axis=0), (dout * xhat_running).sum(axis=0)
    dx = gamma / (N * np.sqrt(x.var(axis=0) + eps)) * (N * dout - dbeta - xhat * (dout * xhat).sum(axis=0))
    return dx, dgamma, dbeta
