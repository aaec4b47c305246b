"""`bngraph verify`: every check passes on the real engine, and a wrong derivation fails."""
from __future__ import annotations

import dataclasses
import re
from types import MappingProxyType

import pytest
import sympy as sp

from bngraph.cli import main
from bngraph.engine.derive import Adjoint, derive
from bngraph.engine.graph import build_graph
from bngraph.engine.layers import LAYERS
from bngraph.closedform.simplify import closed_form
from bngraph.check.verify import verify

USER = "tests/data/user_layers.py"


@pytest.mark.parametrize("layer", list(LAYERS))
@pytest.mark.parametrize("m", [1, 2, 4])
def test_every_check_passes_for_the_builtin_layers(layer, m):
    d = derive(build_graph(LAYERS[layer].trace(m), "named", layer))
    report = verify(d, closed_form(d))
    assert report.ok, report.format()
    checks = {c.check for c in report.checks}
    assert {"adjoints (named view) vs NumPy reference", "adjoints (staged view) vs finite differences",
            "closed form vs autograd", "NumPy reference vs finite differences"} <= checks
    assert all(c.error <= c.threshold for c in report.checks if not c.informational)


@pytest.mark.parametrize("m", [2, 3])
def test_a_wrong_adjoint_is_caught(m):
    d = derive(build_graph(LAYERS["batchnorm"].trace(m), "named", "batchnorm"))
    good = d.adjoints["x_2"]
    # drop the term that reaches x_2 through μ: the classic slip
    wrong_terms = tuple((c, p) for c, p in good.terms if c != "mu")
    wrong = Adjoint("x_2", wrong_terms, sp.Add(*(sp.Symbol(f"dL_d{c}") * p for c, p in wrong_terms)))
    adjoints = dict(d.adjoints)
    adjoints["x_2"] = wrong
    broken = dataclasses.replace(d, adjoints=MappingProxyType(adjoints), _memo={})
    report = verify(broken)
    assert not report.ok and report.exit_code == 1
    failed = {(c.check, c.gradient) for c in report.checks if not c.passed}
    assert ("adjoints (named view) vs NumPy reference", "dx") in failed
    assert ("adjoints (named view) vs finite differences", "dx") in failed
    assert ("adjoints (staged view) vs NumPy reference", "dx") not in failed  # staged untouched


def test_the_report_shows_the_float32_one_pass_variance_losing_precision(capsys):
    assert main(["verify", "--m", "3"]) == 0
    out = capsys.readouterr().out
    row = next(line for line in out.splitlines() if line.startswith("float32 variance, one pass"))
    assert row.endswith("info") and float(row.split()[-3]) > 0.1
    assert "loses its digits" in out and "0 failed" in out


@pytest.mark.parametrize("func", ["my_batchnorm", "batchnorm_one_pass", "rmsnorm", "log_softmax"])
def test_user_functions_are_checked_against_their_own_finite_differences_and_autograd(func, capsys):
    assert main(["verify", "--function", f"{USER}:{func}", "--m", "4"]) == 0
    out = capsys.readouterr().out
    assert "vs finite differences" in out and "vs autograd" in out and "FAIL" not in out


def test_builtin_layers_keep_their_registry_name_so_every_reference_is_used():
    d = derive(build_graph(LAYERS["batchnorm-eval"].trace(3), "named"))  # no layer name given
    assert d.graph.layer == "batchnorm-eval"
    assert any(c.check.endswith("vs NumPy reference") for c in verify(d).checks)


# -- closed forms that use definitions, NumPy forwards, and functions with no real value ------
@pytest.mark.parametrize("func", ["rmsnorm", "log_softmax"])
def test_closed_forms_with_definitions_of_their_own_are_evaluated(func, capsys):
    assert main(["verify", "--function", f"{USER}:{func}", "--m", "3"]) == 0
    out = capsys.readouterr().out
    assert "closed form vs finite differences" in out and "closed form vs autograd" in out
    assert "closed-form forward y[i] vs traced forward" in out and "not evaluated" not in out


def test_a_wrong_definition_in_the_closed_form_is_caught():
    from bngraph.engine.usercode import load_function
    from bngraph.closedform.simplify import closed_form_of

    func = load_function(f"{USER}:log_softmax")
    d = derive(build_graph(trace_of(func, 3), "named"))
    closed = closed_form_of(func, "log_softmax")
    lse = sp.Symbol("lse")
    wrong = dict(closed.definitions)
    wrong["lse"] = closed.definitions["lse"] * 2  # a slip in a definition the formulas lean on
    report = verify(d, dataclasses.replace(closed, definitions=MappingProxyType(wrong)))
    failed = {(c.check, c.gradient) for c in report.checks if not c.passed}
    assert ("closed-form forward y[i] vs traced forward", "y") in failed
    assert ("closed form vs finite differences", "dx") in failed
    assert lse in closed.formulas["dL_dx[i]"].free_symbols or lse in closed.definitions["y[i]"].free_symbols


def trace_of(func, m):
    from bngraph.engine.trace import trace

    return trace(func, m)


@pytest.mark.parametrize("func", ["cs231n_np_var", "unbiased_ddof1"])
def test_numpy_forwards_are_checked_against_finite_differences_of_the_same_code(func, capsys):
    assert main(["verify", "--function", f"tests/data/numpy_forwards.py:{func}", "--m", "4"]) == 0
    out = capsys.readouterr().out
    assert "closed form vs finite differences" in out and "FAIL" not in out


NO_REAL_VALUE = '''
def half_power(x, gamma):
    return [xk**0.5 * gamma for xk in x]

def zero_denominator(x, gamma):
    return [gamma / (xk - 1.0) for xk in x]
'''


@pytest.mark.parametrize("func, reason", [("half_power", "not real"), ("zero_denominator", "not finite")])
def test_a_function_with_no_real_value_at_the_point_is_one_line_naming_output_and_input(func, reason, tmp_path,
                                                                                       capsys, monkeypatch):
    from bngraph.check import verify as module

    path = tmp_path / "no_real.py"
    path.write_text(NO_REAL_VALUE)
    if func == "zero_denominator":  # a draw that lands on the pole: x_2 = 1
        draw = module.random_point
        monkeypatch.setattr(module, "random_point", lambda g, seed, eps: (
            lambda leaves, up: ({**leaves, "x_2": 1.0}, up))(*draw(g, seed, eps)))
    assert main(["verify", "--function", f"{path}:{func}"]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err.count("\n") == 1 and "internal error" not in captured.err
    found = re.search(rf"(y_(\d+)) is {reason} at x_(\d+) = (-?[\d.e-]+)", captured.err)
    assert found and found[2] == found[3], captured.err  # the output, and its own input
    if func == "half_power":
        assert float(found[4]) < 0  # the root of a negative number


# -- the float64 evaluation verify uses (issue 17) agrees with the exact one, and falls back to it ------
@pytest.mark.parametrize("view", ["named", "staged"])
@pytest.mark.parametrize("layer", list(LAYERS))
def test_compiled_values_agree_with_the_exact_walk(layer, view):
    from bngraph.closedform.evaluate import (_exactly, adjoint_values, closed_form_values, compiled_values,
                                             forward_values, random_point)

    d = derive(build_graph(LAYERS[layer].trace(5), view, layer))
    leaves, upstream = random_point(d.graph, 3)
    forward, adjoints = compiled_values(d)(leaves, upstream)
    exact = forward_values(d.graph, leaves)
    exact_adjoints = adjoint_values(d, exact, upstream)
    assert list(forward) == list(exact) and list(adjoints) == list(exact_adjoints)
    for got, want in ((forward, exact), (adjoints, exact_adjoints)):
        assert all(abs(got[k] - want[k]) <= 1e-12 * (1 + abs(want[k])) for k in want)
    closed = closed_form(d)
    fast = closed_form_values(closed, leaves, upstream, 5)  # NumPy over the batch
    for key, formula in closed.formulas.items():  # each formula instantiated at every i, exactly
        known = {sp.Symbol(k): sp.Float(v) for k, v in {**exact, **upstream}.items()}
        want = _exactly(key, formula, known, 5)
        assert fast[key] == pytest.approx(want, rel=1e-12, abs=1e-12), key


def test_compiled_values_name_the_value_that_is_not_a_number():
    from bngraph.closedform.evaluate import NotANumber, compiled_values, forward_values

    d = derive(build_graph(LAYERS["batchnorm"].trace(3), "named", "batchnorm"))
    leaves = {"x_1": 1.0, "x_2": 2.0, "x_3": 3.0, "gamma": 1.0, "beta": 0.0, "epsilon": -5.0}  # √(σ² + ε) of -13/3
    with pytest.raises(NotANumber) as exact:
        forward_values(d.graph, leaves)
    with pytest.raises(NotANumber) as compiled:
        compiled_values(d)(leaves, {"dL_dy_1": 1.0, "dL_dy_2": 0.0, "dL_dy_3": 0.0})
    assert (compiled.value.name, compiled.value.reason) == (exact.value.name, exact.value.reason) == ("xhat_1", "not real")


@pytest.mark.parametrize("text", ["x - 2*y", "(-2*x)**2", "1/(-2*x*y)", "-(x*y)**3 + x", "sqrt(-3*x + y)*exp(-x/2)",
                                  "x**(-1.5)*(-y)", "Rational(-1, 3)*x*(x - y)", "(x + y)*(-x)"])
def test_verifys_code_printer_prints_what_sympys_prints(text):
    # its doprint skips CodePrinter's rebuild for re(UnevaluatedExpr) and decides a product's sign
    # from its coefficient: the code must stay SymPy's, character for character
    import sympy as sp
    from sympy.printing.pycode import PythonCodePrinter

    from bngraph.closedform.evaluate import _SafeNamePrinter

    x, y = sp.symbols("x y")
    expr = sp.sympify(text, locals={"x": x, "y": y})  # a test's own literal, not user input
    safe = {"x": "_bngraph_x", "y": "_bngraph_y"}
    ours = _SafeNamePrinter(safe).doprint(expr)
    theirs = PythonCodePrinter({"fully_qualified_modules": False, "order": "none"}).doprint(
        expr.xreplace({x: sp.Symbol("_bngraph_x"), y: sp.Symbol("_bngraph_y")}))
    assert ours == theirs


def test_verifys_code_printer_unwraps_re_of_an_unevaluated_real_as_sympy_does():
    import sympy as sp

    from bngraph.closedform.evaluate import _SafeNamePrinter

    from sympy.printing.pycode import PythonCodePrinter

    r = sp.Symbol("r", real=True)
    ours = _SafeNamePrinter({"r": "_bngraph_r"}).doprint(sp.re(sp.UnevaluatedExpr(r)) + 1)
    r = sp.Symbol("_bngraph_r", real=True)
    assert ours == PythonCodePrinter({"fully_qualified_modules": False, "order": "none"}).doprint(
        sp.re(sp.UnevaluatedExpr(r)) + 1) == "1 + _bngraph_r"


def test_verify_imports_none_of_check_backwards_modules():
    # bngraph.check's names are imported on first use (issue 17: verify's start-up)
    import subprocess
    import sys

    script = ("import sys, bngraph.check.verify, bngraph.check as c; print(sorted(m for m in sys.modules "
              "if m.startswith('bngraph.check.'))); c.check_backward; print('bngraph.check.backward' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    before, after = done.stdout.splitlines()
    assert "bngraph.check.backward" not in before and "bngraph.check.gradcheck" not in before
    assert after == "True"
