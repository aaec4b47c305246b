"""The README stays true: its examples run, its Quickstart is what CI runs, its picture is current."""
from __future__ import annotations

import doctest
import re
import struct
from pathlib import Path

import pytest

from bngraph.engine.graph import build_graph
from bngraph.engine.layers import LAYERS
from bngraph.output.render import render_graph

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")


def quickstart() -> list[str]:
    section = README.split("## Quickstart", 1)[1].split("##", 1)[0]
    block = re.search(r"```bash\n(.*?)```", section, re.S).group(1)
    return [line for line in block.splitlines() if line.strip()]


def test_readme_starts_with_a_two_command_quickstart():
    first_heading = re.search(r"^## (.+)$", README, re.M).group(1)
    assert first_heading == "Quickstart"
    commands = quickstart()
    assert len(commands) == 2
    assert "bngraph report" in commands[0] and "pytest" in commands[1]


def test_ci_runs_the_readme_test_command_verbatim():
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    run_lines = [line.strip() for line in ci.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    for command in quickstart():
        assert command.replace("pip install .", "pip install -q .").replace(
            'pip install -e ".[test]"', 'pip install -q -e ".[test]"') in run_lines


def test_readme_python_examples_run():
    parser = doctest.DocTestParser()
    test = parser.get_doctest(README, {}, "README.md", str(ROOT / "README.md"), 0)
    assert len(test.examples) >= 10
    runner = doctest.DocTestRunner(optionflags=doctest.NORMALIZE_WHITESPACE)
    runner.run(test)
    assert runner.failures == 0


STEPS_VALUES = {"x_1": 1, "x_2": 2, "x_3": 6, "gamma": 1.5, "beta": 0.5, "epsilon": 0.00001,
                "dL_dy_1": 0.3, "dL_dy_2": -1, "dL_dy_3": 0.5}
PICTURES = [("batchnorm_m3", "named", {"direction": "forward"}),
            ("batchnorm_m3_backward", "named", {"direction": "backward"}),
            ("batchnorm_m3_steps", "staged", {"direction": "backward", "values": STEPS_VALUES})]


@pytest.mark.parametrize("file, view, options", PICTURES)
def test_committed_pictures_are_what_the_tool_renders_now(file, view, options):
    graph = build_graph(LAYERS["batchnorm"].trace(3), view, "batchnorm")
    svg = render_graph(graph, None, format="svg", **options)
    assert (ROOT / "docs" / f"{file}.svg").read_text(encoding="utf-8") == svg
    # the PNG beside it (GitHub and every viewer show it) is the same picture: same proportions
    width, height = (float(v) for v in re.search(r'width="([\d.]+)pt" height="([\d.]+)pt"', svg).groups())
    png = (ROOT / "docs" / f"{file}.png").read_bytes()
    assert png.startswith(b"\x89PNG")
    png_width, png_height = struct.unpack(">II", png[16:24])
    assert png_width / png_height == pytest.approx(width / height, rel=0.02)
    assert f"docs/{file}.png" in README and f"docs/{file}.svg" in README


def test_readme_closed_form_is_what_the_tool_prints(capsys):
    from bngraph.cli import main

    assert main(["derive"]) == 0
    out = capsys.readouterr().out
    closed = out.split("closed form", 1)[1].split("compact backward", 1)[0]
    for line in closed.strip().splitlines()[1:]:
        assert line.strip() in README, line
    definitions = out.split("definitions (symbolic m", 1)[1].split("closed form", 1)[0]
    for line in definitions.strip().splitlines()[1:]:
        assert line.strip() in README, line
