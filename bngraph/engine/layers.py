"""Built-in layers, written as plain Python functions that bngraph traces like any other.

``name`` marks the paper's variables (the named view); ``stage`` names the remaining
steps of the staged view after the well-known 9-step backward (xmu, sq, sqrtvar, ivar …).

>>> sorted(LAYERS)
['batchnorm', 'batchnorm-eval', 'layernorm']
>>> LAYERS["batchnorm"].trace(2).records[-1].name
'y_2'
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Callable

from bngraph.errors import BngraphError
from bngraph.engine.trace import Trace, name, sqrt, stage, trace
from bngraph.engine.usercode import load_function


def batchnorm(x, gamma, beta, epsilon):
    """Batch Normalization, training mode: batch statistics, biased (1/m) variance."""
    m = len(x)
    mu = name(sum(x) / m, "mu")  # 1: batch mean
    xmu = stage([xk - mu for xk in x], "xmu")  # 2: centre
    sq = stage([d**2 for d in xmu], "sq")  # 3: square
    sigma2 = name(sum(sq) / m, "sigma2")  # 4: batch variance
    sqrtvar = stage(sqrt(sigma2 + epsilon), "sqrtvar")  # 5: standard deviation
    ivar = stage(1 / sqrtvar, "ivar")  # 6: its inverse
    xhat = name([d * ivar for d in xmu], "xhat")  # 7: normalise
    gammax = stage([gamma * h for h in xhat], "gammax")  # 8: scale
    return [g + beta for g in gammax]  # 9: shift


def batchnorm_eval(x, gamma, beta, epsilon, running_mean, running_var):
    """Batch Normalization, evaluation mode: normalise with the running statistics."""
    sqrtvar = stage(sqrt(running_var + epsilon), "sqrtvar")
    xhat = name([(xk - running_mean) / sqrtvar for xk in x], "xhat")
    return [gamma * h + beta for h in xhat]


batchnorm_eval.__bngraph_constants__ = ("epsilon", "running_mean", "running_var")


def layernorm(x, gamma, beta, epsilon):
    """Layer Normalization of one example: statistics over its m entries, shared gamma, beta."""
    m = len(x)
    mu = name(sum(x) / m, "mu")
    xmu = stage([xk - mu for xk in x], "xmu")
    sigma2 = name(sum(d * d for d in xmu) / m, "sigma2")
    rstd = stage(1 / sqrt(sigma2 + epsilon), "rstd")
    xhat = name([d * rstd for d in xmu], "xhat")
    return [gamma * h + beta for h in xhat]


def rmsnorm(x, gamma, epsilon):
    """RMSNorm of one example (Zhang & Sennrich 2019): divide by the root mean square; no centring, no β."""
    m = len(x)
    rms = name(sqrt(sum(xk * xk for xk in x) / m + epsilon), "rms")
    return [gamma * (xk / rms) for xk in x]


# The m entries are the D features of one example: generated code on (N, D) arrays normalises
# along each row (axis 1), with gamma and beta one per feature, shared by the rows.
layernorm.__bngraph_axis__ = 1
rmsnorm.__bngraph_axis__ = 1

# The steps of each layer's staged view, in forward order: the name of the node (or family
# name_k) each step makes, and what it does. The staged text groups the backward by them.
BATCHNORM_STEPS = (
    ("mu", "batch mean: mu = (x_1 + ... + x_m)/m"),
    ("xmu", "centre: xmu_k = x_k - mu"),
    ("sq", "square: sq_k = xmu_k**2"),
    ("sigma2", "batch variance: sigma2 = (sq_1 + ... + sq_m)/m"),
    ("sqrtvar", "standard deviation: sqrtvar = sqrt(sigma2 + epsilon)"),
    ("ivar", "its inverse: ivar = 1/sqrtvar"),
    ("xhat", "normalise: xhat_k = xmu_k*ivar"),
    ("gammax", "scale: gammax_k = gamma*xhat_k"),
    ("y", "shift: y_k = gammax_k + beta"),
)
LAYERNORM_STEPS = (
    ("mu", "mean: mu = (x_1 + ... + x_m)/m"),
    ("xmu", "centre: xmu_k = x_k - mu"),
    ("sigma2", "variance: sigma2 = (xmu_1**2 + ... + xmu_m**2)/m"),
    ("rstd", "inverse standard deviation: rstd = 1/sqrt(sigma2 + epsilon)"),
    ("xhat", "normalise: xhat_k = xmu_k*rstd"),
    ("y", "scale and shift: y_k = gamma*xhat_k + beta"),
)


@dataclass(frozen=True)
class Layer:
    """A function to trace, the one line ``bngraph layers`` says of it, and the steps of its staged view."""

    name: str
    function: Callable
    summary: str
    steps: tuple[tuple[str, str], ...] = ()

    def trace(self, m: int) -> Trace:
        """The layer traced at m, under its registry name (``batchnorm-eval``, not the function's)."""
        return dataclasses.replace(trace(self.function, m), function=self.name)


LAYERS = {
    layer.name: layer
    for layer in (
        Layer("batchnorm", batchnorm, "Batch Norm, training: batch mean and biased variance over the m examples",
              BATCHNORM_STEPS),
        Layer("batchnorm-eval", batchnorm_eval, "Batch Norm, evaluation: normalises with running_mean, running_var"),
        Layer("layernorm", layernorm, "Layer Norm: mean and variance over the m entries of one example",
              LAYERNORM_STEPS),
    )
}
# Layers a write-up can be audited against (``bngraph audit --layer``) that derive, codegen and
# check-backward do not offer as built-ins yet (for those, ``--function FILE.py:FUNC``).
AUDIT_ONLY = {
    "rmsnorm": Layer("rmsnorm", rmsnorm, "RMSNorm: divides by the root mean square of the m entries of one example"),
}


def get_layer(layer: str) -> Layer:
    """The built-in layer called ``layer``, or a one-line error listing the known ones."""
    try:
        return LAYERS[layer]
    except KeyError:
        raise BngraphError(f"unknown layer {layer!r}; known layers: {', '.join(LAYERS)}") from None


def audit_layer(layer: str) -> Layer:
    """The layer ``bngraph audit --layer`` judges a write-up against: a built-in or an audit-only one.

    >>> audit_layer("rmsnorm").trace(2).records[-1].name
    'y_2'
    """
    if layer in AUDIT_ONLY:
        return AUDIT_ONLY[layer]
    if layer not in LAYERS:
        raise BngraphError(f"unknown layer {layer!r}; known layers: {', '.join([*LAYERS, *AUDIT_ONLY])}")
    return LAYERS[layer]


def trace_target(layer: str | None = None, function: str | None = None, m: int = 3) -> Trace:
    """Trace a built-in layer or a user's ``FILE.py:FUNC``."""
    if function is not None:
        return trace(load_function(function), m)
    return get_layer(layer or "batchnorm").trace(m)
