"""Notation of real write-ups read as meant (issue 14, second round, from the held-out write-ups):
a scale named w, ``\\circ`` / ``\\odot`` for the elementwise product, a double sum ``\\sum_{kl}``
over the batch and the features, the loss named O; and a slip found there gets a counterexample.
Each expected value here is worked out by hand or with NumPy, never taken from bngraph.
"""
from __future__ import annotations

import numpy as np
import pytest

from bngraph.audit.auditor import audit_document


def findings(text: str):
    return audit_document(text).findings


def one(tex: str):
    return findings(f"$${tex}$$")[0]


# -- the scale named otherwise, the elementwise product ----------------------------------------
@pytest.mark.parametrize("product", [r"\circ", r"\odot", ""])
def test_a_scale_named_w_is_gamma(product):
    found = one(rf"y_{{i}} = \hat{{x}}_{{i}} {product} w + \beta")
    assert found.verdict == "correct", found.to_text()


def test_the_scale_w_then_catches_x_for_xhat():
    text = ("$$y_{i} = \\hat{x}_{i} \\circ w + \\beta$$\n\n"
            "$$y_{i} = x_{i} \\odot w + \\beta \\qquad w,\\beta\\in \\mathbb{R}^{N}$$\n")
    first, second = findings(text)
    assert first.verdict == "correct", first.to_text()
    assert second.verdict == "wrong" and "x_i is written where x̂_i is meant" in second.reason, second.to_text()
    c = second.counterexample
    x = np.array(c.batch.x)
    k = c.index[1] - 1
    assert c.got == pytest.approx(x[k] * c.batch.gamma + c.batch.beta)
    assert c.want == pytest.approx(c.batch.gamma * (x[k] - x.mean()) / np.sqrt(x.var() + c.batch.epsilon) + c.batch.beta)


def test_w_is_not_gamma_when_the_document_writes_gamma():
    text = "$$y_i = \\gamma \\hat{x}_i + \\beta$$\n\n$$y_i = \\hat{x}_i w + \\beta$$\n"
    assert findings(text)[1].verdict != "correct"


def test_a_membership_note_does_not_make_it_matrix_form():
    found = one(r"y_{i} = \hat{x}_{i} \circ w + \beta \qquad w,\beta\in \mathbb{R}^{N}")
    assert found.verdict == "correct", found.to_text()


# -- \sum_{kl}, the loss O -------------------------------------------------------------------
CHAIN = (r"\frac{\partial O}{\partial x_{ij}}=\sum_{kl}{ \frac{\partial O}{\partial y_{kl}} }"
         r" \gamma_l \frac{\partial \overline x_{ij}}{\partial x_{ij} }")
DEFS = ("$$\\mu_p = \\frac{1}{m}\\sum_i x_{ip}$$\n\n$$\\sigma_p^2 = \\frac{1}{m}\\sum_i(x_{ip}-\\mu_p)^2$$\n\n"
        "$$\\overline x_{ip}=\\frac{x_{ip}-\\mu_p}{\\sqrt{\\sigma_p^2+\\epsilon}}$$\n\n"
        "$$y_{ip}=\\gamma_p \\overline x_{ip}+\\beta_p$$\n\n")


def test_a_double_sum_is_two_sums():
    from bngraph.tex.clean import rewrite_constructs
    assert r"\sum_{k}\sum_{l}" in rewrite_constructs(r"a = \sum_{kl} y_{kl}")


def test_the_chain_rule_through_the_diagonal_only_is_wrong():
    # csdn_bn_indices.md's slip: ∂y_kl/∂x_ij = ∂y_kl/∂x̄_ij ∂x̄_ij/∂x_ij loses the paths through μ and σ²
    found = findings(DEFS + f"$${CHAIN}$$\n")[-1]
    assert found.verdict == "wrong" and found.counterexample is not None, found.to_text()
    c = found.counterexample
    x, dy, g, eps = np.array(c.batch.x), np.array(c.batch.dL_dy), c.batch.gamma, c.batch.epsilon
    xhat = (x - x.mean()) / np.sqrt(x.var() + eps)
    dx = g / (len(x) * np.sqrt(x.var() + eps)) * (len(x) * dy - dy.sum() - xhat * (dy * xhat).sum())
    assert c.want == pytest.approx(dx[c.index[1] - 1])


def test_a_sum_over_every_feature_is_not_taken_for_one_feature():
    # ∂O/∂γ_j summed over all features l is not ∂O/∂γ_j: never "correct"
    found = findings(DEFS + "$$\\frac{\\partial O}{\\partial \\gamma_{l}} = \\sum_{kl} "
                            "\\frac{\\partial O}{\\partial y_{kl}} \\overline x_{kl}$$\n")[-1]
    assert found.verdict not in ("correct", "correct-other-form"), found.to_text()


# -- σ given the variance's formula ------------------------------------------------------------
def test_sigma_given_the_variance_has_a_counterexample():
    found = one(r"\sigma_p = \frac{1}{m}\sum_i(x_{ip}-\mu_p)^2")
    assert found.verdict == "wrong" and found.counterexample is not None, found.to_text()
    x = np.array(found.counterexample.batch.x)
    assert found.counterexample.got == pytest.approx(x.var())
    assert found.counterexample.want == pytest.approx(np.sqrt(x.var()))


# -- the batch's name beside the index: x_{B,j} ------------------------------------------------
@pytest.mark.parametrize("x", [r"x_{B,i}", r"x_{\mathcal{B},i}", r"x_{i,B}"])
def test_the_batch_name_beside_the_index_is_dropped(x):
    assert one(rf"\mu_B = \frac{{1}}{{m}}\sum_{{i=1}}^{{m}} {x}").verdict == "correct"


def test_a_summand_without_the_summation_index_is_wrong():
    # obsidian_ru_batchnorm.md: μ_B = (1/n) Σ_i x_{B,j}, with x_{B,j} the j-th example: j where i belongs
    found = one(r"\mu_{B} = \frac{1}{n}\sum_{i=1}^{n}x_{B,j}")
    assert found.verdict == "wrong" and found.counterexample is not None, found.to_text()
    x = np.array(found.counterexample.batch.x)
    assert found.counterexample.want == pytest.approx(x.mean())
    assert found.counterexample.got != pytest.approx(x.mean())


# -- a chain that goes on in the next display, a vector written out ------------------------------
def test_a_display_starting_with_equals_goes_on_from_the_one_above():
    text = ("$$\\frac{\\partial L}{\\partial \\beta} = \\sum_{i=1}^m \\frac{\\partial L}{\\partial y_i}$$\n\n"
            "$$= \\sum_{i=1}^m \\frac{\\partial L}{\\partial y_i} \\hat{x}_i$$\n")
    first, second = findings(text)
    assert first.verdict == "correct"
    # the second line says ∂L/∂β = Σ ∂L/∂y_i x̂_i: wrong, and its counterexample wants Σ ∂L/∂y_i
    assert second.verdict == "wrong" and second.counterexample is not None, second.to_text()
    assert second.counterexample.want == pytest.approx(sum(second.counterexample.batch.dL_dy))


@pytest.mark.parametrize("tex", [r"\mu = {\mu_0,\mu_1,...,\mu_n}", r"\gamma = (\gamma_1, \gamma_2, \dots, \gamma_d)"])
def test_a_vector_written_out_is_read_not_checked(tex):
    found = one(tex)
    assert found.verdict == "cannot-evaluate" and "vector written out" in found.reason, found.to_text()


def test_a_data_batch_is_still_the_documents_numbers():
    assert one(r"x = (1, 2, 6)").verdict == "helper"


@pytest.mark.parametrize("tex", [r"\hat{X} = \frac{X - \mu}{\sqrt{\sigma^2 + \epsilon}}",
                                 r"\frac{\partial L}{\partial \hat{X}} = \frac{\partial L}{\partial Y} \gamma"])
def test_a_capital_for_the_whole_batch_is_matrix_form(tex):
    found = one(tex)
    assert found.verdict == "cannot-evaluate" and found.reason.startswith("matrix form"), found.to_text()


# -- δ_ij: two free indices ------------------------------------------------------------------------
RIGHT_JACOBIAN = (r"\frac{\partial \hat{x}_i}{\partial x_j} = \frac{1}{\sqrt{\sigma^2+\epsilon}}"
                  r"\left(\delta_{ij} - \frac{1}{m} - \frac{1}{m}\hat{x}_i\hat{x}_j\right)")


def test_the_jacobian_with_a_kronecker_delta_is_right():
    # first, that it is right, by NumPy finite differences (not by bngraph)
    x, eps, h = np.array([0.3, -1.2, 2.0, 0.7]), 0.1, 1e-6
    def xhat(v):
        return (v - v.mean()) / np.sqrt(v.var() + eps)
    numeric = np.array([(xhat(x + h * e) - xhat(x - h * e)) / (2 * h) for e in np.eye(4)]).T  # [i, j]
    xh, s = xhat(x), np.sqrt(x.var() + eps)
    formula = (np.eye(4) - 1 / 4 - np.outer(xh, xh) / 4) / s
    assert np.allclose(numeric, formula, atol=1e-6)
    found = one(RIGHT_JACOBIAN)
    assert found.verdict == "correct", found.to_text()


def test_a_jacobian_with_a_flipped_sign_is_wrong():
    found = one(RIGHT_JACOBIAN.replace(r"- \frac{1}{m}\hat{x}_i", r"+ \frac{1}{m}\hat{x}_i"))
    assert found.verdict == "wrong" and found.counterexample is not None, found.to_text()
    assert "j = " in found.checked


# -- the code's names for the adjoints: dx, dy, d\hat{x}, d\gamma ----------------------------------
@pytest.mark.parametrize("tex", [
    r"d\hat{x}_i = dy_i \cdot \gamma",
    r"d\gamma = \sum_i dy_i \hat{x}_i",
    r"d\beta = \sum_i dy_i",
    r"dx_i = \frac{\gamma}{m\sqrt{\sigma^2+\epsilon}}\left(m\,dy_i - \sum_j dy_j - \hat{x}_i \sum_j dy_j \hat{x}_j\right)",
])
def test_d_names_are_adjoints(tex):
    found = one(tex)
    assert found.verdict == "correct" and found.defines.startswith("dL_d"), found.to_text()


def test_a_slip_in_d_notation_is_caught():
    found = one(r"d\gamma = \sum_i dy_i x_i")  # x_i where x̂_i belongs
    assert found.verdict == "wrong" and found.counterexample is not None, found.to_text()
    c = found.counterexample
    x, dy = np.array(c.batch.x), np.array(c.batch.dL_dy)
    assert c.want == pytest.approx(float(dy @ ((x - x.mean()) / np.sqrt(x.var() + c.batch.epsilon))))


@pytest.mark.parametrize("tex", [r"\frac{dL}{dx_i} = dy_i", r"\frac{1}{d}\sum_k x_k", r"\mu_d = x",
                                 r"dL = \sum_i \frac{\partial L}{\partial x_i} dx_i"])  # a total differential
def test_leibniz_and_a_size_d_keep_their_d(tex):
    from bngraph.tex.clean import rewrite_constructs
    assert rewrite_constructs(tex).count(r"\partial") == tex.count(r"\partial")


# -- third round (issue 14): the reading gaps seen on the untouched held-out write-ups -------------------------
def test_a_github_math_fence_is_display_math():
    from bngraph.tex.document import find_equations
    text = "Mean:\n```math\n\\mu = \\frac{1}{m}\\sum_i x_i\n```\n```python\nmu = x.mean()\n```\n"
    assert [(s.line, s.tex, s.display) for s in find_equations(text)] == [(3, r"\mu = \frac{1}{m}\sum_i x_i", True)]
    slip = findings("```math\n\\hat{x}_i = \\frac{x_i - \\mu}{\\sigma^2 + \\epsilon}\n```\n")
    assert [f.verdict for f in slip] == ["wrong"] and slip[0].line == 2, slip[0].to_text()


def test_xla_nabla_sum_and_star_are_read():
    """XLA's BatchNormGrad notation: ∇γ for ∂L/∂γ, sum(…) over the batch, * for the product."""
    right = one(r"\nabla \gamma = \text{sum}\Big( \nabla y * ( x - \mu ) / \sqrt{\sigma^2 + \epsilon} \Big)")
    assert right.verdict in ("correct", "correct-other-form") and right.defines == "dL_dgamma", right.to_text()
    slip = one(r"\nabla \gamma = \text{sum}\Big( \nabla y * ( x - \mu ) * \sqrt{\sigma^2 + \epsilon} \Big)")
    assert slip.verdict == "wrong" and slip.counterexample is not None, slip.to_text()
    c = slip.counterexample
    x, dy = np.array(c.batch.x), np.array(c.batch.dL_dy)
    s = np.sqrt(x.var() + c.batch.epsilon)
    assert c.got == pytest.approx(float(dy @ ((x - x.mean()) * s)))
    assert c.want == pytest.approx(float(dy @ ((x - x.mean()) / s)))
    assert r"\nabla y_{j}" in slip.to_text()  # the correction is written in the document's notation


def test_leibniz_d_of_the_loss_j_is_an_adjoint():
    right = one(r"\frac{dJ}{d\gamma} = \sum_{i=1}^m \frac{dJ}{dy_i} \hat{x}_i")
    assert right.verdict == "correct" and right.defines == "dL_dgamma", right.to_text()
    slip = one(r"\frac{dJ}{d\gamma} = \sum_{i=1}^m \frac{dJ}{dy_i} x_i")  # x_i where x̂_i belongs
    assert slip.verdict == "wrong" and slip.counterexample is not None, slip.to_text()
    c = slip.counterexample
    x, dy = np.array(c.batch.x), np.array(c.batch.dL_dy)
    assert c.got == pytest.approx(float(dy @ x))


@pytest.mark.parametrize("tex, verdict", [(r"\mu_B = \frac{1}{m}\sum_1^m x_i", "correct"),
                                          (r"\sigma^2_B = \frac{1}{m} \sum_1^m (x_i-\mu_B)^2", "correct"),
                                          (r"\sigma^2_B = \frac{1}{m} \sum_1^m (x_i-\mu_B)", "wrong")])
def test_a_sum_with_only_its_start_sums_over_the_bodys_index(tex, verdict):
    found = one(tex)
    assert found.verdict == verdict, found.to_text()


def test_a_full_width_comma_sets_two_equations_apart():
    found = findings(r"$$\mu = \frac{1}{m}\sum_{i=1}^m x_i，\sigma^2 = \frac{1}{m}\sum_{i=1}^m (x_i - \mu)^3$$")
    assert [(f.defines, f.verdict) for f in found] == [("mu", "correct"), ("sigma2", "wrong")], found


@pytest.mark.parametrize("power, verdict", [("", "correct"), ("^2", "wrong")])
def test_the_operator_form_of_a_partial_is_read(power, verdict):
    """∂/∂x_i applied to what follows, also after a coefficient: (x_i − μ) ∂/∂x_i √(σ² + ε) (the quotient rule)."""
    found = one(r"\frac{\partial \hat{x}_i}{\partial x_i} = \frac{1}{\sigma^2+\epsilon} \left[\frac{\partial}{\partial x_i}"
                r" (x_i-\mu)" + power + r"\sqrt{\sigma^2+\epsilon} - (x_i - \mu)\frac{\partial}{\partial x_i}"
                r" \sqrt{\sigma^2+\epsilon} \right]")
    assert found.verdict == verdict, found.to_text()


def test_a_size_letter_with_an_index_names_a_family():
    """n_i = (x_i − μ)/√(σ² + ε): n is the document's x̂ here, not the batch size; z_i = γ n_i + β is its y
    (ai_edu's letters), so ∂J/∂n_i and ∂J/∂z_i are the adjoints of x̂ and y and a slip in them is caught."""
    text = ("$$n_i = \\frac{x_i-\\mu_B}{\\sqrt{\\sigma^2_B + \\epsilon}}$$\n\n$$z_i = \\gamma n_i + \\beta$$\n\n"
            "$$\\frac{dJ}{d\\gamma} = \\sum_{i=1}^m \\frac{dJ}{dz_i}\\frac{dz_i}{d\\gamma}$$\n\n"
            "$$\\frac{dJ}{d n_i} = \\frac{dJ}{dz_i}\\frac{dz_i}{dn_i} = \\frac{dJ}{dz_i} \\cdot \\beta$$\n")
    found = findings(text)
    assert [f.verdict for f in found] == ["correct", "correct", "correct", "wrong"], [f.to_text() for f in found]
    assert found[3].counterexample is not None, found[3].to_text()


@pytest.mark.parametrize("text", [
    "$$n_i = \\frac{x_i-\\mu}{\\sigma}$$\n",  # not x̂'s formula (no ε): n stays the document's own helper
    "$$\\hat{x}_i = \\frac{x_i-\\mu}{\\sqrt{\\sigma^2 + \\epsilon}}$$\n\n$$n_i = \\frac{x_i-\\mu}"
    "{\\sqrt{\\sigma^2 + \\epsilon}}$$\n",  # the document writes x̂ itself: n is a second name, a helper
])
def test_a_letter_is_read_as_xhat_only_by_its_formula(text):
    assert findings(text)[-1].verdict == "helper", findings(text)[-1].to_text()


def test_a_coefficient_before_the_operator_stays_a_factor():
    import sympy as sp

    from bngraph.tex.grammar import parse_equation
    x, i, mu = sp.IndexedBase(sp.Symbol("x")), sp.Symbol("i"), sp.Symbol("mu")
    rhs = parse_equation(r"a = (x_i - \mu)\frac{\partial}{\partial x_i} x_i^2").rhs
    assert sp.expand(rhs.doit() - 2 * x[i] * (x[i] - mu)) == 0, rhs


def test_a_row_broken_right_after_the_equals_sign_goes_on():
    found = findings("$$\\hat{x}_i = \\frac{x_i - \\mu}{\\sqrt{\\sigma^2 + \\epsilon}} =\\\\ "
                     "\\frac{x_i - \\mu}{\\sigma^2 + \\epsilon}$$")
    assert len(found) == 1 and found[0].verdict == "wrong", [f.to_text() for f in found]


# -- fourth round (issue 14): the round-4 write-ups and the leftovers; constructs are in test_audit_corpus.py ------
def test_a_gradient_on_both_sides_is_a_slip_with_a_counterexample_not_a_running_average():
    """mobilenet's ∂L/∂I = ∂L/∂I · ∂Î/∂I + …: the letter's gradient where x̂'s is meant, never an update."""
    found = one(r"\frac{\partial L}{\partial x_i} = \frac{\partial L}{\partial x_i}\frac{1}{\sqrt{\sigma^2+\epsilon}}")
    assert found.verdict == "wrong" and found.counterexample is not None, found.to_text()
    assert "running" not in found.reason and "average" not in found.reason
    other = one(r"\frac{\partial L}{\partial I_i} = \frac{\partial L}{\partial I_i}\frac{1}{\sqrt{\sigma^2+\epsilon}}")
    assert other.verdict == "cannot-evaluate", other.to_text()  # a letter of its own: not judged, never an update


def test_the_elements_definition_of_a_letter_wins_over_the_whole_batchs():
    """ai_edu: δ = dJ/dZ (the whole batch), then δ_i = dJ/dz_i: later formulas use δ_i."""
    text = ("$$\\delta = \\frac{dJ}{dZ}，\\delta_i = \\frac{dJ}{dz_i}$$\n\n$$z_i = \\gamma \\hat{x}_i + \\beta$$\n\n"
            "$$\\frac{dJ}{d\\beta} = \\sum_{i=1}^m \\delta_i$$\n\n$$\\frac{dJ}{d\\beta} = \\sum_{i=1}^m \\delta_i \\hat{x}_i$$\n")
    assert [f.verdict for f in findings(text)] == ["cannot-evaluate", "helper", "correct", "correct", "wrong"], \
        [f.to_text() for f in findings(text)]


@pytest.mark.parametrize("bold", [r"\bold", r"\mathbf", r"\boldsymbol"])
def test_bold_letters_are_the_letters(bold):
    """``\\bold{\\gamma}`` (MathJax's old bold) as ``\\mathbf``: the vector γ of one feature's, the same γ."""
    assert one(rf"\frac{{\partial \ell}}{{\partial {bold}{{\gamma}}}} = \sum_{{i=1}}^m "
               r"\frac{\partial \ell}{\partial y_i} \hat{x}_i").verdict == "correct"
    assert one(rf"\frac{{\partial \ell}}{{\partial {bold}{{\gamma}}}} = \sum_{{i=1}}^m "
               r"\frac{\partial \ell}{\partial y_i} x_i").verdict == "wrong"


@pytest.mark.parametrize("indicator", [r"1_{i = j}", r"\mathbb{1}_{i=j}", r"\delta_{ij}"])
def test_the_indicator_of_i_equal_j_is_kroneckers_delta(indicator):
    jacobian = (rf"\frac{{\partial \hat{{x}}_i}}{{\partial x_j}} = \left({indicator} - \frac{{1}}{{m}}\right)"
                r"\frac{1}{\sqrt{\sigma^2 + \epsilon}} SIGN \frac{\hat{x}_i \hat{x}_j}{m\sqrt{\sigma^2 + \epsilon}}")
    assert one(jacobian.replace("SIGN", "-")).verdict == "correct"
    assert one(jacobian.replace("SIGN", "+")).verdict == "wrong"


@pytest.mark.parametrize("times", ["*", r"\cdot", r"\times"])
def test_a_minus_sign_after_a_product_sign_is_on_the_next_factor(times):
    assert one(rf"\frac{{\partial \hat{{x}}_i}}{{\partial \mu}} = \frac{{1}}{{\sqrt{{\sigma^2 + \epsilon}}}} {times} -1"
               ).verdict == "correct"
    assert one(rf"\frac{{\partial \hat{{x}}_i}}{{\partial \mu}} = \frac{{1}}{{\sqrt{{\sigma^2 + \epsilon}}}} {times} 1"
               ).verdict == "wrong"


def test_an_equals_sign_typed_twice_is_one():
    assert one(r"\mu = = \frac{1}{m}\sum_{i=1}^m x_i").verdict == "correct"
    assert one(r"\mu = = \sum_{i=1}^m x_i").verdict == "wrong"
