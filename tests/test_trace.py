"""The tracer: plain Python on traced scalars records one node per op, folds constants
exactly, and refuses what a straight-line trace cannot follow."""
import math

import pytest
import sympy as sp

from bngraph import BngraphError
from bngraph.engine.trace import constant, name, sqrt, stage, trace


def records_of(func, m=2):
    return {r.name: r for r in trace(func, m).records}


def ops(t):
    return [r.op for r in t.records]


# -- what a trace holds -------------------------------------------------------------
def test_inputs_parameters_and_outputs_are_named_by_the_notation():
    def affine(x, gamma, beta, epsilon):
        return [gamma * xk + beta for xk in x]

    t = trace(affine, 3)
    assert t.m == 3 and t.function == "affine"
    assert t.outputs == ("y_1", "y_2", "y_3")
    leaves = [(r.name, r.op) for r in t.records if not r.args]
    assert leaves == [("x_1", "input"), ("x_2", "input"), ("x_3", "input"),
                      ("gamma", "parameter"), ("beta", "parameter"), ("epsilon", "constant")]
    y2 = {r.name: r for r in t.records}["y_2"]
    assert y2.op == "add" and y2.args[1] == "beta"


def test_each_operator_records_its_primitive():
    def every_op(x, a):
        x1 = x[0]
        return [x1 + a, x1 - a, x1 * a, x1 / a, -x1, x1**3, sqrt(x1), +x1 * 1]

    r = records_of(every_op, 8)
    assert [r[f"y_{k}"].op for k in range(1, 9)] == ["add", "sub", "mul", "div", "neg", "pow", "sqrt", "mul"]
    assert r["y_6"].args == ("x_1", sp.Integer(3))


def test_an_output_that_is_an_input_gets_a_node_of_its_own():
    t = trace(lambda x: list(x), 2)
    assert [(r.name, r.op, r.args) for r in t.records[2:]] == [("y_1", "id", ("x_1",)), ("y_2", "id", ("x_2",))]


# -- constants fold exactly -----------------------------------------------------------
def test_integer_constant_folds_into_the_op():
    r = records_of(lambda x: [xk * 2 for xk in x])
    assert r["y_1"].op == "mul" and r["y_1"].args == ("x_1", 2)
    assert isinstance(r["y_1"].args[1], sp.Integer)


def test_decimal_float_constant_is_the_exact_rational():
    r = records_of(lambda x: [0.1 * xk for xk in x])
    assert r["y_2"].args == (sp.Rational(1, 10), "x_2")
    assert isinstance(r["y_2"].args[0], sp.Rational) and r["y_2"].args[0] != sp.Float(0.1)


@pytest.mark.parametrize("number, exact", [(1 / 3, sp.Rational(1, 3)), (2.5, sp.Rational(5, 2)),
                                           (1e-5, sp.Rational(1, 100000)), (7, sp.Integer(7))])
def test_constant(number, exact):
    assert constant(number) == exact


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), "2", True, None])
def test_constant_refuses_what_is_not_a_finite_number(bad):
    with pytest.raises(BngraphError):
        constant(bad)


# -- builtin sum fuses into one n-ary add ---------------------------------------------
def test_builtin_sum_is_one_nary_add():
    def total(x):
        s = name(sum(x), "s")
        return [xk - s for xk in x]

    t = trace(total, 5)
    adds = [r for r in t.records if r.op == "add"]
    assert len(adds) == 1
    assert adds[0].name == "s" and adds[0].args == ("x_1", "x_2", "x_3", "x_4", "x_5")


def test_a_partial_sum_used_elsewhere_is_not_fused_away():
    def reuse(x):
        a = name(x[0] + x[1], "a")
        return [a + x[2], a * 2, x[2]]

    r = records_of(reuse, 3)
    assert r["a"].args == ("x_1", "x_2") and r["y_1"].args == ("a", "x_3")


def test_sum_of_one_item_is_the_item():
    t = trace(lambda x: [sum(x) * 2], 1)
    assert ops(t) == ["input", "mul"] and t.records[1].args == ("x_1", 2)


# -- names -------------------------------------------------------------------------
def test_name_on_a_list_names_each_item_label_k():
    def centred(x):
        mu = name(sum(x) / len(x), "mu")
        d = name([xk - mu for xk in x], "d")
        return [dk * dk for dk in d]

    names = [r.name for r in trace(centred, 3).records]
    assert names == ["x_1", "x_2", "x_3", "t1", "mu", "d_1", "d_2", "d_3", "y_1", "y_2", "y_3"]


def test_name_returns_its_value_so_it_can_wrap_an_expression():
    def f(x):
        v = x[0] * 2
        assert name(v, "v") is v
        return [v]

    assert trace(f, 1).records[-1].name == "y_1"


def test_stage_names_only_the_staged_view():
    def f(x):
        d = stage([xk * 3 for xk in x], "d")
        return [dk + 1 for dk in d]

    r = records_of(f)
    assert r["d_1"].named is False  # kept in the staged view only
    assert r["y_1"].named is True


def test_naming_a_value_twice_is_an_error():
    def twice(x):
        v = name(x[0] * 2, "a")
        name(v, "b")
        return [v]

    with pytest.raises(BngraphError, match="named twice: 'a' and 'b'"):
        trace(twice, 1)


def test_one_name_for_two_values_is_an_error():
    def clash(x):
        a, b = name(x[0] * 2, "a"), name(x[0] * 3, "a")
        return [a + b, a - b]

    with pytest.raises(BngraphError, match="'a' is given to two different traced values"):
        trace(clash, 2)


@pytest.mark.parametrize("label", ["L", "m", "i", "j", "x_1", "y_2", "dL_dmu"])
def test_reserved_names_are_refused(label):
    def f(x):
        return [name(x[0] * 2, label)]

    with pytest.raises(BngraphError, match="reserved"):
        trace(f, 1)


@pytest.mark.parametrize("label", ["two words", "3rd", "lambda", ""])
def test_names_must_be_identifiers(label):
    with pytest.raises(BngraphError, match="not a valid name"):
        trace(lambda x: [name(x[0] * 2, label)], 1)


def test_a_parameter_with_a_reserved_name_is_refused():
    def f(x, L):
        return [xk * L for xk in x]

    with pytest.raises(BngraphError, match="'L' is reserved"):
        trace(f, 1)


def test_an_input_cannot_be_renamed():
    def f(x):
        name(x[0], "a")
        return [xk * 2 for xk in x]

    with pytest.raises(BngraphError, match="cannot name 'a': it is the input or parameter itself"):
        trace(f, 1)


def test_name_passes_plain_numbers_through_so_the_function_also_runs_on_numbers():
    assert name(2.5, "a") == 2.5 and name([1.0, 2.0], "d") == [1.0, 2.0]
    with pytest.raises(BngraphError, match="reserved"):
        name(2.5, "L")  # the label is still checked


# -- what tracing cannot follow --------------------------------------------------------
def test_power_by_a_traced_exponent_is_an_error():
    with pytest.raises(BngraphError, match=r"\*\* traced value"):
        trace(lambda x: [x[0] ** x[1], x[1]], 2)
    with pytest.raises(BngraphError, match=r"number \*\* traced value"):
        trace(lambda x: [2 ** x[0]], 1)


@pytest.mark.parametrize("compare", [
    lambda a, b: a < b, lambda a, b: a <= b, lambda a, b: a > b,
    lambda a, b: a >= b, lambda a, b: a == b, lambda a, b: a != b, lambda a, b: a > 0,
])
def test_comparisons_are_errors(compare):
    def f(x):
        compare(x[0], x[1])
        return list(x)

    with pytest.raises(BngraphError, match="data-dependent control flow"):
        trace(f, 2)


def test_an_if_on_a_traced_value_is_an_error_that_says_where():
    def f(x):
        if x[0]:
            pass
        return list(x)

    with pytest.raises(BngraphError, match=r"an `if`.*test_trace\.py:\d+"):
        trace(f, 1)


def test_math_sqrt_on_a_traced_value_is_an_error_that_names_the_fix():
    with pytest.raises(BngraphError, match="Python number.*bngraph.sqrt"):
        trace(lambda x: [math.sqrt(x[0])], 1)


def test_sqrt_exp_log_also_work_on_plain_numbers():
    from bngraph.engine.trace import exp, log

    assert (sqrt(4.0), exp(0.0), log(1.0)) == (2.0, 1.0, 0.0)


def test_a_failure_inside_the_function_is_one_line_with_its_place():
    def broken(x):
        return [xk / undefined_name for xk in x]  # noqa: F821

    with pytest.raises(BngraphError, match=r"broken failed while being traced: NameError.*test_trace\.py:\d+\)$"):
        trace(broken, 2)


@pytest.mark.parametrize("returned, message", [
    (lambda x: list(x)[:-1], "returned 2 outputs for m = 3"),
    (lambda x: x[0] * 2, "returned a Value"),
    (lambda x: [1.0, 2.0, x[2] * 1], "y_1 of <lambda> is a constant"),
])
def test_the_function_must_return_m_traced_outputs(returned, message):
    with pytest.raises(BngraphError, match=message):
        trace(returned, 3)


@pytest.mark.parametrize("m, message", [(0, "at least 1"), (-1, "at least 1"), (2.5, "whole number"),
                                        ("3", "whole number"), (True, "whole number")])
def test_m_must_be_a_positive_whole_number(m, message):
    with pytest.raises(BngraphError, match=message):
        trace(lambda x: list(x), m)


def test_star_args_are_refused():
    with pytest.raises(BngraphError, match="no \\*args"):
        trace(lambda x, *params: list(x), 2)
