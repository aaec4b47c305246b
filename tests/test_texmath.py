r"""bngraph.tex.grammar: Batch-Norm notation as people write it, read into the contract's SymPy names.

Expected values are built with SymPy's constructors here, never by parsing, so a test
cannot agree with the parser by construction.
"""
from __future__ import annotations

import doctest

import pytest
import sympy as sp
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from bngraph.tex import clean as texclean, document as texdoc, grammar as texmath, names as texnames, printer as texprint
from bngraph.errors import BngraphError
from bngraph.tex.grammar import Equation, TexSyntaxError, concrete_names, parse_equation, parse_expression
from bngraph.tex.names import symbol
from bngraph.tex.printer import to_latex

m, i, j, k = symbol("m"), symbol("i"), symbol("j"), symbol("k")
mu, sigma2, sigma, gamma, beta, eps = (symbol(n) for n in ("mu", "sigma2", "sigma", "gamma", "beta", "epsilon"))
x, xhat, y, dy, dx, dxhat = (sp.IndexedBase(symbol(n)) for n in ("x", "xhat", "y", "dL_dy", "dL_dx", "dL_dxhat"))
dmu, dsigma2, dgamma, dbeta = (symbol(n) for n in ("dL_dmu", "dL_dsigma2", "dL_dgamma", "dL_dbeta"))


def S(body, var=j):
    return sp.Sum(body, (var, 1, m))


# -- what people write ----------------------------------------------------------------------
NOTATIONS = [
    (r"\mu_\mathcal{B}", mu), (r"\mu_{\B}", mu), (r"\mu_B", mu), (r"\mu_{\mathcal B}", mu), (r"\mu", mu),
    (r"\sigma^2_{\mathcal{B}}", sigma2), (r"\sigma_B^2", sigma2), (r"\sigma^{2}", sigma2),
    (r"\sigma_{\mathcal{B}}", sigma), (r"\sigma", sigma),
    (r"\hat{x}_i", xhat[i]), (r"\hat{x_i}", xhat[i]), (r"\hat x_i", xhat[i]), (r"\widehat{x}_{i}", xhat[i]),
    (r"{\hat{x}}_{i}", xhat[i]), (r"\hat{x}^{(i)}", xhat[i]), (r"x_i", x[i]), (r"x_{i}", x[i]), (r"y_i", y[i]),
    (r"\frac{\partial \ell}{\partial x_i}", dx[i]), (r"\frac{\partial L}{\partial \hat{x}_i}", dxhat[i]),
    (r"\dfrac{\partial \mathcal{L}}{\partial \mu_B}", dmu), (r"\pdv{l}{\gamma}", dgamma),
    (r"\partial L / \partial y_i", dy[i]), (r"\partial_{\mu}\ell", dmu), (r"\nabla_{\beta} L", dbeta),
    (r"\frac{\partial}{\partial \sigma^2} L", dsigma2), (r"\frac{dL}{d\gamma}", dgamma),
    (r"{\frac{\partial L}{\partial \hat{x}}}_{i}", dxhat[i]),
    (r"\sum_{i=1}^m x_i", S(x[j])), (r"\sum\limits_{i=1}^{m} x_i", S(x[j])), (r"\sum_i x_i", S(x[j])),
    (r"\sum_{k \in \mathcal{B}} x_k", S(x[j])), (r"\sum x_i", S(x[j])),
    (r"\frac{1}{m}", 1 / m), (r"\tfrac1m", 1 / m), (r"\dfrac{1}{m}", 1 / m), (r"\frac12", sp.Rational(1, 2)),
    (r"\sqrt{\sigma^2 + \epsilon}", sp.sqrt(sigma2 + eps)), (r"\sqrt{\sigma^2+\varepsilon}", sp.sqrt(sigma2 + eps)),
    (r"\gamma \cdot \beta", gamma * beta), (r"\gamma \times \beta", gamma * beta), (r"\gamma\beta", gamma * beta),
    (r"2\gamma", 2 * gamma), (r"-\gamma", -gamma), (r"\gamma - \beta", gamma - beta), (r"0.5", sp.Rational(1, 2)),
    (r"\left( \mu + \beta \right)", mu + beta), (r"[\mu + \beta]", mu + beta), (r"\{\mu + \beta\}", mu + beta),
    (r"\left[ \mu \right]", mu), (r"\bigl(\mu\bigr)", mu),
    (r"(\sigma^2 + \epsilon)^{-1/2}", (sigma2 + eps) ** sp.Rational(-1, 2)),
    (r"(\sigma^2 + \epsilon)^{-\frac{3}{2}}", (sigma2 + eps) ** sp.Rational(-3, 2)),
    (r"\mu\,\gamma\;\beta\!\quad 2", 2 * mu * gamma * beta),
    (r"\text{ivar}", symbol("ivar")), (r"\mathrm{running\_mean}", symbol("running_mean")),
    (r"\mu_{\text{run}}", symbol("mu_run")), (r"\hat{\sigma}", symbol("sigmahat")), (r"\bar{x}", symbol("xbar")),
    (r"x_1", x[1]), (r"\hat{x}_3", xhat[3]), (r"y_{3}", y[3]), (r"\gamma_i", sp.IndexedBase(gamma)[i]),
    (r"\max(0, x_i)", sp.Max(0, x[i])), (r"\exp(\mu)", sp.exp(mu)), (r"\log \gamma", sp.log(gamma)),
]


@pytest.mark.parametrize("tex, expected", NOTATIONS, ids=[t for t, _ in NOTATIONS])
def test_reads_the_notation_people_write(tex, expected):
    assert parse_expression(tex) == expected


def test_sigma_and_sigma_squared_stay_apart():
    assert parse_expression(r"\sigma_B") != parse_expression(r"\sigma_B^2")
    assert parse_expression(r"\sigma_B^3") == sigma ** 3
    assert parse_expression(r"\sigma^2_B \sigma_B") == sigma2 * sigma


def test_batch_formulas_in_contract_names():
    eq = parse_equation(r"\sigma^2_\B \gets \frac{1}{m}\sum_{i=1}^m (x_i - \mu_\B)^2")
    assert (eq.lhs, eq.rhs, eq.kind) == (sigma2, S((x[j] - mu) ** 2) / m, "update")
    eq = parse_equation(r"\frac{\partial \ell}{\partial x_i} = \frac{1}{m\sqrt{\sigma^2+\epsilon}}"
                        r"\left[m\frac{\partial \ell}{\partial \hat x_i} - \sum_{j}\frac{\partial \ell}{\partial \hat x_j}"
                        r" - \hat x_i \sum_j \frac{\partial \ell}{\partial \hat x_j}\hat x_j\right]")
    assert eq.lhs == dx[i]
    assert eq.rhs == (m * dxhat[i] - S(dxhat[j]) - xhat[i] * S(dxhat[j] * xhat[j])) / (m * sp.sqrt(sigma2 + eps))


def test_a_sum_binds_its_index_and_renames_it():
    assert parse_expression(r"\sum_i x_i") == parse_expression(r"\sum_{j=1}^{m} x_j") == S(x[j])
    # i is free outside the sum and bound inside: the bound one becomes j
    assert parse_expression(r"\hat{x}_i \sum_{i=1}^m \hat{x}_i") == xhat[i] * S(xhat[j])
    # j free on the left: the sum's index becomes k
    eq = parse_equation(r"\hat{x}_j = \frac{1}{m}\sum_{j=1}^m x_j")
    assert (eq.lhs, eq.rhs) == (xhat[j], sp.Sum(x[k], (k, 1, m)) / m)
    assert parse_expression(r"\sum_{i=1}^{3} x_i") == sp.Sum(x[j], (j, 1, 3))
    assert parse_expression(r"\sum_{j=1}^{m} - \frac{1}{2} x_j") == S(-x[j] / 2)


def test_local_partials_are_derivatives():
    eq = parse_equation(r"\frac{\partial L}{\partial \hat{x}_i} = \frac{\partial L}{\partial y_i}\frac{\partial y_i}{\partial \hat{x}_i}")
    assert eq.rhs == dy[i] * sp.Derivative(y[i], xhat[i], evaluate=False)
    assert concrete_names(parse_expression(r"\frac{\partial \sigma^{2}}{\partial \mu} + \hat{x}_{2}")) == \
        sp.Symbol("dsigma2_dmu") + sp.Symbol("xhat_2")


def test_relations_chains_and_continuations():
    for rel, kind in [("=", "definition"), (":=", "definition"), (r"\coloneqq", "definition"),
                      (r"\gets", "update"), (r"\leftarrow", "update"), (r"\approx", "approximation")]:
        assert parse_equation(rf"\mu {rel} \beta").kind == kind
    eq = parse_equation(r"y_i = \gamma \hat{x}_i + \beta \equiv \mathrm{BN}_{\gamma,\beta}(x_i)")
    assert eq.chain[0] == gamma * xhat[i] + beta and len(eq.chain) == 2
    assert tuple(eq) == (y[i], gamma * xhat[i] + beta)
    assert parse_equation(r"&= \frac{1}{m}\sum_i x_i").lhs is None


@pytest.mark.parametrize("tex", [
    r"\hat{x}_i = x_i - \mu, \quad \text{for all } i.",
    r"\hat{x}_i = x_i - \mu \quad \text{for } i = 1, \dots, m",
    r"\hat{x}_i = x_i - \mu , \quad i = 1, \ldots, m",
    r"\hat{x}_i = x_i - \mu \qquad \text{// normalize}",
    r"\hat{x}_i = x_i - \mu \label{eq:xhat} \nonumber",
    r"&\hat{x}_i \;&=&\; x_i - \mu,",
])
def test_what_surrounds_a_formula_is_dropped(tex):
    assert tuple(parse_equation(tex)) == (xhat[i], x[i] - mu)


def test_notation_is_recorded():
    notation = parse_equation(r"\pdv{\ell}{\mu_{\mathcal{B}}} = \sum_{k} \pdv{\ell}{\hat{x_k}} \varepsilon").notation
    assert notation.get("mu") == r"\mu_{\mathcal{B}}"
    assert notation.get("loss") == r"\ell" and notation.get("derivative") == "pdv"
    assert notation.get("xhat[]") == r"\hat{x_{%s}}" and notation.get("epsilon") == r"\varepsilon"
    assert notation.get("sum_index") == "k" and notation.get("sum_style") == "index"


# -- errors: one clear line, always TexSyntaxError ---------------------------------------
@pytest.mark.parametrize("tex, says", [
    (r"\mu = \foo{x}", r"unknown command \foo"),
    (r"\frac{1}{m}{ x_i", "unbalanced braces"),
    (r"\frac{1}{m} x_i}", "unbalanced braces"),
    (r"\mu = \frac{1}", "ends too early"),
    (r"\mu = \partial x", r"\partial"),
    (r"\mu = \frac{}{m}", "empty braces"),
    (r"\mu = x_{i}_{j}", "double subscript"),
    (r"\mu = \sum x_i y_j", "summation index"),
    (r"\mu = x_i + = y", "unexpected '='"),  # ("x = = y" is one relation typed twice: test_audit_notation)
    ("", "empty formula"),
    (r"\mu = \ldots", r"\ldots"),
    (r"\mu_1 \\ \mu_2", "several rows"),
    ("(" * 200, "nested too deeply"),
])
def test_errors_say_what_is_wrong_in_one_line(tex, says):
    with pytest.raises(TexSyntaxError) as caught:
        parse_equation(tex)
    assert says in str(caught.value) and "\n" not in str(caught.value)
    assert isinstance(caught.value, BngraphError)


# -- round trips: what SymPy and the engine print reads back -------------------------------
CONTRACT_EXPRESSIONS = [
    S(x[j]) / m, S((x[j] - mu) ** 2) / m, (x[i] - mu) / sp.sqrt(sigma2 + eps), gamma * xhat[i] + beta,
    gamma * dy[i], -gamma * S(dy[j] * xhat[j]) / (2 * (sigma2 + eps)), -gamma * S(dy[j]) / sp.sqrt(sigma2 + eps),
    gamma * (m * dy[i] - xhat[i] * S(dy[j] * xhat[j]) - S(dy[j])) / (m * sp.sqrt(sigma2 + eps)),
    S(dy[j] * xhat[j]), S(dy[j]), -S(dxhat[j] * (x[j] - mu)) * (sigma2 + eps) ** sp.Rational(-3, 2) / 2,
    dmu / m + dsigma2 * 2 * (x[i] - mu) / m + dxhat[i] / sp.sqrt(sigma2 + eps), sigma2 ** 2, S(x[j]) * S(xhat[j]) * gamma,
]
SYMBOL_NAMES = {mu: r"\mu", sigma2: r"\sigma^{2}", gamma: r"\gamma", beta: r"\beta", eps: r"\epsilon",
                symbol("xhat"): r"\hat{x}", symbol("dL_dy"): r"\frac{\partial L}{\partial y}",
                symbol("dL_dxhat"): r"\frac{\partial L}{\partial \hat{x}}", dmu: r"\frac{\partial L}{\partial \mu}",
                dsigma2: r"\frac{\partial L}{\partial \sigma^{2}}"}


@pytest.mark.parametrize("expr", CONTRACT_EXPRESSIONS, ids=str)
def test_sympy_latex_reads_back(expr):
    assert parse_expression(sp.latex(expr, symbol_names=SYMBOL_NAMES)) == expr


AUTHORS = [r"\mu_B = \frac{1}{m}\sum_i x_i + \frac{\partial \ell}{\partial \hat{x}_i}",
           r"\pdv{L}{\sigma^2_{\mathcal{B}}} = \sum_{k=1}^{m} \hat{x_k} \varepsilon",
           r"\partial \ell / \partial \mu = \tfrac{1}{N}\sum_{j=1}^{N} \hat x^{(j)}"]


@pytest.mark.parametrize("author", AUTHORS)
@pytest.mark.parametrize("expr", CONTRACT_EXPRESSIONS[:12], ids=str)
def test_printed_in_an_authors_notation_it_reads_back(author, expr):
    notation = parse_equation(author).notation  # the third writes N for the batch size
    assert parse_expression(to_latex(expr, notation)).xreplace({symbol("N"): m}) == expr


def test_the_printer_keeps_the_authors_notation():
    notation = parse_equation(AUTHORS[1]).notation
    printed = to_latex(-gamma * S(dy[j]) / sp.sqrt(sigma2 + eps), notation)
    assert r"\pdv{L}{y_{j}}" in printed and r"\sigma^2_{\mathcal{B}} + \varepsilon" in printed


# -- properties: well-formed LaTeX reads to the expression it was built from -----------------
LEAVES_I = [(r"x_i", x[i]), (r"\hat{x}_{i}", xhat[i]), (r"\frac{\partial \ell}{\partial y_i}", dy[i]),
            (r"\mu_B", mu), (r"\sigma_{\mathcal{B}}^2", sigma2), (r"\gamma", gamma), (r"\beta", beta),
            (r"\varepsilon", eps), (r"m", m), ("2", sp.Integer(2)), (r"\frac{3}{2}", sp.Rational(3, 2))]


def _combine(children, index_leaves):
    a, b = children, children

    def wrap(t):
        return rf"\left({t}\right)"

    return st.one_of(
        st.tuples(a, b).map(lambda p: (f"{wrap(p[0][0])} + {wrap(p[1][0])}", p[0][1] + p[1][1])),
        st.tuples(a, b).map(lambda p: (f"{wrap(p[0][0])} - {wrap(p[1][0])}", p[0][1] - p[1][1])),
        st.tuples(a, b).map(lambda p: (f"{wrap(p[0][0])} \\cdot {wrap(p[1][0])}", p[0][1] * p[1][1])),
        st.tuples(a, b).map(lambda p: (f"{wrap(p[0][0])}{wrap(p[1][0])}", p[0][1] * p[1][1])),
        st.tuples(a, b).map(lambda p: (rf"\frac{{{p[0][0]}}}{{{p[1][0]}}}", p[0][1] / p[1][1])),
        a.map(lambda p: (rf"\sqrt{{{p[0]}}}", sp.sqrt(p[1]))),
        a.map(lambda p: (f"-{wrap(p[0])}", -p[1])),
        a.map(lambda p: (f"{wrap(p[0])}^{{-\\frac{{1}}{{2}}}}", p[1] ** sp.Rational(-1, 2))),
    )


def _expressions(leaves):
    return st.recursive(st.sampled_from(leaves), lambda c: _combine(c, leaves), max_leaves=8)


LEAVES_J = [(r"x_j", x[j]), (r"\hat{x}_j", xhat[j]), (r"\frac{\partial L}{\partial y_j}", dy[j]), (r"\mu", mu)]
WELL_FORMED = st.one_of(
    _expressions(LEAVES_I),
    st.tuples(_expressions(LEAVES_I), _expressions(LEAVES_J)).map(
        lambda p: (rf"\left({p[0][0]}\right) + \sum_{{j=1}}^{{m}} \left({p[1][0]}\right)", p[0][1] + S(p[1][1]))))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(WELL_FORMED)
def test_well_formed_latex_reads_to_what_it_was_built_from(pair):
    tex, expected = pair
    assume(not expected.has(sp.zoo, sp.nan, sp.oo, sp.I))  # complex junk: SymPy normalises it either way
    parsed = parse_expression(tex)
    assert parsed == expected or sp.simplify(parsed - expected) == 0  # SymPy's own forms of √(4/3) differ


FRAGMENTS = [r"\frac", r"\sqrt", r"\sum", r"_", "^", "{", "}", "(", ")", "[", "]", r"\left(", r"\right)", "=",
             r"\gets", "+", "-", r"\cdot", "/", r"\partial", r"\hat", r"\mu", r"\sigma", "x", "i", "j", "2", "m",
             r"\mathcal{B}", r"\text{run}", r"\pdv", ",", r"\quad", r"\ell", " ", r"\foo", "&", r"\\", "%", "$", "é"]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.sampled_from(FRAGMENTS), max_size=30).map("".join) | st.text(max_size=60))
def test_any_text_gives_an_equation_or_a_syntax_error(tex):
    try:
        result = parse_equation(tex)
    except TexSyntaxError as exc:
        assert str(exc) and "\n" not in str(exc)
    else:
        assert isinstance(result, Equation)


def test_docstring_examples_run():
    for module in (texmath, texnames, texclean, texprint, texdoc):
        failed, _ = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
        assert failed == 0, module.__name__
