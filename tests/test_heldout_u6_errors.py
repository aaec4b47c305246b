"""The real errors recorded by hand in the sixth untouched set (benchmarks/heldout_u6/expected.json), each confirmed
numerically without bngraph: the write-up's formula typed in NumPy against the true value, from central finite
differences of forwards written here (Batch Norm over the batch, T from test_heldout_errors; LayerNorm over one vector
with a per-element gamma; RMSNorm over one vector with a per-element gain). The mended versions pass the same checks,
and several disputed or error-free rows are shown right in numbers.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from test_heldout_errors import (T, differs, documents_test, grad, recorded_error_tests, repeat_of_test,
                                 verdict_lines_tests)

U6 = Path(__file__).resolve().parents[1] / "benchmarks" / "heldout_u6"
EXPECTED = json.loads((U6 / "expected.json").read_text())
RNG = np.random.default_rng(66)

M, EPS = T["m"], T["eps"]
V = T["var"] + EPS                        # sigma_B^2 + eps
S = np.sqrt(V)                            # sqrt(sigma_B^2 + eps)
G = T["gamma"] * T["dy"]                  # dL/dxhat_i
XC = T["x"] - T["mu"]                     # x_i - mu_B

# -- LayerNorm over one vector, per-element gamma -----------------------------------------------------------------------------
LN_X, LN_DY, LN_G, LN_EPS = RNG.normal(0.4, 1.3, 7), RNG.normal(0, 1, 7), RNG.normal(1.0, 0.4, 7), 0.2
LN_D, LN_S = len(LN_X), np.sqrt(LN_X.var() + LN_EPS)
LN_XH = (LN_X - LN_X.mean()) / LN_S


def _ln(x, gamma=LN_G, eps=LN_EPS):
    return gamma * (x - x.mean()) / np.sqrt(x.var() + eps)


LN_DX = grad(lambda v: float(LN_DY @ _ln(v)), LN_X)

# -- RMSNorm over one vector, per-element gain -------------------------------------------------------------------------------
R_X, R_G, R_DY = RNG.normal(0.3, 1.2, 6), RNG.normal(1.0, 0.4, 6), RNG.normal(0, 1, 6)
R_D = len(R_X)


def _rms(x, g=R_G, eps=0.0):
    return g * x / np.sqrt((x ** 2).mean() + eps)


def _rms_dx(eps, g=R_G):
    return grad(lambda v: float(R_DY @ _rms(v, g, eps)), R_X)


def _interview_102(eps, g=R_G):
    """zh_llm_interview_ln_rmsnorm 102: (gamma_i/RMS)(dy_i - x_i/(d RMS^2) sum_j dy_j gamma_j x_j)."""
    r = np.sqrt((R_X ** 2).mean() + eps)
    return g / r * (R_DY - R_X / (R_D * r ** 2) * (R_DY * g @ R_X))


CHECKS = {
    ("zh_ln_vs_bn_notes.md", 42): lambda: (   # gamma_i pulled out of both sums, per-element gamma
        LN_G / LN_S * (LN_DY - LN_DY.mean() - LN_XH * (LN_DY * LN_XH).mean()), LN_DX),
    ("en_aggarwal_bn_gradient.md", 23): lambda: (   # dL/dxhat (1/m) + dL/dmu (1/m) + dL/dsigma^2 2(x - mu)/m
        G / M + T["dL_dmu"] / M + T["dL_dvar"] * 2 * XC / M, T["dL_dx"]),
    ("en_aggarwal_bn_gradient.md", 31): lambda: (   # dL/da gamma/m + ... (line 23 with dL/dxhat = gamma dL/da)
        T["dy"] * T["gamma"] / M + T["dL_dmu"] / M + T["dL_dvar"] * 2 * XC / M, T["dL_dx"]),
    ("en_aggarwal_bn_gradient.md", 43): lambda: (   # -(gamma/mu) sum dL/da + (1/sigma^3)(sum dL/da gamma (x-mu))(sum (x-mu)/m)
        -T["gamma"] / T["mu"] * T["dy"].sum() + (G * XC).sum() * XC.sum() / M / S ** 3, T["dL_dmu"]),
    ("zh_llm_interview_ln_rmsnorm.md", 102): lambda: (_interview_102(1e-5), _rms_dx(1e-5)),
}


test_every_recorded_error_has_a_check, test_each_recorded_error_is_wrong_in_numbers = recorded_error_tests(
    EXPECTED, CHECKS)
test_every_repeat_points_at_a_recorded_error = repeat_of_test(EXPECTED)
test_every_document_has_verdicts_a_layer_and_a_source = documents_test(U6, EXPECTED, 16, 7)


test_why_is_given_for_each_error_and_only_for_them, test_every_line_named_holds_an_equation = verdict_lines_tests(
    U6, EXPECTED)


def test_the_mended_versions_pass_the_same_checks():
    """The corrected formulas agree with the same references: the checks can tell right from wrong."""
    g = LN_G * LN_DY
    assert not differs((g - g.mean() - LN_XH * (g * LN_XH).mean()) / LN_S, LN_DX)               # ln_vs_bn 42 mended
    assert not differs(G / S + T["dL_dmu"] / M + T["dL_dvar"] * 2 * XC / M, T["dL_dx"])          # aggarwal 23 mended
    assert not differs(T["dy"] * T["gamma"] / S + T["dL_dmu"] / M + T["dL_dvar"] * 2 * XC / M, T["dL_dx"])  # 31
    assert not differs(-T["gamma"] / S * T["dy"].sum() + (G * XC).sum() * XC.sum() / M / S ** 3,
                       T["dL_dmu"])                                                              # aggarwal 43 mended
    r = np.sqrt((R_X ** 2).mean() + 1e-5)
    assert not differs(R_G * R_DY / r - R_X / (R_D * r ** 3) * (R_DY * R_G @ R_X), _rms_dx(1e-5))  # interview 102


def test_the_recorded_errors_are_not_right_in_a_special_case_that_hides_them():
    """ln_vs_bn 42 is right for a uniform gamma (so the check's gamma is not uniform); interview 102 is wrong for a
    uniform gain other than 1 and right for gain 1; aggarwal 43 uses a batch where mu differs from sigma."""
    c = np.full(LN_D, 1.6)
    dx_uniform = grad(lambda v: float(LN_DY @ _ln(v, c)), LN_X)
    assert not differs(c / LN_S * (LN_DY - LN_DY.mean() - LN_XH * (LN_DY * LN_XH).mean()), dx_uniform)
    assert differs(_interview_102(1e-5, np.full(R_D, 1.3)), _rms_dx(1e-5, np.full(R_D, 1.3)))
    assert not differs(_interview_102(1e-5, np.ones(R_D)), _rms_dx(1e-5, np.ones(R_D)))
    assert abs(T["mu"] - S) > 0.1


def test_the_error_free_batchnorm_rows_are_right():
    """The staged rows of en_nn_framework, en_cpp (LayerNorm form on T), zh_cnn_course's Jacobian and two-means form,
    Thorey's dsigma^2/dh and final dL/dh, the ja_niwa/zh_ln rows' shared closed form, and zh_bn_global's final form."""
    dvar = (G * XC * -0.5 * V ** -1.5).sum()
    dmu = (G * -1 / S).sum() + dvar * (-2 * XC).sum() / M
    assert not differs(G / S + dvar * 2 * XC / M + dmu / M, T["dL_dx"])
    xh = T["xhat"]
    jac = (np.eye(M) - 1 / M - np.outer(xh, xh) / M) / S                      # zh_cnn d xhat_j/d x_i at [j, i]
    assert not differs(jac, np.array([grad(lambda v: ((v - v.mean()) / np.sqrt(v.var() + EPS))[j], T["x"])
                                      for j in range(M)]))
    assert not differs((G - G.mean() - xh * (G * xh).mean()) / S, T["dL_dx"])
    assert not differs(2 * XC / M, grad(lambda v: float(v.var()), T["x"]))   # Thorey / th_en d sigma^2/dx
    thorey = T["gamma"] / (M * S) * (M * T["dy"] - T["dy"].sum() - XC / V * (T["dy"] * XC).sum())
    assert not differs(thorey, T["dL_dx"])


def test_the_bessel_post_is_right_with_its_own_variance():
    """en_hexo_bn_bessel_kronecker (disputed rows): with sigma^2 = 1/(N-1) sum (x - mu)^2 its Jacobian
    (s^-1/N)[N delta - 1 - N/(N-1) xhat_i xhat_j] and final dL/dx_i are right; with the layer's 1/m they are not."""
    x, dy, gamma = T["x"], T["dy"], T["gamma"]
    s = np.sqrt(x.var(ddof=1) + EPS)
    xh = (x - x.mean()) / s
    final = gamma / (M * s) * (M * dy - dy.sum() - M / (M - 1) * xh * (dy * xh).sum())
    true = grad(lambda v: float(dy @ (gamma * (v - v.mean()) / np.sqrt(v.var(ddof=1) + EPS))), x)
    assert not differs(final, true) and differs(final, T["dL_dx"])


def test_the_rmsnorm_rows_are_right():
    """en_rmsnorm_backward_beauty (r [v_i - (1/d) xhat_i sum v_j xhat_j], dr/dx_i = -x_i r^3/d, and the eps = 0
    projection facts), ja_niwa's and en_stage3's (1/RMS)(gamma_i dy_i - xhat_i S)."""
    for eps in (0.0, 0.1):
        r = 1 / np.sqrt((R_X ** 2).mean() + eps)
        xh, v = r * R_X, R_DY * R_G
        assert not differs(r * (v - xh * (v @ xh) / R_D), _rms_dx(eps))
        assert not differs(-R_X * r ** 3 / R_D, grad(lambda u: 1 / np.sqrt((u ** 2).mean() + eps), R_X))
    r0 = 1 / np.sqrt((R_X ** 2).mean())
    dx0 = _rms_dx(0.0)
    assert abs(dx0 @ R_X) < 1e-6 and not differs((r0 * R_X) @ (r0 * R_X), R_D)
    r1 = 1 / np.sqrt((R_X ** 2).mean() + 0.1)
    assert abs(_rms_dx(0.1) @ R_X) > 1e-4                                       # the eps asterisk: not orthogonal


def test_the_layernorm_rows_are_right():
    """zh_tw's g^x~ = (1/r)(g_j - xhat_j mean(g xhat)) then minus its mean, th_en's Jacobian, and en_scratch's numbers."""
    g = LN_G * LN_DY
    gt = (g - LN_XH * (g * LN_XH).mean()) / LN_S
    assert not differs(gt - gt.mean(), LN_DX)
    jac = (np.eye(LN_D) - 1 / LN_D - np.outer(LN_XH, LN_XH) / LN_D) / LN_S
    assert not differs(g @ jac, LN_DX)
    x, dy = np.array([1.0, 3.0, 4.0, 6.0]), np.array([0.5, -0.2, 0.1, 0.4])
    dx = grad(lambda v: float(dy @ ((v - v.mean()) / np.sqrt(v.var() + 1e-5))), x)
    assert np.allclose(dx, [0.1558, -0.2241, -0.0533, 0.1216], atol=2e-4)
