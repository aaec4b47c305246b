"""Readings found wrong by reading the auditor's code (issue 14: no false "wrong"), each on a minimal document:
- a worked example's numbers as authors write them: a chain that ends in ``\\approx 4.67`` is right to its last
  written digit; the numbers leave ε out; a member rounded to its written digits is no arithmetic slip; σ's chain is
  checked member by member, like μ's and σ²'s;
- after a document's own numbers (x alone) a formula must hold whatever γ, β and ∂ℓ/∂y are (a sign slip in the x̂
  term and a missing γ were "correct");
- σ_run is the running standard deviation, not the variance; a running update with the batch statistic written out
  in x is not checked (it was "wrong");
- Var[x] beside σ_B² is the population's variance; a smaller worked example is not judged at a larger one's guessed
  m; ``\\sum_{t=1}^{T}`` is no transpose;
- the vector form ``dx = … (N dy − Σ_j dy_j − (x − μ) …)``: a family bare beside its own members is the batch's
  vector (bare x and dy were given random numbers, a false "wrong");
- the document's numbers given member by member (x_1 = 1, x_2 = 2, x_3 = 6) or as a column ([1, 2, 6]^T) bind too.
Each right reading is paired with a real slip that must stay "wrong". Expected values are worked out with NumPy, never
taken from bngraph."""
from __future__ import annotations

import numpy as np
import pytest

from bngraph.audit.auditor import audit_document

X = np.array([1.0, 2.0, 6.0])  # the documents' own batch


def findings(text: str) -> dict:
    return {f.line: f for f in audit_document(text).findings}


def test_the_numbers_hand_worked():  # what the documents below write, from NumPy
    assert X.var() == pytest.approx(14 / 3) and round(X.var(), 2) == 4.67
    assert round(np.sqrt(X.var()), 1) == 2.2
    assert round((X[0] - X.mean()) / 2.16, 2) == -0.93
    assert (X[0] - X.mean()) / np.sqrt(X.var()) == pytest.approx((1 - 3) / np.sqrt(14 / 3))


# -- "= formula \approx 4.67": the approximation's tolerance holds at the end of a chain too
def test_a_chain_that_ends_in_an_approximation_is_right_to_its_digits():
    found = findings("Let $x = (1, 2, 6)$.\n\n$$\\sigma^2 = \\frac{1}{m}\\sum_{i=1}^m (x_i-\\mu)^2 \\approx 4.67$$\n")[3]
    assert found.verdict in ("correct", "correct-other-form"), found.to_text()


def test_a_chain_that_ends_in_a_wrong_approximation_is_still_wrong():
    found = findings("Let $x = (1, 2, 6)$.\n\n$$\\sigma^2 = \\frac{1}{m}\\sum_{i=1}^m (x_i-\\mu)^2 \\approx 4.87$$\n")[3]
    assert found.verdict == "wrong", found.to_text()


# -- the example's numbers without ε (the formula writes it; the arithmetic leaves it out)
def test_the_worked_numbers_may_leave_epsilon_out():
    found = findings("Let $x = (1, 2, 6)$.\n\n"
                     "$$\\hat{x}_1 = \\frac{x_1 - \\mu}{\\sqrt{\\sigma^2 + \\epsilon}} = \\frac{1 - 3}{\\sqrt{14/3}}$$\n")[3]
    assert found.verdict in ("correct", "correct-other-form"), found.to_text()
    assert "ε = 0" in found.checked


def test_worked_numbers_with_a_slip_are_wrong_with_or_without_epsilon():
    found = findings("Let $x = (1, 2, 6)$.\n\n"
                     "$$\\hat{x}_1 = \\frac{x_1 - \\mu}{\\sqrt{\\sigma^2 + \\epsilon}} = \\frac{1 - 3}{14/3}$$\n")[3]
    assert found.verdict == "wrong", found.to_text()


# -- a member rounded to the digits it writes is no arithmetic slip
def test_a_member_rounded_to_two_digits_is_no_slip():
    found = findings("$$\\hat{x}_1 = \\frac{1 - 3}{2.16} = -0.93$$")[1]
    assert found.verdict == "cannot-evaluate", found.to_text()


def test_a_member_off_by_more_than_its_last_digit_is_a_slip():
    found = findings("$$\\hat{x}_1 = \\frac{1 - 3}{2.16} = -0.83$$")[1]
    assert found.verdict == "wrong", found.to_text()
    assert found.counterexample.want == pytest.approx((X[0] - X.mean()) / 2.16)
    assert found.counterexample.got == pytest.approx(-0.83)


# -- σ's chain: every member checked, and its worked numbers read as μ's and σ²'s are
def test_every_member_of_a_chain_for_sigma_is_checked():
    found = findings("$$\\sigma = \\sqrt{\\sigma^2} = 2\\sigma^2$$")[1]
    assert found.verdict == "wrong", found.to_text()
    c = found.counterexample
    x = np.array(c.batch.x)
    assert (c.got, c.want) == pytest.approx((2 * x.var(), np.sqrt(x.var())))


def test_sigma_by_numbers_alone_is_a_worked_example():
    found = findings("$$\\sigma = \\sqrt{4.67} \\approx 2.16$$")[1]
    assert found.verdict == "cannot-evaluate", found.to_text()


def test_sigma_on_the_documents_own_numbers():
    found = findings("Let $x = (1, 2, 6)$.\n\n$$\\sigma = \\sqrt{14/3} \\approx 2.2$$\n")[3]
    assert found.verdict in ("correct", "correct-other-form"), found.to_text()
    slip = findings("Let $x = (1, 2, 6)$.\n\n$$\\sigma = \\sqrt{14/3} \\approx 2.4$$\n")[3]
    assert slip.verdict == "wrong", slip.to_text()


# -- σ_run (no square) in a training write-up's evaluation-mode formula: the running standard deviation
RUNNING = "$$\\hat{x}_i = \\frac{x_i - \\mu}{\\sqrt{\\sigma^2 + \\epsilon}}$$\n\n$$\\hat{x}_i = %s$$\n"


def test_a_running_standard_deviation_is_not_read_as_the_running_variance():
    found = findings(RUNNING % "\\frac{x_i - \\mu_{run}}{\\sigma_{run}}")[3]
    # σ_run as √(running var + ε), or ε taken as 0 in a formula that writes none: either names ε
    assert found.verdict == "ambiguous" and ("ε folded" in found.reason or "ε = 0" in found.reason), found.to_text()


def test_a_running_standard_deviation_with_a_slip_is_still_wrong():
    found = findings(RUNNING % "\\frac{x_i + \\mu_{run}}{\\sigma_{run}}")[3]
    assert found.verdict == "wrong", found.to_text()
    divided_by_the_variance = findings(RUNNING % "\\frac{x_i - \\mu_{run}}{\\sigma_{run}^2}")[3]
    assert divided_by_the_variance.verdict == "wrong", divided_by_the_variance.to_text()


# -- a running variance updated with the batch's variance written out in x, not named σ²
def test_a_running_update_with_the_statistic_written_out_is_not_wrong():
    found = findings("$$\\sigma^2_{run} \\gets 0.9\\,\\sigma^2_{run} + 0.1\\cdot\\frac{1}{m}\\sum_{i=1}^m (x_i-\\mu)^2$$")[1]
    assert found.verdict == "cannot-evaluate", found.to_text()


def test_a_running_update_whose_weights_do_not_add_up_is_still_wrong():
    found = findings("$$\\sigma^2_{run} \\gets 0.9\\,\\sigma^2_{run} + 0.2\\,\\sigma^2$$")[1]
    assert found.verdict == "wrong", found.to_text()
    assert (found.counterexample.got, found.counterexample.want) == pytest.approx((0.9 + 0.2, 1.0))


# -- the document's numbers give x alone: a formula must hold there whatever γ, β and ∂ℓ/∂y are
DX = ("\\frac{\\gamma}{m\\sqrt{\\sigma^2+\\epsilon}}\\left(m\\frac{\\partial L}{\\partial y_i} - \\sum_j\\frac{\\partial L}"
      "{\\partial y_j} %s \\hat x_i\\sum_j \\frac{\\partial L}{\\partial y_j}\\hat x_j\\right)")


def numpy_dx(c):
    x, dy, k = np.array(c.batch.x), np.array(c.batch.dL_dy), c.index[1] - 1
    s = np.sqrt(x.var() + c.batch.epsilon)
    xhat = (x - x.mean()) / s
    return c.batch.gamma / (len(x) * s) * (len(x) * dy[k] - dy.sum() - xhat[k] * (dy @ xhat))


def test_a_slip_in_the_xhat_term_is_caught_after_the_documents_own_numbers():
    found = findings("Let $x = (1, 2, 6)$.\n\n$$\\frac{\\partial L}{\\partial x_i} = " + DX % "+" + "$$\n")[3]
    assert found.verdict == "wrong", found.to_text()
    assert found.counterexample.want == pytest.approx(numpy_dx(found.counterexample))
    right = findings("Let $x = (1, 2, 6)$.\n\n$$\\frac{\\partial L}{\\partial x_i} = " + DX % "-" + "$$\n")[3]
    assert right.verdict in ("correct", "correct-other-form"), right.to_text()


def test_a_missing_gamma_is_caught_after_the_documents_own_numbers():
    found = findings("Let $x = (1, 2, 6)$.\n\n$$\\frac{\\partial L}{\\partial \\hat x_i} = \\frac{\\partial L}{\\partial y_i}$$\n")[3]
    assert found.verdict == "wrong", found.to_text()
    assert found.counterexample.want == pytest.approx(found.counterexample.batch.gamma * found.counterexample.got)


def test_a_worked_chain_may_take_the_upstream_gradient_as_ones():
    found = findings("Let $x = (1, 2, 6)$.\n\n$$\\frac{\\partial L}{\\partial \\beta} = \\sum_i \\frac{\\partial L}{\\partial y_i} = 3$$\n")[3]
    assert found.verdict == "correct", found.to_text()


# -- Var[x] beside the batch's σ_B² (the paper's inference statistic): the population's variance, not σ²
def test_the_population_variance_beside_the_batch_variance_is_not_the_batch_variance():
    found = findings("$$\\mathrm{Var}[x] = \\frac{m}{m-1}\\,\\sigma_\\mathcal{B}^2$$")[1]
    assert found.verdict != "wrong", found.to_text()


def test_var_of_x_alone_is_still_the_batch_variance():
    assert findings("$$\\hat{x} = \\frac{x - \\mathrm{E}[x]}{\\sqrt{\\mathrm{Var}[x] + \\epsilon}}$$")[1].verdict == "correct"
    slip = findings("$$\\hat{x} = \\frac{x + \\mathrm{E}[x]}{\\sqrt{\\mathrm{Var}[x] + \\epsilon}}$$")[1]
    assert slip.verdict == "wrong", slip.to_text()


# -- two worked examples of different sizes, no m stated: the smaller one is not judged at the larger one's m
TWO_EXAMPLES = "For two examples: $$\\mu = %s$$\n\nFor three examples: $$\\mu = \\frac{x_1 + x_2 + x_3}{3}$$\n"


def test_a_smaller_example_is_not_wrong_at_a_larger_examples_m():
    found = findings(TWO_EXAMPLES % "\\frac{x_1 + x_2}{2}")[1]
    assert found.verdict == "ambiguous" and "m = 2" in found.reason, found.to_text()


def test_a_smaller_example_with_a_slip_is_still_wrong():
    found = findings(TWO_EXAMPLES % "\\frac{x_1 + x_2}{3}")[1]
    assert found.verdict == "wrong", found.to_text()
    x = np.array(found.counterexample.batch.x)
    assert (found.counterexample.got, found.counterexample.want) == pytest.approx(((x[0] + x[1]) / 3, x.mean()))


def test_a_stated_m_still_decides():
    found = findings("Here $m = 3$. $$\\mu = \\frac{x_1 + x_2}{2}$$")[1]
    assert found.verdict == "wrong", found.to_text()


# -- \sum_{t=1}^{T}: T the sum's upper limit, not a transpose (matrix form)
def test_a_sum_up_to_capital_t_is_read_and_checked():
    assert findings("$$\\mu = \\frac{1}{T}\\sum_{t=1}^{T} x_t$$")[1].verdict == "correct"
    slip = findings("$$\\mu = \\frac{1}{T}\\sum_{t=1}^{T} x_t^2$$")[1]
    assert slip.verdict == "wrong", slip.to_text()
    x = np.array(slip.counterexample.batch.x)
    assert (slip.counterexample.got, slip.counterexample.want) == pytest.approx(((x ** 2).mean(), x.mean()))


def test_a_transpose_is_still_matrix_form():
    found = findings("$$y = W^T x$$")[1]
    assert found.verdict == "cannot-evaluate" and "matrix form" in found.reason, found.to_text()


# -- the vector form dx = … (N dy − Σ_j dy_j − (x − μ) …): a family bare beside its own members in a sum
VECTOR_DX = ("$$dx = \\frac{1}{N}\\gamma(\\sigma^2+\\epsilon)^{-1/2}\\left(N\\,dy - \\sum_j dy_j %s (x - \\mu)"
             "(\\sigma^2+\\epsilon)^{-1}\\sum_j dy_j(x_j - \\mu)\\right)$$")


def test_a_bare_family_beside_its_members_is_the_batchs_vector():
    found = findings(VECTOR_DX % "-")[1]
    assert found.verdict in ("correct", "correct-other-form"), found.to_text()


def test_the_vector_form_with_a_sign_slip_is_wrong():
    found = findings(VECTOR_DX % "+")[1]
    assert found.verdict == "wrong", found.to_text()
    c = found.counterexample
    x, dy, k = np.array(c.batch.x), np.array(c.batch.dL_dy), c.index[1] - 1
    v = x.var() + c.batch.epsilon
    assert c.want == pytest.approx(numpy_dx(c))
    assert c.got == pytest.approx(c.batch.gamma / (len(x) * np.sqrt(v))
                                  * (len(x) * dy[k] - dy.sum() + (x[k] - x.mean()) / v * (dy @ (x - x.mean()))))


# -- the document's numbers given member by member (x_1 = 1, x_2 = 2, x_3 = 6) or as a column ([1, 2, 6]^T)
@pytest.mark.parametrize("numbers", ["$x_1 = 1$, $x_2 = 2$, $x_3 = 6$", "$x = [1, 2, 6]^T$"])
def test_the_documents_numbers_member_by_member_or_as_a_column(numbers):
    def mean(value):  # the finding on "\mu = value", written after the numbers on the same line
        return next(f for f in audit_document(f"Take {numbers}. The mean is $$\\mu = {value}$$\n").findings
                    if f.tex == f"\\mu = {value}")

    assert X.mean() == 3
    assert mean(3).verdict == "correct", mean(3).to_text()
    assert mean(4).verdict == "wrong", mean(4).to_text()
