"""bngraph codegen: the generated NumPy modules, checked by bngraph's own tools and by finite
differences of the plain functions they come from, never by the engine's own output."""
import ast
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import sympy as sp

from bngraph.check.gradcheck import check_gradients
from bngraph.check.pytest_plugin import bngraph_gradcheck  # noqa: F401  (the plugin's fixture, for this module)
from bngraph.cli import main
from bngraph.codegen.names import Namer, variances
from bngraph.engine.layers import LAYERS
from bngraph.engine.usercode import load_function

USER_LAYERS = Path(__file__).parent / "data" / "user_layers.py"
REPO = Path(__file__).resolve().parents[1]
SIZES = ((1, 3), (2, 3), (5, 3), (64, 3))  # N = 1, 2, 5, 64 groups of D = 3 (axis 0), or rows (axis 1)
# user layers, and the built-in layer check-backward knows each by (None: no reference there)
USER = {"rmsnorm": None, "batchnorm_one_pass": "batchnorm", "my_batchnorm": "batchnorm",
        "layernorm_by_hand": "layernorm", "rmsnorm_rows": None, "log_softmax": None,
        "unnamed_layernorm_rows": "layernorm"}  # names nothing: its statistics are recognised


def generate(tmp_path, target, what, capsys=None) -> Path:
    """``bngraph codegen WHAT --target TARGET -o FILE`` through the command line; the file written."""
    args = [what] if what in LAYERS else ["--function", f"{USER_LAYERS}:{what}"]
    path = tmp_path / f"{what.replace('-', '_')}_{target}.py"
    assert main(["codegen", *args, "--target", target, "-o", str(path)]) == 0
    return path


def function_of(what):
    return what if what in LAYERS else f"{USER_LAYERS}:{what}"


# -- verified, not trusted ----------------------------------------------------------------------
@pytest.mark.parametrize("what", [*LAYERS, *(u for u, layer in USER.items() if layer)])
def test_generated_module_passes_check_backward_through_the_cli(what, tmp_path, capsys):
    path = generate(tmp_path, "numpy", what)
    layer = what if what in LAYERS else USER[what]
    assert main(["check-backward", f"{path}:backward", "--layer", layer]) == 0
    report = capsys.readouterr().out
    assert report.rstrip().endswith("OK") and f"forward: {path.name}:forward" in report


@pytest.mark.parametrize("what", [*LAYERS, *USER])
def test_generated_module_matches_finite_differences_of_the_plain_function(what, tmp_path, bngraph_gradcheck):
    path = generate(tmp_path, "numpy", what)
    report = bngraph_gradcheck(str(path), function=function_of(what), shapes=SIZES)
    learnable = [n for n in ("gamma", "beta", "weight") if f"d{n}" in dict((e[0], e) for e in report.errors)]
    assert [e[0] for e in report.errors] == ["out", "dx", *[f"d{n}" for n in learnable]]
    assert len(report.cases) == 2 * len(SIZES)


MUTANTS = {  # (what is changed in the generated batch norm, to what): each must be caught
    "sign of the offset flipped": ("        out += offset\n", "        out -= offset\n"),
    "the sum of dy dropped": ("        sum_dy += _batch_sum(dy[rows])\n", ""),
    "sign of the x-hat term flipped": ("coef_xhat = -", "coef_xhat = "),
    "1/std dropped from the dy term": ("np.multiply(dy[rows], gamma_inv_std, out=out)", "np.multiply(dy[rows], gamma, out=out)"),
    "a block of rows skipped": ("    for rows in reversed(_row_blocks(dy)):", "    for rows in reversed(_row_blocks(dy)[:-1]):"),
    "dgamma and dbeta swapped": ("return dx, dgamma, dbeta", "return dx, dbeta, dgamma"),
}


@pytest.mark.parametrize("mutant", MUTANTS)
def test_a_wrong_generated_module_fails_both_checks(mutant, tmp_path, capsys):
    text = generate(tmp_path, "numpy", "batchnorm").read_text()
    before, after = MUTANTS[mutant]
    assert before in text
    wrong = tmp_path / "mutant.py"
    wrong.write_text(text.replace(before, after))
    assert main(["check-backward", f"{wrong}:backward"]) == 1
    assert capsys.readouterr().out.rstrip().endswith("FAIL")
    assert not check_gradients(str(wrong), function="batchnorm", shapes=((5, 3), (64, 3)), seeds=(0,)).ok


def test_float32_in_float32_out_and_close_to_float64(tmp_path):
    for what in ("batchnorm", "layernorm", "log_softmax"):
        module = load_function(f"{generate(tmp_path, 'numpy', what)}:backward").__globals__
        rng = np.random.default_rng(0)
        x, dout = rng.normal(1.0, 2.0, (300, 4)), rng.normal(size=(300, 4))
        params = [1e-5 if p in ("eps", "epsilon") else rng.uniform(0.5, 2, 4)
                  for p in list(module["forward"].__code__.co_varnames[1:module["forward"].__code__.co_argcount])]
        out64, cache64 = module["forward"](x, *params)
        out32, cache32 = module["forward"](x.astype(np.float32),
                                           *[p if isinstance(p, float) else p.astype(np.float32) for p in params])
        grads64, grads32 = module["backward"](dout, cache64), module["backward"](dout.astype(np.float32), cache32)
        for a, b in zip((out32, *grads32), (out64, *grads64)):
            assert a.dtype == np.float32
            assert np.abs(a - b).max() <= 1e-5 * np.abs(b).max()


def test_backward_leaves_dout_and_the_cache_as_they_were(tmp_path):
    module = load_function(f"{generate(tmp_path, 'numpy', 'batchnorm')}:backward").__globals__
    rng = np.random.default_rng(1)
    x, dout = rng.normal(size=(70, 5)), rng.normal(size=(70, 5))
    _, cache = module["forward"](x, np.ones(5), np.zeros(5), 1e-5)
    kept = [np.copy(c) for c in cache], dout.copy()
    module["backward"](dout, cache)
    assert all(np.array_equal(a, b) for a, b in zip(cache, kept[0])) and np.array_equal(dout, kept[1])


# -- what the file says and looks like -------------------------------------------------------------
def test_batchnorm_module_reads_like_a_kernel_writer_wrote_it(tmp_path):
    text = generate(tmp_path, "numpy", "batchnorm").read_text()
    for line in ("mu = _batch_sum(x)/m", "x_minus_mu = x - mu", "inv_std = 1/np.sqrt(eps + sigma2)",
                 "xhat = inv_std*x_minus_mu", "out = beta + gamma*xhat", "cache = (xhat, inv_std, gamma)",
                 "sum_dy += _batch_sum(dy[rows])", "sum_dy_xhat += _batch_dot(dy[rows], xhat[rows])",
                 "gamma_inv_std = gamma*inv_std", "dgamma = sum_dy_xhat", "dbeta = sum_dy"):
        assert f"    {line}\n" in text, line
    assert not re.search(r"^ +(s\d+|x\d+|_common\d+|factor\w*|value\w*) = ", text, re.M)  # no generic names
    assert "def forward(x, gamma, beta, eps):" in text and "def backward(dout, cache):" in text


def test_header_says_what_the_module_was_generated_from(tmp_path):
    from bngraph import __version__

    text = generate(tmp_path, "numpy", "rmsnorm").read_text()
    doc = ast.get_docstring(ast.parse(text))
    assert doc.startswith(f"rmsnorm: forward and backward for NumPy, generated by bngraph {__version__}")
    assert f"bngraph codegen --function {USER_LAYERS}:rmsnorm --target numpy" in doc
    assert "rms = sqrt(epsilon + Sum(x[j]**2, (j, 1, m))/m)" in doc  # the definitions it implements
    assert re.search(r"^    dL_dx\[i\] = .*Sum\(dL_dy\[j\]\*x\[j\], \(j, 1, m\)\)", doc, re.M)
    assert "down each column (axis 0)" in doc


def test_generated_module_imports_numpy_only(tmp_path):
    tree = ast.parse(generate(tmp_path, "numpy", "layernorm").read_text())
    imported = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    imported |= {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    assert imported == {"numpy"}


def test_names_come_from_what_each_value_is_in_other_layers(tmp_path):
    texts = {w: generate(tmp_path, "numpy", w).read_text() for w in ("layernorm_by_hand", "rmsnorm", "log_softmax")}
    # the user's mean and var: the centred value and 1/√(var + ε) named from them
    assert "x_minus_mean = x - mean" in texts["layernorm_by_hand"] and "inv_std = 1/np.sqrt(eps + var)" in texts[
        "layernorm_by_hand"]
    assert "sum_dxhat_xhat = _batch_dot(dxhat, xhat[rows])" in texts["layernorm_by_hand"]  # rows: dL/dx̂ = γ·dy
    assert "inv_rms = 1/rms" in texts["rmsnorm"] and "sum_dy_x += _batch_dot(dy[rows], x[rows])" in texts["rmsnorm"]
    assert "np.multiply(np.exp(x[rows]), coef_exp_x, out=term)" in texts["log_softmax"]


def test_namer_reads_structure():
    dy, xhat, v, eps, m, j = sp.symbols("dy xhat v eps m j")
    namer = Namer(variances={v}, epsilons={eps})
    assert namer.describe(sp.Sum(dy, (j, 1, m))) == "sum_dy"
    assert namer.describe(1 / sp.sqrt(v + eps)) == "inv_std"
    assert namer.describe(sp.sqrt(xhat + eps)) == "sqrt_eps_plus_xhat"  # not a variance: no "std"
    assert namer.describe(-2 * xhat / m) == "neg_twice_xhat_over_m"
    assert namer.describe(sp.exp(-xhat)) == "exp_neg_xhat"
    assert namer.describe(xhat + v + dy) is None  # no short honest name: a generic one is used


def test_variances_are_measured_not_looked_up():
    from bngraph.closedform.plates import j, m
    x = sp.IndexedBase("x")
    mean = sp.Sum(x[j], (j, 1, m)) / m
    definitions = {"a": mean, "b": sp.Sum((x[j] - sp.Symbol("a")) ** 2, (j, 1, m)) / m,
                   "c": sp.Sum(x[j] ** 2, (j, 1, m)) / m - sp.Symbol("a") ** 2,
                   "d": sp.Sum((x[j] - sp.Symbol("a")) ** 2, (j, 1, m)) / (m - 1)}  # unbiased: not σ²
    assert variances(definitions) == {sp.Symbol("b"), sp.Symbol("c")}


def test_output_is_byte_identical_across_runs_and_hash_seeds(tmp_path):
    outputs = set()
    for seed in ("0", "1"):
        env = {**os.environ, "PYTHONHASHSEED": seed, "PYTHONPATH": str(REPO)}
        done = subprocess.run([sys.executable, "-m", "bngraph", "codegen", "--function", f"{USER_LAYERS}:rmsnorm_rows",
                               "--target", "numpy"], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120)
        assert done.returncode == 0, done.stderr
        outputs.add(done.stdout)
    outputs.add(generate(tmp_path, "numpy", "rmsnorm_rows").read_text())
    assert len(outputs) == 1


# -- bad input: one line, exit 2, nothing written ----------------------------------------------------
NOT_LIFTABLE = '''
def centre_on_first(x, gamma):
    return [gamma * (xk - x[0]) for xk in x]
'''


@pytest.mark.parametrize("args, fragment", [
    (["--target", "numpy", "--function", f"{USER_LAYERS}:clips_the_mean"], "data-dependent control flow"),
    (["--target", "numpy", "--function", "FOLDER/first.py:centre_on_first"], "no closed form for every m"),
    (["--target", "fortran"], "invalid choice: 'fortran'"),
    ([], "the following arguments are required: --target"),
    (["layernorm", "--function", f"{USER_LAYERS}:rmsnorm", "--target", "numpy"], "either a LAYER or --function"),
    (["groupnorm", "--target", "numpy"], "unknown layer 'groupnorm'"),
])
def test_bad_input_is_one_line_and_writes_nothing(args, fragment, tmp_path, capsys):
    (tmp_path / "first.py").write_text(NOT_LIFTABLE)
    out = tmp_path / "out.py"
    args = [a.replace("FOLDER", str(tmp_path)) for a in args]
    assert main(["codegen", *args, "-o", str(out)]) == 2
    captured = capsys.readouterr()
    assert captured.err.count("\n") == 1 and fragment in captured.err and "Traceback" not in captured.err
    assert not out.exists() and list(tmp_path.iterdir()) == [tmp_path / "first.py"]


def test_output_must_be_a_python_file(tmp_path, capsys):
    assert main(["codegen", "--target", "numpy", "-o", str(tmp_path / "bn.txt")]) == 2
    assert "must name a .py file" in capsys.readouterr().err and not list(tmp_path.iterdir())


def test_without_output_the_module_goes_to_standard_output(capsys):
    assert main(["codegen", "batchnorm-eval", "--target", "numpy"]) == 0
    text = capsys.readouterr().out
    assert "def forward(x, gamma, beta, running_mean, running_var, eps):" in text  # check-backward's order
    compile(text, "batchnorm_eval.py", "exec")


# -- the pytest helper -------------------------------------------------------------------------------
def test_gradcheck_fixture_fails_a_wrong_backward_with_its_report(tmp_path):
    path = generate(tmp_path, "numpy", "rmsnorm")
    (tmp_path / "test_user.py").write_text(textwrap.dedent(f"""
        def test_generated(bngraph_gradcheck):
            bngraph_gradcheck({str(path)!r}, function={str(USER_LAYERS) + ':rmsnorm'!r})

        def test_wrong(bngraph_gradcheck):
            from pathlib import Path
            text = Path({str(path)!r}).read_text().replace("coef_x = -", "coef_x = ")
            Path("wrong.py").write_text(text)
            bngraph_gradcheck("wrong.py", function={str(USER_LAYERS) + ':rmsnorm'!r})
    """))
    import importlib.metadata
    installed = any(ep.name == "bngraph" for ep in importlib.metadata.entry_points(group="pytest11"))
    load_plugin = [] if installed else ["-p", "bngraph.check.pytest_plugin"]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", *load_plugin, "-p", "no:cacheprovider", "test_user.py"],
                          capture_output=True, text=True, cwd=tmp_path, env=env, timeout=120)
    assert "1 failed, 1 passed" in done.stdout, done.stdout[-3000:]
    assert "dx differs from the reference" in done.stdout and "gradient check of wrong.py:backward" in done.stdout


def test_gradcheck_without_a_function_uses_the_forward(tmp_path):
    from bngraph.check.reference import batchnorm_backward_compact, batchnorm_forward

    assert check_gradients(batchnorm_backward_compact, batchnorm_forward).ok

    def backward_off_by_a_bit(dout, cache):
        dx, dgamma, dbeta = batchnorm_backward_compact(dout, cache)
        return dx * 1.001, dgamma, dbeta

    report = check_gradients(backward_off_by_a_bit, batchnorm_forward)
    assert not report.ok and report.problems == ("dx differs from the reference (max relative error 0.001)",)


def test_readme_excerpt_is_what_codegen_writes(capsys):
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    excerpt = readme.split("## Generate the code", 1)[1].split("```python", 1)[1].split("```", 1)[0]
    assert main(["codegen", "--target", "numpy"]) == 0
    generated = capsys.readouterr().out
    assert excerpt.strip("\n") in generated


def test_generated_forward_says_what_shape_it_takes(tmp_path):
    forward = load_function(f"{generate(tmp_path, 'numpy', 'batchnorm')}:forward")
    with pytest.raises(ValueError, match=r"x must have shape \(N, D\), not \(4,\)"):
        forward(np.ones(4), np.ones(1), np.zeros(1), 1e-5)
    out, _ = forward([[1, 2], [3, 5]], [1.0, 1.0], [0.0, 0.0], 1e-5)  # integers in: float64 out
    assert out.dtype == np.float64


STANDARDIZE = '''
from bngraph import name, sqrt

def standardize(x, eps):
    m = len(x)
    mu = name(sum(x) / m, "mu")
    var = name(sum((xk - mu) ** 2 for xk in x) / m, "var")
    return [(xk - mu) / sqrt(var + eps) for xk in x]
'''


def test_a_layer_without_learnable_parameters_returns_dx_alone(tmp_path):
    (tmp_path / "standardize.py").write_text(STANDARDIZE)
    path = tmp_path / "gen.py"
    assert main(["codegen", "--function", f"{tmp_path / 'standardize.py'}:standardize", "--target", "numpy",
                 "-o", str(path)]) == 0
    text = path.read_text()
    assert "def forward(x, eps):" in text and "    return dx,\n" in text and "inv_std = 1/np.sqrt(eps_plus_var)" in text
    # N = 1 is left out: y is constant there, and this closed form (in x, not x-hat) cancels terms of size 1/ε^1.5
    report = check_gradients(str(path), function=f"{tmp_path / 'standardize.py'}:standardize", shapes=((2, 3), (5, 3)))
    assert report.ok, report.format()


# -- NumPy forwards as people write them (tests/data/numpy_forwards.py, sources there) ---------------
NUMPY_FORWARDS = Path(__file__).parent / "data" / "numpy_forwards.py"


@pytest.mark.parametrize("function, axis, layer", [
    ("cs231n_np_var", None, "batchnorm"),  # (x, gamma, beta, bn_param) -> (out, cache)
    ("kratzert_nine_steps", None, "batchnorm"),
    ("numpy_ml_batchnorm1d", None, "batchnorm"),
    ("transposed", None, "batchnorm"),
    ("layernorm_last_axis", 1, "layernorm"),  # np.mean(x, axis=-1): one row of m entries
])
def test_module_generated_from_numpy_forward_passes_check_backward(function, axis, layer, tmp_path, capsys):
    path = tmp_path / f"{function}.py"
    args = ["codegen", "--function", f"{NUMPY_FORWARDS}:{function}", "--target", "numpy", "-o", str(path)]
    assert main(args + ([] if axis is None else ["--axis", str(axis)])) == 0
    assert main(["check-backward", f"{path}:backward", "--layer", layer]) == 0
    assert capsys.readouterr().out.rstrip().endswith("OK")


def test_axis_option_is_what_the_module_normalises_over(tmp_path, capsys):
    """Without --axis a row-wise forward is generated down the columns: check-backward says so."""
    path = tmp_path / "ln.py"
    assert main(["codegen", "--function", f"{NUMPY_FORWARDS}:layernorm_last_axis", "--target", "numpy",
                 "-o", str(path)]) == 0
    assert "down each column (axis 0)" in path.read_text()
    assert main(["check-backward", f"{path}:backward", "--layer", "layernorm"]) == 1
    assert main(["codegen", "--function", f"{NUMPY_FORWARDS}:layernorm_last_axis", "--target", "numpy",
                 "--axis", "1", "-o", str(path)]) == 0
    text = path.read_text()
    assert "along each row (axis 1)" in text and "--target numpy --axis 1\n" in text
    capsys.readouterr()
    assert main(["check-backward", f"{path}:backward", "--layer", "layernorm"]) == 0
