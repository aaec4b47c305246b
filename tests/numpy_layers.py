"""Independent NumPy references: forward and backward passes written by hand, and
central finite differences of the forward. Nothing here imports bngraph.

Every forward takes ``x`` (m values) and the layer's scalar parameters by name and returns
a dict of the named quantities it computes (``y`` always; ``mu``, ``sigma2``, ``xhat`` …).
Every backward takes the upstream ``dy`` too and returns ``{"x": dx, "gamma": dgamma,
"beta": dbeta}``.

>>> out = batchnorm_forward(np.array([1.0, 3.0]), gamma=2.0, beta=0.5, epsilon=0.0)
>>> float(out["mu"]), float(out["sigma2"]), out["y"].tolist()
(2.0, 1.0, [-1.5, 2.5])
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np


# -- Batch Norm (training): explicit sums, two-pass variance -------------------------
def batchnorm_forward(x, gamma, beta, epsilon):
    m = len(x)
    mu = sum(x) / m
    sigma2 = sum((xk - mu) ** 2 for xk in x) / m
    xhat = (x - mu) / np.sqrt(sigma2 + epsilon)
    return {"mu": mu, "sigma2": sigma2, "xhat": xhat, "y": gamma * xhat + beta}


def batchnorm_backward(dy, x, gamma, beta, epsilon):
    """The compact textbook formula: dx = (1/m)·ivar·(m·dxhat − Σdxhat − xhat·Σ(dxhat·xhat))."""
    m = len(x)
    mu = x.mean()
    ivar = 1.0 / np.sqrt(((x - mu) ** 2).mean() + epsilon)
    xhat = (x - mu) * ivar
    dxhat = dy * gamma
    dx = ivar / m * (m * dxhat - dxhat.sum() - xhat * (dxhat * xhat).sum())
    return {"x": dx, "gamma": float((dy * xhat).sum()), "beta": float(dy.sum())}


def batchnorm_statistics_adjoints(dy, x, gamma, epsilon):
    """dL/dsigma2 and dL/dmu of the two-pass Batch Norm (its sigma2 -> mu path is zero)."""
    mu = x.mean()
    var_eps = ((x - mu) ** 2).mean() + epsilon
    dxhat = dy * gamma
    dsigma2 = float(np.sum(dxhat * (x - mu)) * -0.5 * var_eps**-1.5)
    dmu = float(-np.sum(dxhat) / np.sqrt(var_eps))
    return dsigma2, dmu


# -- Batch Norm (evaluation): running statistics are constants ------------------------
def batchnorm_eval_forward(x, gamma, beta, epsilon, running_mean, running_var):
    xhat = (x - running_mean) / np.sqrt(running_var + epsilon)
    return {"xhat": xhat, "y": gamma * xhat + beta}


def batchnorm_eval_backward(dy, x, gamma, beta, epsilon, running_mean, running_var):
    scale = 1.0 / np.sqrt(running_var + epsilon)
    xhat = (x - running_mean) * scale
    return {"x": dy * gamma * scale, "gamma": float((dy * xhat).sum()), "beta": float(dy.sum())}


# -- Layer Norm over the m entries: NumPy's mean and var; the 9-step staged backward ----
def layernorm_forward(x, gamma, beta, epsilon):
    mu, sigma2 = np.mean(x), np.var(x)
    xhat = (x - mu) / np.sqrt(sigma2 + epsilon)
    return {"mu": mu, "sigma2": sigma2, "xhat": xhat, "y": gamma * xhat + beta}


def layernorm_backward(dy, x, gamma, beta, epsilon):
    """Step by step, each forward step undone in reverse (the cs231n-style staged backward)."""
    m = len(x)
    mu = x.sum() / m
    xmu = x - mu
    sq = xmu**2
    var = sq.sum() / m
    sqrtvar = np.sqrt(var + epsilon)
    ivar = 1.0 / sqrtvar
    xhat = xmu * ivar
    dgamma = float((dy * xhat).sum())
    dbeta = float(dy.sum())
    dxhat = dy * gamma
    divar = (dxhat * xmu).sum()
    dxmu1 = dxhat * ivar
    dsqrtvar = -divar / sqrtvar**2
    dvar = 0.5 * dsqrtvar / np.sqrt(var + epsilon)
    dsq = np.full(m, dvar / m)
    dxmu2 = 2 * xmu * dsq
    dx1 = dxmu1 + dxmu2
    dmu = -dx1.sum()
    dx = dx1 + np.full(m, dmu / m)
    return {"x": dx, "gamma": dgamma, "beta": dbeta}


# -- normalisations a user might write -------------------------------------------------
def rmsnorm_forward(x, gamma, beta, epsilon):
    rms = np.sqrt(np.mean(x * x) + epsilon)
    return {"rms": rms, "y": gamma * x / rms + beta}


def rmsnorm_backward(dy, x, gamma, beta, epsilon):
    m = len(x)
    rms = np.sqrt(np.mean(x * x) + epsilon)
    g = dy * gamma
    dx = g / rms - x * (g * x).sum() / (m * rms**3)
    return {"x": dx, "gamma": float((dy * x / rms).sum()), "beta": float(dy.sum())}


def log_softmax_forward(x, gamma, beta):
    lse = np.log(np.sum(np.exp(x)))
    return {"lse": lse, "y": gamma * (x - lse) + beta}


def log_softmax_backward(dy, x, gamma, beta):
    softmax = np.exp(x) / np.sum(np.exp(x))
    g = dy * gamma
    return {"x": g - softmax * g.sum(), "gamma": float((dy * (x - np.log(np.sum(np.exp(x))))).sum()),
            "beta": float(dy.sum())}


# -- finite differences ----------------------------------------------------------------
def loss(forward, dy, x, params) -> float:
    """L = Σ_k dL_dy_k · y_k, so that dL/dy_k is the given upstream gradient."""
    return float(np.dot(dy, forward(x, **params)["y"]))


def finite_differences(forward, dy, x, params, wrt=("gamma", "beta"), h=1e-5):
    """Central differences of L with respect to every x_k and the parameters ``wrt``."""
    def central(shift):
        return (loss(forward, dy, *shift(h)) - loss(forward, dy, *shift(-h))) / (2 * h)

    dx = np.array([central(lambda s, k=k: (x + s * np.eye(len(x))[k], params)) for k in range(len(x))])
    grads = {"x": dx}
    for p in wrt:
        grads[p] = central(lambda s, p=p: (x, {**params, p: params[p] + s}))
    return grads


# -- the cases the tests run ------------------------------------------------------------
@dataclass(frozen=True)
class Reference:
    """A layer as the tests know it independently: its forward, backward and parameters."""

    forward: Callable
    backward: Callable
    sample_params: Callable[[np.random.Generator], dict]


def _bn_params(rng):
    return {"gamma": rng.uniform(0.5, 2.0) * rng.choice([-1.0, 1.0]), "beta": rng.normal(),
            "epsilon": rng.uniform(0.01, 0.5)}


def _bn_eval_params(rng):
    return {**_bn_params(rng), "running_mean": rng.normal(), "running_var": rng.uniform(0.5, 2.0)}


def _renamed(function, **names):
    """The same reference for a user function whose parameters have other names (eps …)."""
    def call(*args, **params):
        return function(*args, **{names.get(k, k): v for k, v in params.items()})

    return call


def _user_bn_params(rng):
    p = _bn_params(rng)
    p["eps"] = p.pop("epsilon")
    return p


def _gamma_beta(rng):
    return {"gamma": rng.uniform(0.5, 2.0) * rng.choice([-1.0, 1.0]), "beta": rng.normal()}


REFERENCES = {
    "batchnorm": Reference(batchnorm_forward, batchnorm_backward, _bn_params),
    "batchnorm-eval": Reference(batchnorm_eval_forward, batchnorm_eval_backward, _bn_eval_params),
    "layernorm": Reference(layernorm_forward, layernorm_backward, _bn_params),
    "my_batchnorm": Reference(_renamed(batchnorm_forward, eps="epsilon"),
                              _renamed(batchnorm_backward, eps="epsilon"), _user_bn_params),
    "batchnorm_one_pass": Reference(batchnorm_forward, batchnorm_backward, _bn_params),
    "rmsnorm": Reference(rmsnorm_forward, rmsnorm_backward, _bn_params),
    "log_softmax": Reference(log_softmax_forward, log_softmax_backward, _gamma_beta),
}
