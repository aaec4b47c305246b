"""The real errors recorded by hand in the fifth untouched set (benchmarks/heldout_u5/expected.json), each confirmed
numerically without bngraph: the write-up's formula typed in NumPy against the true value, from central finite
differences of forwards written here (Batch Norm over the batch, T from test_heldout_errors; LayerNorm over one vector;
RMSNorm over one vector with per-element gain). The right versions pass the same checks, and several disputed or
error-free rows are shown right in numbers.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from test_heldout_errors import (T, differs, documents_test, grad, recorded_error_tests, repeat_of_test,
                                 verdict_lines_tests)

U5 = Path(__file__).resolve().parents[1] / "benchmarks" / "heldout_u5"
EXPECTED = json.loads((U5 / "expected.json").read_text())
RNG = np.random.default_rng(55)

M, EPS = T["m"], T["eps"]
V = T["var"] + EPS                        # sigma_B^2 + eps
S = np.sqrt(V)                            # sqrt(sigma_B^2 + eps)
G = T["gamma"] * T["dy"]                  # dL/dxhat_i
XC = T["x"] - T["mu"]                     # x_i - mu_B


def _bn_xhat(v, eps=EPS):
    return (v - v.mean()) / np.sqrt(v.var() + eps)


BN_JAC = np.array([grad(lambda v: _bn_xhat(v)[j], T["x"]) for j in range(M)])     # dxhat_j/dx_i at [j, i]
# dxhat_i/dx_i with mu held at its value and sigma^2 = mean((x - mu)^2) still moving with x_i
BN_DIAG_MU_FIXED = np.array([grad(lambda v: (v[i] - T["mu"]) / np.sqrt(((v - T["mu"]) ** 2).mean() + EPS),
                                  T["x"])[i] for i in range(M)])
# dxhat_i/dsigma^2 with x and mu fixed
DXHAT_DVAR = np.array([grad(lambda s2: XC[i] / np.sqrt(s2[0] + EPS), T["var"])[0] for i in range(M)])

# -- LayerNorm over one vector, scalar gamma ---------------------------------------------------------------------------------
LN_X, LN_DY, LN_GAMMA, LN_EPS = RNG.normal(0.4, 1.3, 7), RNG.normal(0, 1, 7), 1.6, 0.2
LN_D, LN_S = len(LN_X), np.sqrt(LN_X.var() + LN_EPS)
LN_XC = LN_X - LN_X.mean()


def _ln(x, gamma=LN_GAMMA, eps=LN_EPS):
    return gamma * (x - x.mean()) / np.sqrt(x.var() + eps)


LN_DX = grad(lambda v: float(LN_DY @ _ln(v)), LN_X)

# -- RMSNorm over one vector, per-element gain ------------------------------------------------------------------------------
R_X, R_G, R_DY = RNG.normal(0.3, 1.2, 6), RNG.normal(1.0, 0.4, 6), RNG.normal(0, 1, 6)
R_D = len(R_X)


def _rms(x, g=R_G, eps=0.0):
    return g * x / np.sqrt((x ** 2).mean() + eps)


def _rms_dx(eps):
    return grad(lambda v: float(R_DY @ _rms(v, eps=eps)), R_X)


def _llama_121(y_in_second_term):
    """zh_llama_notes_rmsnorm_boxed 121 (eps = 0 as in its line 90): (g_i/s)(dy_i - y_i/(d s) sum_j dy_j x_j)."""
    s = np.sqrt((R_X ** 2).mean())
    return R_G / s * (R_DY - y_in_second_term / (R_D * s) * (R_DY @ R_X))


CHECKS = {
    ("en_bn_explained_delta.md", 134): lambda: (   # dL/dxhat_i dxhat_i/dx_i, the total diagonal (the kindest reading)
        G * np.diag(BN_JAC), T["dL_dx"]),
    ("en_bn_explained_delta.md", 140): lambda: (   # 1/s - (x_i - mu)/s^3 * (2/m)(x_i - mu): the 1/2 lost
        1 / S - XC / V ** 1.5 * 2 / M * XC, BN_DIAG_MU_FIXED),
    ("zh_instancenorm_grad_giantpanda.md", 165): lambda: (   # the middle member, sum_i dL/dy_i gamma dxhat_i/dmu
        (G * (-1 / S)).sum(), T["dL_dmu"] / M),
    ("en_course_ch6d_bn_gradient.md", 66): lambda: (   # -(1/2)(x_i - mu)(sigma^2 + eps)^{-1} xhat_i
        -0.5 * XC / V * T["xhat"], DXHAT_DVAR),
    ("en_course_ch6d_bn_gradient.md", 70): lambda: (
        -0.5 / V * (G * XC).sum(), T["dL_dvar"]),
    ("zh_llama_notes_rmsnorm_boxed.md", 121): lambda: (
        _llama_121(R_G * R_X / np.sqrt((R_X ** 2).mean())), _rms_dx(0.0)),
    ("zh_transformer_math_ln_rmsnorm.md", 38): lambda: (   # elementwise: the Jacobian's diagonal only (eps 0.1)
        R_DY * R_G * (1 / np.sqrt((R_X ** 2).mean() + 0.1)
                      - R_X ** 2 / (np.sqrt((R_X ** 2).mean() + 0.1) ** 3 * R_D)), _rms_dx(0.1)),
    ("zh_cuda_course_layernorm_backward.md", 15): lambda: (
        LN_GAMMA / LN_S * (LN_DY - LN_DY.mean() - LN_XC / LN_S ** 2 * (LN_DY * LN_XC / LN_S).mean()), LN_DX),
}


test_every_recorded_error_has_a_check, test_each_recorded_error_is_wrong_in_numbers = recorded_error_tests(
    EXPECTED, CHECKS)
test_every_repeat_points_at_a_recorded_error = repeat_of_test(EXPECTED)
test_every_document_has_verdicts_a_layer_and_a_source = documents_test(U5, EXPECTED, 16, 8)


test_why_is_given_for_each_error_and_only_for_them, test_every_line_named_holds_an_equation = verdict_lines_tests(
    U5, EXPECTED)


def test_the_right_versions_pass_the_same_checks():
    """The corrected formulas agree with the same references: the checks can tell right from wrong."""
    assert not differs((G[:, None] * BN_JAC).sum(axis=0), T["dL_dx"])                     # explained 134 mended
    assert not differs(1 / S - 0.5 * XC / V ** 1.5 * 2 / M * XC, BN_DIAG_MU_FIXED)          # explained 140 mended
    assert not differs((G * (-1 / S)).sum() / M, T["dL_dmu"] / M)                           # instancenorm 165 mended
    assert not differs(-0.5 * XC * V ** -1.5, DXHAT_DVAR)                                    # ch6d 66, first member
    assert not differs(-0.5 / V * (G * T["xhat"]).sum(), T["dL_dvar"])                      # ch6d 70 with xhat
    assert not differs(-0.5 * V ** -1.5 * (G * XC).sum(), T["dL_dvar"])                     # ch6d 70 with -3/2
    s = np.sqrt((R_X ** 2).mean())
    assert not differs(R_G * R_DY / s - R_X / (R_D * s ** 3) * (R_DY * R_G @ R_X), _rms_dx(0.0))   # llama 121 mended
    r = np.sqrt((R_X ** 2).mean() + 0.1)
    assert not differs(R_DY * R_G / r - R_X * (R_DY * R_G @ R_X) / (R_D * r ** 3), _rms_dx(0.1))  # transformer 38
    assert not differs(LN_GAMMA / LN_S * (LN_DY - LN_DY.mean() - LN_XC / LN_S ** 2 * (LN_DY * LN_XC).mean()),
                       LN_DX)                                                                  # cuda 15 mended


def test_the_llama_row_is_wrong_under_the_reading_of_y_as_the_normalized_input_too():
    """zh_llama 121 with y_i read as x_i/s (no gain): gamma_i stays outside the sum, right only for a uniform gain."""
    s = np.sqrt((R_X ** 2).mean())
    assert differs(_llama_121(R_X / s), _rms_dx(0.0))
    uniform = np.full(R_D, 1.3)
    dx_uniform = grad(lambda v: float(R_DY @ _rms(v, uniform)), R_X)
    assert not differs(uniform / s * (R_DY - (R_X / s) / (R_D * s) * (R_DY @ R_X)), dx_uniform)


def test_the_paper_rows_and_closed_forms_are_right():
    """The paper's staged rows (ko_en guide, Arabic translation, x-jeff, paper analysis, ch6d steps 4-5, instancenorm's
    three terms), the closed forms of the explained notes (117, vectorised) and ch6d's boxed and simplified forms."""
    dvar = (G * XC * -0.5 * V ** -1.5).sum()
    dmu = (G * -1 / S).sum() + dvar * (-2 * XC).sum() / M
    assert not differs(dvar, T["dL_dvar"]) and not differs(dmu, T["dL_dmu"])
    assert not differs(G / S + dvar * 2 * XC / M + dmu / M, T["dL_dx"])
    closed = (M * G - G.sum() - T["xhat"] * (G * T["xhat"]).sum()) / (M * S)
    assert not differs(closed, T["dL_dx"])
    assert not differs((G - G.mean() - T["xhat"] * (G * T["xhat"]).mean()) / S, T["dL_dx"])    # ch6d boxed
    assert not differs((T["dy"] * T["xhat"]).sum(), T["dL_dgamma"])
    # explained 148: dsigma^2/dx_i = (2/m)(x_i - mu) - (2/m) sum (x_j - mu) / m, the total derivative
    assert not differs(2 / M * XC - 2 / M * XC.sum() / M, grad(lambda v: float(v.var()), T["x"]))


def test_the_bessel_post_is_right_with_its_own_variance():
    """en_backprop_ninja_bn_bessel (disputed rows): with sigma^2 = 1/(m-1) sum (x - mu)^2 its dsigma^2/dx_i and its
    dL/dx_i (factored, m/(m-1)) are right; with the layer's 1/m they are not."""
    x, dy, gamma = T["x"], T["dy"], T["gamma"]

    def bessel_loss(v):
        return float(dy @ (gamma * (v - v.mean()) / np.sqrt(v.var(ddof=1) + EPS)))

    v1 = x.var(ddof=1) + EPS
    xh, g = (x - x.mean()) / np.sqrt(v1), gamma * dy
    factored = (g - g.mean() - M / (M - 1) * xh * (g * xh).mean()) / np.sqrt(v1)
    assert not differs(factored, grad(bessel_loss, x))
    assert differs(factored, T["dL_dx"])
    assert not differs(2 * (x - x.mean()) / (M - 1), grad(lambda v: float(v.var(ddof=1)), x))


def test_the_layernorm_rows_are_right():
    """zh_megatron (staged rows and gamma/s (ybar - mean(ybar) - xhat mean(ybar xhat)), scalar gamma), en_ln_rmsnorm's
    closed form with per-element gamma, and zh_ma_rlhf's Jacobian gamma_i/sigma [delta - 1/d - xc_i xc_j/(d sigma^2)]
    with sigma = sqrt(var + eps)."""
    xh = LN_XC / LN_S
    g = LN_GAMMA * LN_DY
    dvar = -0.5 * LN_S ** -3 * (g * LN_XC).sum()
    dmu = -(g.sum()) / LN_S
    assert not differs(g / LN_S + dvar * 2 * LN_XC / LN_D + dmu / LN_D, LN_DX)
    assert not differs(LN_GAMMA / LN_S * (LN_DY - LN_DY.mean() - xh * (LN_DY * xh).mean()), LN_DX)
    gam = RNG.normal(1.0, 0.3, LN_D)
    gv = gam * LN_DY
    dx_vec = grad(lambda v: float(LN_DY @ (gam * (v - v.mean()) / np.sqrt(v.var() + LN_EPS))), LN_X)
    assert not differs((LN_D * gv - gv.sum() - xh * (gv * xh).sum()) / (LN_D * LN_S), dx_vec)
    jac = gam[:, None] / LN_S * (np.eye(LN_D) - 1 / LN_D - np.outer(LN_XC, LN_XC) / (LN_D * LN_S ** 2))
    assert not differs(LN_DY @ jac, dx_vec)
    assert differs(LN_DY @ (jac / gam[:, None] * gam[None, :]), dx_vec)    # ma_rlhf 61 read with a per-column gamma


def test_the_rmsnorm_rows_are_right():
    """zh_liger_kernel (k = i and k != i partials, dx_i), en_scala_course (g_i/r - x_i/(C r^3) sum g_j x_j),
    en_ln_rmsnorm ((1/RMS)(g_i - xhat_i/D sum g_j xhat_j)), zh_ma_rlhf's Jacobian and zh_llama's rows 97-115 (eps = 0)."""
    for eps in (0.0, 0.1):
        r = np.sqrt((R_X ** 2).mean() + eps)
        g = R_DY * R_G
        true = _rms_dx(eps)
        assert not differs(g / r - R_X / (R_D * r ** 3) * (g @ R_X), true)
        assert not differs((g - R_X / r / R_D * (g @ (R_X / r))) / r, true)
        jac = R_G[:, None] / r * (np.eye(R_D) - np.outer(R_X, R_X) / (R_D * r ** 2))
        assert not differs(jac, np.array([grad(lambda v: _rms(v, eps=eps)[i], R_X) for i in range(R_D)]))
    s = np.sqrt((R_X ** 2).mean())
    diag = R_G * ((R_X ** 2).sum() - R_X ** 2) / (R_D * s ** 3)                   # liger k = i
    off = -R_G[:, None] * np.outer(R_X, R_X) / (R_D * s ** 3)                      # liger k != i, [k, i]
    liger = np.where(np.eye(R_D, dtype=bool), np.diag(diag), off)
    assert not differs(R_DY @ liger, _rms_dx(0.0))
    assert not differs(grad(lambda gg: float(R_DY @ _rms(R_X, gg)), R_G), R_DY * R_X / s)   # dgamma


def test_the_instancenorm_final_formula_is_right():
    """zh_instancenorm 177-184 read as meant: gamma dy_i/s + (1/M) sum gamma dy (-1/s) + 0 + 2(x_i - mu)/M dL/dsigma^2."""
    dvar = (G * XC * -0.5 * V ** -1.5).sum()
    assert not differs(G / S + (G * (-1 / S)).sum() / M + 2 * XC / M * dvar, T["dL_dx"])
