"""`bngraph report`, the Quickstart's main job: every output in one folder, all or nothing."""
from __future__ import annotations

import json

from bngraph.cli import main

EXPECTED = {"index.html", "derivation.txt", "derivation.json", "derivation_staged.txt", "derivation.tex",
            "derivation.md", "forward_named.svg", "forward_staged.svg", "backward_named.svg", "backward_staged.svg",
            "forward_named.dot", "forward_staged.dot", "backward_named.dot", "backward_staged.dot", "verify.txt"}


def test_report_writes_every_output_and_they_agree_with_the_single_commands(tmp_path, capsys):
    folder = tmp_path / "out"
    assert main(["report", "-o", str(folder)]) == 0
    assert {p.name for p in folder.iterdir()} == EXPECTED
    assert "checks: all passed" in capsys.readouterr().out
    assert main(["derive", "--format", "json"]) == 0
    assert json.loads((folder / "derivation.json").read_text()) == json.loads(capsys.readouterr().out)
    verify = (folder / "verify.txt").read_text()
    assert "adjoints (staged view) vs NumPy reference" in verify and verify.rstrip().endswith("0 failed")
    assert (folder / "derivation.tex").read_text().startswith("\\documentclass{article}")
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no staging folder left


def test_report_into_an_existing_folder_replaces_its_files(tmp_path, capsys):
    (tmp_path / "derivation.txt").write_text("old")
    assert main(["report", "layernorm", "--m", "2", "-o", str(tmp_path)]) == 0
    assert (tmp_path / "derivation.txt").read_text().startswith("layernorm  (m = 2, named view)")


def test_report_bad_places_are_one_line_and_leave_nothing(tmp_path, capsys):
    assert main(["report", "-o", str(tmp_path / "missing" / "out")]) == 2
    assert "does not exist" in capsys.readouterr().err
    afile = tmp_path / "afile"
    afile.write_text("x")
    assert main(["report", "-o", str(afile)]) == 2
    assert "it is a file" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["afile"]
