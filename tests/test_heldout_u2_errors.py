"""The real errors recorded by hand in the second untouched set (benchmarks/heldout_u2/expected.json), each confirmed
numerically without bngraph: the write-up's formula typed in NumPy against the true value, from central finite
differences of forwards written here (Batch Norm over the batch with the 1/m or Bessel's 1/(m-1) variance, LayerNorm
over one vector) or from a property any running average must have. Where a written index is free, every value of it
is tried. The right versions pass the same checks, and a few "disputed" lines are shown right in numbers.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from test_heldout_errors import (T, differs, documents_test, grad, recorded_error_tests, repeat_of_test,
                                 verdict_lines_tests)

U2 = Path(__file__).resolve().parents[1] / "benchmarks" / "heldout_u2"
EXPECTED = json.loads((U2 / "expected.json").read_text())
RNG = np.random.default_rng(17)


def jacobian(f, v):
    """J[k, i] = d f(v)_k / d v_i by central differences."""
    return np.array([grad(lambda u: f(u)[k], v) for k in range(len(f(v)))])


# -- Batch Norm on T (m = 5, from test_heldout_errors): u = xhat, sigma_B = sqrt(var), s = sqrt(var + eps) -------------
def _s(t):
    return np.sqrt(t["var"] + t["eps"])


BN_J = jacobian(lambda v: (v - v.mean()) / np.sqrt(v.var() + T["eps"]), T["x"])  # du_j/dz_i at J[j, i]
OFF = ~np.eye(T["m"], dtype=bool)


def _zh_idl_jacobian(power_base):
    """zh_idl rows 39/47: du_j/dz_i = delta_ij/s - 1/(B s) - (z_i - mu)(z_j - mu)/(B base^{3/2})."""
    t, c = T, T["x"] - T["mu"]
    return np.eye(t["m"]) / _s(t) - 1 / (t["m"] * _s(t)) - np.outer(c, c) / (t["m"] * power_base ** 1.5)


def _steady(update, c=1.3, alpha=0.9):
    """One step of a running-average update from the steady state (running value = batch value = c)."""
    return update(c, c, alpha), c


def _written_ema(old, new, alpha):  # zh_idl rows 63/66: alpha * old + (alpha - 1) * new
    return alpha * old + (alpha - 1) * new


# -- the Chinese course's worked example: Z = [1, 2, 3], gamma = 2, beta = 1, G = [0.1, 0.2, 0.3] ------------------------
Z, G_EX, GAMMA_EX, BETA_EX, EPS_EX = np.array([1.0, 2.0, 3.0]), np.array([0.1, 0.2, 0.3]), 2.0, 1.0, 1e-8


def _example_dgamma():
    zhat = (Z - Z.mean()) / np.sqrt(Z.var() + EPS_EX)
    return grad(lambda g: float(G_EX @ (g[0] * zhat + BETA_EX)), GAMMA_EX)[0]


# -- Bessel's variance (Karpathy's makemore exercise) -----------------------------------------------------------------------
def _bn_bessel(x, gamma, beta, eps):
    return gamma * (x - x.mean()) / np.sqrt(x.var(ddof=1) + eps) + beta


def _makemore_final(t, with_dy):
    """makemore row 164: gamma s^{-1}/m [m dy_i - sum dy_j - m/(m-1) xhat_i sum_j (dy_j) xhat_j], Bessel's s."""
    m, x, dy = t["m"], t["x"], t["dy"]
    s = np.sqrt(x.var(ddof=1) + t["eps"])
    xhat = (x - x.mean()) / s
    last = (dy * xhat).sum() if with_dy else xhat.sum()
    return t["gamma"] / (s * m) * (m * dy - dy.sum() - m / (m - 1) * xhat * last)


BESSEL_DX = grad(lambda v: float(T["dy"] @ _bn_bessel(v, T["gamma"], T["beta"], T["eps"])), T["x"])


def _bessel_dvar_dmu(t):
    """d/dmu [1/(m-1) sum (x_i - mu)^2] at mu = the batch mean, by finite differences."""
    return grad(lambda u: float(((t["x"] - u[0]) ** 2).sum() / (t["m"] - 1)), t["mu"])[0]


# -- LayerNorm over one vector (per-element gamma), sigma = sqrt(var + eps) ------------------------------------------------
LN_X, LN_GAMMA, LN_EPS = RNG.normal(0.3, 1.4, 6), RNG.normal(1.0, 0.5, 6), 0.15
LN_S = np.sqrt(LN_X.var() + LN_EPS)
LN_XHAT = (LN_X - LN_X.mean()) / LN_S
LN_D = len(LN_X)
LN_J = jacobian(lambda v: (v - v.mean()) / np.sqrt(v.var() + LN_EPS), LN_X)  # dxhat_i/dx_j at J[i, j]


def _transformer_jacobian(last_over_d):
    last = np.outer(LN_XHAT, LN_XHAT) / (LN_D if last_over_d else 1)
    return (np.eye(LN_D) - 1 / LN_D - last) / LN_S


# -- a batch of N = 3 examples with D = 4 features (per-feature gamma), Batch Norm over axis 0, LayerNorm over axis 1 ------
X2, G2, GAMMA2, EPS2 = RNG.normal(0.4, 1.3, (3, 4)), RNG.normal(0, 1, (3, 4)), RNG.normal(1.0, 0.4, 4), 0.2


def _grad_2d(forward):
    """dL/dX for L = sum(G2 * forward(X2)), by central differences."""
    return grad(lambda v: float((G2 * forward(v.reshape(X2.shape))).sum()), X2.ravel()).reshape(X2.shape)


def _norm(x, axis):
    return GAMMA2 * (x - x.mean(axis, keepdims=True)) / np.sqrt(x.var(axis, keepdims=True) + EPS2)


BN2_DX, LN2_DX = _grad_2d(lambda x: _norm(x, 0)), _grad_2d(lambda x: _norm(x, 1))


def _streams_127(fixed=0):
    """cs231n_exercise_streams row 126-128 read literally for every k, j (N = 3 <= D, so sum_{j=0}^{N-1} is defined);
    fixed=1 also mends the 0 -> j slips, fixed=2 mends the x_kj inside the last sum too."""
    n, dim = X2.shape
    g, mu, v = G2 * GAMMA2, X2.mean(0), X2.var(0) + EPS2
    out = np.empty_like(X2)
    for k in range(n):
        for j in range(dim):
            if fixed == 0:
                first = g[k, :n].sum()
                last = (X2[k, j] - mu[0]) * (g[:, 0] * (X2[k, j] - mu[j])).sum()
            else:
                first = g[:, j].sum()
                inner = X2[k, j] - mu[j] if fixed == 1 else X2[:, j] - mu[j]
                last = (X2[k, j] - mu[j]) * (g[:, j] * inner).sum()
            out[k, j] = g[k, j] / np.sqrt(v[j]) + (-v[j] * first - last) / (n * v[j] ** 1.5)
    return out


def _streams_layernorm(count):
    """cs231n_exercise_streams row 156-158, sums over axis 1 (the product summed, the charitable reading)."""
    g, xc = G2 * GAMMA2, X2 - X2.mean(1, keepdims=True)
    v = X2.var(1, keepdims=True) + EPS2
    return g / np.sqrt(v) + (-v * g.sum(1, keepdims=True) - xc * (g * xc).sum(1, keepdims=True)) / (count * v ** 1.5)


# -- xopes: r = q / ||q|| on one vector --------------------------------------------------------------------------------------
Q, DR = RNG.normal(0.2, 1.0, 6), RNG.normal(0, 1, 6)
R = Q / np.linalg.norm(Q)
TRUE_DQ = grad(lambda v: float(DR @ (v / np.linalg.norm(v))), Q)


def _edunn_dxhat_dvar():
    """d xhat_i / d sigma^2 with x and mu held (the partial the note means), by central differences, one i at a time."""
    t = T
    return np.array([grad(lambda s: (t["x"][i] - t["mu"]) / np.sqrt(s[0] + t["eps"]), t["var"])[0]
                     for i in range(t["m"])])


# -- the Stack Exchange question: d/dx_j of the (biased) variance of one vector, mu != 0 -----------------------------------------
DVAR_DX = grad(lambda v: float(((v - v.mean()) ** 2).sum() / len(v)), LN_X)


def _bessel_notes_108(t, with_dy_j):
    """bessel_notes_bn_ce row 108 with Bessel's variance: its last sum carries dL/dy_i (as written) or dL/dy_j."""
    m, x, dy, gamma = t["m"], t["x"], t["dy"], t["gamma"]
    mu, s2 = x.mean(), x.var(ddof=1) + t["eps"]
    last = ((x - mu) * dy).sum() if with_dy_j else (x - mu).sum() * dy
    return gamma * s2 ** -0.5 * dy - gamma * s2 ** -0.5 * dy.sum() / m - gamma / 2 * s2 ** -1.5 * 2 / (m - 1) * (x - mu) * last


CHECKS = {
    ("zh_idl_bn_dudz.md", 39): lambda: (np.diag(_zh_idl_jacobian(np.sqrt(T["var"]) + T["eps"])), np.diag(BN_J)),
    ("zh_idl_bn_dudz.md", 47): lambda: (_zh_idl_jacobian(np.sqrt(T["var"]) + T["eps"])[OFF], BN_J[OFF]),
    ("zh_idl_bn_dudz.md", 63): lambda: _steady(_written_ema),
    ("zh_idl_bn_dudz.md", 66): lambda: _steady(_written_ema, c=0.8),  # the same update on a running sigma
    ("zh_course_bn_z.md", 105): lambda: (
        (T["gamma"] * T["dy"] * (T["xhat"] - T["mu"])).sum() * -0.5 * _s(T) ** -3, T["dL_dvar"]),
    ("zh_course_bn_z.md", 121): lambda: (0.12247, _example_dgamma()),
    ("makemore_bessel_readme.md", 92): lambda: (
        -2 / (T["m"] - 1) * (T["m"] * T["x"] - T["m"] * T["mu"]), np.full(T["m"], _bessel_dvar_dmu(T))),
    ("makemore_bessel_readme.md", 164): lambda: (_makemore_final(T, with_dy=False), BESSEL_DX),
    ("transformer_math_ln_jacobian.md", 36): lambda: (_transformer_jacobian(False), LN_J),
    ("transformer_math_ln_jacobian.md", 39): lambda: (
        LN_GAMMA[:, None] * _transformer_jacobian(False),
        jacobian(lambda v: LN_GAMMA * (v - v.mean()) / np.sqrt(v.var() + LN_EPS), LN_X)),
    ("cs231n_rmd_alt_backward.md", 30): lambda: ((T["dy"] * T["x"]).sum(), T["dL_dgamma"]),
    ("cs231n_rmd_alt_backward.md", 31): lambda: ((T["dy"] * T["x"]).sum(), T["dL_dgamma"]),
    ("cs231n_exercise_streams.md", 127): lambda: (_streams_127(), BN2_DX),
    ("cs231n_exercise_streams.md", 157): lambda: (_streams_layernorm(X2.shape[0]), LN2_DX),
    ("zh_xopes_normalize.md", 49): lambda: (DR / np.linalg.norm(Q) * (1 - R ** 2), TRUE_DQ),
    ("es_edunn_batchnorm.md", 149): lambda: (
        np.full(T["m"], -0.5 * (T["x"] - T["mu"]).sum() * (T["var"] + T["eps"]) ** -1.5), _edunn_dxhat_dvar()),
    ("se_layernorm_no_gradient_flow.md", 30): lambda: (
        2 / LN_D * ((LN_X - LN_X.mean()) - LN_X.mean() - LN_X.mean()), DVAR_DX),
    ("bessel_notes_bn_ce.md", 76): lambda: (
        -2 * T["gamma"] / (T["m"] - 1) * ((T["x"] - T["mu"]) * T["dy"]).sum(), T["dL_dvar"] * _bessel_dvar_dmu(T)),
    ("bessel_notes_bn_ce.md", 108): lambda: (_bessel_notes_108(T, with_dy_j=False), BESSEL_DX),
}


test_every_recorded_error_has_a_check, test_each_recorded_error_is_wrong_in_numbers = recorded_error_tests(
    EXPECTED, CHECKS)


test_every_repeat_points_at_a_recorded_error = repeat_of_test(EXPECTED)
test_every_document_has_verdicts_a_layer_and_a_source = documents_test(U2, EXPECTED, 12, 8)


def test_the_makemore_final_row_is_wrong_with_the_1_over_m_variance_too():
    """Row 164 misses dL/dy_j in its last sum: no variance convention makes it right (T's truth uses 1/m)."""
    assert differs(_makemore_final(T, with_dy=False), T["dL_dx"])


def test_no_reading_of_sigma_b_rescues_the_lost_square():
    """zh_idl rows 39/47 stay wrong if sigma_B is read as the code's sqrt(var + eps) as well."""
    assert differs(_zh_idl_jacobian(_s(T) + T["eps"]), BN_J)


def test_the_right_versions_pass_the_same_checks():
    """The corrected formulas agree with the same references: the checks can tell right from wrong."""
    assert not differs(_zh_idl_jacobian(T["var"] + T["eps"]), BN_J)                       # zh_idl 39/47 fixed
    assert not differs(*_steady(lambda old, new, a: a * old + (1 - a) * new))               # zh_idl 63/66 fixed
    assert not differs((T["gamma"] * T["dy"] * (T["x"] - T["mu"])).sum() * -0.5 * _s(T) ** -3, T["dL_dvar"])
    middle = 0.1 * (-1.2247) + 0.2 * 0 + 0.3 * 1.2247                                       # zh_course 121's sum
    assert abs(middle - _example_dgamma()) < 1e-4 and abs(0.12247 - _example_dgamma()) > 0.1
    assert not differs(-2 / (T["m"] - 1) * (T["x"].sum() - T["m"] * T["mu"]), _bessel_dvar_dmu(T))  # makemore 92
    assert not differs(_makemore_final(T, with_dy=True), BESSEL_DX)                       # makemore 164 fixed
    assert not differs(_transformer_jacobian(True), LN_J)                                  # transformer 36 fixed


# -- some disputed lines, right in numbers (so they are no recorded error) ----------------------------------------------------
def _matrix_derivatives_dmu():
    """matrix_derivatives row 27: its three members, with the sign slip and the extra sum of the middle one."""
    t, g = T, T["gamma"] * T["dy"]
    first = (g * -1 / _s(t)).sum() + t["m"] * t["dL_dvar"] * (-2 / t["m"] * (t["x"] - t["mu"]).sum())
    middle = (g * -1 / _s(t)).sum() + t["m"] * t["dL_dvar"] * (2 / t["m"] * (t["x"] - t["mu"]).sum())
    last = (g * -1 / _s(t)).sum()
    return np.array([first, middle, last])


def test_some_disputed_lines_are_right_in_numbers():
    assert not differs(_matrix_derivatives_dmu(), np.full(3, T["dL_dmu"]))                  # matrix_derivatives 27
    rms_x, rms_w, rms_dy, eps = RNG.normal(0.2, 1.1, 5), RNG.normal(1.0, 0.4, 5), RNG.normal(0, 1, 5), 0.1
    r = np.sqrt((rms_x ** 2).mean() + eps)                                                  # the note's RMS, eps in
    written = (rms_w * rms_dy - rms_x * (rms_x * rms_w * rms_dy).sum() / (len(rms_x) * r ** 2)) / r  # rms_norm_note 54
    assert not differs(written, grad(lambda v: float(rms_dy @ (rms_w * v / np.sqrt((v ** 2).mean() + eps))), rms_x))
    mean_y = (rms_dy * rms_w * rms_x / r).mean()                                            # ascend row 22
    assert not differs((rms_dy * rms_w - rms_x / r * mean_y) / r, written)


test_why_is_given_for_each_error_and_only_for_them = verdict_lines_tests(U2, EXPECTED)[0]  # (not all its recorded lines hold "=")


def test_the_scale_invariance_holds_for_positive_a_only():
    """obsidian_bn_paper_notes 112-120 (disputed): BN(aWu) = BN(Wu) for a > 0 with eps = 0, not for a < 0."""
    x = RNG.normal(0.4, 1.3, 6)  # x = Wu over a batch
    bn = lambda v, eps=0.0: (v - v.mean()) / np.sqrt(v.var() + eps)  # noqa: E731
    assert not differs(bn(2.5 * x), bn(x))
    assert differs(bn(-2.5 * x), bn(x)) and differs(bn(2.5 * x, 0.3), bn(x, 0.3))


def test_the_llama_notes_rmsnorm_gradient_is_right():
    """zh_llama_rmsnorm_grad (no error recorded): dL/dx_j = (ghat_j - x_j c)/s, c = sum ghat_i x_i / (d s^2)."""
    x, gamma, g, eps = RNG.normal(0.1, 1.2, 7), RNG.normal(1.0, 0.3, 7), RNG.normal(0, 1, 7), 1e-6
    s = np.sqrt((x ** 2).mean() + eps)
    c = (g * gamma * x).sum() / (len(x) * s ** 2)
    assert not differs((g * gamma - x * c) / s, grad(lambda v: float(g @ (gamma * v / np.sqrt((v ** 2).mean() + eps))), x))


def test_the_second_batch_right_versions_pass_the_same_checks():
    """The corrected formulas of the files added second agree with the same references."""
    assert not differs((T["dy"] * T["xhat"]).sum(), T["dL_dgamma"])                                 # rmd 30/31 fixed
    assert not differs(_streams_127(fixed=2), BN2_DX)                                               # streams 127 fixed
    assert not differs(_streams_layernorm(X2.shape[1]), LN2_DX)                                     # streams 157, 1/D
    assert not differs((DR - (R @ DR) * R) / np.linalg.norm(Q), TRUE_DQ)                            # xopes 49 fixed
    assert not differs(-0.5 * (T["x"] - T["mu"]) * (T["var"] + T["eps"]) ** -1.5, _edunn_dxhat_dvar())  # edunn 149
    assert abs(LN_X.mean()) > 0.1 and not differs(2 / LN_D * (LN_X - LN_X.mean()), DVAR_DX)        # se 30 fixed
    assert not differs(_bessel_notes_108(T, with_dy_j=True), BESSEL_DX)                             # bessel 108 fixed
    assert differs(_bessel_notes_108(T, with_dy_j=False), T["dL_dx"])          # bessel 108 is wrong with 1/m too


def test_mending_only_the_zero_index_slips_leaves_the_streams_row_wrong():
    """cs231n_exercise_streams 127: with mu_0 -> mu_j, column 0 -> j and sum_j -> sum_i mended, the last sum still
    multiplies by (x_kj - mu_j) instead of (x_ij - mu_j), so the row is wrong under that charitable reading too."""
    assert differs(_streams_127(fixed=1), BN2_DX)


def test_some_disputed_lines_of_the_second_batch_are_right_in_numbers():
    """Disputed, not errors: rows right under their own convention or reading."""
    # cs231n_exercise_streams 137: the matrix form is right when the sum covers the product (the post's code)
    assert not differs(_streams_layernorm(X2.shape[1]), LN2_DX)
    g, xc, v = G2 * GAMMA2, X2 - X2.mean(0), X2.var(0) + EPS2
    assert not differs(g / np.sqrt(v) + (-v * g.sum(0) - xc * (g * xc).sum(0)) / (X2.shape[0] * v ** 1.5), BN2_DX)
    # ln_backprop_sinai_2022 (eps added to sigma): its summary Jacobian matches z = (x - mu)/(sigma + eps)
    x, eps, n = LN_X, LN_EPS, len(LN_X)
    mu, sigma = x.mean(), x.std()
    dsigma = (x - mu) / (n * sigma)
    jac = (np.eye(n) - 1 / n) / (sigma + eps) - np.outer(dsigma, x - mu) / (sigma + eps) ** 2  # [i, k] = dz_k/dx_i
    assert not differs(jac, jacobian(lambda v: (v - v.mean()) / (v.std() + eps), x).T)
    # triton_rmsnorm_readme: dL/dx = r g - (r^3 / N) x (g . x)
    w, dy, e = RNG.normal(1.0, 0.3, n), RNG.normal(0, 1, n), 1e-3
    r = 1 / np.sqrt((x ** 2).mean() + e)
    gw = dy * w
    assert not differs(r * gw - r ** 3 / n * x * (gw @ x), grad(lambda v: float(dy @ (w * v / np.sqrt((v ** 2).mean() + e))), x))
