"""Conventions and notes that real write-ups use, read as their authors mean them (issue 14,
second round, from the held-out write-ups): ε folded into σ or added to σ², ε outside the root,
a note set off by ``\\quad`` after the formula. None of them is "wrong"; a real slip next to
them still is.
"""
from __future__ import annotations

import pytest

from bngraph.audit.auditor import audit_document
from bngraph.tex.clean import clean


def verdicts(text: str) -> list[str]:
    return [f.verdict for f in audit_document(text).findings]


def one(tex: str):
    return audit_document(f"$${tex}$$").findings[0]


# -- ε by convention ------------------------------------------------------------------------
def test_sigma_with_epsilon_folded_in_is_ambiguous_not_wrong():
    found = one(r"\hat{x}_i = \frac{x_i - \mu}{\sigma}")
    assert found.verdict == "ambiguous", found.to_text()
    assert "σ stands for √(σ² + ε)" in found.reason


def test_a_backward_pass_that_takes_epsilon_as_zero_is_ambiguous():
    found = one(r"\frac{\partial L}{\partial x_i} = \frac{\partial L}{\partial \hat{x}_i} \frac{1}{\sqrt{\sigma^2}}"
                r" + \frac{\partial L}{\partial \sigma^2} \frac{2(x_i - \mu)}{m} + \frac{\partial L}{\partial \mu}\frac{1}{m}")
    assert found.verdict == "ambiguous", found.to_text()
    assert "σ² includes ε" in found.reason


def test_epsilon_outside_the_root_is_a_convention():
    found = one(r"\hat{x}_i = \frac{x_i - \mu}{\sqrt{\sigma^2} + \epsilon}")
    assert found.verdict == "ambiguous", found.to_text()
    assert "ε under the root" in found.reason


def test_a_real_slip_next_to_the_convention_is_still_wrong():
    # ε folded into σ is fine; the missing 1/m is not
    found = one(r"\frac{\partial L}{\partial x_i} = \frac{\gamma}{\sigma}\left(\frac{\partial L}{\partial y_i}"
                r" - \sum_j \frac{\partial L}{\partial y_j} - \hat{x}_i \frac{1}{m}\sum_j \frac{\partial L}{\partial y_j}\hat{x}_j\right)")
    assert found.verdict == "wrong" and found.counterexample is not None, found.to_text()


def test_sigma2_defined_with_epsilon_binds_the_later_formulas():
    # zh_exercise_sigma_eps.md's way: σ² := σ_B² + ε, then formulas with σ² and no ε
    text = ("$$\\sigma^2 = \\sigma_B^2 + \\epsilon$$\n\n"
            "$$\\frac{\\partial L}{\\partial x_i} = \\frac{\\partial L}{\\partial \\hat{x}_i} \\frac{1}{\\sqrt{\\sigma^2}}"
            " + \\frac{\\partial L}{\\partial \\sigma^2} \\frac{2(x_i - \\mu_B)}{m}"
            " + \\frac{\\partial L}{\\partial \\mu_B} \\frac{1}{m}$$\n")
    found = audit_document(text).findings
    assert found[0].verdict == "helper" and found[1].verdict in ("correct", "correct-other-form"), \
        "\n".join(f.to_text() for f in found)
    assert "σ_B² + ε" in found[0].reason


def test_the_sigma2_binding_holds_only_after_it_is_made():
    text = ("$$\\hat{x}_i = \\frac{x_i - \\mu_B}{\\sqrt{\\sigma^2}}$$\n\n$$\\sigma^2 = \\sigma_B^2 + \\epsilon$$\n\n"
            "$$\\hat{x}_i = \\frac{x_i - \\mu_B}{\\sqrt{\\sigma^2}}$$\n")
    assert verdicts(text)[:2] == ["ambiguous", "helper"] and verdicts(text)[2] in ("correct", "correct-other-form")


# -- a note after \quad ---------------------------------------------------------------------
@pytest.mark.parametrize("tex, formula", [
    (r"\mu = \frac{1}{B}\sum_{i=1}^{B}x_{i} \quad x_{i} \text{ - vector}", r"\mu = \frac{1}{B}\sum_{i=1}^{B}x_{i}"),
    (r"\hat{x}_{i} = \frac{x_i - \mu}{\sqrt{\sigma^2+\epsilon}} \quad \epsilon \text{ - for not getting 0 denom.}",
     r"\hat{x}_{i} = \frac{x_i - \mu}{\sqrt{\sigma^2+\epsilon}}"),
    (r"y_{i} = x_{i} w + \beta \qquad w,\beta\in \mathbb{R}^{N}", r"y_{i} = x_{i} w + \beta"),
])
def test_a_note_after_quad_is_not_part_of_the_formula(tex, formula):
    assert clean(tex) == formula


@pytest.mark.parametrize("tex", [r"a = b \quad + c \text{ (next term)}", r"a = b \quad c = d \text{ x}"])
def test_a_continued_formula_or_a_second_equation_is_kept(tex):
    assert r"\quad" in clean(tex)


def test_a_mean_with_a_note_is_correct():
    assert one(r"\mu = \frac{1}{B}\sum_{i=1}^{B}x_{i} \quad x_{i} \text{ - vector}").verdict == "correct"
