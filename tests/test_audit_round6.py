"""Readings fixed after the second untouched set (benchmarks/heldout_u2, issue 14, round 6), each on a minimal
document: a partial by a family written bare (∂μ/∂x, ∂x̂/∂x, ∂y/∂x̂) is one entry's, for each example; a
derivative of an expression by the bare x (∂(γx̂ + β)/∂x) is a Jacobian, not checked; ∂/∂x_i written before a
constant factor (\\frac{1}{n}) still applies to the sum after it; a worked example's chain of numbers is checked as
arithmetic, not against the general formula. Expected values are worked out by hand or with NumPy."""
from __future__ import annotations

import numpy as np
import pytest

from bngraph.audit.auditor import audit_document


def one(tex: str, layer: str = "batchnorm"):
    return audit_document(f"$${tex}$$", layer).findings[0]


def batch_of(c):
    return np.array(c.batch.x), c.index[1] - 1 if c.index else None


# -- a partial by a bare family: one entry's, ∂a/∂x_i for each i (bn_unit_gaussian_notes.md, ln_backprop_dx_readme.md)
@pytest.mark.parametrize("tex", [r"\frac{\partial \mu}{\partial x} = \frac{1}{m}",
                                 r"\frac{\partial \hat{x}}{\partial x} = \frac{1}{\sqrt{\sigma^{2} + \epsilon}}",
                                 r"\frac{\partial y}{\partial \hat{x}} = \gamma",
                                 r"\frac{\partial \sigma^{2}}{\partial x} = \frac{2 (x - \mu)}{m}"])
def test_a_partial_by_a_bare_family_is_one_entrys(tex):
    found = one(tex)
    assert found.verdict == "correct", found.to_text()


def test_a_partial_by_a_bare_family_still_catches_a_missing_one_over_m():
    found = one(r"\frac{\partial \mu}{\partial x} = 1")
    assert found.verdict == "wrong", found.to_text()
    x, _ = batch_of(found.counterexample)
    assert (found.counterexample.got, found.counterexample.want) == pytest.approx((1.0, 1 / len(x)))


def test_a_partial_by_a_bare_family_still_catches_a_sign():
    found = one(r"\frac{\partial \sigma^{2}}{\partial x} = \frac{2 (x + \mu)}{m}")
    assert found.verdict == "wrong", found.to_text()
    x, k = batch_of(found.counterexample)
    assert found.counterexample.got == pytest.approx(2 * (x[k] + x.mean()) / len(x))
    assert found.counterexample.want == pytest.approx(2 * (x[k] - x.mean()) / len(x))


def test_the_layernorm_mean_by_a_bare_x_is_one_over_d():
    found = audit_document("$$\\mu = \\frac{1}{D}\\sum_{i=1}^{D} x_i$$\n\n$$\\frac{\\partial \\mu}{\\partial x}=\\frac{1}{D}$$",
                           "layernorm").findings[1]
    assert found.verdict == "correct", found.to_text()


# -- a derivative of an expression by the bare x: a Jacobian (cs231n_exercise_streams.md) -----------------
@pytest.mark.parametrize("inner", [r"\gamma \hat{x} + \beta", r"\gamma \hat{x}"])
def test_a_derivative_of_an_expression_by_the_bare_x_is_a_jacobian(inner):
    found = one(rf"\frac{{\partial L}}{{\partial x}} = \frac{{\partial L}}{{\partial y}}\frac{{\partial({inner})}}{{\partial x}}")
    assert found.verdict == "cannot-evaluate" and "Jacobian" in found.reason, found.to_text()


# -- ∂/∂x_i before a constant factor (ln_backprop_sinai_2022.md) ----------------------------------------------
def test_the_operator_goes_past_a_constant_factor():
    found = one(r"\frac{\partial \mu}{\partial x_i} = \frac{\partial}{\partial x_i} \frac{1}{n}\sum_r^n x_r", "layernorm")
    assert found.verdict == "correct", found.to_text()


def test_the_operator_past_a_constant_factor_still_catches_a_square():
    found = one(r"\frac{\partial \mu}{\partial x_i} = \frac{\partial}{\partial x_i} \frac{1}{n}\sum_{r=1}^n x_r^2",
                "layernorm")
    assert found.verdict == "wrong", found.to_text()
    x, k = batch_of(found.counterexample)
    assert found.counterexample.got == pytest.approx(2 * x[k] / len(x))
    assert found.counterexample.want == pytest.approx(1 / len(x))


# -- a worked example's numbers (zh_course_bn_z.md), a setting y = 0 (zh_xopes_normalize.md) --------------
WORKED = ("For $Z = [1, 2, 3]$, $\\gamma = 2$ and $G = [0.1, 0.2, 0.3]$:\n\n"
          "$$ \\mu = \\frac{1 + 2 + 3}{3} = 2 $$\n\n"
          "$$ \\sigma^2 = \\frac{(1-2)^2 + (2-2)^2 + (3-2)^2}{3} = \\frac{2}{3} $$\n\n"
          "$$ \\frac{\\partial L}{\\partial \\beta} = 0.1 + 0.2 + 0.3 = 0.6 $$\n\n"
          "$$ \\frac{\\partial L}{\\partial \\gamma} = 0.1 \\cdot (-1.2247) + 0.2 \\cdot 0 + 0.3 \\cdot 1.2247 = 0.12247 $$\n")


def test_a_worked_examples_numbers_are_not_the_general_formula():
    found = {f.line: f for f in audit_document(WORKED).findings}
    for line in (3, 5, 7):
        assert found[line].verdict == "cannot-evaluate" and "worked example" in found[line].reason, found[line].to_text()


def test_a_worked_examples_arithmetic_slip_is_wrong():
    slip = {f.line: f for f in audit_document(WORKED).findings}[9]
    assert slip.verdict == "wrong", slip.to_text()
    assert slip.counterexample.want == pytest.approx(0.3 * 1.2247 - 0.1 * 1.2247)
    assert slip.counterexample.got == pytest.approx(0.12247)


def test_an_output_set_to_a_number_is_a_setting_and_a_variance_of_zero_a_value_of_a_case():
    assert one(r"\mathbf y=\mathbf 0", "rmsnorm").verdict == "helper"
    # σ² = 0 is the value at m = 1 (or of an example): with no batch read, a value, never "wrong" (round 7: a Korean
    # lecture's "σ_B = 0 at batch size 1" was a false wrong); a wrong formula for σ² is still wrong
    assert one(r"\sigma^2 = 0").verdict == "cannot-evaluate"
    assert one(r"\sigma^2 = \frac{1}{m}\sum_{i=1}^m (x_i + \mu)^2").verdict == "wrong"


# -- ∂y_i/∂x_j read as a total derivative: through x̂, μ, σ² (transformer_math_ln_jacobian.md) ---------------
def layernorm_jacobian(x, eps, i, j):
    """∂x̂_i/∂x_j of LayerNorm over one vector, by central differences of a NumPy forward."""
    def xhat(v):
        return (v - v.mean()) / np.sqrt(v.var() + eps)
    h = 1e-6
    up, down = x.copy(), x.copy()
    up[j] += h
    down[j] -= h
    return (xhat(up)[i] - xhat(down)[i]) / (2 * h)


SIGMA = r"$$\sigma = \sqrt{\frac{1}{d}\sum_{i=1}^{d}(x_i - \mu)^2 + \epsilon}$$" + "\n\n"


def test_the_outputs_jacobian_is_read_as_a_total_derivative():
    right = audit_document(SIGMA + r"$$\frac{\partial y_i}{\partial x_j} = \gamma \frac{1}{\sigma}\left(\delta_{ij} "
                           r"- \frac{1}{d} - \frac{1}{d}\hat{x}_i \hat{x}_j\right)$$", "layernorm").findings[1]
    assert right.verdict == "correct", right.to_text()
    slip = audit_document(SIGMA + r"$$\frac{\partial y_i}{\partial x_j} = \frac{\gamma}{\sigma}\left(\delta_{ij} "
                          r"- \frac{1}{d} - \hat{x}_i \hat{x}_j\right)$$", "layernorm").findings[1]
    assert slip.verdict == "wrong", slip.to_text()
    c = slip.counterexample
    x, i = np.array(c.batch.x), c.index[1] - 1
    j = int(slip.checked.rsplit("j = ", 1)[1]) - 1
    assert c.want == pytest.approx(c.batch.gamma * layernorm_jacobian(x, c.batch.epsilon, i, j), rel=1e-5)


# -- a running value's step as a superscript, and weights that do not add up to 1 (zh_idl_bn_dudz.md) --------
def test_a_superscript_step_is_a_running_update():
    right = one(r"\bar{\mu}_i^{(\tau)}=\alpha\bar{\mu}_i^{(\tau-1)}+(1-\alpha)\mu_i")
    assert right.verdict == "correct", right.to_text()
    slip = one(r"\bar{\sigma}_i^{(\tau)}=\alpha\bar{\sigma}_i^{(\tau-1)}+(\alpha-1)\sigma_i")
    assert slip.verdict == "wrong", slip.to_text()
    # a running value at 1 with a batch statistic of 1: α·1 + (α − 1)·1 at α = 0.9 is 0.8, not 1
    assert (slip.counterexample.got, slip.counterexample.want) == pytest.approx((0.8, 1.0))


# -- "\qquad \Rightarrow \qquad" between two equations (es_edunn_batchnorm.md) ------------------------------
ARROW = ("$$\n\\hat{x}_i = (x_i - \\mu)(\\sigma^2 + \\epsilon)^{-0.5}\n\\qquad \\Rightarrow \\qquad\n"
         "\\dfrac{\\partial \\hat{x}}{\\partial \\sigma^2} = -0.5 \\sum\\limits_{i=1}^N (x_i - \\mu) \\cdot "
         "(\\sigma^2 + \\epsilon)^{-1.5}\n$$\n")


def test_an_arrow_between_two_equations_sets_them_apart():
    first, second = audit_document(ARROW).findings
    assert first.verdict == "correct" and second.line == 4, second.to_text()
    assert second.tex.startswith("\\dfrac"), second.to_text()



# -- \sum_{kl} … δ_{lj}: the delta picks the one feature (cs231n_rmd_alt_backward.md) --------------------------
DELTA = ("$$\\mu_l = \\frac{1}{N}\\sum_p x_{pl}$$\n\n"
         "$$\\frac{dL}{d\\gamma_j} = \\sum_{kl}\\frac{dL}{dy_{kl}}\\hat{x}_{kl}\\delta_{lj}$$\n\n"
         "$$\\frac{dL}{d\\gamma_j} = \\sum_{kl}\\frac{dL}{dy_{kl}}x_{kl}\\delta_{lj}$$\n")


def test_a_kronecker_delta_picks_the_feature_of_a_double_sum():
    _, right, slip = audit_document(DELTA).findings
    assert right.verdict == "correct", right.to_text()
    assert slip.verdict == "wrong", slip.to_text()
    c = slip.counterexample
    x, dy = np.array(c.batch.x), np.array(c.batch.dL_dy)
    assert c.got == pytest.approx(dy @ x)
    assert c.want == pytest.approx(dy @ ((x - x.mean()) / np.sqrt(x.var() + c.batch.epsilon)))


def test_a_delta_with_one_index_is_the_documents_own_name():
    # δ_i = ∂L/∂y_i (a document's own name): Σ_i δ_i is ∂L/∂β, no Kronecker delta to pick anything
    found = audit_document("$\\mu_j = \\frac{1}{m} \\sum_{i=1}^{m} x_{ij}$\n\n"
                           "$$\\delta_i = \\frac{\\partial L}{\\partial y_i}$$\n\n"
                           "$$\\frac{\\partial L}{\\partial \\beta} = \\sum_{i=1}^m \\delta_i$$\n").findings[-1]
    assert found.verdict == "correct", found.to_text()
