"""check-backward: students' backwards from tests/data/, right and wrong, and what bngraph tells them."""

import argparse
import dataclasses
import importlib.metadata
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from bngraph.check.backward import BackwardReport, assert_backward_matches, check_backward, cli_check_backward, load_function
from bngraph.check.diagnose import Case, diagnose
from bngraph.errors import BngraphError
from bngraph.check.pytest_plugin import bngraph_check  # noqa: F401  (the plugin's fixture, for this module)
from bngraph.check.reference import batchnorm_backward_compact, batchnorm_forward, reference_backward, reference_forward

DATA = Path(__file__).parent / "data"
CORRECT = DATA / "student_correct.py"
MISTAKES = DATA / "student_mistakes.py"


def check(file, name, **options):
    return check_backward(load_function(f"{file}:{name}"), **options)


def check_named(report, name):
    return next(c for c in report.checks if c.name == name)


# -- correct backwards pass ------------------------------------------------------------
@pytest.mark.parametrize("name, options", [
    ("batchnorm_backward", {}),  # staged, cache tuple, forward(x, gamma, beta, bn_param)
    ("batchnorm_backward_alt", {}),  # closed form; forward found as batchnorm_forward
    ("bn_backward", {}),  # forward(x, gamma, beta, eps) with a dict cache
    ("bn_backward_from_inputs", {}),  # no cache: (dout, x, gamma, beta, eps)
    ("layernorm_backward", {"layer": "layernorm"}),
    ("spatial_batchnorm_backward", {"shapes": [(2, 3, 4, 5), (3, 2, 2, 2)]}),
    ("batchnorm_backward", {"shapes": [(1, 3)]}),  # N = 1: σ² = 0, dx = 0 exactly
], ids=["staged", "compact", "eps-dict-cache", "no-cache", "layernorm", "spatial", "one-example"])
def test_correct_backwards_pass(name, options):
    report = check(CORRECT, name, **options)
    assert report.ok and report.exit_code == 0, report.format()
    assert report.problems == ()
    assert [c.name for c in report.checks][-3:] == ["dx", "dgamma", "dbeta"]
    for c in report.checks:
        assert c.passed and c.max_relative_error < 1e-9 and c.cases_run == len(report.cases)


def test_correct_eval_backward_with_the_course_forward_in_test_mode():
    backward = load_function(f"{CORRECT}:batchnorm_eval_backward")
    report = check_backward(backward, forward=backward.__globals__["batchnorm_forward"], layer="batchnorm-eval")
    assert report.ok, report.format()
    assert report.forward == "student_correct.py:batchnorm_forward"


def test_default_cases_cover_small_and_larger_batches_and_two_epsilons():
    report = check(CORRECT, "batchnorm_backward_alt")
    assert len(report.cases) == 12
    assert report.cases[0] == "x (2, 3), seed 0, ε 1e-05"
    assert report.coverage == "x (2, 3), (4, 3), (16, 5) × seeds 0, 1 × ε 1e-05, 0.01"


def test_report_is_a_frozen_table():
    report = check(CORRECT, "batchnorm_backward")
    text = report.format()
    assert text.splitlines()[0] == "check-backward student_correct.py:batchnorm_backward  (layer batchnorm)"
    for row in ("out", "dx", "dgamma", "dbeta"):
        assert any(line.split()[:1] == [row] and line.endswith("ok") for line in text.splitlines())
    assert text.endswith("OK")
    with pytest.raises(dataclasses.FrozenInstanceError):
        report.problems = ("changed",)


# -- wrong backwards get the right diagnosis ---------------------------------------------
MISTAKE_CASES = [
    ("batchnorm_backward_no_inv_n", {}, "dx", "without the 1/N factor"),
    ("batchnorm_backward_sign", {}, "dx", "the x̂·Σ(dout·x̂) term's sign flipped; the correct term is −x̂_i Σ_j dout_j x̂_j"),
    ("batchnorm_backward_n_minus_1", {}, "dx", "1/(N−1) instead of 1/N in the derivative of σ²"),
    ("bn_backward_unbiased", {}, "dx", "evaluated with the unbiased variance (1/(N−1))"),
    ("batchnorm_backward_dgamma_axis", {}, "dgamma", "summed over the wrong axis: it matches Σ dout·x̂ over axis 1"),
    ("bn_backward_no_eps", {}, "dx", "the gradient with ε left out"),
    ("batchnorm_backward_constants", {}, "dx", "as if μ and σ² were constants"),
    ("batchnorm_backward_dbeta_not_summed", {}, "dbeta", "it is not summed"),
    ("layernorm_backward_wrong_axis", {"layer": "layernorm"}, "dgamma", "summed over the wrong axis"),
    ("batchnorm_eval_backward", {"layer": "batchnorm-eval"}, "dx", "the training-mode gradient"),
]


@pytest.mark.parametrize("name, options, gradient, diagnosis", MISTAKE_CASES, ids=[c[0] for c in MISTAKE_CASES])
def test_wrong_backward_is_named(name, options, gradient, diagnosis):
    report = check(MISTAKES, name, **options)
    assert not report.ok and report.exit_code == 1
    assert not check_named(report, gradient).passed
    dx_problem = next(p for p in report.problems if p.startswith(f"{gradient} is wrong: "))
    assert diagnosis in dx_problem


def test_only_the_wrong_gradient_fails():
    report = check(MISTAKES, "batchnorm_backward_sign")
    assert [c.name for c in report.checks if not c.passed] == ["dx"]
    assert check_named(report, "dx").max_relative_error > 0.1
    assert check_named(report, "dgamma").max_relative_error < 1e-12
    assert len(report.problems) == 1
    assert "WRONG" in report.format() and report.format().endswith("FAIL")


def test_unbiased_variance_spoils_dgamma_too():
    report = check(MISTAKES, "bn_backward_unbiased")
    assert any(p.startswith("dgamma is wrong: it matches Σ dout·x̂ with x̂ from the unbiased") for p in report.problems)
    assert check_named(report, "dbeta").passed


def test_forgotten_epsilon_in_the_forward_is_reported_for_the_forward_too():
    report = check(MISTAKES, "bn_backward_no_eps_cached", forward=load_function(f"{MISTAKES}:bn_forward_no_eps"))
    assert report.problems[0].startswith("the forward's output is wrong: it matches γ·x̂ + β with ε left out")
    assert any("dx is wrong: it matches the gradient with ε left out" in p for p in report.problems)


def test_two_slips_at_once_are_named_by_the_term_fit():
    report = check(MISTAKES, "batchnorm_backward_two_slips")
    (problem,) = report.problems
    assert "the Σ dout term is missing" in problem
    assert "the x̂·Σ(dout·x̂) term has the wrong sign" in problem


def test_unknown_mistake_gets_the_correct_formula():
    (problem,) = check(MISTAKES, "batchnorm_backward_garbled").problems
    assert "matches none of the common mistakes" in problem
    assert "dx = γ/(N·√(σ²+ε)) · (N·dout − Σ_j dout_j − x̂·Σ_j dout_j·x̂_j)" in problem


def test_diagnose_names_a_mistake_from_arrays():
    rng = np.random.default_rng(0)
    case = Case("batchnorm", rng.normal(size=(5, 2)), np.array([1.5, 0.7]), np.zeros(2), rng.normal(size=(5, 2)), 1e-3)
    student_dbeta = case.dout.copy()  # "dbeta = dout", not summed over the batch
    assert diagnose("dbeta", [case], [student_dbeta]).startswith("it is not summed")
    assert diagnose("dbeta", [case], [case.dout.sum(axis=0) * 3.0]) is None  # nothing known fits


# -- broken user code: verdicts, never our traceback ------------------------------------
@pytest.mark.parametrize("name, verdict", [
    ("batchnorm_backward_raises", "backward raised NotImplementedError: TODO: implement the backward pass "
                                  "(student_mistakes.py, line "),
    ("batchnorm_backward_two_items", "backward returned a tuple of 2 items; expected (dx, dgamma, dbeta)"),
    ("batchnorm_backward_nan", "dx contains inf at [0, 0] (x (2, 3), seed 0, ε 1e-05)"),
    ("batchnorm_backward_transposed", "dx has shape (3, 2); expected (2, 3) (x (2, 3), seed 0, ε 1e-05)"),
], ids=["raises", "two-items", "inf", "transposed"])
def test_broken_backward_gets_a_named_verdict(name, verdict):
    report = check(MISTAKES, name)
    assert not report.ok and report.exit_code == 1
    assert verdict in report.problems[0]
    assert "Traceback" not in report.format()


def test_backward_returning_nan_and_none(tmp_path):
    source = tmp_path / "nan_student.py"
    source.write_text(textwrap.dedent("""
        import numpy as np
        def bn_backward_nan(dout, x, gamma, beta, eps):
            return np.sqrt(-np.ones_like(dout)), gamma * 0, dout.sum(0)
        def bn_backward_none(dout, x, gamma, beta, eps):
            return dout, None, dout.sum(0)
    """))
    assert check_backward(load_function(f"{source}:bn_backward_nan")).problems[0].startswith("dx contains NaN at [0, 0]")
    problem = check_backward(load_function(f"{source}:bn_backward_none")).problems[0]
    assert problem.startswith("backward returned None for dgamma; expected an array")


def test_forward_with_an_unnamed_fourth_parameter_is_tried_both_ways():
    def bn_forward(x, gamma, beta, p):  # p is the course's bn_param dict
        _, cache = batchnorm_forward(x, gamma, beta, p["eps"])
        return _, cache

    report = check_backward(batchnorm_backward_compact, forward=bn_forward)
    assert report.ok, report.format()


def test_forward_that_raises_is_a_verdict():
    def broken_forward(x, gamma, beta, eps):
        raise ValueError("shapes\ndo not match")

    report = check_backward(batchnorm_backward_compact, forward=broken_forward)
    assert report.problems == ("forward raised ValueError: shapes do not match (test_check.py, line "
                               f"{broken_forward.__code__.co_firstlineno + 1}); case x (2, 3), seed 0, ε 1e-05",)
    assert [c.cases_run for c in report.checks] == [0, 0, 0, 0]
    assert "not run" in report.format()


# -- bad input is a BngraphError with one line -----------------------------------------
@pytest.mark.parametrize("spec, message", [
    ("tests/data/nowhere.py:f", "no such file: tests/data/nowhere.py"),
    (f"{CORRECT}:no_such_backward", "has no function 'no_such_backward' (it has: batchnorm_backward,"),
    (str(CORRECT), "expected FILE.py:FUNC"),
    (f"{DATA}:f", "no such file"),
])
def test_load_function_refuses_bad_specs(spec, message):
    with pytest.raises(BngraphError) as error:
        load_function(spec)
    assert message in str(error.value) and "\n" not in str(error.value)


def test_load_function_reports_broken_files_in_one_line(tmp_path):
    (tmp_path / "broken.py").write_text("def f(:\n    pass\n")
    (tmp_path / "crashes.py").write_text("import numpy\nraise RuntimeError('no GPU\\nfound')\n")
    (tmp_path / "notes.txt").write_text("def f(): pass\n")
    with pytest.raises(BngraphError, match=r"broken.py: SyntaxError: .* \(line 1\)$"):
        load_function(f"{tmp_path / 'broken.py'}:f")
    with pytest.raises(BngraphError, match=r"crashes.py: RuntimeError: no GPU found$"):
        load_function(f"{tmp_path / 'crashes.py'}:f")
    with pytest.raises(BngraphError, match="not a Python file"):
        load_function(f"{tmp_path / 'notes.txt'}:f")


def test_user_file_can_import_its_neighbour(tmp_path):
    (tmp_path / "helpers_bn.py").write_text("def total(a):\n    return a.sum(axis=0)\n")
    (tmp_path / "uses_helper.py").write_text(textwrap.dedent("""
        from helpers_bn import total
        def bn_backward(dout, x, gamma, beta, eps):
            xhat = (x - x.mean(0)) / (x.var(0) + eps) ** 0.5
            g = dout * gamma
            dx = (g - g.mean(0) - xhat * (g * xhat).mean(0)) / (x.var(0) + eps) ** 0.5
            return dx, total(dout * xhat), total(dout)
    """))
    assert check_backward(load_function(f"{tmp_path / 'uses_helper.py'}:bn_backward")).ok


def test_usage_errors():
    staged = load_function(f"{CORRECT}:batchnorm_backward")
    with pytest.raises(BngraphError, match="unknown layer 'instancenorm'"):
        check_backward(staged, layer="instancenorm")
    with pytest.raises(BngraphError, match="must take \\(dout, cache\\) or \\(dout, x, gamma, beta, eps\\)"):
        check_backward(lambda dout, x, cache: None)

    def my_backward(dout, cache):
        return None

    with pytest.raises(BngraphError, match="there is no my_forward next to it; name its forward"):
        check_backward(my_backward)
    with pytest.raises(BngraphError, match="must take \\(x, gamma, beta, eps\\) or \\(x, gamma, beta, bn_param\\)"):
        check_backward(staged, forward=lambda x: None)


# -- pytest helpers and the command-line entry --------------------------------------------
def test_assert_backward_matches_raises_with_the_report():
    assert assert_backward_matches(f"{CORRECT}:batchnorm_backward_alt").ok
    with pytest.raises(AssertionError) as error:
        assert_backward_matches(f"{MISTAKES}:batchnorm_backward_sign")
    assert "dx is wrong: it matches the correct formula with the x̂·Σ(dout·x̂) term's sign flipped" in str(error.value)


def test_plugin_fixture(bngraph_check):
    report = bngraph_check(f"{CORRECT}:layernorm_backward", layer="layernorm")
    assert isinstance(report, BackwardReport) and report.ok


def test_plugin_fails_a_test_with_the_report(tmp_path):
    (tmp_path / "test_student.py").write_text(textwrap.dedent(f"""
        def test_sign(bngraph_check):
            bngraph_check({str(MISTAKES) + ':batchnorm_backward_sign'!r})
    """))
    installed = any(ep.name == "bngraph" for ep in importlib.metadata.entry_points(group="pytest11"))
    load_plugin = [] if installed else ["-p", "bngraph.check.pytest_plugin"]  # loading it twice is an error
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parent.parent)}
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", *load_plugin, "-p", "no:cacheprovider", str(tmp_path / "test_student.py")],
        capture_output=True, text=True, cwd=tmp_path, env=env, timeout=60)
    assert result.returncode == 1
    assert "sign flipped" in result.stdout and "1 failed" in result.stdout


def test_cli_check_backward_prints_the_report_and_returns_the_exit_code(capsys):
    ok = cli_check_backward(argparse.Namespace(target=f"{CORRECT}:batchnorm_backward", forward=None, layer=None))
    assert ok == 0 and capsys.readouterr().out.rstrip().endswith("OK")
    args = argparse.Namespace(target=f"{MISTAKES}:batchnorm_backward_no_inv_n", forward="batchnorm_forward",
                              layer="batchnorm")
    assert cli_check_backward(args) == 1
    assert "without the 1/N factor" in capsys.readouterr().out
    args = argparse.Namespace(target=f"{MISTAKES}:bn_backward_no_eps_cached",
                              forward=f"{MISTAKES}:bn_forward_no_eps", layer="batchnorm")
    assert cli_check_backward(args) == 1
    assert "forward: student_mistakes.py:bn_forward_no_eps" in capsys.readouterr().out
    with pytest.raises(BngraphError, match="has no function 'nope'"):
        cli_check_backward(argparse.Namespace(target=f"{CORRECT}:batchnorm_backward", forward="nope", layer=None))


@pytest.mark.parametrize("eps", [0.0, -1e-5, float("nan"), "0.1"])
def test_a_non_positive_or_non_numeric_epsilon_is_bad_input(eps):
    with pytest.raises(BngraphError, match="eps must be a positive number"):
        check_backward(load_function(f"{CORRECT}:batchnorm_backward"), epsilons=(eps,))
    with pytest.raises(BngraphError, match="eps must be a positive number"):
        reference_forward("batchnorm", np.ones((3, 2)), np.ones(2), np.zeros(2), eps)


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_nan_or_infinite_input_is_bad_input(bad):
    x = np.ones((3, 2))
    x[1, 1] = bad
    with pytest.raises(BngraphError, match="x contains NaN or infinity"):
        reference_forward("batchnorm", x, np.ones(2), np.zeros(2))
    dout = np.ones((2, 3))
    dout[0, 2] = bad
    with pytest.raises(BngraphError, match="dout contains NaN or infinity"):
        reference_backward("layernorm", dout, np.arange(6.0).reshape(2, 3), np.ones(3), np.zeros(3))


def test_a_file_rewritten_within_the_same_second_is_imported_afresh(tmp_path):
    path = tmp_path / "twice.py"
    path.write_text("def f():\n    return 1\n")
    assert load_function(f"{path}:f")() == 1
    stat = path.stat()
    path.write_text("def f():\n    return 2\n")  # same size, and keep the same mtime too
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert load_function(f"{path}:f")() == 2
