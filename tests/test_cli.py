"""The command line: byte-identical JSON whatever the hash seed, one-line errors with exit
status 2 for every bad input, help with examples, and the list of layers."""
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from bngraph.cli import main
from walk_json import USER_LAYERS, JsonGraph

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def cli():
    """``bngraph.cli.main``, in this process."""
    return main


def bngraph_command(*args) -> list[str]:
    """``python -m bngraph ARGS``."""
    return [sys.executable, "-m", "bngraph", *args]


def environment(**extra) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONHASHSEED"}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    return env | extra


def run(*args, **env) -> subprocess.CompletedProcess:
    return subprocess.run(bngraph_command(*args), capture_output=True, text=True, env=environment(**env),
                          cwd=REPO, timeout=120)


def assert_one_line_error(status, err, out, *fragments):
    assert status == 2
    assert out == ""
    assert err.count("\n") == 1 and err.startswith("bngraph: error: "), err
    assert "Traceback" not in err
    for fragment in fragments:
        assert fragment in err, (fragment, err)


# -- byte-identical output ----------------------------------------------------------------
def test_json_is_byte_identical_across_runs_and_hash_seeds():
    user = f"{USER_LAYERS}:batchnorm_one_pass"
    runs = {  # started together: two cores
        (view, target, seed): subprocess.Popen(
            bngraph_command("derive", "--format", "json", "--view", view, *target),
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO,
            env=environment(PYTHONHASHSEED=seed))
        for view, target, seeds in [("named", (), ("0", "4242")), ("staged", (), ("0", "1")),
                                    ("staged", ("--function", user), ("0", "1"))]
        for seed in seeds
    }
    outputs = {}
    for key, process in runs.items():
        out, err = process.communicate(timeout=120)
        assert process.returncode == 0 and err == "", (key, err)
        outputs[key] = out
    for view, target in [("named", ()), ("staged", ()), ("staged", ("--function", user))]:
        texts = {out for (v, t, _), out in outputs.items() if (v, t) == (view, target)}
        assert len(texts) == 1, f"{view} {target}: the JSON differs between hash seeds"
    named = json.loads(outputs["named", (), "0"])
    assert list(named)[:6] == ["layer", "m", "view", "nodes", "forward", "adjoints"]
    assert (named["layer"], named["m"], named["view"]) == ("batchnorm", 3, "named")
    assert json.loads(outputs["staged", ("--function", user), "1"])["layer"] == user


def test_json_is_the_same_in_process_twice(cli, capsys):
    texts = []
    for _ in range(2):
        assert cli(["derive", "--format", "json", "--m", "2", "--view", "staged"]) == 0
        texts.append(capsys.readouterr().out)
    assert texts[0] == texts[1]
    doc = JsonGraph(texts[0])
    assert doc.doc["view"] == "staged" and doc.outputs == ["y_1", "y_2"]


def test_derive_writes_the_file_given_with_o(cli, capsys, tmp_path):
    target = tmp_path / "bn.json"
    assert cli(["derive", "layernorm", "--m", "2", "--format", "json", "-o", str(target)]) == 0
    assert capsys.readouterr().out == ""
    assert cli(["derive", "layernorm", "--m", "2", "--format", "json"]) == 0
    assert target.read_text() == capsys.readouterr().out
    assert [p.name for p in tmp_path.iterdir()] == ["bn.json"]  # no temporary file left


def test_derive_text_is_the_trace_then_the_adjoints(cli, capsys):
    assert cli(["derive", "--m", "2"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("batchnorm  (m = 2, named view)\n  inputs:     x_1 x_2\n")
    assert "adjoints" in out and "  dL_dx_1 = " in out and "  dL_dgamma = " in out


@pytest.mark.parametrize("view", ["named", "staged"])
def test_derive_text_lists_the_examples_ascending(cli, capsys, view):
    assert cli(["derive", "--m", "3", "--view", view]) == 0
    adjoints = re.findall(r"^ +(dL_d\w+) = ", capsys.readouterr().out.split("adjoints", 1)[1], re.M)
    for family in ("xhat", "x") + (("xmu", "sq", "gammax") if view == "staged" else ()):
        listed = [a for a in adjoints if re.fullmatch(rf"dL_d{family}_\d", a)]
        assert listed == [f"dL_d{family}_{k}" for k in (1, 2, 3)], listed
    # still reverse mode: every adjoint comes after the adjoints of the nodes that use it
    assert adjoints.index("dL_dxhat_3") < adjoints.index("dL_dsigma2") < adjoints.index("dL_dmu") < adjoints.index("dL_dx_1")


# -- every bad input: one line on stderr, exit status 2 --------------------------------------
@pytest.mark.parametrize("args, fragments", [
    (["derive", "--m", "abc"], ["argument --m", "m must be a whole number, got 'abc'"]),
    (["derive", "nosuchlayer"], ["unknown layer 'nosuchlayer'", "batchnorm, batchnorm-eval, layernorm"]),
    (["derive", "--function", f"{USER_LAYERS}:clips_the_mean"], ["data-dependent control flow", "user_layers.py:"]),
])
def test_bad_input_in_a_real_process(args, fragments):
    result = run(*args)
    assert_one_line_error(result.returncode, result.stderr, result.stdout, *fragments)


@pytest.mark.parametrize("args, fragments", [
    (["derive", "--m", "0"], ["m must be at least 1, got 0"]),
    (["derive", "--m", "-1"], ["m must be at least 1, got -1"]),
    (["derive", "--m=-1"], ["m must be at least 1, got -1"]),
    (["derive", "--m", "2.5"], ["m must be a whole number, got '2.5'"]),
    (["derive", "--m", "abc"], ["m must be a whole number, got 'abc'"]),
    (["derive", "batchnorm2"], ["unknown layer 'batchnorm2'; known layers: batchnorm, batchnorm-eval, layernorm"]),
    (["derive", "--function", "no/such/file.py:forward"], ["no such file: no/such/file.py"]),
    (["derive", "--function", f"{USER_LAYERS}:no_such_function"], ["has no function 'no_such_function'"]),
    (["derive", "--function", f"{USER_LAYERS}"], ["expected FILE.py:FUNC"]),
    (["derive", "--function", f"{USER_LAYERS}:"], ["expected FILE.py:FUNC"]),
    (["derive", "--function", ":forward"], ["expected FILE.py:FUNC"]),
    (["derive", "--function", f"{USER_LAYERS}:drops_one_output"], ["returned 2 outputs for m = 3 inputs"]),
    (["derive", "--function", f"{USER_LAYERS}:returns_a_scalar"], ["must return a list of m outputs"]),
    (["derive", "--function", f"{USER_LAYERS}:clips_the_mean"],
     ["data-dependent control flow", "comparison (>)", "user_layers.py:"]),
    (["derive", "--function", f"{USER_LAYERS}:uses_math_sqrt"], ["Python number", "bngraph.sqrt", "user_layers.py:"]),
    (["derive", "batchnorm", "--function", f"{USER_LAYERS}:rmsnorm"], ["either a LAYER or --function"]),
    (["derive", "--view", "flat"], ["argument --view: invalid choice: 'flat'"]),
    (["derive", "--format", "pdf"], ["argument --format: invalid choice: 'pdf'"]),
    (["nosuchcommand"], ["invalid choice: 'nosuchcommand'"]),
])
def test_bad_input(cli, capsys, args, fragments):
    status = cli(args)
    captured = capsys.readouterr()
    assert_one_line_error(status, captured.err, captured.out, *fragments)


def test_output_into_a_missing_folder_leaves_no_file(cli, capsys, tmp_path):
    target = tmp_path / "missing" / "bn.json"
    status = cli(["derive", "--m", "2", "--format", "json", "-o", str(target)])
    captured = capsys.readouterr()
    assert_one_line_error(status, captured.err, captured.out, f"cannot write {target}", "does not exist")
    assert list(tmp_path.iterdir()) == []


# -- help and layers --------------------------------------------------------------------------
def test_layers_lists_the_three_layers(capsys):
    assert main(["layers"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in lines] == ["batchnorm", "batchnorm-eval", "layernorm"]
    assert all(len(line.split(None, 1)[1]) > 10 for line in lines)  # each with its one line


@pytest.mark.parametrize("args, expected", [
    (["--help"], ["usage: bngraph", "derive", "layers", "examples:", "bngraph derive"]),
    (["derive", "--help"], ["usage: bngraph derive", "--function FILE.py:FUNC", "--view", "examples:",
                            "bngraph derive --format json"]),
])
def test_help_exits_0_and_shows_examples(args, expected):
    result = subprocess.run([sys.executable, "-m", "bngraph", *args], capture_output=True, text=True,
                            env=environment(), cwd=REPO, timeout=120)
    assert result.returncode == 0 and result.stderr == ""
    for text in expected:
        assert text in result.stdout, text


def test_an_internal_error_is_one_line_unless_debugging(monkeypatch, capsys):
    import bngraph.cli as cli

    def broken(args):
        raise ZeroDivisionError("division by zero\nsecond line")

    monkeypatch.setitem(cli.COMMANDS, "layers", broken)
    assert cli.main(["layers"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("bngraph: internal error: ZeroDivisionError: division by zero")
    monkeypatch.setenv("BNGRAPH_DEBUG", "1")
    with pytest.raises(ZeroDivisionError):
        cli.main(["layers"])


def test_latex_notation_options(capsys):
    assert main(["derive", "--format", "markdown", "--loss", "ell", "--batch-subscript"]) == 0
    out = capsys.readouterr().out
    assert r"\frac{\partial \ell}{\partial \mu_{\mathcal{B}}}" in out and r"\partial L" not in out
    assert main(["derive", "--format", "latex"]) == 0
    out = capsys.readouterr().out
    assert r"\frac{\partial L}{\partial \mu}" in out and r"\mathcal{B}" not in out


def test_the_command_tunes_its_own_processs_garbage_collector_and_main_leaves_a_callers_alone():
    import gc
    import subprocess
    import sys

    before = gc.get_threshold(), gc.get_freeze_count()
    assert main(["layers"]) == 0
    assert (gc.get_threshold(), gc.get_freeze_count()) == before
    script = ("import gc; from bngraph.cli import _own_process; _own_process(); "
              "print(gc.get_threshold(), gc.get_freeze_count() > 10000)")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.stdout.strip() == "(10000, 50, 100) True"


def test_the_command_ends_its_process_with_everything_written_and_its_own_exit_status(tmp_path):
    # entry() ends the process without tearing down what it built: all output must be out first
    import json
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-m", "bngraph", "derive", "--m", "64", "--format", "json"],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0
    assert json.loads(done.stdout)["m"] == 64  # the whole document, flushed through the pipe
    bad = subprocess.run([sys.executable, "-m", "bngraph", "derive", "--m", "0"], capture_output=True, text=True,
                         timeout=300)
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1
