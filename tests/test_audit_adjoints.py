"""Constructs of AD-style write-ups (benchmarks/heldout_u3, issue 14), each on a minimal document: Sphinx math
(``.. math::`` blocks, :math:`…` roles), the overbar adjoint ``\\bar{v}`` = ∂L/∂v where the document says so, and
adjoints of the document's own helpers (∂L/∂c_i, ∂L/∂g in a staged graph). Right formulas are judged right; a
flipped sign or a dropped factor is "wrong" with a counterexample whose numbers are checked here with NumPy."""
from __future__ import annotations

import numpy as np
import pytest

from bngraph.audit.auditor import audit_document
from bngraph.tex.document import find_equations


def findings(doc: str, layer: str = "batchnorm"):
    return audit_document(doc, layer).findings


def batch_of(c):
    return np.array(c.batch.x), np.array(c.batch.dL_dy), c.batch.gamma, c.batch.epsilon, \
        (c.index[1] - 1 if c.index else None)


def bn_adjoints(x, dy, gamma, eps):
    """Batch Norm's backward pass written out with NumPy (independent of the engine)."""
    mu, var = x.mean(), x.var()
    s = 1 / np.sqrt(var + eps)
    xhat = (x - mu) * s
    dxhat = dy * gamma
    dx = s * (dxhat - dxhat.mean() - xhat * (dxhat * xhat).mean())
    return {"xhat": xhat, "dxhat": dxhat, "dx": dx, "dgamma": (dy * xhat).sum(), "dbeta": dy.sum(),
            "dvar": -0.5 * (dxhat * (x - mu)).sum() * s ** 3, "s": s, "c": x - mu}


# -- 1. reStructuredText / Sphinx math ------------------------------------------------------------------------
RST = """Title
=====

The batch has :math:`m` entries and the mean :math:`\\mu = \\frac{1}{m}\\sum_i x_i`.

.. math::
   :label: forward

   \\sigma^2 &= \\frac{1}{m}\\sum_i (x_i - \\mu)^2\\\\
   \\hat{x}_i &= \\frac{x_i - \\mu}{\\sqrt{\\sigma^2 + \\epsilon}}

   \\frac{\\partial L}{\\partial \\gamma} = %s

Text after the block.
"""


def test_rst_math_is_read_with_the_physical_line_of_each_row():
    found = [(s.line, s.tex) for s in find_equations(RST % r"\sum_i \frac{\partial L}{\partial y_i}\hat{x}_i")]
    assert [line for line, _ in found] == [4, 9, 10, 12]
    assert found[0][1] == r"\mu = \frac{1}{m}\sum_i x_i"
    assert found[1][1].startswith(r"\sigma^2 = ") and found[2][1].startswith(r"\hat{x}_i = ")


def test_rst_blank_lines_part_equations_and_the_block_ends_at_the_dedent():
    doc = (".. math:: a = b\n\n   c = d\n\n   e = f\nback to text g = h\n\n.. math::\n\n\tp = q\n\n"
           "- item\n\n  .. math::\n     :label: e1\n     r = s\n")
    assert [(s.line, s.tex) for s in find_equations(doc)] == [(1, "a = b"), (3, "c = d"), (5, "e = f"), (10, "p = q"),
                                                              (16, "r = s")]


def test_rst_math_right_and_wrong():
    right = findings(RST % r"\sum_i \frac{\partial L}{\partial y_i}\hat{x}_i")
    assert [f.verdict for f in right] == ["correct"] * 4, [f.to_text() for f in right]
    wrong = findings(RST % r"\sum_i \frac{\partial L}{\partial y_i}")[-1]
    assert wrong.verdict == "wrong" and wrong.line == 12, wrong.to_text()
    x, dy, gamma, eps, _ = batch_of(wrong.counterexample)
    assert wrong.counterexample.want == pytest.approx(bn_adjoints(x, dy, gamma, eps)["dgamma"])
    assert wrong.counterexample.got == pytest.approx(dy.sum())


# -- 2. the overbar adjoint, \bar{v} = ∂L/∂v where the document says so ------------------------------------------
FORWARD = r"""$$\mu = \frac{1}{m}\sum_{i=1}^m x_i, \quad \sigma^2 = \frac{1}{m}\sum_{i=1}^m (x_i - \mu)^2$$

$$\hat{x}_i = \frac{x_i - \mu}{\sqrt{\sigma^2 + \epsilon}}, \quad y_i = \gamma \hat{x}_i + \beta$$
"""
BY_EQUATION = FORWARD + r"""
We write $\bar{v} = \frac{\partial L}{\partial v}$ for any v, e.g. $\bar{y}_i = \frac{\partial L}{\partial y_i}$.

$$\bar{\hat{x}}_i = %s$$
"""
BY_PROSE = FORWARD + r"""
Given the upstream gradient $\frac{\partial L}{\partial y}$ (denoted $\bar{y}$), the backward pass is

$$\frac{\partial L}{\partial x_i} = \frac{1}{\sqrt{\sigma^2 + \epsilon}}\left(\bar{\hat{x}}_i - \frac{1}{m}\sum_j \bar{\hat{x}}_j
 %s \frac{\hat{x}_i}{m}\sum_j \bar{\hat{x}}_j \hat{x}_j\right), \quad \bar{\hat{x}}_i = \gamma \bar{y}_i$$
"""


def test_an_overbar_set_by_an_equation_is_the_adjoint():
    assert last_verdict(BY_EQUATION % r"\gamma \bar{y}_i") == "correct"


def test_an_overbar_set_by_an_equation_catches_a_dropped_factor():
    found = findings(BY_EQUATION % r"\bar{y}_i")[-1]
    assert found.verdict == "wrong", found.to_text()
    x, dy, gamma, eps, i = batch_of(found.counterexample)
    assert found.counterexample.want == pytest.approx(bn_adjoints(x, dy, gamma, eps)["dxhat"][i])
    assert found.counterexample.got == pytest.approx(dy[i]) and gamma != 1


def last_verdict(doc: str, layer: str = "batchnorm") -> str:
    found = findings(doc, layer)[-1]
    return found.verdict


def test_an_overbar_declared_in_prose_reads_the_nested_adjoint():
    found = findings(BY_PROSE % "-")
    assert [f.verdict for f in found[-2:]] == ["correct", "correct"], [f.to_text() for f in found[-2:]]


def test_an_overbar_declared_in_prose_catches_a_flipped_sign():
    found = findings(BY_PROSE % "+")[-2]
    assert found.verdict == "wrong", found.to_text()
    x, dy, gamma, eps, i = batch_of(found.counterexample)
    ref = bn_adjoints(x, dy, gamma, eps)
    assert found.counterexample.want == pytest.approx(ref["dx"][i])
    dxhat, xhat, s = ref["dxhat"], ref["xhat"], ref["s"]
    assert found.counterexample.got == pytest.approx(s * (dxhat[i] - dxhat.mean() + xhat[i] * (dxhat * xhat).mean()))


def test_an_overbar_stays_a_mean_where_the_document_says_nothing():
    doc = r"""$$\bar{x} = \frac{1}{m}\sum_{i=1}^m x_i$$

We denote the mean by $\bar{x}$ and take the gradient of the loss below.

$$\frac{\partial L}{\partial \gamma} = \sum_i \bar{y}_i \hat{x}_i$$
"""
    found = findings(doc)
    assert found[0].defines != "dL_dx" and found[0].verdict != "wrong", found[0].to_text()
    assert found[-1].verdict not in ("correct", "wrong"), found[-1].to_text()  # ȳ is nothing the document defines


def test_a_nested_accent_is_a_name_of_its_own_without_the_convention():
    found = findings(r"$$\bar{\hat{x}}_i = \frac{1}{2}\hat{x}_i$$")[-1]
    assert found.verdict != "cannot-read", found.to_text()


def test_the_declaring_sentence_example_is_not_a_claim():
    doc = FORWARD + r"""
Using the notation $\overline{v}$ for the gradient $v\_delta$ and $\overline{x} \leftarrow y$ to mean the adjoint
of x is a sum that includes y.
"""
    found = findings(doc)
    assert found[-1].line == 5 and found[-1].defines not in ("dL_dx", "dL_dx[i]"), found[-1].to_text()
    assert all(f.verdict != "wrong" for f in found)


def test_an_equation_with_an_overbar_is_not_a_declaration():
    doc = r"""We write $\bar{x} = \frac{1}{m}\sum_i x_i$ for the batch's centre; its gradient flows through every $x_i$.

$$\frac{\partial L}{\partial \gamma} = \sum_i \bar{y}_i \hat{x}_i$$
"""
    assert last_verdict(doc) not in ("correct", "wrong")


def test_a_mean_written_with_an_overbar_stays_a_mean_under_the_convention():
    doc = r"""$$\bar{x} = \frac{1}{m}\sum_{i=1}^m x_i, \quad \sigma^2 = \frac{1}{m}\sum_{i=1}^m (x_i - \bar{x})^2$$

Given the upstream gradient $\frac{\partial L}{\partial y}$ (denoted $\bar{y}$):

$$\hat{x}_i = \frac{x_i - \bar{x}}{\sqrt{\sigma^2 + \epsilon}}$$

$$\frac{\partial L}{\partial \beta} = \sum_i \bar{y}_i$$
"""
    found = findings(doc)
    assert [f.verdict for f in found[-2:]] == ["correct-other-form", "correct"], [f.to_text() for f in found]


# -- 3. adjoints of the document's own names, through its own formulas (a staged graph) --------------------------
STAGED = r"""$$\mu = \frac{1}{N}\sum_{i=1}^N x_i$$

$$c_i = x_i - \mu$$

$$v = \frac{1}{N}\sum_{i=1}^N c_i^2, \quad s = \frac{1}{\sqrt{v + \epsilon}}, \quad g = \gamma s$$

$$y_i = c_i g + \beta$$

$$%s$$
"""


def staged_adjoints(x, dy, gamma, eps):
    """∂L/∂g, ∂L/∂c_i, ∂L/∂μ of the staged graph above, by hand with NumPy."""
    n, c = len(x), x - x.mean()
    v = (c ** 2).mean()
    s = 1 / np.sqrt(v + eps)
    dg = (dy * c).sum()
    dv = gamma * dg * -0.5 * (v + eps) ** -1.5
    dc = dy * gamma * s + 2 * c / n * dv
    return {"dg": dg, "dc": dc, "dmu": -dc.sum()}


def test_the_adjoint_of_a_scale_the_document_names():
    assert last_verdict(STAGED % r"\frac{\partial L}{\partial g} = \sum_i \frac{\partial L}{\partial y_i} c_i") == "correct"
    found = findings(STAGED % r"\frac{\partial L}{\partial g} = \sum_i \frac{\partial L}{\partial y_i}")[-1]
    assert found.verdict == "wrong", found.to_text()
    x, dy, gamma, eps, _ = batch_of(found.counterexample)
    assert found.counterexample.want == pytest.approx(staged_adjoints(x, dy, gamma, eps)["dg"])
    assert found.counterexample.got == pytest.approx(dy.sum())


def test_the_mean_adjoint_through_the_documents_centred_values():
    right = findings(STAGED % r"\frac{\partial L}{\partial \mu} = -\sum_i \frac{\partial L}{\partial c_i}")[-1]
    assert right.verdict in ("correct", "correct-other-form"), right.to_text()
    found = findings(STAGED % r"\frac{\partial L}{\partial \mu} = \sum_i \frac{\partial L}{\partial c_i}")[-1]
    assert found.verdict == "wrong", found.to_text()
    x, dy, gamma, eps, _ = batch_of(found.counterexample)
    ref = staged_adjoints(x, dy, gamma, eps)
    assert found.counterexample.want == pytest.approx(ref["dmu"]) and ref["dmu"] != pytest.approx(0)
    assert found.counterexample.got == pytest.approx(-ref["dmu"])


def test_a_centred_value_adjoint_whole_or_one_paths_share():
    whole = r"\frac{\partial L}{\partial c_i} = \frac{\partial L}{\partial y_i} g + \frac{2 c_i}{N}\frac{\partial L}{\partial v}"
    assert last_verdict(STAGED % whole) == "correct"
    assert last_verdict(STAGED % r"\frac{\partial L}{\partial c_i} = \frac{\partial L}{\partial y_i} g") == "ambiguous"
    found = findings(STAGED % r"\frac{\partial L}{\partial c_i} = -\frac{\partial L}{\partial y_i} g")[-1]
    assert found.verdict == "wrong", found.to_text()
    x, dy, gamma, eps, i = batch_of(found.counterexample)
    assert found.counterexample.want == pytest.approx(staged_adjoints(x, dy, gamma, eps)["dc"][i])


def test_a_name_on_no_path_to_the_output_has_no_adjoint():
    doc = STAGED % r"h = \gamma^2 + \mu" + "\n$$\\frac{\\partial L}{\\partial h} = 0$$\n"
    found = findings(doc)[-1]
    assert found.verdict == "cannot-evaluate" and "no path" in found.reason, found.to_text()


def test_an_output_written_twice_is_differentiated_by_the_formula_that_uses_the_name():
    doc = (r"$$\hat{x}_i = \frac{x_i - \mu}{\sqrt{\sigma^2 + \epsilon}}, \quad y_i = \gamma \hat{x}_i + \beta$$" + "\n\n"
           + STAGED % r"\frac{\partial L}{\partial g} = \sum_i \frac{\partial L}{\partial y_i} c_i")
    assert last_verdict(doc) == "correct"


# -- an AD-style page: staged names of its own, overbar adjoints, "x̄ ← y" rows that add up (ngraph's page) ------
AD_PAGE = r"""Forward:

.. math::

   \mathtt{avg} &= \frac{\sum{\mathtt{inp}_i}}{N}\\
   \mathtt{cen}_i &= \mathtt{inp}_i - \mathtt{avg}\\
   \mathtt{vr} &= \frac{\sum \mathtt{cen}_i^2}{N}\\
   \mathtt{inv} &= \frac{1}{\sqrt{\mathtt{vr}+\epsilon}}\\
   \mathtt{out}_i &= \mathtt{cen}_i\,\gamma\,\mathtt{inv}+\beta

Using the notation :math:`\overline{\texttt{name}}` for the gradient :math:`\texttt{name_delta}`, with
:math:`\overline{x} \leftarrow y` meaning that the adjoint of x is a sum that includes y:

.. math::

   \overline{\texttt{cen}}_i &\leftarrow %s\\
   \overline{\texttt{avg}} &\leftarrow %s\\
   \overline{\texttt{inp}}_i &\leftarrow \overline{\texttt{cen}}_i
"""
SHARE_ROW = r"\overline{\texttt{out}}_i\gamma\,\mathtt{inv}"
MEAN_ROW = r"-\sum\overline{\texttt{cen}}_i"


def test_an_ad_page_reads_its_input_output_and_adjoint_rows():
    found = findings(AD_PAGE % (SHARE_ROW, MEAN_ROW))
    assert [f.line for f in found][-3:] == [16, 17, 18]
    assert found[4].defines == "y[i]" and found[4].verdict in ("correct", "correct-other-form"), found[4].to_text()
    assert [f.verdict for f in found[-3:]] == ["ambiguous", "correct", "ambiguous"], [f.to_text() for f in found]
    assert all(f.verdict != "wrong" for f in found)


def test_an_ad_page_catches_a_lost_minus_in_an_adjoint_row():
    found = findings(AD_PAGE % (SHARE_ROW, r"\sum\overline{\texttt{cen}}_i"))[-2]
    assert found.verdict == "wrong", found.to_text()
    x, dy, gamma, eps, _ = batch_of(found.counterexample)
    ref = staged_adjoints(x, dy, gamma, eps)
    assert found.counterexample.want == pytest.approx(ref["dmu"]) and found.counterexample.got == pytest.approx(-ref["dmu"])


def test_an_ad_page_catches_a_dropped_factor_in_a_share_row():
    found = findings(AD_PAGE % (r"\overline{\texttt{out}}_i\gamma", MEAN_ROW))[-3]
    assert found.verdict == "wrong", found.to_text()
    x, dy, gamma, eps, i = batch_of(found.counterexample)
    assert found.counterexample.want == pytest.approx(staged_adjoints(x, dy, gamma, eps)["dc"][i])
    assert found.counterexample.got == pytest.approx(dy[i] * gamma)


def test_a_staged_pass_without_a_scale_has_no_output_named():
    doc = r"""$$\mathrm{avg} = \frac{1}{N}\sum_i \mathrm{inp}_i, \quad \mathrm{cen}_i = \mathrm{inp}_i - \mathrm{avg},
\quad \mathrm{nrm}_i = \frac{\mathrm{cen}_i}{\sqrt{\frac{1}{N}\sum_j \mathrm{cen}_j^2 + \epsilon}} + 1$$
"""
    assert all(f.defines != "y[i]" and f.verdict != "wrong" for f in findings(doc))


def test_a_pass_that_defines_the_layers_own_statistics_is_not_renamed():
    doc = r"""$$\mu = \frac{1}{B}\sum_{i=1}^B z_i, \quad u_i = \frac{z_i - \mu}{\sqrt{\sigma^2 + \epsilon}}, \quad
\hat{z}_i = \gamma u_i + \beta$$

For $i \neq j$: $$\frac{d u_j}{d z_i} = \frac{-1}{B \sqrt{\sigma^2 + \epsilon}}$$
"""
    # z, u, ẑ are the document's own letters for x, x̂, y (not a staged pass to rename); read so, the last row is
    # wrong off the diagonal too: locally 0, in total −(1 + x̂_i x̂_j)/(B√(σ² + ε)), never −1/(B√(σ² + ε)) alone
    assert [(f.defines, f.verdict) for f in findings(doc)] == [
        ("mu", "correct"), ("xhat[i]", "correct"), ("y[i]", "correct"), ("identity", "wrong")], \
        [f.to_text() for f in findings(doc)]


RMS_NOTES = r"""$$r = \sqrt{\frac{1}{d}\sum_{j=1}^d x_j^2 + \epsilon}, \quad y = \gamma \odot \hat{x}$$

$$\hat{x}_i = \frac{x_i}{r}, \quad y_i = \gamma \hat{x}_i$$

Given the upstream gradient $\frac{\partial L}{\partial y}$ (denoted $\bar{y}$):

$$\bar{\hat{x}}_i = %s$$
"""


def test_an_adjoint_the_layer_lacks_is_differentiated_through_the_members_formula():
    assert last_verdict(RMS_NOTES % r"\bar{y}_i \gamma", "rmsnorm") == "correct"
    found = findings(RMS_NOTES % r"\bar{y}_i", "rmsnorm")[-1]
    assert found.verdict == "wrong", found.to_text()
    x, dy, gamma, eps, i = batch_of(found.counterexample)
    assert found.counterexample.want == pytest.approx(dy[i] * gamma) and found.counterexample.got == pytest.approx(dy[i])


def test_adjoints_through_a_forward_pass_with_a_slip_are_not_judged():
    slip = STAGED.replace(r"y_i = c_i g + \beta", r"y_i = c_i g^2 + \beta")
    found = findings(slip % r"\frac{\partial L}{\partial g} = \sum_i \frac{\partial L}{\partial y_i} c_i")
    assert found[-2].verdict == "wrong"  # y_i's own slip
    assert found[-1].verdict == "cannot-evaluate" and "layer's output" in found[-1].reason, found[-1].to_text()


def test_a_nested_accent_keeps_its_notation_for_corrections():
    from bngraph.tex.grammar import parse_equation
    notes = dict(parse_equation(r"\bar{\hat{x}}_i = \overline{\widehat{z}}").notation.entries)
    assert notes["xhatbar[]"] == r"\bar{\hat{x}}_{%s}" and notes["zhatbar"] == r"\overline{\widehat{z}}"


SCALAR_TWICE = r"""$$a = \frac{1}{N}\sum_{i=1}^N x_i, \quad c_i = x_i - a, \quad v = \frac{1}{N}\sum_{i=1}^N x_i^2 - a^2$$

$$s = \frac{1}{\sqrt{v + \epsilon}}, \quad g = \gamma s, \quad y_i = c_i g + \beta$$

$$\frac{\partial L}{\partial a} = %s$$
"""


def test_a_share_of_a_scalar_used_by_two_formulas():
    whole = r"-\sum_i \frac{\partial L}{\partial c_i} - 2a\frac{\partial L}{\partial v}"
    assert last_verdict(SCALAR_TWICE % whole) == "correct"
    assert last_verdict(SCALAR_TWICE % r"-\sum_i \frac{\partial L}{\partial c_i}") == "ambiguous"
    found = findings(SCALAR_TWICE % r"\sum_i \frac{\partial L}{\partial c_i}")[-1]
    assert found.verdict == "wrong", found.to_text()
    x, dy, gamma, eps, _ = batch_of(found.counterexample)
    a, c = x.mean(), x - x.mean()
    v = (x ** 2).mean() - a ** 2
    dv = gamma * (dy * c).sum() * -0.5 * (v + eps) ** -1.5
    assert found.counterexample.want == pytest.approx(-(dy * gamma / np.sqrt(v + eps)).sum() - 2 * a * dv)


def test_the_rows_for_one_adjoint_add_up_to_the_whole():
    page = AD_PAGE % (SHARE_ROW + r"\\" + "\n" + r"   \overline{\texttt{cen}}_i &\leftarrow %s", MEAN_ROW)
    both = findings(page % r"\frac{2\,\mathtt{cen}_i}{N}\overline{\texttt{vr}}")
    rows = [f for f in both if f.line in (16, 17)]
    assert [f.verdict for f in rows] == ["correct", "correct"], [f.to_text() for f in rows]
    slip = [f for f in findings(page % r"\frac{\mathtt{cen}_i}{N}\overline{\texttt{vr}}") if f.line in (16, 17)]
    assert [f.verdict for f in slip] == ["ambiguous", "wrong"], [f.to_text() for f in slip]
