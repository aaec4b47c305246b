"""The development set benchmarks/heldout_dev10 (run through the auditor, so not an untouched set): every error recorded
in its expected.json is shown wrong in numbers here, and the row the auditor wrongly called "wrong" there is shown right
under its stated case, without bngraph: the write-up's formula typed in NumPy against forwards written here (Batch Norm
over the batch, T from test_heldout_errors; RMSNorm over one vector with per-element gamma) and their central finite
differences. benchmarks/heldout_dev10/FALSE_WRONG.md gives the minimal documents that reproduce each finding.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from test_heldout_errors import T, differs, documents_test, grad, recorded_error_tests, repeat_of_test

DEV10 = Path(__file__).resolve().parents[1] / "benchmarks" / "heldout_dev10"
EXPECTED = json.loads((DEV10 / "expected.json").read_text())

RNG = np.random.default_rng(10)
X = RNG.normal(0.7, 1.5, 6)            # one vector (RMSNorm over H = 6 features)
GAMMA = RNG.normal(1.2, 0.4, 6)        # one gamma per feature



def _var(x):
    return np.mean((x - x.mean()) ** 2)


def _saikrishna_30(t):
    """en_saikrishna_bn_notes 30: sum_j d(x_j^2 + mu^2 - 2 x_j mu)/dx_i (the middle member, no 1/m) against
    d sigma^2/dx_i; the sum is taken by finite differences of sum_j (x_j - mu)^2, written out as the row has it."""
    x = T["x"]
    middle = grad(lambda v: float(np.sum(v ** 2 + v.mean() ** 2 - 2 * v * v.mean())), x)
    return middle, grad(_var, x)


def _rms_output(x, gamma):
    return gamma * x / np.sqrt(np.mean(x ** 2))        # the document's RMS has no eps (line 116)


def _obsidian_120():
    """it_obsidian_layernorm 120: xhat_i = x_i / RMS(x) * sqrt(H), against RMSNorm's x_i / RMS(x)."""
    rms = np.sqrt(np.mean(X ** 2))
    return X / rms * np.sqrt(len(X)), _rms_output(X, np.ones_like(X))


CHECKS = {
    ("en_saikrishna_bn_notes.md", 30): _saikrishna_30,
    ("it_obsidian_layernorm.md", 120): lambda t: _obsidian_120(),
}

test_every_recorded_error_has_a_check, test_each_recorded_error_is_wrong_in_numbers = recorded_error_tests(
    EXPECTED, CHECKS, T)
test_every_repeat_points_at_a_recorded_error = repeat_of_test(EXPECTED)
test_every_document_has_verdicts_a_layer_and_a_source = documents_test(DEV10, EXPECTED, 8, 4)


def _xhat_jacobian(x, eps):
    """d xhat_j / d x_i of Batch Norm by central differences: column i holds d xhat / d x_i."""
    def xhat(v):
        return (v - v.mean()) / np.sqrt(_var(v) + eps)
    h, m = 1e-6, len(x)
    jac = np.empty((m, m))
    for i in range(m):
        e = np.zeros(m)
        e[i] = h
        jac[:, i] = (xhat(x + e) - xhat(x - e)) / (2 * h)
    return jac


def test_the_off_diagonal_row_is_right_under_its_case():
    """en_saikrishna_bn_notes 41 (false "wrong"): under 'For j != i' the row
    -1/(m sigma) - (x_j - mu)(x_i - mu)/(N sigma^3), sigma = sqrt(sigma^2 + eps) (line 28), is d xhat_j / d x_i."""
    x, eps = T["x"], T["eps"]
    m, mu, sigma = len(x), x.mean(), np.sqrt(_var(x) + eps)
    jac = _xhat_jacobian(x, eps)
    for i in range(m):
        for j in range(m):
            if j != i:
                row = -1 / (m * sigma) - (x[j] - mu) * (x[i] - mu) / (m * sigma ** 3)
                assert not differs(row, jac[j, i])
    # as written, with j = i, it is not the diagonal entry (the auditor's reading): the case is what makes it right
    i = 0
    assert differs(-1 / (m * sigma) - (x[i] - mu) ** 2 / (m * sigma ** 3), jac[i, i])


def test_the_checks_can_tell_right_from_wrong():
    """The same machinery passes the right formulas: the checks are not wrong by construction."""
    x = T["x"]
    m = len(x)
    assert not differs(2 / m * (x - x.mean()), grad(_var, x))        # the row's end member is right
    assert not differs(X / np.sqrt(np.mean(X ** 2)), _rms_output(X, np.ones_like(X)))   # without the sqrt(H)
    # the final formula of the saikrishna notes (line 46) is right, with delta = dL/dy
    t = T
    sigma = np.sqrt(t["var"] + t["eps"])
    final = t["gamma"] / (m * sigma) * (m * t["dy"] - t["dy"].sum() - t["xhat"] * (t["dy"] * t["xhat"]).sum())
    assert not differs(final, t["dL_dx"])
