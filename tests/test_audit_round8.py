"""Readings added in round 8 of issue 14, each on a minimal document. Expected values are worked out by hand
or with NumPy written here, never with the engine."""
from __future__ import annotations

import numpy as np
import pytest

from bngraph.audit.auditor import audit_document


def last(doc: str, layer: str = "batchnorm"):
    return audit_document(doc, layer).findings[-1]


def batch_of(c):
    return np.array(c.batch.x), c.batch.epsilon, c.batch.gamma, c.index[1] - 1 if c.index else None


# -- a sum whose index its body never uses runs over the bare names in it (final ln_backprop_dx_readme 23-39,
#    u4 zh_hexo_batchnormal_2019 139): Σ_{i=1}^m dy (x − μ)/σ is Σ_i dy_i (x_i − μ)/σ ----------------------------
@pytest.mark.parametrize("tex", [
    r"d\beta=\sum_{i=1}^{m}dy",
    r"d\gamma=\sum_{i=1}^{m}dy\cdot\frac{x-\mu}{\sqrt{\sigma^2+\epsilon}}",
    r"\frac{\partial \ell}{\partial \mu} = \sum_{j=1}^m \frac{\partial \ell}{\partial \widehat{x}}"
    r" \cdot \frac{-1}{\sqrt{\sigma^2 + \epsilon}}",
    r"\frac{\partial L}{\partial \gamma} = \sum_{i} \frac{\partial L}{\partial y} \hat{x}",
])
def test_a_sum_runs_over_the_bare_names_in_its_body(tex):
    found = last(f"$${tex}$$")
    assert found.verdict in ("correct", "correct-other-form"), found.to_text()


def test_a_sum_over_bare_names_still_catches_a_flipped_sign():
    found = last(r"$$d\gamma=\sum_{i=1}^{m}dy\cdot\frac{x+\mu}{\sqrt{\sigma^2+\epsilon}}$$")
    assert found.verdict == "wrong", found.to_text()
    c = found.counterexample
    x, eps, _, _ = batch_of(c)
    dy = np.array(c.batch.dL_dy)
    assert c.want == pytest.approx(np.sum(dy * (x - x.mean()) / np.sqrt(x.var() + eps)))
    assert c.got == pytest.approx(np.sum(dy * (x + x.mean()) / np.sqrt(x.var() + eps)))


# -- the loss written as a word (u2 zh_idl_bn_dudz, final idl_notes_bn_uz: dLoss/dγ) -------------------------------
@pytest.mark.parametrize("loss", ["dLoss", r"\partial \text{loss}", r"\partial \mathrm{Cost}"])
def test_the_loss_written_as_a_word(loss):
    d = loss[:-4] if loss == "dLoss" else r"\partial "
    right = last(rf"$$\frac{{{loss}}}{{{d}\beta}} = \sum_{{i=1}}^m \frac{{{loss}}}{{{d}y_i}}$$")
    assert right.verdict == "correct", right.to_text()
    wrong = last(rf"$$\frac{{{loss}}}{{{d}\gamma}} = \sum_{{i=1}}^m \frac{{{loss}}}{{{d}y_i}}$$")
    assert wrong.verdict == "wrong", wrong.to_text()
    x, eps, _, _ = batch_of(wrong.counterexample)
    dy = np.array(wrong.counterexample.batch.dL_dy)
    assert wrong.counterexample.want == pytest.approx(np.sum(dy * (x - x.mean()) / np.sqrt(x.var() + eps)))


# -- sums counted from 0, as code is (final zh_triton_rmsnorm, u2 cs231n_exercise_streams): Σ_{i=0}^{m-1} is over the
#    batch's m members, and a two-index partial held at a letter that a sum runs over keeps the sum -------------------
@pytest.mark.parametrize("tex, verdict", [
    (r"\mu = \frac{1}{m}\sum_{i=0}^{m-1} x_i", "correct"),
    (r"\mu = \frac{1}{m}\sum_{i=0}^{m-1} x_i^2", "wrong"),
    (r"\sigma^2 = \frac{1}{3}\sum_{i=0}^{2} (x_i - \mu)^2", "correct"),
])
def test_a_sum_counted_from_zero_is_over_the_batch(tex, verdict):
    found = last(f"$${tex}$$")
    assert found.verdict == verdict, found.to_text()


ROWS = r"""$$rms(x)_i=\sqrt{{\frac{{1}}{{N}}\sum_{{j=0}}^{{N-1}}x_{{ij}}^2}}$$

$$\frac{{\partial (\frac{{1}}{{N}}\sum_{{q=0}}^{{N-1}}x_{{iq}}^2)^{{-\frac{{1}}{{2}}}}}}{{\partial x_{{ij}}}} =-\frac{{1}}{{2}}(\frac{{1}}{{N}}\sum_{{q=0}}^{{N-1}}x_{{iq}}^2)^{{-\frac{{3}}{{2}}}} \cdot {}$$
"""


def test_a_partial_of_a_row_sum_counted_from_zero_is_checked():
    dropped = last(ROWS.format(r"\frac{2}{N}"), "rmsnorm")   # the inner derivative 2 x_ij/N lost its x_ij
    assert dropped.verdict == "wrong", dropped.to_text()
    x, _, _, k = batch_of(dropped.counterexample)
    ms = np.mean(x ** 2)
    assert dropped.counterexample.want == pytest.approx(-x[k] / len(x) * ms ** -1.5)
    kept = last(ROWS.format(r"\frac{2 x_{ij}}{N}"), "rmsnorm")
    assert kept.verdict in ("correct", "ambiguous"), kept.to_text()
    assert "ε = 0" in kept.reason or kept.verdict == "correct"


def test_a_letter_held_at_a_number_leaves_a_sum_over_that_letter_whole():
    import sympy as sp
    from bngraph.audit.judge import _held
    j, n = sp.Symbol("j"), sp.Symbol("N")
    x = sp.IndexedBase(sp.Symbol("x"))
    held = _held(x[j] * sp.Sum(x[j] ** 2, (j, 1, n)), {j: 2})   # x_j Σ_j x_j²: the sum's j is its own
    (s,) = held.atoms(sp.Sum)
    assert held.has(x[2]) and s.function == x[s.variables[0]] ** 2 and s.variables[0] != j
