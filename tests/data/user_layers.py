"""Forward passes a user might write, traced by the tests with ``--function FILE.py:FUNC``.

Plain Python on the list ``x``; only ``bngraph.name``, ``sqrt``, ``exp`` and ``log`` come
from bngraph. The last few are mistakes bngraph must refuse with a one-line error.
"""
import math

from bngraph import exp, log, name, sqrt


def my_batchnorm(x, gamma, beta, eps):
    """Batch Norm written another way: 1.0/n times a sum, centred values kept, divide by std."""
    n = len(x)
    mu = name(sum(x) * (1.0 / n), "mu")
    centred = [xi - mu for xi in x]
    sigma2 = name(sum(c * c for c in centred) * (1.0 / n), "sigma2")
    std = sqrt(sigma2 + eps)
    xhat = name([c / std for c in centred], "xhat")
    return [xh * gamma + beta for xh in xhat]


def batchnorm_one_pass(x, gamma, beta, epsilon):
    """Batch Norm with the one-pass variance (1/m) Σ x² − μ²: sigma2 depends on mu directly."""
    m = len(x)
    mu = name(sum(x) / m, "mu")
    sigma2 = name(sum(xk**2 for xk in x) / m - mu**2, "sigma2")
    xhat = name([(xk - mu) / sqrt(sigma2 + epsilon) for xk in x], "xhat")
    return [gamma * h + beta for h in xhat]


def rmsnorm(x, gamma, beta, epsilon):
    """RMSNorm: divide by the root mean square, no centring."""
    m = len(x)
    rms = name(sqrt(sum(xk * xk for xk in x) / m + epsilon), "rms")
    return [gamma * (xk / rms) + beta for xk in x]


def layernorm_by_hand(x, gamma, beta, eps):
    """Layer Norm written by hand over one example's D entries: mean, variance, 1/std by name."""
    d = len(x)
    mean = name(sum(x) / d, "mean")
    centred = [xk - mean for xk in x]
    var = name(sum(c * c for c in centred) / d, "var")
    rstd = 1 / sqrt(var + eps)
    xhat = name([c * rstd for c in centred], "xhat")
    return [gamma * h + beta for h in xhat]


# Generated code normalises each row of an (N, D) array, gamma and beta one per feature.
layernorm_by_hand.__bngraph_axis__ = 1


def rmsnorm_rows(x, weight, eps):
    """RMSNorm as LLaMA and T5 use it: along each row, x / √(mean(x²) + ε) · weight, no shift."""
    ms = sum(xk * xk for xk in x) / len(x)
    normed = name([xk / sqrt(ms + eps) for xk in x], "normed")
    return [weight * h for h in normed]


rmsnorm_rows.__bngraph_axis__ = 1


def unnamed_layernorm_rows(x, gamma, beta, eps):
    """Layer Norm along rows that names nothing: bngraph recognises its mean, variance and x-hat."""
    mean = sum(x) / len(x)
    var = sum((xk - mean) ** 2 for xk in x) / len(x)
    return [gamma * (xk - mean) / sqrt(var + eps) + beta for xk in x]


unnamed_layernorm_rows.__bngraph_axis__ = 1


def log_softmax(x, gamma, beta):
    """A softmax-like normalisation: x_k − log Σ exp(x_j), scaled and shifted."""
    lse = name(log(sum(exp(xk) for xk in x)), "lse")
    return [gamma * (xk - lse) + beta for xk in x]


def drops_one_output(x, gamma, beta):
    """Wrong: returns m − 1 outputs."""
    return [gamma * xk + beta for xk in x[:-1]]


def returns_a_scalar(x, gamma):
    """Wrong: returns one number, not a list of m outputs."""
    return gamma * sum(x)


def clips_the_mean(x, gamma, beta):
    """Wrong: an `if` on a traced value (data-dependent control flow)."""
    mu = sum(x) / len(x)
    if mu > 0:
        mu = mu * 0
    return [gamma * (xk - mu) + beta for xk in x]


def uses_math_sqrt(x, gamma, beta, epsilon):
    """Wrong: math.sqrt on a traced value (bngraph.sqrt is needed)."""
    mu = sum(x) / len(x)
    sigma2 = sum((xk - mu) ** 2 for xk in x) / len(x)
    std = math.sqrt(sigma2 + epsilon)
    return [gamma * (xk - mu) / std + beta for xk in x]
