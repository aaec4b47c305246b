"""The real errors recorded by hand in the fresh held-out write-ups (benchmarks/heldout_fresh/expected.json), each
confirmed numerically without bngraph, as in test_heldout_errors.py: the write-up's formula typed in NumPy against
the true value from finite differences of the batch-norm forward pass (N in a write-up is its batch size m).
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from test_heldout_errors import T, differs, grad, recorded_error_tests

FRESH = Path(__file__).resolve().parents[1] / "benchmarks" / "heldout_fresh"
EXPECTED = json.loads((FRESH / "expected.json").read_text())


def xhat_jacobian(t):
    """J[k, i] = ∂x̂_k/∂x_i, by central differences."""
    def xhat(v):
        return (v - v.mean()) / np.sqrt(v.var() + t["eps"])
    return np.array([grad(lambda v: xhat(v)[k], t["x"]) for k in range(t["m"])])


def _sum_expanded_squares(v):  # Σ_j (x_j² + μ² − 2 x_j μ), the write-up's sum without the 1/m
    mu = v.mean()
    return float(np.sum(v ** 2 + mu ** 2 - 2 * v * mu))


CHECKS = {
    ("saikrishna_bn_docs.md", 23): lambda t: (grad(_sum_expanded_squares, t["x"]), grad(lambda v: v.var(), t["x"])),
}


test_every_recorded_error_has_a_check, test_each_recorded_error_is_wrong_in_numbers = recorded_error_tests(
    EXPECTED, CHECKS, T)


def test_the_disputed_off_diagonal_row_is_wrong_as_its_left_side_reads_and_right_as_meant():
    """Line 34 (disputed since round 8: an index letter lost on the left, under "For j != i"): as ∂x̂_i/∂x_i it is
    wrong in numbers; as ∂x̂_j/∂x_i, j = i + 1, it is right (the next test)."""
    t = T
    s = np.sqrt(t["var"] + t["eps"])
    written = -1 / (t["m"] * s) - (np.roll(t["x"], -1) - t["mu"]) * (t["x"] - t["mu"]) / (t["m"] * s ** 3)
    assert differs(written, np.diag(xhat_jacobian(t)))
    assert "34" in EXPECTED["saikrishna_bn_docs.md"]["disputed"]


def test_the_right_versions_pass_the_same_checks():
    """The write-up's own right sides (2/m (x_i − μ); the j = i case) agree: the checks can tell right from wrong."""
    t = T
    s = np.sqrt(t["var"] + t["eps"])
    assert not differs(2 / t["m"] * (t["x"] - t["mu"]), grad(lambda v: v.var(), t["x"]))
    assert not differs((t["m"] - 1) / (t["m"] * s) - (t["x"] - t["mu"]) ** 2 / (t["m"] * s ** 3),
                       np.diag(xhat_jacobian(t)))
    j = xhat_jacobian(t)  # the off-diagonal formula is right for ∂x̂_j/∂x_i, j = i + 1
    off = -1 / (t["m"] * s) - (np.roll(t["x"], -1) - t["mu"]) * (t["x"] - t["mu"]) / (t["m"] * s ** 3)
    assert not differs(off, np.array([j[(i + 1) % t["m"], i] for i in range(t["m"])]))
