"""The real errors recorded by hand in the fourth untouched set (benchmarks/heldout_u4/expected.json), each confirmed
numerically without bngraph: the write-up's formula typed in NumPy against the true value, from central finite
differences of forwards written here (Batch Norm over the batch, T from test_heldout_errors; LayerNorm over one vector
with per-element gamma; RMSNorm over one vector). The right versions pass the same checks, and several disputed or
error-free rows are shown right in numbers.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from test_heldout_errors import (T, differs, documents_test, grad, recorded_error_tests, repeat_of_test,
                                 verdict_lines_tests)

U4 = Path(__file__).resolve().parents[1] / "benchmarks" / "heldout_u4"
EXPECTED = json.loads((U4 / "expected.json").read_text())
RNG = np.random.default_rng(41)

S = np.sqrt(T["var"] + T["eps"])          # sqrt(sigma_B^2 + eps)
G = T["gamma"] * T["dy"]                  # dL/dxhat_i
XC = T["x"] - T["mu"]                     # x_i - mu_B


# -- LayerNorm over one vector, per-element gamma ---------------------------------------------------------------------------
LN_X, LN_GAMMA, LN_DY, LN_EPS = RNG.normal(0.3, 1.4, 6), RNG.normal(1.0, 0.4, 6), RNG.normal(0, 1, 6), 0.2
LN_D, LN_MU = len(LN_X), LN_X.mean()
LN_S = np.sqrt(LN_X.var() + LN_EPS)
LN_XHAT = (LN_X - LN_MU) / LN_S
LN_G = LN_DY * LN_GAMMA                    # dL/dxhat_j


def _xhat(x, eps=LN_EPS):
    return (x - x.mean()) / np.sqrt(x.var() + eps)


def _ln(x, gamma=LN_GAMMA, beta=0.0):
    return gamma * _xhat(x) + beta


LN_DX = grad(lambda v: float(LN_DY @ _ln(v)), LN_X)
LN_DGAMMA = grad(lambda g: float(LN_DY @ _ln(LN_X, g)), LN_GAMMA)
XHAT_JAC = np.array([grad(lambda v: _xhat(v)[j], LN_X) for j in range(LN_D)])     # dxhat_j/dx_i at [j, i]
VAR_GRAD = grad(lambda v: float(v.var()), LN_X)                                   # dVar/dx_i


def _hexo_dx_row1(exponent_over_product):
    """zh_hexo_batchnormal_2019 (6) row 1: g_i/s - sum g/(m s) + (-1/2) sum_j [...]^{-1.5} 2(x_i - mu)/m."""
    v = T["var"] + T["eps"]
    if exponent_over_product:   # as written: (g_j (x_i - mu)(var + eps))^{-1.5}, summed over j, x_i inside
        third = np.array([np.sum((G * xi * v + 0j) ** -1.5) for xi in XC])
    else:                       # mended: g_j (x_j - mu)(var + eps)^{-1.5}
        third = np.full(T["m"], np.sum(G * XC * v ** -1.5))
    return G / S - G.sum() / (T["m"] * S) - 0.5 * third * 2 * XC / T["m"]


CHECKS = {
    ("ko_ai_intro_normalization.md", 101): lambda: (
        T["gamma"] / S * (G - G.mean() - T["xhat"] * (G * T["xhat"]).mean()), T["dL_dx"]),
    ("zh_hexo_batchnormal_2019.md", 98): lambda: (   # dl/dxhat (dxhat/dmu + dxhat/dsigma^2), summed over the batch
        (G * (-1 / S)).sum() + (G * -0.5 * XC * (T["var"] + T["eps"]) ** -1.5).sum(), T["dL_dmu"]),
    ("zh_hexo_batchnormal_2019.md", 143): lambda: (  # row 2: (-(-1/2)) sum dl/dxhat (x - mu)(sigma^2 + eps)^{-1.5}
        0.5 * (G * XC * (T["var"] + T["eps"]) ** -1.5).sum(), T["dL_dvar"]),
    ("zh_hexo_batchnormal_2019.md", 147): lambda: (_hexo_dx_row1(exponent_over_product=True), T["dL_dx"]),
    ("ascend_add_layer_norm_grad.md", 42): lambda: (  # sum_j dy_i dxhat_j/dx_i, for each i
        LN_DY * XHAT_JAC.sum(axis=0), LN_DGAMMA),
    ("ascend_add_layer_norm_grad.md", 81): lambda: (
        (LN_X - LN_MU) / (LN_D * np.sqrt(LN_X.var())), VAR_GRAD),
}


test_every_recorded_error_has_a_check, test_each_recorded_error_is_wrong_in_numbers = recorded_error_tests(
    EXPECTED, CHECKS)
test_every_repeat_points_at_a_recorded_error = repeat_of_test(EXPECTED)
test_every_document_has_verdicts_a_layer_and_a_source = documents_test(U4, EXPECTED, 18, 11)


test_why_is_given_for_each_error_and_only_for_them = verdict_lines_tests(U4, EXPECTED)[0]  # (not all its recorded lines hold "=")


def test_the_right_versions_pass_the_same_checks():
    """The corrected formulas agree with the same references: the checks can tell right from wrong."""
    v = T["var"] + T["eps"]
    assert not differs(1 / S * (G - G.mean() - T["xhat"] * (G * T["xhat"]).mean()), T["dL_dx"])   # ko_ai 101
    assert not differs(T["gamma"] / S * (T["dy"] - T["dy"].mean() - T["xhat"] * (T["dy"] * T["xhat"]).mean()),
                       T["dL_dx"])                                                 # ko_ai 153, in dL/dy
    dvar_dmu = (-2 / T["m"] * XC).sum()                                                  # hexo 98 mended (row 2)
    assert not differs((G * (-1 / S)).sum() + (G * -0.5 * XC * v ** -1.5).sum() * dvar_dmu, T["dL_dmu"])
    assert not differs(-0.5 * (G * XC * v ** -1.5).sum(), T["dL_dvar"])                 # hexo 143 mended
    assert not differs(_hexo_dx_row1(exponent_over_product=False), T["dL_dx"])          # hexo 147 mended
    assert not differs(LN_DY * LN_XHAT, LN_DGAMMA)                                       # ascend 42 mended
    assert not differs(2 * (LN_X - LN_MU) / LN_D, VAR_GRAD)                              # ascend 81 mended


def test_the_written_dgamma_of_the_operator_readme_is_zero_for_every_input():
    """ascend 42: the columns of xhat's Jacobian sum to 0 (sum_j xhat_j = 0), so the written dgamma vanishes."""
    assert np.allclose(XHAT_JAC.sum(axis=0), 0, atol=1e-7)


def test_the_disputed_rows_of_the_operator_readme_are_right_as_meant():
    """ascend 38 (the sum over i: xhat's Jacobian is symmetric), 65 with the README's own dVar/dx of line 81 and eps
    dropped, and 87 read with consistent indices."""
    assert np.allclose(XHAT_JAC, XHAT_JAC.T, atol=1e-7)
    written_38 = np.array([np.sum(LN_DY * LN_GAMMA * XHAT_JAC[j, :]) for j in range(LN_D)])  # sum_i g_i dxhat_j/dx_i
    assert not differs(written_38, LN_DX)
    var, e = LN_X.var(), LN_X - LN_MU
    dvar_line_81 = e / (LN_D * np.sqrt(var))
    written_65 = ((np.eye(LN_D) - 1 / LN_D) / np.sqrt(var)
                  - np.outer(e, dvar_line_81) / var)                                     # [j, i] = dxhat_j/dx_i
    jac_eps0 = np.array([grad(lambda v: _xhat(v, 0.0)[j], LN_X) for j in range(LN_D)])
    assert not differs(written_65, jac_eps0)
    assert differs((np.eye(LN_D) - 1 / LN_D) / np.sqrt(var) - np.outer(e, VAR_GRAD) / var, jac_eps0)
    xh0, dx0 = e / np.sqrt(var), grad(lambda v: float(LN_DY @ (LN_GAMMA * _xhat(v, 0.0))), LN_X)
    assert not differs((LN_G - (LN_G.sum() + xh0 * (LN_G * xh0).sum()) / LN_D) / np.sqrt(var), dx0)   # 87


def test_the_numbers_of_the_korean_example_are_right():
    """ko_ai_intro_normalization 3.5: x = [1, 3], gamma = 2, eps = 0, L = (y_1^2 + y_2^2)/2 gives dL/dgamma = 4,
    dL/dbeta = 0 and dL/dx = [0, 0]; section 7.1 (disputed): [1, 3] has variance 1 (1/m) and 2 only with 1/(m-1)."""
    x = np.array([1.0, 3.0])

    def loss(v, gamma=2.0, beta=0.0):
        return 0.5 * float(np.sum((gamma * (v - v.mean()) / np.sqrt(v.var()) + beta) ** 2))

    assert not differs(grad(lambda g: loss(x, g[0]), 2.0), [4.0])
    assert not differs(grad(lambda b: loss(x, 2.0, b[0]), 0.0), [0.0])
    assert not differs(grad(loss, x), [0.0, 0.0])
    assert x.var() == 1.0 and x.var(ddof=1) == 2.0


def test_some_error_free_batchnorm_rows_are_right():
    """The paper's staged rows (several files), the boxed closed form (en_norm_tutorial), and hexo's final row of (6)."""
    v = T["var"] + T["eps"]
    dvar = (G * XC * -0.5 * v ** -1.5).sum()
    dmu = (G * -1 / S).sum() + dvar * (-2 * XC).sum() / T["m"]
    assert not differs(dvar, T["dL_dvar"]) and not differs(dmu, T["dL_dmu"])
    assert not differs(G / S + dvar * 2 * XC / T["m"] + dmu / T["m"], T["dL_dx"])
    assert not differs(1 / (T["m"] * S) * (T["m"] * G - G.sum() - T["xhat"] * (G * T["xhat"]).sum()), T["dL_dx"])
    assert not differs((T["dy"] * T["xhat"]).sum(), T["dL_dgamma"])


def test_the_layernorm_rows_are_right():
    """zh_matrix_calculus_norm (J = diag(gamma)[P/sqrt(s) - (Px)(Px)^T/(n s^{3/2})], s = var + eps),
    en_transformer_backprop_ln (dxhat_i/dx_j = (delta_ij - 1/n - xhat_i xhat_j/n)/sigma, sigma with eps) and the
    Turkish lesson's closed form (1/(d s))(d g - sum g - xhat sum g xhat)."""
    s = LN_X.var() + LN_EPS
    p = np.eye(LN_D) - np.ones((LN_D, LN_D)) / LN_D
    px = p @ LN_X
    jac_y = np.array([grad(lambda v: _ln(v)[i], LN_X) for i in range(LN_D)])
    assert not differs(np.diag(LN_GAMMA) @ (p / np.sqrt(s) - np.outer(px, px) / (LN_D * s ** 1.5)), jac_y)
    assert not differs((np.eye(LN_D) - 1 / LN_D - np.outer(LN_XHAT, LN_XHAT) / LN_D) / LN_S, XHAT_JAC)
    assert not differs((LN_D * LN_G - LN_G.sum() - LN_XHAT * (LN_G * LN_XHAT).sum()) / (LN_D * LN_S), LN_DX)


def test_the_rmsnorm_rows_are_right():
    """zh_llm_course_rmsnorm (Jacobian, u/r - x (x.u)/(H r^3), the eps > 0 radial term and the hand example),
    en_normalization_topic_rmsnorm and zh_norm_megatron_rmsnorm (RMS^{-1}(g - xhat mean(g xhat)))."""
    x, g, a, eps = RNG.normal(0.2, 1.1, 5), RNG.normal(1.0, 0.3, 5), RNG.normal(0, 1, 5), 0.1
    h = len(x)

    def rmsnorm(v, gain=g, e=eps):
        return gain * v / np.sqrt((v ** 2).mean() + e)

    r, u = np.sqrt((x ** 2).mean() + eps), a * g
    true = grad(lambda v: float(a @ rmsnorm(v)), x)
    jac = np.array([grad(lambda v: rmsnorm(v)[i], x) for i in range(h)])
    assert not differs(g[:, None] * (np.eye(h) / r - np.outer(x, x) / (h * r ** 3)), jac)
    assert not differs(u / r - x / (h * r ** 3) * (x @ u), true)
    assert not differs((u - (x / r) * (u * x / r).mean()) / r, true)
    assert not differs(x @ true, eps * (x @ u) / r ** 3)
    assert not differs(grad(lambda gg: float(a @ rmsnorm(x, gg)), g), a * x / r)
    # the hand example: x = [1, 2], g = [1, 1], a = [1, 0], eps = 0
    x2 = np.array([1.0, 2.0])
    dx2 = grad(lambda v: float(np.array([1.0, 0.0]) @ rmsnorm(v, np.ones(2), 0.0)), x2)
    assert np.allclose(dx2, [0.505964, -0.252982], atol=1e-6) and np.allclose(dx2[1], -0.4 / np.sqrt(2.5))
