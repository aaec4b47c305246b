"""Robust under bad input, hostile environments and load (issue 16): one test per case found.

Most run ``bngraph.cli.main`` in this process; a few need a real process (a closed pipe, the
locale, Graphviz's fontconfig warning, which C code prints on the real stderr).
"""
from __future__ import annotations

import io
import json
import os
import re
import struct
import subprocess
import sys
import textwrap
from pathlib import Path

import pygraphviz
import pytest

import bngraph.engine.layers as layers
import bngraph.output.report  # imported before any test patches trace_target, which it imports
from bngraph.cli import build_parser, main
from bngraph.engine import limits, progress
from bngraph.errors import BngraphError
from bngraph.output.console import to_ascii

REPO = Path(__file__).resolve().parents[1]
STUDENT = REPO / "tests" / "data" / "student_correct.py"


def run(*args, **env) -> subprocess.CompletedProcess:
    environ = {k: v for k, v in os.environ.items() if k not in ("FONTCONFIG_FILE", "FONTCONFIG_PATH")}
    environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), environ.get("PYTHONPATH")]))
    return subprocess.run([sys.executable, "-m", "bngraph", *args], capture_output=True, text=True,
                          env=environ | env, cwd=REPO, timeout=300)


def one_line_error(capsys, *fragments) -> str:
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.count("\n") == 1 and captured.err.startswith("bngraph: error: "), captured.err
    for fragment in fragments:
        assert fragment in captured.err, (fragment, captured.err)
    return captured.err


@pytest.fixture
def no_work(monkeypatch):
    """Any trace started fails the test at once: a refusal must come before the work."""
    def started(*args, **kwargs):
        raise AssertionError("the work started")

    monkeypatch.setattr(layers, "trace_target", started)
    monkeypatch.setattr("bngraph.output.report.trace_target", started)


def user_file(tmp_path, source: str, name: str = "mine.py") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(source))
    return path


# -- 1. unbounded work: m past a command's limit is refused before any work -----------------
@pytest.mark.parametrize("args, command", [
    (["derive", "--m", "100000000"], "derive"),
    (["derive", "--m", "99999999999999999999999"], "derive"),
    (["render", "--m", "100000000", "-o", "x.svg"], "render"),
    (["verify", "--m", "100000000"], "verify"),
    (["verify", "--m", "1025"], "verify"),
    (["report", "--m", "5000", "-o", "out"], "report"),
])
def test_m_past_the_limit_is_refused_up_front_naming_the_limit_and_the_memory(no_work, capsys, args, command):
    assert main(args) == 2
    err = one_line_error(capsys, f"over {command}'s limit of m = {limits.M_LIMITS[command]}", "of memory")
    assert re.search(r"at least [\d.e+]+ [KMGTPE]B of memory", err)


def test_the_limits_allow_what_issue_17_targets_and_are_in_the_help():
    assert limits.M_LIMITS["derive"] >= 65536 and limits.check_m("derive", 65536) == 65536
    assert all(limit >= 1024 for limit in limits.M_LIMITS.values())
    for command, limit in limits.M_LIMITS.items():
        sub = build_parser()._subparsers._group_actions[0].choices[command]
        assert f"at most {limit}" in " ".join(sub.format_help().split())
    with pytest.raises(BngraphError, match=f"{limits.BYTES_PER_EXAMPLE // 1000} KB per example"):
        limits.check_m("derive", 65537)


# -- 2. render --full: refused past a documented size; progress on a terminal -----------------
def test_render_full_past_the_limit_is_refused_before_any_work(no_work, capsys, tmp_path):
    target = tmp_path / "big.svg"
    assert main(["render", "--m", str(limits.FULL_MAX_M + 1), "--full", "-o", str(target)]) == 2
    one_line_error(capsys, f"--full draws every example only up to m = {limits.FULL_MAX_M}")
    assert not target.exists()
    help_text = " ".join(build_parser()._subparsers._group_actions[0].choices["render"].format_help().split())
    assert f"up to m = {limits.FULL_MAX_M}" in help_text


class Terminal(io.StringIO):
    def isatty(self):
        return True


def test_progress_shows_on_a_terminal_only_on_stderr_and_is_erased(monkeypatch, capsys):
    monkeypatch.setattr(progress, "SHOW_AFTER", 0.0)  # every step counts as slow: no clock involved
    terminal = Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    assert main(["derive", "--m", "2", "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["m"] == 2  # stdout holds the JSON and nothing else
    err = terminal.getvalue()
    assert "bngraph: tracing batchnorm at m = 2" in err and "bngraph: deriving the adjoints" in err
    assert err.endswith("\r\033[K")  # erased: the terminal's last line is clean
    assert "\n" not in err


def test_progress_never_shows_off_a_terminal_and_an_error_stays_one_line(monkeypatch, capsys):
    monkeypatch.setattr(progress, "SHOW_AFTER", 0.0)
    assert main(["derive", "--m", "2"]) == 0
    assert capsys.readouterr().err == ""
    terminal = Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    assert main(["derive", "--function", "nofile.py:f", "--m", "2"]) == 2
    visible = terminal.getvalue().split("\r\033[K")[-1]  # what the terminal shows after the last erase
    assert visible == "bngraph: error: no such file: nofile.py\n"


def test_a_large_layout_shows_at_once(monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(progress, "SHOW_AFTER", 1e9)  # only a step known to be long may show
    monkeypatch.setattr("bngraph.output.render.LONG_LAYOUT", 0)
    terminal = Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    assert main(["render", "--m", "2", "-o", str(tmp_path / "g.svg")]) == 0
    assert "bngraph: laying out " in terminal.getvalue() and "tracing" not in terminal.getvalue()


# -- 3. a backward or forward that exits never passes ------------------------------------------
@pytest.mark.parametrize("where, exit_call, message", [
    ("backward", "sys.exit(0)", "backward called sys.exit(0) (mine.py, line"),
    ("backward", "raise SystemExit", "backward called sys.exit(None) (mine.py, line"),
    ("forward", "sys.exit(0)", "forward called sys.exit(0) (mine.py, line"),
])
def test_an_exit_in_the_users_code_is_a_failure_not_a_pass(tmp_path, capsys, where, exit_call, message):
    source = STUDENT.read_text()
    body = f"\n\ndef exits_{where}(*args):\n    import sys\n    {exit_call}\n"
    path = user_file(tmp_path, source + body)
    args = (["check-backward", f"{path}:exits_backward", "--forward", f"{path}:batchnorm_forward"]
            if where == "backward" else
            ["check-backward", f"{path}:batchnorm_backward", "--forward", f"{path}:exits_forward"])
    assert main(args) == 1
    out = capsys.readouterr().out
    assert message in out and out.rstrip().endswith("FAIL")


def test_a_keyboard_interrupt_in_the_backward_is_not_a_pass(tmp_path, capsys):
    source = STUDENT.read_text() + "\n\ndef stops(dout, cache):\n    raise KeyboardInterrupt\n"
    path = user_file(tmp_path, source)
    assert main(["check-backward", f"{path}:stops", "--forward", f"{path}:batchnorm_forward"]) == 2
    line = len(source.splitlines())
    assert capsys.readouterr().err == f"bngraph: interrupted in mine.py:stops (mine.py, line {line})\n"


def test_an_exit_while_traced_or_imported_is_an_error(tmp_path, capsys):
    path = user_file(tmp_path, """
        import sys
        def f(x, gamma):
            sys.exit(3)
    """)
    assert main(["derive", "--function", f"{path}:f"]) == 2
    one_line_error(capsys, "f called sys.exit(3) (mine.py, line 4) while being traced")
    path = user_file(tmp_path, "import sys\nsys.exit(0)\n", "exits_on_import.py")
    assert main(["derive", "--function", f"{path}:f"]) == 2
    one_line_error(capsys, "cannot import", "it called sys.exit(0)")


# -- 4. what user code prints goes to stderr, marked, never into stdout -------------------------
PRINTS = """
    print("imported")
    from bngraph import name

    def f(x, gamma):
        print("tracing", len(x))
        return [gamma * xk for xk in x]

    def chatty(x, gamma):
        for k in range(100):
            print("line", k)
        return [gamma * xk for xk in x]
"""


def test_prints_while_traced_go_to_stderr_marked_and_json_stays_clean(tmp_path, capsys):
    path = user_file(tmp_path, PRINTS)
    assert main(["derive", "--function", f"{path}:f", "--format", "json", "--m", "2"]) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out)["layer"] == f"{path}:f"
    lines = captured.err.splitlines()
    assert lines[0] == "mine.py printed: imported"
    assert "mine.py:f printed: tracing 2" in lines
    assert all(line.startswith(("mine.py printed: ", "mine.py:f printed: ")) for line in lines)


def test_a_print_in_a_loop_is_cut_short(tmp_path, capsys):
    path = user_file(tmp_path, PRINTS)
    assert main(["derive", "--function", f"{path}:chatty", "--m", "1"]) == 0
    err = capsys.readouterr().err.splitlines()
    from bngraph.engine.usercode import MAX_PRINTED_LINES

    shown = [line for line in err if line.startswith("mine.py:chatty printed: line ")]
    assert len(shown) < 4 * MAX_PRINTED_LINES and "mine.py:chatty printed more lines; they are not shown" in err


def test_prints_while_called_by_verify_and_check_backward_stay_off_stdout(tmp_path, capsys):
    path = user_file(tmp_path, PRINTS)
    assert main(["verify", "--function", f"{path}:f", "--m", "2"]) == 0
    captured = capsys.readouterr()
    assert "tracing" not in captured.out and "mine.py:f printed: tracing 2" in captured.err
    source = STUDENT.read_text().replace("def batchnorm_backward(dout, cache):",
                                         "def batchnorm_backward(dout, cache):\n    print('OK, all passed')", 1)
    path = user_file(tmp_path, source, "noisy.py")
    assert main(["check-backward", f"{path}:batchnorm_backward"]) == 1  # correct, but it printed: no pass
    captured = capsys.readouterr()
    assert "OK, all passed" not in captured.out and "noisy.py:batchnorm_backward printed: OK, all passed" in captured.err
    assert "backward printed 12 lines to standard output" in captured.out and captured.out.rstrip().endswith("FAIL")


# -- 5. a closed pipe ends the output quietly, with the command's own status -------------------
@pytest.mark.parametrize("args, status", [
    (["layers"], 0),
    (["check-backward", "tests/data/student_mistakes.py:batchnorm_backward_sign"], 1),
])
def test_a_closed_pipe_is_quiet_and_keeps_the_exit_status(args, status):
    environ = os.environ | {"PYTHONPATH": str(REPO)}
    process = subprocess.Popen([sys.executable, "-m", "bngraph", *args], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, cwd=REPO, env=environ)
    process.stdout.close()  # as `| head -0` does, before bngraph has written a byte
    err = process.stderr.read().decode()
    assert process.wait(timeout=300) == status
    assert err == ""


# -- 6. a stream that cannot encode Greek gets ASCII notation ----------------------------------
@pytest.mark.parametrize("encoding", ["ascii", "latin-1"])
@pytest.mark.parametrize("args", [
    ["check-backward", "tests/data/student_mistakes.py:batchnorm_backward_sign"],
    ["verify", "--m", "2"],
    ["derive", "--m", "2", "--format", "markdown"],
    ["audit", "tests/data/audit/bn_slips.md"],
])
def test_a_narrow_encoding_gets_ascii_notation(monkeypatch, encoding, args):
    monkeypatch.chdir(REPO)
    out = io.TextIOWrapper(io.BytesIO(), encoding=encoding)
    err = io.TextIOWrapper(io.BytesIO(), encoding=encoding)
    monkeypatch.setattr(sys, "stdout", out)
    monkeypatch.setattr(sys, "stderr", err)
    status = main(args)
    out.flush(), err.flush()
    text, error = out.buffer.getvalue().decode(encoding), err.buffer.getvalue().decode(encoding)
    assert status in (0, 1) and error == "", error
    assert text.isascii() and text.strip()


def test_ascii_notation_spells_bngraphs_names():
    assert to_ascii("∂L/∂μ = Σ_j ∂L/∂x̂_j · γ, σ² + ε ≤ 1e-6 × m") == \
        "dL/dmu = Sum_j dL/dxhat_j * gamma, sigma2 + eps <= 1e-6 x m"


def test_the_c_locale_in_a_real_process():
    result = run("check-backward", "tests/data/student_mistakes.py:batchnorm_backward_sign",
                 LC_ALL="C", PYTHONUTF8="0", PYTHONIOENCODING="")
    assert result.returncode == 1 and result.stderr == ""
    assert "x (2, 3), (4, 3), (16, 5) x seeds 0, 1 x eps 1e-05, 0.01" in result.stdout


# -- 7. report into a place that cannot be written: one line in words ---------------------------
@pytest.fixture
def small_report(monkeypatch):
    monkeypatch.setattr("bngraph.output.report.build_report", lambda *a: ({"a.txt": "a", "b.dot": "b"}, 0))


@pytest.mark.parametrize("target", ["/proc/bngraph-report", "/proc", "/sys/bngraph-report"])
def test_report_into_an_unwritable_place_says_why_in_words(small_report, capsys, target):
    assert main(["report", "-o", target]) == 2
    err = one_line_error(capsys, f"cannot write the report to {target}: ")
    assert "Errno" not in err and ".tmp" not in err and not re.search(r"\.\w+\.\w{8}", err)


def test_report_paths_are_printed_with_single_slashes(small_report, capsys, tmp_path, monkeypatch):
    assert main(["report", "-o", f"{tmp_path}/out/"]) == 0
    out = capsys.readouterr().out
    assert f"-> {tmp_path}/out/\n" in out and "//" not in out
    written = []
    monkeypatch.setattr("bngraph.output.report.write_atomic", lambda path, data: written.append(str(path)))
    assert main(["report", "-o", "/"]) == 0  # into the root folder (nothing is written: write_atomic is stubbed)
    out = capsys.readouterr().out
    assert written == ["/a.txt", "/b.dot"] and "-> /\n" in out and "//" not in out


# -- 8. autograd's warning becomes one line of bngraph's own ------------------------------------
def test_an_output_that_does_not_depend_on_x_is_one_note(tmp_path, capsys, recwarn):
    path = user_file(tmp_path, "def constant_in_x(x, gamma):\n    return [gamma * 2 for xk in x]\n")
    assert main(["verify", "--function", f"{path}:constant_in_x", "--m", "2"]) == 0
    captured = capsys.readouterr()
    assert captured.err == "" and not [w for w in recwarn if "independent" in str(w.message)]
    notes = [line for line in captured.out.splitlines() if "do not depend on" in line]
    assert notes == ["note: the outputs of mine.py:constant_in_x do not depend on x: autograd's gradient there is zero"]


# -- 9. no Fontconfig warning from the Graphviz in pygraphviz's wheel ---------------------------
@pytest.mark.slow
@pytest.mark.parametrize("suffix", [".png", ".pdf"])
def test_render_writes_nothing_on_stderr(tmp_path, suffix):
    result = run("render", "-o", str(tmp_path / f"bn{suffix}"))
    assert result.returncode == 0 and result.stderr == "" and result.stdout == ""
    assert (tmp_path / f"bn{suffix}").stat().st_size > 10_000  # text was drawn, not only boxes


@pytest.mark.slow
def test_a_png_wider_than_cairo_draws_is_scaled_quietly(tmp_path):
    """The backward graph of m = 128 in full is about 35,000 pixels wide at Graphviz's 96 dpi:
    Graphviz would shrink it itself with a warning on stderr; bngraph lowers the dpi first."""
    path = tmp_path / "wide.png"
    result = run("render", "--m", "128", "--full", "--direction", "backward", "-o", str(path))
    assert result.returncode == 0 and result.stderr == ""
    width, height = struct.unpack(">II", path.read_bytes()[16:24])  # the PNG's IHDR
    assert 20_000 < width <= 32_767 and height < width


def test_the_bundled_fontconfig_reads_bngraphs_fonts_conf():
    from bngraph.output import fonts
    from bngraph.output.render import render_graph
    from bngraph.engine.graph import build_graph

    svg = render_graph(build_graph(layers.LAYERS["batchnorm"].trace(2)), format="svg")
    if fonts.bundled_fontconfig() is None or os.environ.get("FONTCONFIG_FILE"):
        pytest.skip("pygraphviz uses a system Graphviz here")
    assert fonts.use_own_fonts_conf() == str(fonts.FONTS_CONF)
    assert 'font-family="Helvetica,sans-Serif"' in svg and ">μ<" in svg


# -- 10. --values: an unknown name is named, an empty spec refused ------------------------------
@pytest.mark.parametrize("spec, fragment", [
    ("foo=1", "values: foo: not an input, parameter, constant or upstream gradient of this graph"),
    ("x_1=1,x_2=2,x_3=3,gamma=1,beta=0,epsilon=1,foo=1", "values: foo:"),
    ("", "--values is empty"),
    (" , ", "--values is empty"),
])
def test_bad_values_name_the_problem(capsys, tmp_path, spec, fragment):
    assert main(["render", "--values", spec, "-o", str(tmp_path / "v.svg")]) == 2
    one_line_error(capsys, fragment)
    assert not list(tmp_path.iterdir())


# -- 11. the README's promises: four DOTs, the staged backward by its steps ----------------------
def test_derive_staged_shows_the_nine_steps_in_kratzerts_order(capsys):
    """The classic staged backward (Kratzert, "Understanding the backward pass through Batch
    Normalization Layer", 2016) computes dbeta at step 9, dgamma at 8, divar at 7, dsqrtvar at 6,
    dvar at 5, dsq at 4, dxmu at 3, dmu at 2 and dx at 1."""
    assert main(["derive", "--m", "4", "--view", "staged"]) == 0
    out = capsys.readouterr().out
    section = out.split("adjoints (reverse mode", 1)[1].split("\n\n", 1)[0]
    assert "in the 9 steps of batchnorm's staged backward, last step first" in section
    step_of, order, step = {}, [], None
    for line in section.splitlines()[1:]:
        if line.startswith("  step "):
            step = int(line.split()[1].rstrip(","))
        else:
            name, expr = line.strip().split(" = ", 1)
            step_of[name] = step
            order.append((name, expr))
    assert [int(s) for s in re.findall(r"^  step (\d+),", section, re.M)] == list(range(9, 0, -1))
    expected = {"dL_dbeta": 9, "dL_dgamma": 8, "dL_divar": 7, "dL_dsqrtvar": 6, "dL_dsigma2": 5,
                "dL_dsq_1": 4, "dL_dxmu_1": 3, "dL_dmu": 2, "dL_dx_1": 1, "dL_dx_4": 1}
    assert {name: step_of[name] for name in expected} == expected
    defined = set()  # grouped so, every adjoint uses only adjoints listed above it
    for name, expr in order:
        used = set(re.findall(r"dL_d\w+", expr)) - {f"dL_dy_{k}" for k in range(1, 5)}
        assert used <= defined, (name, used - defined)
        defined.add(name)


def test_report_writes_the_four_dots_the_readme_promises(tmp_path, capsys):
    assert main(["report", "--m", "2", "-o", str(tmp_path / "out")]) == 0
    for direction in ("forward", "backward"):
        for view in ("named", "staged"):
            dot = pygraphviz.AGraph(string=(tmp_path / "out" / f"{direction}_{view}.dot").read_text())
            assert f"{direction} graph, m = 2, {view} view" in dot.graph_attr["label"]
            into_y = dot.in_edges("y_1")  # the backward mirrors the forward: same edges, arrows reversed
            assert into_y and all((e.attr["dir"] == "back") == (direction == "backward") for e in into_y)
    readme = " ".join((REPO / "README.md").read_text().split())  # the phrase may wrap
    assert "backward graphs of both views as SVG and DOT" in readme
