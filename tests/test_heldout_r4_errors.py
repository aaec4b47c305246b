"""The real errors recorded by hand in the round-4 held-out write-ups (benchmarks/heldout_r4/expected.json), each
confirmed numerically without bngraph, as in test_heldout_errors.py: the write-up's formula typed in NumPy against
the true value from finite differences of a LayerNorm forward pass written here (one example of N features, a weight
w and a bias b per feature, loss L = g · y for an upstream gradient g).
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from test_heldout_errors import differs, grad, recorded_error_tests

R4 = Path(__file__).resolve().parents[1] / "benchmarks" / "heldout_r4"
EXPECTED = json.loads((R4 / "expected.json").read_text())

RNG = np.random.default_rng(11)
X, G = RNG.normal(0.3, 1.5, 5), RNG.normal(0.0, 1.0, 5)  # one example's features, the upstream gradient
W, B, EPS = RNG.normal(1.0, 0.5, 5), RNG.normal(0.0, 0.5, 5), 0.2
N = len(X)


def layernorm(x, w=W, b=B, eps=EPS, per_n=True):
    """y = w (x − μ)/√(σ² + ε) + b; with per_n=False the root is √(Σ(x − μ)² + ε) (no 1/N)."""
    c = x - x.mean()
    return w * c / np.sqrt((c @ c) / (len(x) if per_n else 1) + eps) + b


def true_dx(w=W, per_n=True):
    return grad(lambda v: G @ layernorm(v, w, per_n=per_n), X)


def jacobian(per_n=True, w=W):
    """J[i, j] = ∂y_i/∂x_j by central differences."""
    return np.array([grad(lambda v: layernorm(v, w, per_n=per_n)[i], X) for i in range(N)])


MU, S = X.mean(), ((X - X.mean()) ** 2).sum()
SIGMA = np.sqrt(S / N + EPS)
XHAT = (X - MU) / SIGMA


def _wanfa_dy_dx(i, j):
    return W[j] / np.sqrt(S + EPS) * ((i == j) - (X[i] - MU) / (S + EPS))


def _wanfa_dx():
    r = np.sqrt(S + EPS)
    return (G - G.sum() / N - (X - MU) / (S + EPS) * (G @ (X - MU))) / r


CHECKS = {
    ("hackmd_ln_triangledown.md", 14): lambda: (G * W / SIGMA * (1 - 1 / N - XHAT ** 2 / N), true_dx()),
    ("nemotron_layernormbackward.md", 41): lambda: (  # scalar γ (the page's): dL/dX̂ = γ dL/dY
        (1 / N) * (1.3 * G / SIGMA - XHAT / SIGMA ** 2 * (1.3 * G) * XHAT), true_dx(w=1.3)),
    ("wanfa688_ln_backward_zh.md", 7): lambda: (
        np.array([[_wanfa_dy_dx(i, j) for j in range(N)] for i in range(N)]), jacobian()),
    ("wanfa688_ln_backward_zh.md", 12): lambda: (np.full(N, 1 / np.sqrt(S + EPS)),  # ∂y_i/∂b_i
                                                 np.array([grad(lambda v: layernorm(X, b=v)[i], B)[i]
                                                           for i in range(N)])),
    ("wanfa688_ln_backward_zh.md", 16): lambda: (_wanfa_dx(), true_dx()),
}


test_every_recorded_error_has_a_check, test_each_recorded_error_is_wrong_in_numbers = recorded_error_tests(
    EXPECTED, CHECKS)


def test_the_right_versions_pass_the_same_checks():
    """The textbook gradient agrees with the differences; so do the write-ups' formulas where they are right."""
    gh = G * W
    right = (gh - gh.sum() / N - XHAT * (gh @ XHAT) / N) / SIGMA
    assert not differs(right, true_dx())
    # wanfa688's ∂L/∂x_i is the gradient of a normalisation by √(Σ(x − μ)² + ε) with w = 1: the check can tell
    assert not differs(_wanfa_dx(), true_dx(w=np.ones(N), per_n=False))
    # and its ∂y_i/∂x_j is wrong even under that normalisation (as recorded)
    assert differs(np.array([[_wanfa_dy_dx(i, j) for j in range(N)] for i in range(N)]),
                   jacobian(per_n=False))
    # the diagonal-only gradient (hackmd) is the diagonal of the Jacobian times g: right as a diagonal entry
    assert not differs(W / SIGMA * (1 - 1 / N - XHAT ** 2 / N), np.diag(jacobian()))
