"""Replicas (issue 17): one example's symbolic work renamed for the others must be exactly what
SymPy builds for them — same tree (srepr), same text — or not be used at all."""
from __future__ import annotations

import random

import sympy as sp
from hypothesis import given, settings, strategies as st

from bngraph.engine.replicas import Replicas, Texts
from bngraph.output.export import expr_printer

# families whose names compare differently at different indices: x_1 < x_1_1 but x_1_2 < x_2
FAMILIES = ("x", "xhat", "x_1", "dL_dy", "a")
SHARED = tuple(sp.symbols("mu sigma2 epsilon gamma"))


@st.composite
def program(draw):
    """A recipe for an expression of one example (ops, and a seed for its leaves): the same
    recipe gives it at any index."""
    ops = draw(st.lists(st.sampled_from(("add", "mul", "pow", "sqrt", "sub", "div", "exp")), min_size=1, max_size=6))
    return ops, draw(st.integers(0, 2**32))


def build(recipe, k: int) -> sp.Expr:
    ops, seed = recipe
    rng = random.Random(seed)  # the same leaves, in the same places, at every index

    def pick():
        r = rng.random()
        if r < 0.5:
            return sp.Symbol(f"{FAMILIES[rng.randrange(len(FAMILIES))]}_{k}")
        if r < 0.8:
            return SHARED[rng.randrange(len(SHARED))]
        return sp.Rational(rng.randint(-5, 5), rng.randint(1, 4))

    expr = pick()
    for op in ops:
        other = pick()
        if op == "add":
            expr = expr + other
        elif op == "sub":
            expr = other - expr
        elif op == "mul":
            expr = expr * other
        elif op == "div" and other != 0:
            expr = expr / other
        elif op == "pow":
            expr = expr ** rng.choice((2, 3, -1, sp.Rational(-3, 2)))
        elif op == "sqrt":
            expr = sp.sqrt(expr + SHARED[2])
        elif op == "exp":
            expr = sp.exp(expr)
    return expr


def work(inputs):
    """What a derivation does with them: products and sums that SymPy flattens and orders."""
    a, b = inputs
    return {"sum": sp.Add(a * b, -a, b / 3), "product": sp.Mul(sp.Rational(1, 7), a + b), "power": (a - b) ** 2}


@settings(max_examples=150, deadline=None)
@given(program(), program(), st.lists(st.integers(0, 120), min_size=1, max_size=8))
def test_renamed_results_are_what_sympy_builds(first, second, indices):
    replicas, printer = Replicas(), Texts()
    print_expr = expr_printer()
    for k in [1, *indices]:
        inputs = (build(first, k), build(second, k))
        got = replicas.get("family", k, inputs, lambda: work(inputs))
        want = work(inputs)
        assert got.keys() == want.keys()
        for key in want:
            assert sp.srepr(got[key]) == sp.srepr(want[key]), (k, key)
            assert printer.text(want[key], print_expr) == print_expr(want[key])


def test_order_that_changes_with_the_index_is_not_renamed():
    """x_1 + x_1_1 is ordered (x_1, x_1_1), but at 2 SymPy orders x_1_2 before x_2."""
    replicas = Replicas()
    for k in (1, 2, 10):
        a, b = sp.Symbol(f"x_{k}"), sp.Symbol(f"x_1_{k}")
        got = replicas.get("f", k, (a, b), lambda: a + b)
        assert got.args == (a + b).args


def test_a_sum_over_the_examples_is_not_renamed():
    """x_1·Σx_j renamed to example 4 would read x_4 twice in the sum: it is computed instead."""
    replicas = Replicas()
    x = sp.symbols("x_1:8")
    computed = []
    for k in (1, 4, 6):
        total = sum(x)
        got = replicas.get("f", k, (sp.Symbol(f"x_{k}"), total),
                           lambda: computed.append(k) or sp.Symbol(f"x_{k}") * total)
        assert got == sp.Symbol(f"x_{k}") * total
    assert computed == [1, 4, 6]


def test_inputs_that_are_not_a_renaming_are_computed():
    """An example treated apart (x_3 squared where the others are doubled) gets its own result."""
    replicas, mu = Replicas(), sp.Symbol("mu")
    for k, op in ((1, "double"), (2, "double"), (3, "square"), (4, "double")):
        x = sp.Symbol(f"x_{k}")
        value = 2 * (x - mu) if op == "double" else (x - mu) ** 2
        got = replicas.get("f", k, (op, x - mu), lambda: value)
        assert got == value
    assert replicas.get("f", 5, ("double", sp.Symbol("x_5") - mu), lambda: None) == 2 * (sp.Symbol("x_5") - mu)


def test_only_results_computed_or_renamed_from_the_first_are_flagged():
    replicas, mu = Replicas(), sp.Symbol("mu")
    replicas.get("f", 1, (sp.Symbol("x_1") - mu,), lambda: 1)
    assert replicas.renamed
    replicas.get("f", 2, (sp.Symbol("x_2") - mu,), lambda: 1)
    assert replicas.renamed
    replicas.get("f", 3, (sp.Symbol("x_3") + mu,), lambda: 1)
    assert not replicas.renamed


def test_names_of_two_indices_are_not_confused():
    """A template reading x_2 at example 1 would, renamed to example 2, read x_2 twice and
    give the unevaluated x_2 - x_2 where SymPy gives 0."""
    replicas, x2 = Replicas(), sp.Symbol("x_2")
    for k in (1, 2, 3):
        xk = sp.Symbol(f"x_{k}")
        assert sp.srepr(replicas.get("f", k, (xk, x2), lambda: xk - x2)) == sp.srepr(xk - x2)


def test_text_that_depends_on_the_names_is_printed_anew():
    """A printer that sorts by name orders a_1 + a_0_1 as a_0_1 + a_1, but with the index left
    out the placeholder sorts first: the template's own text check refuses it."""
    texts = Texts()
    for k in (1, 5, 12):
        expr = sp.Symbol(f"a_{k}") + sp.Symbol(f"a_0_{k}")
        assert texts.text(expr, sp.sstr) == sp.sstr(expr)
