"""A write-up is judged against the layer it is about (issue 14, fifth round): ``bngraph audit --layer rmsnorm``
judges an RMSNorm write-up against RMSNorm (the engine's closed form of an RMSNorm forward), not against Batch
Norm. The values the auditor says a formula should have are checked here against finite differences of an RMSNorm
forward written in NumPy, not against the engine."""
from __future__ import annotations

import numpy as np
import pytest

from bngraph.audit.auditor import audit_document
from bngraph.cli import main

RMSNORM_DOC = r"""RMSNorm of one example with D features:

$$r = \sqrt{\frac{1}{D}\sum_{d=1}^D x_d^2 + \epsilon}$$

$$y_d = \frac{\gamma x_d}{r}$$

$$\frac{\partial L}{\partial \gamma} = \sum_{d=1}^D \frac{\partial L}{\partial y_d}\frac{x_d}{r}$$

$$\frac{\partial L}{\partial x_d} = \frac{\gamma}{r}\frac{\partial L}{\partial y_d} - \frac{\gamma x_d}{D r^3}\sum_{j=1}^D x_j \frac{\partial L}{\partial y_j}$$

A slip (one r too many, no 1/D):

$$\frac{\partial L}{\partial x_d} = \frac{\gamma}{r}\frac{\partial L}{\partial y_d} - \frac{x_d}{r^3}\left(\frac{\gamma}{r}\sum_j x_j \frac{\partial L}{\partial y_j}\right)$$
"""


def rmsnorm(x, gamma, eps):
    return gamma * x / np.sqrt(np.mean(x * x) + eps)


def dL_dx_by_finite_differences(x, gamma, eps, dy, h=1e-6):
    grad = np.zeros_like(x)
    for k in range(len(x)):
        step = np.zeros_like(x)
        step[k] = h
        grad[k] = (dy @ rmsnorm(x + step, gamma, eps) - dy @ rmsnorm(x - step, gamma, eps)) / (2 * h)
    return grad


def test_an_rmsnorm_write_up_is_judged_against_rmsnorm():
    report = audit_document(RMSNORM_DOC, "rmsnorm")
    verdicts = {f.line: f.verdict for f in report.findings}
    assert verdicts == {3: "helper", 5: "correct-other-form", 7: "correct-other-form", 9: "correct-other-form",
                        13: "wrong"}, report.to_text()
    slip = report.findings[-1].counterexample
    b, (letter, index) = slip.batch, slip.index
    assert letter == "d"
    want = dL_dx_by_finite_differences(np.array(b.x), b.gamma, b.epsilon, np.array(b.dL_dy))[index - 1]
    assert slip.want == pytest.approx(want, rel=1e-6)
    assert abs(slip.got - want) > 1e-3
    shown = report.findings[-1].to_dict()["counterexample"]
    assert "gamma" in shown and "epsilon" in shown and "beta" not in shown  # RMSNorm has no shift
    assert "β" not in report.findings[-1].to_text() and "γ = " in report.findings[-1].to_text()


def test_against_batch_norm_the_same_write_up_is_another_layer_never_wrong():
    report = audit_document(RMSNORM_DOC, "batchnorm")
    assert not report.wrong and report.counts().get("not-about-this-layer", 0) >= 4, report.to_text()


def test_the_layer_is_chosen_on_the_command_line(tmp_path, capsys):
    doc = tmp_path / "rms.md"
    doc.write_text(RMSNORM_DOC, encoding="utf-8")
    assert main(["audit", str(doc), "--layer", "rmsnorm"]) == 1
    assert "(rmsnorm): 5 equations" in capsys.readouterr().out
    assert main(["audit", str(doc), "--layer", "groupnorm"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "unknown layer 'groupnorm'" in err and "rmsnorm" in err


def test_a_reciprocal_of_the_root_mean_square_is_the_layers_own_statistic():
    """s = 1/rms (Triton's rrms): a slip written with s is wrong, not "another layer"."""
    report = audit_document(r"""$$s = \frac{1}{\sqrt{\frac{1}{D}\sum_{d=1}^D x_d^2 + \epsilon}}$$

$$\frac{\partial L}{\partial x_d} = \gamma s \frac{\partial L}{\partial y_d} - \gamma x_d s^3 \sum_{j=1}^D x_j \frac{\partial L}{\partial y_j}$$
""", "rmsnorm")
    assert [f.verdict for f in report.findings] == ["helper", "wrong"], report.to_text()


# -- a write-up that goes from one layer to another, by its headings --------------------------------------------------
MIXED = r"""# Batch Normalization

$$\mu = \frac{1}{m}\sum_{i=1}^m x_i$$

## RMSNorm (LayerNorm without the mean)

$$r = \sqrt{\frac{1}{D}\sum_{d=1}^D x_d^2 + \epsilon}$$

$$\frac{\partial L}{\partial x_d} = \frac{\gamma}{r}\frac{\partial L}{\partial y_d} - \frac{x_d}{r^3}\left(\frac{\gamma}{r}\sum_j x_j \frac{\partial L}{\partial y_j}\right)$$

# Summary

$$\hat{x}_i = \frac{x_i - \mu}{\sqrt{\sigma^2 + \epsilon}}$$
"""


def test_a_section_headed_rmsnorm_is_checked_as_rmsnorm():
    report = audit_document(MIXED, "batchnorm")
    assert [(f.line, f.verdict) for f in report.findings] == [
        (3, "correct"), (7, "helper"), (9, "wrong"), (13, "correct")], report.to_text()
    assert "checked as rmsnorm, which its section's heading names" in report.findings[2].reason


def test_a_heading_alone_never_makes_a_formula_wrong():
    """Batch Norm's ∂ℓ/∂γ, in x alone, under a heading that says RMSNorm: wrong for RMSNorm, right for Batch Norm."""
    report = audit_document(r"""## RMSNorm

$$\frac{\partial L}{\partial \gamma} = \sum_{i=1}^m \frac{\partial L}{\partial y_i}\frac{x_i - \frac{1}{m}\sum_{j=1}^m x_j}
{\sqrt{\frac{1}{m}\sum_{j=1}^m \left(x_j - \frac{1}{m}\sum_{k=1}^m x_k\right)^2 + \epsilon}}$$
""", "batchnorm")
    assert [f.verdict for f in report.findings] == ["ambiguous"], report.to_text()
    assert "wrong for rmsnorm" in report.findings[0].reason and report.findings[0].counterexample is None


def test_a_comment_in_a_code_block_is_no_heading():
    text = MIXED.replace("## RMSNorm (LayerNorm without the mean)", "```python\n# RMSNorm\n```")
    report = audit_document(text, "batchnorm")
    assert not report.wrong, report.to_text()


# -- the layer's own words: RMS(x), rms(x)_i, rrms -------------------------------------------------------------------
def test_a_statistic_written_as_a_function_of_x_is_one_name_wherever_it_stands():
    """\\text{RMS}(x) = … defines RMS; RMS bare is that name (not R·M·S), RMS(x) is it too (not RMS·x)."""
    text = r"""$\text{RMS}(x) = \sqrt{\frac{1}{D}\sum_{d=1}^D x_d^2 + \epsilon}$

$$y_d = \gamma \frac{x_d}{\text{RMS}(x)}$$

$$\frac{\partial L}{\partial x_d} = \frac{\gamma}{RMS} \frac{\partial L}{\partial y_d} - \frac{\gamma x_d}{D\, RMS^3} \sum_j x_j \frac{\partial L}{\partial y_j}$$

$$\frac{\partial L}{\partial x_d} = \frac{\gamma}{RMS} \frac{\partial L}{\partial y_d} - \frac{x_d}{RMS^3}\left(\frac{\gamma}{RMS} \sum_j x_j \frac{\partial L}{\partial y_j}\right)$$
"""
    report = audit_document(text, "rmsnorm")
    assert [f.verdict for f in report.findings] == ["helper", "correct-other-form", "correct-other-form", "wrong"], \
        report.to_text()


def test_a_lower_case_statistic_with_a_row_index_and_a_partial_of_it():
    text = r"""$rms(x)_i = \sqrt{\frac{1}{N}\sum_{j=1}^{N} x_{ij}^2 + \epsilon}$

$$\frac{\partial rms(x)_i}{\partial x_{ij}} = \frac{x_{ij}}{N\, rms(x)_i}$$

$$\frac{\partial rms(x)_i}{\partial x_{ij}} = \frac{x_{ij}}{rms(x)_i}$$
"""
    report = audit_document(text, "rmsnorm")
    assert [f.verdict for f in report.findings] == ["correct", "correct", "wrong"], report.to_text()
    assert not any(f.warnings for f in report.findings), report.to_text()  # rms_i: the row's own rms


def test_the_statistic_of_another_row_is_not_judged():
    """∂rms_k/∂x_{ij} = 0 holds for k ≠ i (the case the text is in): the auditor's one row cannot tell k from i."""
    text = r"""$rms(x)_i = \sqrt{\frac{1}{N}\sum_{j=1}^{N} x_{ij}^2 + \epsilon}$

$$\frac{\partial rms(x)_k}{\partial x_{ij}} = 0$$
"""
    found = audit_document(text, "rmsnorm").findings[1]
    assert found.verdict == "cannot-evaluate" and "another feature (or row)" in found.reason, found.to_text()


# -- chains of inline rows: $\frac{\partial r}{\partial x_j}$, then $= …$ on the lines below ---------------------------
CHAIN = r"""$rms(x) = \sqrt{\frac{1}{m}\sum_{k=1}^m x_k^2 + \epsilon}$

<p>
$\frac{\partial rms(x)}{\partial x_j}$
</p>
<p>
$=\frac{1}{2\, rms(x)} \cdot \frac{\partial \frac{1}{m}\sum_{k=1}^m x_k^2}{\partial x_j}$
</p>
<p>
$=\frac{1}{2\, rms(x)}.\frac{2 x_j}{m}$
</p>
<p>
$=x_j.rms(x)^{-1}$
</p>
"""


def test_a_formula_alone_heads_the_rows_that_go_on_from_it_with_equals():
    report = audit_document(CHAIN, "rmsnorm")
    assert [(f.line, f.verdict) for f in report.findings] == [
        (1, "correct"), (7, "correct"), (10, "correct"), (13, "wrong")], report.to_text()


def test_an_inline_row_after_prose_math_that_is_no_row_is_not_chained():
    text = CHAIN.replace("$\\frac{\\partial rms(x)}{\\partial x_j}$", "the derivative:")
    report = audit_document(text, "rmsnorm")
    assert [f.verdict for f in report.findings] == ["correct"] + ["cannot-read"] * 3, report.to_text()


# -- notes beside an align chain, and a sum that reuses the left side's index (issue 14, fifth round) -----------------
def test_a_let_note_beside_a_row_names_what_the_row_writes_t():
    text = r"""$$
\begin{align}
\frac{\partial L}{\partial \sigma^2} &= -\frac{\gamma}{2}(\sigma^2 + \epsilon)^{-3/2}\sum_{i=1}^{m}\frac{\partial L}{\partial y_i}(x_i - \mu) \\
&= \frac{-\gamma t^3}{2}\sum_{i=1}^{m}\frac{\partial L}{\partial y_i}(x_i - \mu) &&&& \boldsymbol{(\text{Let } \frac{1}{\sqrt{\sigma^2 + \epsilon}} = t)} \\
&= \frac{\gamma t^3}{2}\sum_{i=1}^{m}\frac{\partial L}{\partial y_i}(x_i - \mu)
\end{align}
$$
"""
    report = audit_document(text)
    assert [(f.line, f.verdict) for f in report.findings] == [
        (3, "correct-other-form"), (4, "helper"), (4, "correct-other-form"), (5, "wrong")], report.to_text()
    assert report.findings[1].tex == r"t = \frac{1}{\sqrt{\sigma^2 + \epsilon}}"


def test_a_note_row_in_the_note_column_is_not_what_the_next_row_goes_on_from():
    text = r"""$$
\begin{align}
\frac{\partial L}{\partial \mu} &= \sum_{i=1}^{m}\frac{\partial L}{\partial \hat{x}_i}\frac{-1}{\sqrt{\sigma^2 + \epsilon}} + \frac{\partial L}{\partial \sigma^2}\frac{1}{m}\sum_{i=1}^{m}-2(x_i-\mu) &&&& (\text{Because } \frac{\partial \hat{x}_i}{\partial \mu} = \frac{-1}{\sqrt{\sigma^2 + \epsilon}} \\
& &&&& \text{and }\frac{\partial \sigma^2}{\partial \mu} = \frac{1}{m}\sum_{i=1}^{m}-2(x_i-\mu)) \\
&= \sum_{i=1}^{m}\frac{\partial L}{\partial \hat{x}_i}\frac{-1}{\sqrt{\sigma^2 + \epsilon}}
\end{align}
$$
"""
    report = audit_document(text)
    assert not report.wrong, report.to_text()
    assert report.findings[-1].defines == "dL_dmu" and report.findings[-1].verdict == "correct", report.to_text()


SCOPE = (r"$$\frac{\partial L}{\partial x_i} = SIGN\frac{\partial L}{\partial \hat{x}_i}\frac{1}{\sqrt{\sigma^2+\epsilon}}"
         r" - \frac{1}{2}(\sigma^2+\epsilon)^{-3/2}\sum_{i=1}^{m}(\frac{\partial L}{\partial \hat{x}_i}(x_i-\mu))"
         r"\frac{2}{m}(x_i-\mu) + \frac{1}{m}\frac{\partial L}{\partial \mu}$$")


def test_a_sum_that_reuses_the_left_sides_index_is_read_both_ways():
    """Σ_i (∂L/∂x̂_i (x_i − μ)) · 2(x_i − μ)/m: right if the sum ends at its bracket (the last x_i the free one)."""
    found = audit_document(SCOPE.replace("SIGN", "")).findings[0]
    assert found.verdict == "ambiguous" and "the sum over the left side's index" in found.reason, found.to_text()


def test_a_slip_elsewhere_is_wrong_however_the_sum_is_read():
    found = audit_document(SCOPE.replace("SIGN", "-")).findings[0]
    assert found.verdict == "wrong" and found.counterexample is not None, found.to_text()


def test_layer_norms_gamma_per_entry_is_its_own_not_a_misplaced_index():
    text = r"$$y_i = \gamma_i \hat{x}_i + \beta_i$$"
    as_layernorm = audit_document(text, "layernorm").findings[0]
    assert as_layernorm.verdict == "correct" and any("one γ per entry" in w for w in as_layernorm.warnings), \
        as_layernorm.to_text()
    as_batchnorm = audit_document(text, "batchnorm").findings[0]
    assert any("shared by the m examples" in w for w in as_batchnorm.warnings), as_batchnorm.to_text()


def test_a_code_name_differentiated_by_is_one_name():
    """∂istd/∂σ² (the course's code names): istd one name, not i·s·t·d."""
    text = r"""$$istd = \frac{1}{\sqrt{\sigma^2 + \epsilon}}$$

$$\frac{\partial istd}{\partial \sigma^2} = -\frac{1}{2}(\sigma^2 + \epsilon)^{-3/2}$$

$$\frac{\partial istd}{\partial \sigma^2} = -\frac{1}{2}(\sigma^2 + \epsilon)^{-1/2}$$
"""
    assert [f.verdict for f in audit_document(text).findings] == ["helper", "correct", "wrong"]
