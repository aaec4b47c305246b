"""The real errors recorded by hand in the held-out write-ups (benchmarks/heldout/expected.json), each
confirmed numerically here without bngraph: the write-up's formula, typed from the write-up in NumPy,
against the true value from NumPy finite differences of the batch-norm forward pass. A recorded
"error" that turns out right fails this file, and so does an entry of expected.json without a check.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from numpy_layers import batchnorm_forward

HELDOUT = Path(__file__).resolve().parents[1] / "benchmarks" / "heldout"
EXPECTED = json.loads((HELDOUT / "expected.json").read_text())


def batch(m=5, seed=3):
    rng = np.random.default_rng(seed)
    return rng.normal(0.5, 2.0, m), rng.normal(0.0, 1.0, m), 1.7, -0.4, 0.3  # x, dy, gamma, beta, eps


def loss_of(x, dy, gamma, beta, eps):
    return float(dy @ batchnorm_forward(x, gamma, beta, eps)["y"])


def grad(f, v, h=1e-6):
    """Central differences of a scalar function of a vector (or a number)."""
    v = np.atleast_1d(np.asarray(v, dtype=float))
    out = np.empty_like(v)
    for k in range(len(v)):
        e = np.zeros_like(v)
        e[k] = h
        out[k] = (f(v + e) - f(v - e)) / (2 * h)
    return out


def truths():
    x, dy, gamma, beta, eps = batch()
    m = len(x)
    mu, var = x.mean(), x.var()
    xhat = (x - mu) / np.sqrt(var + eps)
    dL_dx = grad(lambda v: loss_of(v, dy, gamma, beta, eps), x)
    dL_dgamma = grad(lambda g: loss_of(x, dy, g[0], beta, eps), gamma)[0]
    # ∂L/∂μ and ∂L/∂σ² as the paper means them: L through x̂ with μ (resp. σ²) moved alone
    def loss_given(mu_, var_):
        return float(dy @ (gamma * (x - mu_) / np.sqrt(var_ + eps) + beta))
    dL_dmu = grad(lambda v: loss_given(v[0], var), mu)[0]
    dL_dvar = grad(lambda v: loss_given(mu, v[0]), var)[0]
    return locals()


T = truths()


def differs(got, want):
    return not np.allclose(got, want, rtol=1e-5, atol=1e-7)


CHECKS = {  # (file, line): the write-up's formula typed in NumPy, and the true value
    ("ai_edu_bn_zh.md", 77): lambda t: (  # dJ/dn_i · dn_i/dμ + dJ/dσ² · dσ²/dμ, for each i (no sum)
        t["dy"] * t["gamma"] * (-1 / np.sqrt(t["var"] + t["eps"]))
        + t["dL_dvar"] * (-2 / t["m"]) * (t["x"] - t["mu"]).sum(), t["dL_dmu"]),
    ("ai_edu_bn_zh.md", 91): lambda t: (
        -t["dy"] * t["gamma"] / np.sqrt(t["var"] + t["eps"])
        - 2 / t["m"] * t["dL_dvar"] * (t["x"] - t["mu"]).sum(), t["dL_dmu"]),
    ("mobilenet_notes_bn.md", 43): lambda t: (  # the right side with dL/dI (= dL/dx) for dL/dÎ, as written
        t["dL_dx"] / np.sqrt(t["var"] + t["eps"]) + t["dL_dvar"] * 2 * (t["x"] - t["mu"]) / t["m"]
        + t["dL_dmu"] / t["m"], t["dL_dx"]),
    ("tf_xla_batchnormgrad.md", 7): lambda t: (
        (t["dy"] * (t["x"] - t["mu"]) * np.sqrt(t["var"] + t["eps"])).sum(), t["dL_dgamma"]),
    ("sigma_eps_tutorial.md", 38): lambda t: (
        t["gamma"] / (np.sqrt(t["var"] + t["eps"]) * np.sqrt(t["m"]))
        * (np.sqrt(t["m"]) * t["dy"] - t["dy"].sum() - t["xhat"] * t["dL_dgamma"]), t["dL_dx"]),
    ("zh_bn_ln_notes.md", 31): lambda t: (  # σ read as √(σ² + ε); ∂L/∂x̂ = γ ∂L/∂y (its line 23), then · γ again
        t["gamma"] / np.sqrt(t["var"] + t["eps"]) * (t["gamma"] * t["dy"] - (t["gamma"] * t["dy"]).mean()
                                                      - t["xhat"] * (t["gamma"] * t["dy"] * t["xhat"]).mean()),
        t["dL_dx"]),
    ("obsidian_ru_batchnorm.md", 6): lambda t: (  # (1/n) Σ_i x_{B,j} at j = 2: n copies of x_2
        sum(t["x"][1] for _ in range(t["m"])) / t["m"], t["mu"]),
    ("obsidian_ru_batchnorm.md", 7): lambda t: (
        sum((t["x"][1] - t["mu"]) ** 2 for _ in range(t["m"])) / t["m"], t["var"]),
    ("obsidian_ru_batchnorm.md", 28): lambda t: (
        t["x"] * t["gamma"] + t["beta"], t["gamma"] * t["xhat"] + t["beta"]),
    ("obsidian_ru_batchnorm.md", 46): lambda t: (  # eval mode, running statistics 0.3 and 1.4
        t["x"] - 0.3 / np.sqrt(1.4 + t["eps"]), (t["x"] - 0.3) / np.sqrt(1.4 + t["eps"])),
    ("csdn_bn_indices.md", 15): lambda t: (  # σ_p, used as the standard deviation (squared next)
        ((t["x"] - t["mu"]) ** 2).mean(), np.sqrt(t["var"])),
    ("csdn_bn_indices.md", 27): lambda t: (  # Σ_kl ∂O/∂y_kl ∂y_kl/∂x̄_ij ∂x̄_ij/∂x_ij with total ∂x̄_i/∂x_i
        t["dy"] * t["gamma"] * np.diag(np.array([grad(lambda v: ((v - v.mean()) / np.sqrt(v.var() + t["eps"]))[i],
                                                        t["x"]) for i in range(t["m"])])), t["dL_dx"]),
}


def recorded_error_tests(expected: dict, checks: dict, *args):
    """The two tests every held-out set's file makes: each error recorded in its expected.json has a
    numerical check with a reason, and each check finds the write-up's formula off the truth
    (``checks[(file, line)](*args)`` gives the formula's values and the true ones)."""

    def test_every_recorded_error_has_a_check():
        recorded = {(name, line) for name, entry in expected.items() for line in entry["errors"]}
        assert recorded == set(checks)
        assert all(str(line) in expected[name]["why"] for name, line in recorded)

    @pytest.mark.parametrize("key", sorted(checks), ids=[f"{n}:{line}" for n, line in sorted(checks)])
    def test_each_recorded_error_is_wrong_in_numbers(key):
        got, want = checks[key](*args)
        assert differs(got, want), key

    return test_every_recorded_error_has_a_check, test_each_recorded_error_is_wrong_in_numbers


def repeat_of_test(expected: dict):
    """The test a held-out set's file makes of ``repeat_of``: a repeated slip maps a recorded error's
    line to the recorded error where it first appears."""

    def test_every_repeat_points_at_a_recorded_error():
        assert all(int(k) in expected[name]["errors"] and v in expected[name]["errors"]
                   for name, entry in expected.items() for k, v in entry.get("repeat_of", {}).items())

    return test_every_repeat_points_at_a_recorded_error


def verdict_lines_tests(folder, expected: dict):
    """The tests a held-out set's file makes of where its verdicts sit: a reason for each error and only for them,
    and each line an error, a dispute or another layer is recorded on holds '=', a command or a continued row."""

    @pytest.mark.parametrize("name", sorted(expected))
    def test_why_is_given_for_each_error_and_only_for_them(name):
        assert sorted(map(int, expected[name]["why"])) == sorted(expected[name]["errors"])

    @pytest.mark.parametrize("name", sorted(expected))
    def test_every_line_named_holds_an_equation(name):
        lines = (folder / name).read_text().splitlines()
        entry = expected[name]
        named = [*entry["errors"], *map(int, entry["disputed"]), *map(int, entry.get("layers_by_line", {}))]
        assert all(("=" in lines[n - 1] or "\\" in lines[n - 1] or "+" in lines[n - 1]) for n in named), name

    return test_why_is_given_for_each_error_and_only_for_them, test_every_line_named_holds_an_equation


LAYER_NAMES = {"batchnorm", "layernorm", "rmsnorm"}  # what a set's ``layer`` may name (``audit --layer``)


NOT_WRITE_UPS = ("README.md", "FALSE_WRONG.md")  # a set's own notes (a development set's triage), not write-ups


def documents_test(folder, expected: dict, min_documents: int, min_batchnorm: int):
    """The test a held-out set's file makes of its documents: each has verdicts, a layer, a source
    and licence note, and every line its verdicts name lies in the file, none both error and disputed."""

    def test_every_document_has_verdicts_a_layer_and_a_source():
        docs = sorted(p.name for p in folder.glob("*.md") if p.name not in NOT_WRITE_UPS)
        assert docs == sorted(expected) and len(docs) >= min_documents
        assert sum(expected[name]["layer"] == "batchnorm" for name in docs) >= min_batchnorm
        for name in docs:
            text = (folder / name).read_text()
            assert text.startswith("<!-- source:") and "licence" in text.split("-->")[0], name
            assert expected[name]["layer"] in LAYER_NAMES, name
            lines = len(text.splitlines())
            marked = [*expected[name]["errors"], *map(int, expected[name]["disputed"])]
            assert all(1 <= n <= lines for n in marked), name  # every verdict points into the file
            assert not set(expected[name]["errors"]) & set(map(int, expected[name]["disputed"])), name

    return test_every_document_has_verdicts_a_layer_and_a_source


test_every_recorded_error_has_a_check, test_each_recorded_error_is_wrong_in_numbers = recorded_error_tests(
    EXPECTED, CHECKS, T)


def test_the_checks_can_tell_right_from_wrong():
    """The same machinery passes the right formulas: the checks are not wrong by construction."""
    t = T
    right_dmu = -(t["dy"] * t["gamma"]).sum() / np.sqrt(t["var"] + t["eps"])
    right_dx = t["gamma"] / (np.sqrt(t["var"] + t["eps"]) * t["m"]) * (
        t["m"] * t["dy"] - t["dy"].sum() - t["xhat"] * t["dL_dgamma"])
    assert not differs(right_dmu, t["dL_dmu"])
    assert not differs(right_dx, t["dL_dx"])
    assert not differs((t["dy"] * (t["x"] - t["mu"]) / np.sqrt(t["var"] + t["eps"])).sum(), t["dL_dgamma"])
    assert not differs((t["x"] - t["mu"]) / np.sqrt(t["var"] + t["eps"]), t["xhat"])
    g = t["gamma"] * t["dy"]  # the same LayerNorm-style formula with γ once
    assert not differs((g - g.mean() - t["xhat"] * (g * t["xhat"]).mean()) / np.sqrt(t["var"] + t["eps"]), t["dL_dx"])
