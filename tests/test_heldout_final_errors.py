"""The real errors recorded by hand in the final untouched write-ups (benchmarks/heldout_final/expected.json), each
confirmed numerically without bngraph: the write-up's formula typed in NumPy against the true value, from central
finite differences of a forward pass written here (Batch Norm over the batch, LayerNorm over a vector, RMSNorm over
each row) or an independent closed form. Where a written sum or index is literally wrong, the check evaluates it
literally; where a free index has to be picked, every pick tried differs. The right versions pass the same checks.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from test_heldout_errors import T, differs, grad, recorded_error_tests, repeat_of_test

FINAL = Path(__file__).resolve().parents[1] / "benchmarks" / "heldout_final"
EXPECTED = json.loads((FINAL / "expected.json").read_text())
RNG = np.random.default_rng(11)


# -- independent forwards -------------------------------------------------------------------------------------------
def layernorm(v, gamma, beta, eps):
    mu = v.mean()
    return gamma * (v - mu) / np.sqrt(((v - mu) ** 2).mean() + eps) + beta


def rmsnorm_rows(X, w, eps):  # y_ij = w_j x_ij / sqrt(mean_h x_ih^2 + eps)
    return w * X / np.sqrt((X ** 2).mean(axis=1, keepdims=True) + eps)


def jacobian(f, v):
    """J[k, i] = d f(v)_k / d v_i by central differences."""
    return np.array([grad(lambda u: f(u)[k], v) for k in range(len(f(v)))])


def grad_matrix(f, X, h=1e-6):
    out = np.empty_like(X)
    for idx in np.ndindex(X.shape):
        e = np.zeros_like(X)
        e[idx] = h
        out[idx] = (f(X + e) - f(X - e)) / (2 * h)
    return out


# -- a LayerNorm vector (per-element gamma) ---------------------------------------------------------------------------
def ln_case():
    n = 6
    x, dy = RNG.normal(0.3, 1.5, n), RNG.normal(0, 1, n)
    gamma, beta, eps = RNG.normal(1, 0.5, n), RNG.normal(0, 0.5, n), 0.2
    mu, var = x.mean(), x.var()
    s = np.sqrt(var + eps)
    dx = grad(lambda v: float(dy @ layernorm(v, gamma, beta, eps)), x)
    dvar = grad(lambda v: float(dy @ (gamma * (x - mu) / np.sqrt(v[0] + eps) + beta)), var)[0]  # sigma^2 moved alone
    dmu = grad(lambda v: float(dy @ (gamma * (x - v[0]) / np.sqrt(var + eps) + beta)), mu)[0]
    return dict(n=n, x=x, dy=dy, gamma=gamma, beta=beta, eps=eps, mu=mu, var=var, s=s, xhat=(x - mu) / s, dx=dx,
                dvar=dvar, dmu=dmu, J=jacobian(lambda v: (v - v.mean()) / np.sqrt(v.var() + eps), x))


LN = ln_case()


# -- an RMSNorm batch (B rows of H features) ---------------------------------------------------------------------------
def rms_case(eps):
    B, H = 3, 5
    X, dY, w = RNG.normal(0.2, 1.2, (B, H)), RNG.normal(0, 1, (B, H)), RNG.normal(1, 0.4, H)
    r = np.sqrt((X ** 2).mean(axis=1) + eps)
    dX = grad_matrix(lambda Z: float((dY * rmsnorm_rows(Z, w, eps)).sum()), X)
    return dict(B=B, H=H, X=X, dY=dY, w=w, eps=eps, r=r, dX=dX)


RMS = rms_case(0.1)     # kernel-hyperdrive: r_i = sqrt(1/H sum_h x_ih^2 + eps)
RMS0 = rms_case(0.0)    # the Chinese notes: rms without eps, gamma per feature


def shifted(j, n):
    return (j + 1) % n


# -- Batch Norm checks on T (m = 5, from test_heldout_errors) ---------------------------------------------------------
def _g(t):
    return t["gamma"] * t["dy"]


def _s(t):
    return np.sqrt(t["var"] + t["eps"])


def population_variance_estimates(B=10, m=4, reps=20000, seed=5):
    """Mean over many draws of the page's 1/(B-1) sum of batch variances, and of m/(m-1) * mean, for N(0, 2^2)."""
    rng = np.random.default_rng(seed)
    batches = rng.normal(0.0, 2.0, (reps, B, m))
    v = batches.var(axis=2)  # biased batch variances sigma_i^2
    return float((v.sum(axis=1) / (B - 1)).mean()), float((m / (m - 1) * v.mean(axis=1)).mean()), 4.0


def _literal_sum_over_j_of_l_terms(X, dF, w, rms, l_of):
    """zh notes, line 213: df_ij w_j/rms_i - sum_{j=0}^{N-1} df_il x_il x_ij w_l/(N rms_i^3), j the summation index."""
    B, N = X.shape
    out = np.empty_like(X)
    for i in range(B):
        for j in range(N):
            l = l_of(j, N)
            out[i, j] = dF[i, j] * w[j] / rms[i] - sum(dF[i, l] * X[i, l] * X[i, jj] * w[l] / (N * rms[i] ** 3)
                                                       for jj in range(N))
    return out


def _literal_constant_sum(X, dF, w, rms, l_of):
    """zh notes, line 217: df_ij w_j/rms_i - x_ij/(N rms_i^2) sum_{j=0}^{N-1} df_il rmsnorm(x_il): N equal terms."""
    B, N = X.shape
    out = np.empty_like(X)
    for i in range(B):
        for j in range(N):
            l = l_of(j, N)
            out[i, j] = dF[i, j] * w[j] / rms[i] - X[i, j] / (N * rms[i] ** 2) * N * dF[i, l] * X[i, l] * w[l] / rms[i]
    return out


def _sum_over_i_of_j_terms(t, j_of, dldxhat):
    """(1/(m s))[m g_i - sum_j g_j - xhat_i sum_{i=1}^m g_j xhat_j]: the last sum has m equal terms g_j xhat_j."""
    m, s, xhat = t["m"], _s(t), t["xhat"]
    j = np.array([j_of(i, m) for i in range(m)])
    return (m * dldxhat - dldxhat.sum() - xhat * m * dldxhat[j] * xhat[j]) / (m * s)


def _kh_row(R, first_weight, power=3):
    """kernel-hyperdrive rows: dL/dy_ij w_?/r_i - (sum_h dL/dy_ih w_h x_ih) x_ij / (H r_i^power)."""
    X, dY, w, r, H = R["X"], R["dY"], R["w"], R["r"], R["H"]
    inner = (dY * w * X).sum(axis=1)
    first = np.array([[dY[i, j] * first_weight(j) / r[i] for j in range(H)] for i in range(R["B"])])
    return first - X * (inner / (H * r ** power))[:, None]


def _zh_rrms_check(R):
    X = R["X"]
    N = X.shape[1]
    u = (X ** 2).mean(axis=1)
    written = np.repeat((-0.5 * u ** -1.5 * 2 / N)[:, None], N, axis=1)
    true = np.empty_like(X)
    for i in range(X.shape[0]):
        true[i] = grad(lambda v: 1 / np.sqrt((v ** 2).mean()), X[i])
    return written, true



def _ko_direct_term(t, d_centered):
    """Korean page, line 59/61: 1/s - (x_i - mu_B)/s^3 * d(x_i - mu_B)/dx_i."""
    return 1 / _s(t) - (t["x"] - t["mu"]) / _s(t) ** 3 * d_centered


def _ko_rmsnorm(v, dy, gamma, eps):
    """Korean page, line 90, scalar gamma: (gamma/RMS) dy_d - (x_d/RMS^3)((gamma/RMS) sum_j x_j dy_j)."""
    rms = np.sqrt((v ** 2).mean() + eps)
    return gamma / rms * dy - v / rms ** 3 * (gamma / rms * (v * dy).sum())


KO = dict(v=RNG.normal(0.4, 1.3, 7), dy=RNG.normal(0, 1, 7), gamma=1.6, eps=0.05)
KO["dx"] = grad(lambda u: float(KO["dy"] @ (KO["gamma"] * u / np.sqrt((u ** 2).mean() + KO["eps"]))), KO["v"])
DIAG = np.diag(jacobian(lambda v: (v - v.mean()) / np.sqrt(v.var() + T["eps"]), T["x"]))


CHECKS = {
    ("zaffnet_bn_2017.md", 51): lambda: (
        -T["gamma"] * (-0.5) * _s(T) ** -3 * (T["dy"] * (T["x"] - T["mu"])).sum(), T["dL_dvar"]),
    ("zaffnet_bn_2017.md", 52): lambda: (
        -T["gamma"] * _s(T) ** -3 / 2 * (T["dy"][:2] * (T["x"][:2] - T["mu"])).sum(), T["dL_dvar"]),
    ("cs231n_implement_bn_page.md", 87): lambda: population_variance_estimates()[::2],
    ("it_bn_appunti.md", 174): lambda: (
        _g(T) / _s(T) - _g(T).sum() / (T["m"] * _s(T))
        - 0.5 * _s(T) ** -3 * 2 * T["xhat"] / T["m"] * (_g(T) * T["xhat"]).sum(), T["dL_dx"]),
    ("obsidian_layernorm_delta.md", 20): lambda: (
        np.eye(LN["n"]) + 1 / LN["n"], jacobian(lambda v: v - v.mean(), LN["x"])),
    ("obsidian_layernorm_delta.md", 22): lambda: (  # third and fourth members, sums over the n components
        np.concatenate([(2 * (LN["x"] - LN["mu"]) + LN["n"] * 2 / LN["n"] * (LN["x"] - LN["mu"]))
                        / (2 * LN["n"] * np.sqrt(LN["var"])),
                        (LN["x"] - LN["mu"]) / (LN["n"] * np.sqrt(LN["var"])) + 2 / LN["n"] * LN["n"] * (LN["x"] - LN["mu"])]),
        np.tile(grad(lambda v: v.std(), LN["x"]), 2)),
    ("obsidian_layernorm_delta.md", 24): lambda: (  # X'_i = (X_i - mu)/sigma, no eps; J[i, j] = dX'_i/dX_j
        (np.sqrt(LN["var"]) * (np.eye(LN["n"]) + 1 / LN["n"])
         - np.outer(LN["x"] - LN["mu"], (LN["x"] - LN["mu"]) / np.sqrt(LN["var"])) / LN["n"]) / LN["var"],
        jacobian(lambda v: (v - v.mean()) / v.std(), LN["x"])),
    ("ln_backpropagate_notes.md", 11): lambda: ((LN["x"] - LN["mu"]).sum() / LN["n"], LN["x"].var()),
    ("ln_backpropagate_notes.md", 27): lambda: (
        LN["gamma"] / LN["s"] + LN["dvar"] * 2 / LN["n"] * (LN["x"] - LN["mu"]) + LN["dmu"] / LN["n"], LN["dx"]),
    ("ln_backprop_jacobian.md", 45): lambda: (
        np.concatenate([[LN["dy"][0] * LN["gamma"][0]], LN["dx"][1:]]) @ LN["J"], LN["dx"]),
    ("kernel_hyperdrive_rmsnorm.md", 21): lambda: (  # w_h with h = j + 1; the row's sum over b keeps only b = i
        _kh_row(RMS, lambda j: RMS["w"][shifted(j, RMS["H"])]), RMS["dX"]),
    ("kernel_hyperdrive_rmsnorm.md", 22): lambda: (  # even read with w_j, the dropped 1/r_i stays
        _kh_row(RMS, lambda j: RMS["w"][j], power=2), RMS["dX"]),
    ("kernel_hyperdrive_rmsnorm.md", 23): lambda: (_kh_row(RMS, lambda j: RMS["w"][shifted(j, RMS["H"])]), RMS["dX"]),
    ("kernel_hyperdrive_rmsnorm.md", 27): lambda: (_kh_row(RMS, lambda j: RMS["w"][shifted(j, RMS["H"])]), RMS["dX"]),
    ("zh_triton_rmsnorm.md", 143): lambda: _zh_rrms_check(RMS0),
    ("zh_triton_rmsnorm.md", 213): lambda: (
        _literal_sum_over_j_of_l_terms(RMS0["X"], RMS0["dY"], RMS0["w"], RMS0["r"], shifted), RMS0["dX"]),
    ("zh_triton_rmsnorm.md", 215): lambda: (  # rmsnorm(x_il) = x_il w_l / rms_i: the same literal value as 213
        _literal_sum_over_j_of_l_terms(RMS0["X"], RMS0["dY"], RMS0["w"], RMS0["r"], shifted), RMS0["dX"]),
    ("zh_triton_rmsnorm.md", 217): lambda: (
        _literal_constant_sum(RMS0["X"], RMS0["dY"], RMS0["w"], RMS0["r"], shifted), RMS0["dX"]),
    ("zh_triton_rmsnorm.md", 219): lambda: (
        _literal_constant_sum(RMS0["X"], RMS0["dY"], RMS0["w"], RMS0["r"], shifted), RMS0["dX"]),
    ("dl_notes_bn_backward.md", 42): lambda: (
        (T["dy"] * T["xhat"]).sum(),
        grad(lambda b: float(T["dy"] @ (T["gamma"] * T["xhat"] + b[0])), T["beta"])[0]),
    ("normalization_dnn_notes.md", 18): lambda: (  # a square N x N table, so that x_{j,i} exists: row means
        NDN_X.mean(axis=1), np.array([sum(NDN_X[i, j] for i in range(4)) / 4 for j in range(4)])),
    ("normalization_dnn_notes.md", 40): lambda: (
        _g(T) / _s(T) + T["dL_dvar"] * 2 * (T["x"] - T["mu"] ** 2) / T["m"] + T["dL_dmu"] / T["m"], T["dL_dx"]),
    ("normalization_dnn_notes.md", 98): lambda: (
        _g(T) * (-0.5 * ((T["x"] - T["mu"]) / _s(T) ** 3).sum()), np.full(T["m"], T["dL_dvar"])),
    ("normalization_dnn_notes.md", 119): lambda: CHECKS[("normalization_dnn_notes.md", 40)](),
    ("normalization_dnn_notes.md", 120): lambda: (
        T["dy"] * T["gamma"] / _s(T) + (_g(T) * (-1 / _s(T))).sum() / T["m"]
        + _g(T) * (-0.5 * ((T["x"] - T["mu"]) / _s(T) ** 3).sum()) * 2 * (T["x"] - T["mu"]) / T["m"], T["dL_dx"]),
    ("normalization_dnn_notes.md", 122): lambda: (
        T["dy"] * T["gamma"] / _s(T) + (_g(T) * (-1 / _s(T))).sum() / T["m"]
        + _g(T) * (-0.5 * ((T["x"] - T["mu"]) / _s(T)).sum()) * 2 * (T["x"] - T["mu"]) / _s(T) / (T["m"] * _s(T)),
        T["dL_dx"]),
    ("normalization_dnn_notes.md", 138): lambda: CHECKS[("normalization_dnn_notes.md", 40)](),
    ("normalization_dnn_notes.md", 139): lambda: (
        T["dy"] * T["gamma"] / _s(T) + (_g(T) * (-1 / _s(T))).sum() / T["m"]
        + _g(T) * (-0.5 * T["xhat"].sum()) * 2 * T["xhat"] / (T["m"] * _s(T)), T["dL_dx"]),
    ("ko_bn_ln_gradients.md", 59): lambda: (_ko_direct_term(T, 1 - 1 / T["m"]), DIAG),
    ("ko_bn_ln_gradients.md", 61): lambda: (_ko_direct_term(T, 1.0), DIAG),
    ("ko_bn_ln_gradients.md", 67): lambda: (
        2 / T["m"] * (T["x"] - T["mu"]) * (1 - 1 / T["m"]), grad(lambda v: v.var(), T["x"])),
    ("ko_bn_ln_gradients.md", 90): lambda: (_ko_rmsnorm(KO["v"], KO["dy"], KO["gamma"], KO["eps"]), KO["dx"]),
    ("normalization_dnn_notes.md", 141): lambda: (_sum_over_i_of_j_terms(T, shifted, _g(T)), T["dL_dx"]),
    ("normalization_dnn_notes.md", 142): lambda: (_sum_over_i_of_j_terms(T, shifted, T["dy"]) * T["gamma"], T["dL_dx"]),
}

NDN_X = np.random.default_rng(2).normal(0.0, 1.0, (4, 4))


test_every_recorded_error_has_a_check, test_each_recorded_error_is_wrong_in_numbers = recorded_error_tests(
    EXPECTED, CHECKS)


test_every_repeat_points_at_a_recorded_error = repeat_of_test(EXPECTED)


def test_every_document_has_verdicts_and_a_source():
    docs = sorted(p.name for p in FINAL.glob("*.md") if p.name != "README.md")
    assert docs == sorted(EXPECTED) and len(docs) >= 10
    for name in docs:
        assert (FINAL / name).read_text().startswith("<!-- source:"), name


@pytest.mark.parametrize("key", [("zh_triton_rmsnorm.md", 213), ("zh_triton_rmsnorm.md", 217),
                                 ("normalization_dnn_notes.md", 141)])
def test_a_free_index_is_wrong_for_the_other_pick_too(key):
    """Where the check had to pick a free index (l or j = the next one), picking the outer index instead also differs."""
    same = lambda j, n: j  # noqa: E731
    if key == ("zh_triton_rmsnorm.md", 213):
        assert differs(_literal_sum_over_j_of_l_terms(RMS0["X"], RMS0["dY"], RMS0["w"], RMS0["r"], same), RMS0["dX"])
    elif key == ("zh_triton_rmsnorm.md", 217):
        assert differs(_literal_constant_sum(RMS0["X"], RMS0["dY"], RMS0["w"], RMS0["r"], same), RMS0["dX"])
    else:
        assert differs(_sum_over_i_of_j_terms(T, same, _g(T)), T["dL_dx"])


def test_the_korean_direct_term_is_not_the_held_statistics_partial_either():
    """Lines 59/61 differ from 1/s too (the partial with mu_B and sigma_B^2 held), so no reading makes them right."""
    for d_centered in (1 - 1 / T["m"], 1.0):
        assert differs(_ko_direct_term(T, d_centered), np.full(T["m"], 1 / _s(T)))


def test_the_unbound_w_h_is_the_only_slip_of_the_rmsnorm_rows():
    """kernel-hyperdrive rows 21, 23, 27 are right once w_h reads w_j; row 22 stays wrong (its 1/r_i is gone)."""
    assert not differs(_kh_row(RMS, lambda j: RMS["w"][j]), RMS["dX"])
    assert differs(_kh_row(RMS, lambda j: RMS["w"][j], power=2), RMS["dX"])


def test_the_right_versions_pass_the_same_checks():
    """The corrected formulas agree with the same references: the checks can tell right from wrong."""
    t, s, g = T, _s(T), _g(T)
    assert not differs(-t["gamma"] / 2 * s ** -3 * (t["dy"] * (t["x"] - t["mu"])).sum(), t["dL_dvar"])      # zaffnet 51/52
    biased, unbiased, truth = population_variance_estimates()
    assert abs(unbiased - truth) < 0.05 * truth and abs(biased - truth) > 0.1 * truth                     # cs231n page 87
    assert not differs(g / s - g.sum() / (t["m"] * s) - t["xhat"] / (t["m"] * s) * (g * t["xhat"]).sum(),
                       t["dL_dx"])                                                                         # it 174
    assert not differs(np.eye(LN["n"]) - 1 / LN["n"], jacobian(lambda v: v - v.mean(), LN["x"]))          # obsidian 20
    assert not differs(LN["xhat"] * LN["s"] / (LN["n"] * np.sqrt(LN["var"])),
                       grad(lambda v: v.std(), LN["x"]))                                                   # obsidian 23
    assert not differs(LN["dy"] * LN["gamma"] / LN["s"] + LN["dvar"] * 2 / LN["n"] * (LN["x"] - LN["mu"])
                       + LN["dmu"] / LN["n"], LN["dx"])                                                    # ln 27 fixed
    assert not differs((LN["dy"] * LN["gamma"]) @ LN["J"], LN["dx"])                                       # ln 45 fixed
    assert not differs(_kh_row(RMS, lambda j: RMS["w"][j]), RMS["dX"])                            # rms 23 fixed
    X, u = RMS0["X"], (RMS0["X"] ** 2).mean(axis=1)
    assert not differs(-X / X.shape[1] * (u ** -1.5)[:, None], _zh_rrms_check(RMS0)[1])                    # zh 144
    zh_right = (RMS0["dY"] * RMS0["w"] / RMS0["r"][:, None]
                - X / (X.shape[1] * RMS0["r"][:, None] ** 3) * (RMS0["dY"] * X * RMS0["w"]).sum(axis=1, keepdims=True))
    assert not differs(zh_right, RMS0["dX"])                                                               # zh 213, summed over l
    assert not differs(t["dy"].sum(), grad(lambda b: float(t["dy"] @ (t["gamma"] * t["xhat"] + b[0])), t["beta"])[0])
    assert not differs(g / s + t["dL_dvar"] * 2 * (t["x"] - t["mu"]) / t["m"] + t["dL_dmu"] / t["m"], t["dL_dx"])
    assert not differs((g * (t["x"] - t["mu"])).sum() * -0.5 * s ** -3, t["dL_dvar"])                      # notes 98 fixed
    assert not differs((t["m"] * g - g.sum() - t["xhat"] * (g * t["xhat"]).sum()) / (t["m"] * s), t["dL_dx"])
    assert not differs((1 - 1 / t["m"]) / s - (t["x"] - t["mu"]) ** 2 / (t["m"] * s ** 3), DIAG)             # ko 59 fixed
    assert not differs(2 / t["m"] * (t["x"] - t["mu"]), grad(lambda v: v.var(), t["x"]))                   # ko 67 fixed
    v, dy, gm, rms = KO["v"], KO["dy"], KO["gamma"], np.sqrt((KO["v"] ** 2).mean() + KO["eps"])
    assert not differs(gm / rms * dy - v / (len(v) * rms ** 3) * gm * (v * dy).sum(), KO["dx"])            # ko 90 fixed


# -- the lines the auditor once called wrong (10 false "wrong" at the first measurement): right in numbers ---------------
def _bn(x, gamma, beta, eps):
    return gamma * (x - x.mean()) / np.sqrt(x.var() + eps) + beta


def _once_called_wrong():
    x, dy, gamma, beta, eps = RNG.normal(0.5, 2.0, 5), RNG.normal(0, 1, 5), 1.7, -0.4, 0.3
    m, mu, var = len(x), x.mean(), x.var()
    s = np.sqrt(var + eps)  # zh_op_derivatives_bn's sigma (its tag 6), it_bn_appunti's s
    xhat = (x - mu) / s
    dvar = grad(lambda v: float(((v - v.mean()) ** 2).mean()), x)  # d sigma_b^2 / dx_i, every i
    all_but = np.array([sum(x[j] - mu for j in range(m) if j != i) for i in range(m)])  # sum_{j != i} (x_j - mu)
    X = RNG.normal(0.2, 1.3, (7, 3))  # x_{i,j}: example i, feature j
    t = 1.37
    return {
        # d y_i / d beta, for each example i: 1
        ("cs231n_implement_bn_page.md", 25): (grad(lambda b: _bn(x, gamma, b[0], eps)[2], beta)[0], 1.0),
        # d(s^-1)/d sigma^2 = -1/2 (sigma^2 + eps)^(-3/2) = -1/2 s^-3
        ("it_bn_appunti.md", 59): (grad(lambda v: (v[0] + eps) ** -0.5, var)[0], -0.5 * s ** -3),
        # sigma_j^2 = 1/N sum_i (x_{i,j} - mu_j)^2: each feature's variance over the examples
        ("normalization_dnn_notes.md", 19): (((X - X.mean(axis=0)) ** 2).sum(axis=0) / len(X), X.var(axis=0)),
        # (10): 2/m ((x_i - mu)(m-1)/m + sum_{j != i} (x_j - mu)(-1/m)), the sum over j running
        ("zh_op_derivatives_bn.md", 50): (2 / m * ((x - mu) * (m - 1) / m - all_but / m), dvar),
        ("zh_op_derivatives_bn.md", 60): (2 / m * ((x - mu) * (m - 1) / m - all_but / m), dvar),
        # (11): sum_{j != i} (x_j - mu) = 0 - (x_i - mu)
        ("zh_op_derivatives_bn.md", 55): (all_but, -(x - mu)),
        # the second part, both forms, with sigma = sqrt(sigma_b^2 + eps): sigma^2 there is sigma * sigma
        ("zh_op_derivatives_bn.md", 141): (gamma * (x - mu) / (m * s) * np.sum(dy * xhat / s),
                                            gamma * xhat / (m * s) * np.sum(dy * xhat)),
        # the general rules of calculus the RMSNorm derivation lists first, at a plain number t
        ("zh_triton_rmsnorm.md", 34): (grad(lambda v: v[0] ** 5, t)[0], 5 * t ** 4),
        ("zh_triton_rmsnorm.md", 38): (grad(lambda v: v[0] ** 2, t)[0], 2 * t),
        ("zh_triton_rmsnorm.md", 40): (grad(lambda v: 1 / v[0], t)[0], -1 / t ** 2),
    }


ONCE_CALLED_WRONG = _once_called_wrong()


@pytest.mark.parametrize("key", sorted(ONCE_CALLED_WRONG), ids=lambda k: f"{k[0]}:{k[1]}")
def test_a_line_once_called_wrong_is_right_in_numbers(key):
    got, want = ONCE_CALLED_WRONG[key]
    assert not differs(got, want), (got, want)
    assert key[1] not in map(int, EXPECTED[key[0]]["errors"])  # so it is no recorded error either


def test_the_second_part_of_zh_op_is_the_row_above_it_too():
    """Line 141 continues line 137's display: both of its sides equal that row's left side."""
    x, dy, gamma, eps = RNG.normal(0.5, 2.0, 4), RNG.normal(0, 1, 4), 0.9, 0.2
    m, mu, s = len(x), x.mean(), np.sqrt(x.var() + eps)
    above = gamma * np.array([np.sum(dy * (x - mu) / s ** 2 * (xi - mu) / (m * s)) for xi in x])
    assert not differs(above, gamma * (x - mu) / (m * s) * np.sum(dy * ((x - mu) / s) / s))
    assert differs(above, gamma * (x - mu) / (m * s) * np.sum(dy * ((x - mu) / s) / np.sqrt(x.var())))  # not sigma_b
