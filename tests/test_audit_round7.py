"""Readings fixed after the third untouched set (benchmarks/heldout_u3, issue 14, round 7), each on a minimal
document: a partial by a name the document gives a quantity (``v = σ²``, ``r = RMS(x)``) is the partial by that
quantity; a helper defined twice (``x̂_i = x_i/RMS(x)``, later ``x̂_i = x_i/r``) is differentiated by the definition
that names the variable; ``\\bar{\\sigma}^2`` is the square of the document's σ̄. Expected values are worked out by
hand or with NumPy."""
from __future__ import annotations

import numpy as np
import sympy as sp
import pytest

from bngraph.audit.auditor import audit_document


def last(doc: str, layer: str = "batchnorm"):
    return audit_document(doc, layer).findings[-1]


def batch_of(c):
    return np.array(c.batch.x), c.batch.epsilon, c.index[1] - 1 if c.index else None


# -- a partial by the document's own name for a quantity (linalg_nb_layernorm.md 82) ---------------------------
ALIAS = r"""$$v = \sigma^2 = \frac{1}{d}\sum_j (x_j - \mu)^2$$

where $\sigma = \sqrt{\sigma^2 + \epsilon}$.

$$\frac{\partial \sigma}{\partial v} = %s$$
"""


def test_a_partial_by_an_alias_of_the_variance():
    found = last(ALIAS % r"\frac{1}{2\sigma}", "layernorm")
    assert found.verdict == "correct", found.to_text()


def test_a_partial_by_an_alias_still_catches_a_lost_half():
    found = last(ALIAS % r"\frac{1}{\sigma}", "layernorm")
    assert found.verdict == "wrong", found.to_text()
    x, eps, _ = batch_of(found.counterexample)
    assert found.counterexample.want == pytest.approx(0.5 / np.sqrt(x.var() + eps))
    assert found.counterexample.got == pytest.approx(1 / np.sqrt(x.var() + eps))


# -- a helper defined twice, the later one by the name the partial is by (linalg_nb_rmsnorm.md 70) ---------------
TWICE = r"""$$\text{RMS}(x) = \sqrt{\frac{1}{d}\sum_{i=1}^{d} x_i^2 + \epsilon}$$

$$\hat{x}_i = \frac{x_i}{\text{RMS}(x)}$$

Let $r = \text{RMS}(x) = \sqrt{\frac{1}{d}\sum_j x_j^2 + \epsilon}$, then $\hat{x}_i = \frac{x_i}{r}$.

$$\frac{\partial \hat{x}_j}{\partial r} = %s$$
"""


def test_a_helper_defined_twice_is_differentiated_by_the_definition_that_names_the_variable():
    found = last(TWICE % r"-\frac{x_j}{r^2}", "rmsnorm")
    assert found.verdict == "correct", found.to_text()


def test_a_helper_defined_twice_still_catches_a_lost_sign():
    found = last(TWICE % r"\frac{x_j}{r^2}", "rmsnorm")
    assert found.verdict == "wrong", found.to_text()
    x, eps, k = batch_of(found.counterexample)
    assert found.counterexample.want == pytest.approx(-x[k] / (np.mean(x ** 2) + eps))


# -- \bar{\sigma}^2, the square of the document's σ̄ (zh_norm_survey_ln.md 75) ----------------------------------
SQUARE = r"""$$\hat{x}_j = \frac{x_j - \mu}{\sqrt{\sigma^2 + \epsilon}}$$

Let $\bar{\sigma} = \sqrt{\sigma^2 + \epsilon}$.

$$\frac{\partial \mathcal{L}}{\partial x_j} = \frac{1}{\bar{\sigma}} \left( \frac{\partial \mathcal{L}}{\partial \hat{x}_j}
 - \frac{1}{d} \sum_{k=1}^{d} \frac{\partial \mathcal{L}}{\partial \hat{x}_k} - \frac{(x_j - \mu)}{%s\bar{\sigma}^2}
 \sum_{k=1}^{d} \frac{\partial \mathcal{L}}{\partial \hat{x}_k} (x_k - \mu) \right)$$
"""


def test_sigma_bar_squared_is_the_square_of_the_documents_sigma_bar():
    found = last(SQUARE % "d", "layernorm")
    assert found.verdict in ("correct", "correct-other-form"), found.to_text()


def test_sigma_bar_squared_catches_the_lost_one_over_d():
    found = last(SQUARE % "", "layernorm")
    assert found.verdict == "wrong" and found.counterexample is not None, found.to_text()


TWICE_INVERSE = r"""$$\text{RMS}(x) = \sqrt{\frac{1}{d}\sum_{i=1}^{d} x_i^2 + \epsilon}$$

$$\hat{x}_i = \frac{x_i}{\text{RMS}(x)}$$

With $s = \frac{1}{\text{RMS}(x)}$, $\hat{x}_i = x_i s$ and

$$\frac{\partial \hat{x}_j}{\partial s} = %s$$
"""


@pytest.mark.parametrize("rhs, verdict", [("x_j", "correct"), ("s", "wrong")])
def test_a_helper_defined_twice_by_a_name_that_is_no_alias(rhs, verdict):
    found = last(TWICE_INVERSE % rhs, "rmsnorm")
    assert found.verdict == verdict, found.to_text()


# -- y defined without γ and β: the normalised value, γ = 1 and β = 0 in what follows (zh_rmsnorm_orthogonality.md) --
PLAIN = r"""Without scale and shift, the output is

$$y_{i} = \frac{x_{i}}{\text{RMS}(x)}, \qquad \text{RMS}(x) = \sqrt{\frac{1}{d} \sum_{k=1}^{d} x_{k}^{2} + \epsilon}$$

$$\frac{\partial L}{\partial x_{i}} = \frac{1}{\text{RMS}(x)} \left[ \frac{\partial L}{\partial y_{i}} - \frac{y_{i}}{d} %s \right]$$
"""


def test_a_document_that_defines_y_without_gamma_and_beta_is_read_with_gamma_one():
    found = last(PLAIN % r"\sum_{j=1}^{d} \frac{\partial L}{\partial y_{j}} y_{j}", "rmsnorm")
    assert found.verdict == "correct" and "γ = 1" in found.checked, found.to_text()


def test_a_document_that_defines_y_without_gamma_still_catches_a_dropped_sum():
    found = last(PLAIN % r"\frac{\partial L}{\partial y_{i}} y_{i}", "rmsnorm")
    assert found.verdict == "wrong", found.to_text()
    c = found.counterexample
    x, dy, k = np.array(c.batch.x), np.array(c.batch.dL_dy), c.index[1] - 1
    rms = np.sqrt(np.mean(x ** 2) + c.batch.epsilon)
    y = c.batch.gamma * x / rms  # the counterexample is the formula as written, at the batch's own γ
    assert c.got == pytest.approx((dy[k] - y[k] / len(x) * dy[k] * y[k]) / rms)


def test_a_dropped_gamma_is_still_wrong_where_the_document_defines_y_with_gamma():
    doc = (r"$$y_i = \gamma \hat{x}_i + \beta$$" "\n\n"
           r"$$\frac{\partial L}{\partial \hat{x}_i} = \frac{\partial L}{\partial y_i}$$")
    found = last(doc)
    assert found.verdict == "wrong", found.to_text()
    assert found.counterexample.want == pytest.approx(found.counterexample.batch.gamma * found.counterexample.got)


# -- ε left out of one formula ("ignoring ε here") in a document that writes it elsewhere ---------------------------
EPS = r"""$$\text{RMS}(x) = \sqrt{\frac{1}{d} \sum_{k=1}^{d} x_{k}^{2} + \epsilon}$$

$$\frac{\partial \text{RMS}(x)}{\partial x_{i}} = \frac{1}{2} \left( \frac{1}{d} \sum_{k=1}^{d} x_{k}^{2} \right)^{-1/2} \cdot \frac{2 x_{i}}{%s}$$
"""


def test_a_formula_that_writes_no_epsilon_is_right_with_epsilon_zero_ambiguous():
    found = last(EPS % "d", "rmsnorm")
    assert found.verdict == "ambiguous" and "ε = 0" in found.reason, found.to_text()


def test_a_formula_that_writes_no_epsilon_still_catches_a_lost_one_over_d():
    found = last(EPS % "1", "rmsnorm")
    assert found.verdict == "wrong", found.to_text()
    x, eps, k = batch_of(found.counterexample)
    assert found.counterexample.got == pytest.approx(x[k] / np.sqrt(np.mean(x ** 2)))


# -- ∂y_j/∂x_i stated for j ≠ i (the text's case 2): right off the diagonal only --------------------------------
def test_an_off_diagonal_entry_is_ambiguous_not_wrong():
    doc = (r"$$y_i = \frac{x_i}{\text{RMS}(x)}, \quad \text{RMS}(x) = \sqrt{\frac{1}{d}\sum_{k=1}^{d} x_k^2 + \epsilon}$$"
           "\n\n" r"$$\frac{\partial y_{j}}{\partial x_{i}} = - \frac{y_{i} y_{j}}{d \cdot \text{RMS}(x)}$$")
    found = last(doc, "rmsnorm")
    assert found.verdict == "ambiguous" and "i ≠ j" in found.reason, found.to_text()


def test_an_entry_wrong_on_and_off_the_diagonal_is_wrong():
    doc = (r"$$y_i = \frac{x_i}{\text{RMS}(x)}, \quad \text{RMS}(x) = \sqrt{\frac{1}{d}\sum_{k=1}^{d} x_k^2 + \epsilon}$$"
           "\n\n" r"$$\frac{\partial y_{j}}{\partial x_{i}} = \frac{y_{i} y_{j}}{d \cdot \text{RMS}(x)}$$")
    assert last(doc, "rmsnorm").verdict == "wrong"


# -- ∂ℓ/∂γ summed over the entries of a Layer Norm whose γ is one per entry (zh_norm_survey_ln.md 30, 31) ---------
ENTRIES = r"""$$\mu = \frac{1}{d} \sum_{j=1}^{d} x_j$$

$$y_j = \gamma_j \hat{x}_j + \beta_j$$

$$\frac{\partial \mathcal{L}}{\partial %s} = %s$$
"""


@pytest.mark.parametrize("parameter, rhs", [(r"\gamma", r"\sum_{j=1}^{d} \frac{\partial \mathcal{L}}{\partial y_j} \hat{x}_j"),
                                            (r"\beta", r"\sum_{j=1}^{d} \frac{\partial \mathcal{L}}{\partial y_j}")])
def test_a_per_entry_parameters_gradient_summed_over_the_entries_is_wrong(parameter, rhs):
    found = last(ENTRIES % (parameter, rhs), "layernorm")
    assert found.verdict == "wrong" and "one per entry" in found.reason, found.to_text()
    c = found.counterexample
    x, dy, k = np.array(c.batch.x), np.array(c.batch.dL_dy), c.index[1] - 1
    xhat = (x - x.mean()) / np.sqrt(x.var() + c.batch.epsilon)
    entry = dy * xhat if parameter == r"\gamma" else dy
    assert (c.got, c.want) == pytest.approx((entry.sum(), entry[k]))


def test_a_per_entry_parameters_gradient_entry_by_entry_is_right():
    found = last(ENTRIES % (r"\gamma_j", r"\frac{\partial \mathcal{L}}{\partial y_j} \hat{x}_j"), "layernorm")
    assert found.verdict != "wrong", found.to_text()


def test_a_shared_gamma_summed_over_the_entries_is_right():
    doc = ENTRIES.replace(r"\gamma_j", r"\gamma").replace(r"\beta_j", r"\beta")
    found = last(doc % (r"\gamma", r"\sum_{j=1}^{d} \frac{\partial \mathcal{L}}{\partial y_j} \hat{x}_j"), "layernorm")
    assert found.verdict == "correct", found.to_text()


def test_a_batch_norms_gamma_summed_over_the_batch_is_right():
    doc = ENTRIES.replace("{d}", "{m}")
    found = last(doc % (r"\gamma", r"\sum_{j=1}^{m} \frac{\partial \mathcal{L}}{\partial y_j} \hat{x}_j"))
    assert found.verdict == "correct", found.to_text()


def test_a_per_entry_parameters_gradient_written_with_its_index_is_one_entrys():
    found = last(ENTRIES % (r"\gamma_j", r"\frac{\partial \mathcal{L}}{\partial y_j} \hat{x}_j"), "layernorm")
    assert found.verdict == "correct", found.to_text()


# -- ∂ of an expression written in the numerator, and ∂y_j/x_i with the lower ∂ left out (obsidian_layernorm_delta.md,
#    zh_triton_rmsnorm.md, rms_norm_note.md) ---------------------------------------------------------------------
@pytest.mark.parametrize("rhs, verdict", [
    (r"\frac{1}{m}\frac{\partial \sum_{i=1}^{m}(x_i-\mu)^2}{\partial x_j}", "correct"),
    (r"\frac{\partial \frac{1}{m}\sum_{i=1}^{m}(x_i-\mu)^2}{\partial x_j}", "correct"),
    (r"\frac{1}{m}\frac{\partial \sum_{i=1}^{m}(x_i+\mu)^2}{\partial x_j}", "wrong")])
def test_a_partial_of_the_expression_in_the_numerator(rhs, verdict):
    found = last(rf"$$\frac{{\partial \sigma^2}}{{\partial x_j}} = {rhs}$$")
    assert found.verdict == verdict, found.to_text()
    if verdict == "wrong":  # the sum's own index is not the j of ∂x_j: 2(x_j + μ)/m, not the whole sum's
        x, _, k = batch_of(found.counterexample)
        assert found.counterexample.got == pytest.approx(2 * (x[k] + x.mean()) / len(x))


@pytest.mark.parametrize("rhs, verdict", [(r"\frac{1}{\sqrt{\sigma^2 + \epsilon}}", "correct"),
                                          (r"\sqrt{\sigma^2 + \epsilon}", "wrong")])
def test_a_partial_with_the_lower_partial_left_out(rhs, verdict):
    found = last(rf"$$\frac{{\partial \hat{{x}}_i}}{{x_i}} = {rhs}$$")
    assert found.verdict == verdict, found.to_text()


def test_a_sums_index_is_not_renamed_to_the_index_a_partial_is_by():
    from bngraph.tex.grammar import parse_equation
    eq = parse_equation(r"\frac{\partial \sigma^2}{\partial x_j} = \frac{\partial \sum_{i=1}^{m}(x_i-\mu)^2}{\partial x_j}")
    (derivative,) = eq.rhs.atoms(sp.Derivative)
    (summed,) = derivative.expr.atoms(sp.Sum)
    assert summed.variables[0].name != "j" and derivative.variables[0].indices[0].name == "j"


# -- the document's own letters with its own batch-size letter: z for x, u for x̂, ẑ = γu + β for y (idl_notes_bn_uz.md)
LETTERS = r"""$$\mu_B = \frac{1}{B}\sum_{i=1}^B z_i$$

$$u_i = \frac{z_i - \mu_B}{\sqrt{\sigma_B^2 + \epsilon}}$$

$$\hat{z}_i = \gamma u_i + \beta$$

$$\frac{d u_j}{d z_i} = \frac{\partial u_j}{\partial \mu_B} \frac{\partial \mu_B}{\partial z_i} + \frac{\partial u_j}{\partial \sigma_B^2} \frac{\partial \sigma_B^2}{\partial z_i}$$

$$\frac{\partial u_i}{\partial \sigma_B^2} = %s$$
"""


def test_the_letter_a_mean_over_b_examples_is_of_is_x_and_its_hat_defined_with_gamma_is_y():
    report = audit_document(LETTERS % r"\frac{-(z_i - \mu_B)}{2(\sigma_B^2 + \epsilon)^{3/2}}")
    verdicts = [(f.line, f.defines, f.verdict) for f in report.findings]
    assert verdicts[:3] == [(1, "mu", "correct"), (3, "xhat[i]", "correct"), (5, "y[i]", "correct")], report.to_text()
    assert report.findings[3].verdict == "ambiguous" and "i ≠ j" in report.findings[3].reason, report.to_text()
    assert report.findings[4].verdict == "correct", report.to_text()


def test_the_documents_own_letters_still_catch_a_lost_square():
    found = last(LETTERS % r"\frac{-(z_i - \mu_B)}{2(\sigma_B + \epsilon)^{3/2}}")
    assert found.verdict == "wrong", found.to_text()


# -- du/dz total on the left, the chain rule of local partials on the right (idl_notes_bn_uz.md 87) ----------------
CHAIN_RULE = r"""$$\hat{x}_i = \frac{x_i - \mu}{\sqrt{\sigma^2 + \epsilon}}$$

$$\frac{d\hat{x}_i}{dx_i} = \frac{\partial \hat{x}_i}{\partial x_i} + \frac{\partial \hat{x}_i}{\partial \mu}\frac{\partial \mu}{\partial x_i}%s$$
"""


def test_a_total_derivative_as_the_chain_rule_of_local_partials():
    found = last(CHAIN_RULE % r" + \frac{\partial \hat{x}_i}{\partial \sigma^2}\frac{d \sigma^2}{d x_i}")
    assert found.verdict == "correct", found.to_text()


def test_a_chain_rule_that_drops_the_variance_path_is_wrong():
    found = last(CHAIN_RULE % "")
    assert found.verdict == "wrong", found.to_text()


# -- a heading's words for a layer: "RMS error" names none (review of rounds 5-6) --------------------------------------
@pytest.mark.parametrize("heading, layer", [("## RMS error of the gradient check", None), ("## RMSNorm", "rmsnorm"),
                                            ("## The RMS layer", "rmsnorm"), ("## Root mean square error", None),
                                            ("## LN backward", "layernorm"), ("## Ln of the loss", None),
                                            ("## BN forward", "batchnorm"), ("## Layer Normalization", "layernorm")])
def test_the_layer_a_heading_names(heading, layer):
    from bngraph.audit.sections import LAYER_WORDS
    assert next((name for name, words in LAYER_WORDS if words.search(heading)), None) == layer


def test_a_right_formula_under_an_rms_error_heading_is_judged_as_the_documents_layer():
    doc = ("## RMS error of the gradient check\n\n"
           r"$$\frac{\partial \mu}{\partial x_i} = \frac{1}{m}$$")
    assert last(doc).verdict == "correct"


# -- a name with a running word that the document defines from the batch (review of rounds 5-6) -----------------------
AVG = r"""$$\mu_{avg} = \frac{1}{m}\sum_{i=1}^m x_i$$

$$\sigma^2 = \frac{1}{m}\sum_{i=1}^m (x_i - \mu_{avg})^2$$

$$\hat{x}_i = \frac{x_i - \mu_{avg}}{\sqrt{\sigma^2 + \epsilon}}$$
"""


def test_a_mean_named_avg_defined_from_the_batch_is_the_batch_mean():
    found = last(AVG)
    assert found.verdict in ("correct", "correct-other-form"), found.to_text()
    assert last(AVG.replace(r"{x_i - \mu_{avg}}{\sqrt", r"{x_i + \mu_{avg}}{\sqrt")).verdict == "wrong"


def test_a_running_mean_set_to_zero_is_still_a_running_statistic():
    doc = r"$$\mu_{avg} = 0$$" "\n\n" r"$$\hat{x}_i = \frac{x_i - \mu_{avg}}{\sqrt{\sigma^2 + \epsilon}}$$"
    assert last(doc).verdict != "wrong"


# -- a one-dollar derivation with $…$ inside its \textrm notes, rows ending in \\$, a row starting with [ , and primes
#    (Lagrange's notation) by the variable the text differentiates by (se_layernorm_no_gradient_flow.md 30) ---------
PRIMES = r"""Here's my calculations:

$\textrm{Given a vector $X$ of length $N$, indexed as $x_i$,}\\
\mu =\frac{\sum_{k=1}^{N}{x_k}}{N}\\
\textrm{We seek the derivative of $y_i$ w.r.t $x_j$.}\\
\frac{dy_i}{dx_j}=\frac{(x_i-\mu)'\sigma-(x_i-\mu)\sigma'}{\sigma^2}\\
\mu'=%s\\
[\frac{\sum_{k=1}^{N}{(x_k-\mu)^2}}{N}]'=\frac{1}{N}\sum_{k=1}^{N}2(x_k-\mu)(\delta_{kj}-\frac{1}{N})\\
\qquad =\frac{2}{N}((x_j-\mu)-\frac{1}{N}\sum_{k=1}^{N}(x_k)+\frac{1}{N}\sum_{k=1}^{N}\mu)\\
\qquad =\frac{2}{N}((x_j-\mu)-\mu-\frac{1}{N}N\mu)\\$
"""


def test_a_one_dollar_derivation_with_math_in_its_notes_is_read_row_by_row():
    report = audit_document(PRIMES % r"\frac{1}{N}", "layernorm")
    by_line = {f.line: f for f in report.findings}
    assert set(by_line) >= {4, 6, 7, 8, 9, 10}, report.to_text()
    assert by_line[4].defines == "mu" and by_line[4].verdict == "correct", report.to_text()


def test_primes_differentiate_by_the_variable_of_the_derivation():
    by_line = {f.line: f for f in audit_document(PRIMES % r"\frac{1}{N}", "layernorm").findings}
    assert by_line[7].verdict == "correct", by_line[7].to_text()       # μ' = 1/N: ∂μ/∂x_j
    assert by_line[8].verdict == "correct", by_line[8].to_text()       # [σ²]' = (1/N) Σ 2(x_k − μ)(δ_kj − 1/N)
    assert by_line[9].verdict == "correct", by_line[9].to_text()
    slip = by_line[10]                                                  # −μ − μ for −μ + μ
    assert slip.verdict == "wrong", slip.to_text()
    x, _, k = batch_of(slip.counterexample)
    assert (slip.counterexample.got, slip.counterexample.want) == pytest.approx(
        (2 / len(x) * (x[k] - 3 * x.mean()), 2 / len(x) * (x[k] - x.mean())))


def test_a_prime_with_a_slip_is_wrong():
    found = {f.line: f for f in audit_document(PRIMES % "N", "layernorm").findings}[7]
    assert found.verdict == "wrong", found.to_text()


def test_a_prime_before_any_derivative_is_not_judged_wrong():
    found = last(r"$$\mu = \frac{1}{m}\sum_{i=1}^m x_i$$" "\n\n" r"$$\mu' = 5$$")
    assert found.verdict == "cannot-evaluate" and "prime" in found.reason, found.to_text()


def test_row_spacing_is_a_dimension_and_an_escaped_dollar_ends_no_math():
    from bngraph.tex.document import math_blocks
    rows = r"$$a = 1 \\[2pt] b = 2 \\ [c]' = 3$$"
    from bngraph.tex.document import _ROW
    assert [m[0] for m in _ROW.finditer(rows)] == [r"\\[2pt]", r"\\"]
    assert [b[1] for b in math_blocks(r"costs \$5, and $a = b\\$ here")] == [r"a = b\\"]


# -- one entry of an elementwise expression: \left(\frac{\partial L}{\partial y}\gamma\right)_{k} (cs231n_exercise_streams)
@pytest.mark.parametrize("factor, verdict", [(r"\gamma", "correct"), ("", "wrong")])
def test_an_entry_of_an_elementwise_expression(factor, verdict):
    found = last(rf"$$\frac{{\partial L}}{{\partial \hat{{x}}_k}} = \left(\frac{{\partial L}}{{\partial y}}{factor}\right)_{{k}}$$")
    assert found.verdict == verdict, found.to_text()


# -- RMSNorm's scale named w (y_i = x_i/rms · w_i), a row's r_i beside x_{ij}, ∂/∂w_i applied to the rest of the
#    product, an identity "for i = j" (kernel_hyperdrive_rmsnorm.md, rms_norm_note.md) ---------------------------------
SCALE = r"""$$\text{rms}(x) = \sqrt{\frac{1}{d}\sum_{j=1}^{d} x_j^2 + \epsilon}$$

$$y_i = \frac{x_i}{\text{rms}(x)} w_i$$

$$\frac{\partial L}{\partial x_i} = \frac{w_i}{\text{rms}(x)}\frac{\partial L}{\partial y_i} - \frac{x_i}{%s\text{rms}(x)^3}\sum_{j=1}^{d} \frac{\partial L}{\partial y_j} w_j x_j$$
"""


@pytest.mark.parametrize("size, verdict", [("d", "correct"), ("", "wrong")])
def test_a_scale_named_w_beside_x_over_rms_is_gamma(size, verdict):
    found = last(SCALE % size, "rmsnorm")
    assert found.verdict == verdict, found.to_text()
    if verdict == "wrong":
        c = found.counterexample
        x, dy, k = np.array(c.batch.x), np.array(c.batch.dL_dy), c.index[1] - 1
        rms, g = np.sqrt(np.mean(x ** 2) + c.batch.epsilon), c.batch.gamma
        assert c.got == pytest.approx(g * dy[k] / rms - x[k] / rms ** 3 * np.sum(dy * g * x))


ROWS = r"""$$y_{ij} = \frac{w_j x_{ij}}{r_i}$$
where
$$r_i = \sqrt{ \frac{1}{H} \sum_{h=1}^H x_{ih}^2 + \epsilon }$$

$$\frac{\partial L}{\partial x_{ij}} = \frac{\partial L}{\partial y_{ij}} \frac{w_j}{r_i} - \sum_{h=1}^{H} \frac{\partial L}{\partial y_{ih}} \frac{w_h}{r_i^2} x_{ih} \frac{1}{H%s} x_{ij}$$
"""


@pytest.mark.parametrize("r_b, verdict", [("r_i", "correct"), ("", "wrong")])
def test_a_rows_own_statistic_beside_its_entries(r_b, verdict):
    report = audit_document(ROWS % r_b, "rmsnorm")
    assert report.findings[0].verdict in ("correct", "correct-other-form"), report.to_text()
    assert report.findings[-1].verdict in ((verdict, "correct-other-form") if verdict == "correct" else (verdict,)), \
        report.to_text()


@pytest.mark.parametrize("rhs, verdict", [(r"\frac{x_{i}}{\text{rms}(x)}", "correct"), (r"x_{i}", "wrong")])
def test_a_derivative_by_the_scale_applies_to_the_rest_of_the_product(rhs, verdict):
    doc = SCALE.split("$$\\frac{\\partial L}")[0] + (
        rf"$$\frac{{\partial y_{{i}}}}{{\partial w_{{i}}}} = \frac{{\partial}}{{\partial w_{{i}}}} {rhs} \cdot w_{{i}}$$")
    assert last(doc, "rmsnorm").verdict == verdict


def test_an_identity_with_an_index_of_its_own_is_ambiguous_if_right_for_equal_indices():
    found = last(r"$$x_{i}^{2}\cdot \gamma = x_{i}\cdot x_{j} \cdot \gamma$$")
    assert found.verdict == "ambiguous" and "j = i" in found.reason, found.to_text()
    assert last(r"$$x_{i}^{2}\cdot \gamma = 2 x_{i}\cdot x_{j} \cdot \gamma$$").verdict == "wrong"


def test_an_off_diagonal_entry_right_only_without_epsilon_is_ambiguous():
    doc = (r"$$y_i = \frac{x_i}{\text{RMS}(x)}, \quad \text{RMS}(x) = \sqrt{\frac{1}{d}\sum_{k=1}^{d} x_k^2 + \epsilon}$$"
           "\n\n" r"$$\frac{\partial y_{j}}{\partial x_{i}} = - \frac{x_{i} x_{j}}{d \left(\frac{1}{d}\sum_{k} x_{k}^{2}\right)^{3/2}}$$")
    found = last(doc, "rmsnorm")
    assert found.verdict == "ambiguous" and "i ≠ j" in found.reason, found.to_text()


# -- the size a mean divides by (\frac{1}{d}\sum_i, no limits), a size stated later, an example's numbers after a
#    formula (heldout_u4: tr_matrix_calculus_lesson_ln.md 12, 40; ko_ai_intro_normalization.md 145, 156) ----------
LN_D = r"""For $\mathbf{x} \in \mathbb{R}^d$:

$$\mu = \frac{1}{d} \sum_i x_i, \qquad \sigma^2 = \frac{1}{d} \sum_i (x_i - \mu)^2$$

$$\frac{\partial L}{\partial x_i} = \frac{1}{d \sqrt{\sigma^2 + \epsilon}} \left[ %s \frac{\partial L}{\partial \hat{x}_i} - \sum_k \frac{\partial L}{\partial \hat{x}_k} - \hat{x}_i \sum_k \frac{\partial L}{\partial \hat{x}_k} \hat{x}_k \right]$$

In half precision the sums over $d = 4096$ entries lose digits.
"""


@pytest.mark.parametrize("factor, verdict", [("d", "correct"), ("", "wrong")])
def test_the_letter_a_mean_divides_by_is_the_size_and_a_later_size_binds_no_earlier_formula(factor, verdict):
    report = audit_document(LN_D % factor, "layernorm")
    assert [f.verdict for f in report.findings[:2]] == ["correct", "correct"], report.to_text()
    assert report.findings[2].verdict in ((verdict, "correct-other-form") if verdict == "correct" else (verdict,)), \
        report.to_text()


EXAMPLE = r"""$$y_i = \gamma \hat{x}_i + \beta$$

With $\partial L/\partial y = (-2, 2)$ and $\hat{x} = (-1, 1)$:

$$\frac{\partial L}{\partial \gamma} = \sum_i \frac{\partial L}{\partial y_i} \hat{x}_i = (-2)(-1) + (2)(1) = %s$$

$$\sum_j \frac{\partial L}{\partial y_j} = -2 + 2 = %s$$
"""


def test_an_examples_numbers_after_a_formula_are_arithmetic_only():
    report = audit_document(EXAMPLE % ("4", "0"))
    gamma, total = report.findings[-2], report.findings[-1]
    assert gamma.verdict == "correct" and "arithmetic only" in gamma.checked, gamma.to_text()
    assert total.verdict == "cannot-evaluate" and "worked example" in total.reason, total.to_text()


def test_an_examples_arithmetic_slip_is_still_wrong():
    report = audit_document(EXAMPLE % ("3", "1"))
    gamma, total = report.findings[-2], report.findings[-1]
    assert gamma.verdict == "wrong" and (gamma.counterexample.got, gamma.counterexample.want) == (3.0, 4.0), gamma.to_text()
    assert total.verdict == "wrong" and (total.counterexample.got, total.counterexample.want) == (1.0, 0.0), total.to_text()


def test_a_wrong_formula_before_an_examples_numbers_is_still_wrong():
    found = audit_document(EXAMPLE.replace(r"\sum_i \frac{\partial L}{\partial y_i} \hat{x}_i =",
                                           r"\sum_i \frac{\partial L}{\partial y_i} =") % ("4", "0")).findings[-2]
    assert found.verdict == "wrong", found.to_text()


# -- plain TeX's font switches, {\rm d} (ascend_add_layer_norm_grad.md) --------------------------------------------
@pytest.mark.parametrize("tex, want", [(r"\frac{{\rm d}\hat{x}_j}{{\rm d}x_i} = 1", "Derivative(xhat[j], x[i])"),
                                       (r"{\rm var} = 1", "var"), (r"\rm{var} = 1", "var"), (r"{\cal L} = 1", "L"),
                                       (r"{\bf x}_i = 1", "x[i]"),
                                       (r"\frac{\rm d \sigma^2}{\rm dx_i} = 1", "Derivative(sigma2, x[i])")])
def test_plain_tex_font_switches(tex, want):
    from bngraph.tex.grammar import parse_equation
    assert str(parse_equation(tex).lhs) == want


# -- ∂x_i/∂x_j, the input by itself: Kronecker's delta (ln_backprop_jacobian.md 38) ----------------------------------
@pytest.mark.parametrize("sign, verdict", [("-", "correct"), ("+", "wrong")])
def test_a_partial_of_the_input_by_itself_is_kroneckers_delta(sign, verdict):
    found = last(r"$$\frac{\partial \hat{x}_i}{\partial x_j} = \left( \frac{\partial x_i}{\partial x_j} "
                 rf"{sign} \frac{{\partial \mu}}{{\partial x_j}} \right) \frac{{1}}{{\sqrt{{\sigma^2 + \epsilon}}}} + (x_i - \mu) "
                 r"\frac{\partial}{\partial x_j}\frac{1}{\sqrt{\sigma^2 + \epsilon}}$$")
    assert found.verdict == verdict, found.to_text()


# -- the squared norm of the input, ‖x‖² (zh_llama_rmsnorm_grad.md 57) ----------------------------------------------
@pytest.mark.parametrize("norm", [r"\|x\|^2", r"\lVert \mathbf{x} \rVert_2^2", r"\left\| x \right\|^2"])
def test_the_squared_norm_of_the_input(norm):
    doc = (rf"$$s = \sqrt{{\frac{{1}}{{d}} {norm} + \epsilon}}, \quad y_i = \gamma x_i / s$$" "\n\n"
           r"$$\frac{\partial s}{\partial x_j} = \frac{x_j}{d \cdot s}$$")
    report = audit_document(doc, "rmsnorm")
    assert [f.verdict for f in report.findings][-2:] == ["correct-other-form", "correct"], report.to_text()


def test_a_slip_beside_the_squared_norm_is_still_wrong():
    doc = (r"$$s = \sqrt{\frac{1}{d} \|x\|^2 + \epsilon}, \quad y_i = \gamma x_i / s$$" "\n\n"
           r"$$\frac{\partial s}{\partial x_j} = \frac{x_j}{s}$$")
    assert last(doc, "rmsnorm").verdict == "wrong"
