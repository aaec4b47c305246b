"""The development set benchmarks/heldout_dev9 (run through the auditor, so not an untouched set): every error recorded
in its expected.json is shown wrong in numbers here, and every row the auditor wrongly called "wrong" there is shown
right, without bngraph: the write-up's formula typed in NumPy against forwards written here (Batch Norm over the batch,
T from test_heldout_errors; RMSNorm and LayerNorm over one vector with per-element gamma) and their central finite
differences. benchmarks/heldout_dev9/FALSE_WRONG.md gives the minimal documents that reproduce each finding.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from test_heldout_errors import T, differs, documents_test, grad, recorded_error_tests, repeat_of_test

DEV9 = Path(__file__).resolve().parents[1] / "benchmarks" / "heldout_dev9"
EXPECTED = json.loads((DEV9 / "expected.json").read_text())

RNG = np.random.default_rng(9)
X = RNG.normal(0.7, 1.5, 6)            # one vector (RMSNorm over D = 6 features)
GAMMA = RNG.normal(1.2, 0.4, 6)        # one gamma per feature
DY = RNG.normal(0, 1, 6)
EPS = 1e-3



def _rms(x, gamma, eps):
    return gamma * x / np.sqrt(np.mean(x ** 2) + eps)


def _rms_dx(x=X, gamma=GAMMA, dy=DY, eps=EPS):
    return grad(lambda v: float(dy @ _rms(v, gamma, eps)), x)


def _rms_article_97(x=X, gamma=GAMMA, dy=DY, eps=EPS):
    """zh_rmsnorm_evolution_article 97: (gamma_i/r)[dy_i - x_i/(D r^2) sum_j gamma_j dy_j x_j]."""
    r, d = np.sqrt(np.mean(x ** 2) + eps), len(x)
    return gamma / r * (dy - x / (d * r ** 2) * np.sum(gamma * dy * x))


def _var_xhat_16():
    """zh_rmsnorm_evolution_article 16: Var(xhat) written as 1/RMS^2 - (E[x]/RMS)^2; truth: the variance of x/RMS."""
    rms = np.sqrt(np.mean(X ** 2) + EPS)
    return 1 / rms ** 2 - (X.mean() / rms) ** 2, np.var(X / rms)


def _feishu_37(t):
    """zh_feishu_ai_notes_bn 37: gamma/(N sqrt(var+eps)) (N dout - sum dout - sum dout*xhat), no xhat_i on the last."""
    n = t["m"]
    return t["gamma"] / (n * np.sqrt(t["var"] + t["eps"])) * (
        n * t["dy"] - t["dy"].sum() - (t["dy"] * t["xhat"]).sum()), t["dL_dx"]


def _vernonsong_76():
    """zh_vernonsong_bn_2018 76: sigma^2_moving <- sigma^2_moving + E(sigma_B^2); a running value already at a
    constant batch variance s must stay s under any moving average."""
    s = 1.3
    return s + s, s


CHECKS = {
    ("zh_rmsnorm_evolution_article.md", 16): _var_xhat_16,
    ("zh_rmsnorm_evolution_article.md", 97): lambda: (_rms_article_97(), _rms_dx()),
    ("zh_feishu_ai_notes_bn.md", 37): lambda: _feishu_37(T),
    ("zh_vernonsong_bn_2018.md", 76): _vernonsong_76,
}

test_every_recorded_error_has_a_check, test_each_recorded_error_is_wrong_in_numbers = recorded_error_tests(
    EXPECTED, CHECKS)
test_every_repeat_points_at_a_recorded_error = repeat_of_test(EXPECTED)
test_every_document_has_verdicts_a_layer_and_a_source = documents_test(DEV9, EXPECTED, 10, 7)


def test_the_checks_can_tell_right_from_wrong():
    """The same machinery passes the right formulas: the checks are not wrong by construction."""
    r, d = np.sqrt(np.mean(X ** 2) + EPS), len(X)
    right_97 = (GAMMA * DY - X / (d * r ** 2) * np.sum(GAMMA * DY * X)) / r   # line 93 with line 95 put in
    assert not differs(right_97, _rms_dx())
    assert not differs(np.mean(X ** 2) / r ** 2 - (X.mean() / r) ** 2, np.var(X / r))   # line 15 is right
    t = T
    right_37 = t["gamma"] / (t["m"] * np.sqrt(t["var"] + t["eps"])) * (
        t["m"] * t["dy"] - t["dy"].sum() - t["xhat"] * (t["dy"] * t["xhat"]).sum())   # the document's line 31
    assert not differs(right_37, t["dL_dx"])


def test_the_other_reading_of_feishu_37_is_wrong_too():
    """(sum_N dout) * xhat for the last term: still not the gradient."""
    t = T
    other = t["gamma"] / (t["m"] * np.sqrt(t["var"] + t["eps"])) * (
        t["m"] * t["dy"] - t["dy"].sum() - t["dy"].sum() * t["xhat"])
    assert differs(other, t["dL_dx"])


def test_gamma_pulled_out_is_wrong_even_with_one_gamma():
    """zh_rmsnorm_evolution_article 97 with every gamma_i equal to 2: gamma^2 stands for gamma in the correction."""
    g = np.full(6, 2.0)
    assert differs(_rms_article_97(gamma=g), _rms_dx(gamma=g))


def test_the_rows_of_a_math_block_are_each_right():
    """en_course_readme_math_blocks 31-33 and 53-56 (false "wrong"): each line of the ```math block is a right
    equation of its own: dL/dgamma = sum dy xhat, dL/dbeta = sum dy, dL/dxhat = gamma dy (Batch Norm) and the
    LayerNorm mean and variance; the auditor joined the lines into one chain."""
    t = T
    loss = lambda g, b: float(t["dy"] @ (g * t["xhat"] + b))
    assert not differs(np.sum(t["dy"] * t["xhat"]), grad(lambda g: loss(g[0], t["beta"]), t["gamma"])[0])
    assert not differs(np.sum(t["dy"]), grad(lambda b: loss(t["gamma"], b[0]), t["beta"])[0])
    x = X
    assert not differs(np.sum(x) / len(x), x.mean())
    assert not differs(np.sum((x - x.mean()) ** 2) / len(x), x.var())
