"""``bngraph audit`` on what breaks auditors: absurd numbers, odd files, per-feature notation,
the tool's own derivations and notebooks (issues 14 and 16). Through the command line where
the item is about the command line."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bngraph.audit.auditor import audit_document
from bngraph.cli import main

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((REPO / "notebooks").glob("*.ipynb"))


def audit_cli(path, *extra, stdin: str | None = None) -> subprocess.CompletedProcess:
    """``bngraph audit`` in a child process, with a bound on its time (a hang fails, never blocks)."""
    return subprocess.run([sys.executable, "-m", "bngraph", "audit", str(path), *extra], capture_output=True,
                          text=True, input=stdin, timeout=300, cwd=REPO,
                          env={**os.environ, "PYTHONPATH": str(REPO)})


def one_finding(tex: str):
    report = audit_document(f"$${tex}$$")
    assert len(report.findings) == 1, report.to_text()
    return report.findings[0]


# -- issue 16: bounded work, never a hang ------------------------------------------------------
@pytest.mark.parametrize("tex", [r"\mu = x_{99999999999}", r"\mu = \frac1m\sum_{i=1}^{10^{12}} x_i",
                                 r"\mu = 10^{10^{10}}", r"\mu = 9^{9^{9^9}}"])
def test_absurd_indices_sums_and_powers_are_cannot_evaluate_not_a_hang(tmp_path, tex):
    (tmp_path / "absurd.md").write_text(f"$${tex}$$\n")
    done = audit_cli(tmp_path / "absurd.md", "--format", "json")
    data = json.loads(done.stdout)
    assert done.returncode == 0 and [f["verdict"] for f in data["findings"]] == ["cannot-evaluate"]


def test_a_huge_document_is_refused_in_one_line(tmp_path):
    (tmp_path / "huge.md").write_text("$$\\mu = \\frac{1}{m}\\sum_i x_i$$\n" * 200_000)  # 6.6 MB
    done = audit_cli(tmp_path / "huge.md")
    assert done.returncode == 2 and "too large to audit" in done.stderr and done.stderr.count("\n") == 1


def test_too_many_equations_are_refused_in_one_line(tmp_path):
    (tmp_path / "many.md").write_text("$$\\mu = x_1$$\n" * 5000)
    done = audit_cli(tmp_path / "many.md")
    assert done.returncode == 2 and "more than 3000 equations" in done.stderr


# -- issue 16: what the path is ------------------------------------------------------------------
@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs here")
def test_a_fifo_is_named_and_never_waited_on(tmp_path):
    os.mkfifo(tmp_path / "pipe.md")
    done = audit_cli(tmp_path / "pipe.md")
    assert done.returncode == 2 and "a FIFO (named pipe), not a regular file" in done.stderr


@pytest.mark.parametrize("path, says", [(".", "a directory, not a regular file"),
                                        ("/dev/null", "a character device, not a regular file"),
                                        ("missing.md", "no such file")])
def test_a_path_that_is_not_a_document_is_named_for_what_it_is(path, says):
    done = audit_cli(path)
    assert done.returncode == 2 and says in done.stderr and done.stderr.count("\n") == 1 and not done.stdout


def test_dash_reads_standard_input():
    done = audit_cli("-", stdin="$$\\mu = \\frac{1}{m}\\sum_{i=1}^m x_i$$\n")
    assert done.returncode == 0 and done.stdout.startswith("<stdin> (batchnorm): 1 equation: 1 correct")


# -- issue 16: overflow is never agreement --------------------------------------------------------
@pytest.mark.parametrize("tex", [r"\mu = 10^{400}", r"\mu = 2^{1024}", r"\frac{\partial L}{\partial\beta} = 10^{400}",
                                 r"\mu = \frac1m\sum x_i + 10^{400}", r"\mu = 2^{1023}"])
def test_overflow_is_cannot_evaluate_never_correct(tmp_path, tex):
    (tmp_path / "big.md").write_text(f"$${tex}$$\n")
    data = json.loads(audit_cli(tmp_path / "big.md", "--format", "json").stdout)
    (finding,) = data["findings"]
    assert finding["verdict"] == "cannot-evaluate" and finding["correction"] is None


def test_a_value_that_overflows_while_evaluating_is_not_agreement():
    assert one_finding(r"\mu = \frac{1}{m}\sum_i x_i \cdot 10^{11} \cdot 10^{11} \cdot 10^{11} "
                       r"\cdot 10^{11} \cdot 10^{11} \cdot 10^{11} \cdot 10^{11} \cdot 10^{11} \cdot 10^{11}"
                       r" \cdot 10^{11}").verdict == "cannot-evaluate"


# -- issue 16: \text inside a formula, σ² = 0 at m = 1 -----------------------------------------------
def test_text_inside_a_formula_is_a_remark_not_the_end_of_the_formula():
    found = one_finding(r"\frac{\partial L}{\partial x_{i}} = \frac{\partial L}{\partial \mu} \cdot \frac{1}{m} "
                        r"\text{(chain rule)} + 5 \frac{\partial L}{\partial \hat{x}_{i}}")
    assert found.verdict == "wrong"  # read whole: the "+ 5 ∂L/∂x̂_i" after the remark counts


def test_sigma2_is_zero_at_m_equal_to_one():
    report = audit_document("At $m = 1$:\n\n$$\\sigma^2 = 0$$\n")
    assert [f.verdict for f in report.findings][0] == "helper"
    assert report.findings[1].verdict in ("correct", "correct-other-form") and "m = 1" in report.findings[1].checked
    assert audit_document("$$\\sigma^2 = 0$$").findings[0].verdict == "cannot-evaluate"  # a value, no batch read


# -- issue 16: a per-feature, two-index notebook --------------------------------------------------
PER_FEATURE = r"""$$\begin{aligned}
\mu_j &= \frac{1}{N} \sum_{i=1}^N x_{i,j} \\
\sigma^2_j &= \frac{1}{N} \sum_{i=1}^N (x_{i,j} - \mu_j)^2 \\
\hat{x}_{i,j} &= \frac{x_{i,j} - \mu_j}{\sqrt{\sigma^2_j + \epsilon}} \\
y_{i,j} &= \gamma_j \hat{x}_{i,j} + \beta_j
\end{aligned}$$
$$\frac{\partial \mathcal{L}}{\partial \gamma_j} = \sum_{i=1}^N \frac{\partial \mathcal{L}}{\partial y_{i,j}} \hat{x}_{i,j}$$
$$\frac{\partial \mathcal{L}}{\partial \beta_j} = \sum_{i=1}^N \frac{\partial \mathcal{L}}{\partial y_{i,j}} \hat{x}_{i,j}$$
"""


def test_per_feature_notation_finds_the_batch_index_and_never_ends_the_audit(tmp_path):
    cells = [{"cell_type": "markdown", "metadata": {}, "source": PER_FEATURE}]
    (tmp_path / "nb.ipynb").write_text(json.dumps({"cells": cells, "metadata": {}, "nbformat": 4,
                                                   "nbformat_minor": 5}))
    done = audit_cli(tmp_path / "nb.ipynb", "--format", "json")
    assert "internal error" not in done.stderr and done.returncode == 1
    verdicts = [f["verdict"] for f in json.loads(done.stdout)["findings"]]
    assert verdicts == ["correct"] * 5 + ["wrong"]  # ∂L/∂β_j with x̂: a real slip, found


def test_an_equation_that_breaks_sympy_is_one_cannot_read(monkeypatch):
    from bngraph.audit import auditor

    def broken(*args):
        raise IndexError("a SymPy failure")
    monkeypatch.setattr(auditor, "judge", broken)
    report = audit_document("$$\\mu = x_1$$\n$$\\mu = x_2$$")
    assert [f.verdict for f in report.findings] == ["cannot-read", "cannot-read"]
    assert "IndexError" in report.findings[0].reason


# -- issue 14: the tool's own derivations and notebooks ----------------------------------------------
@pytest.mark.slow
@pytest.mark.parametrize("layer", ["batchnorm", "batchnorm-eval", "layernorm"])
@pytest.mark.parametrize("fmt", ["markdown", "latex"])
def test_the_tools_own_derivations_audit_clean(tmp_path, layer, fmt, capsys):
    for view in ("named", "staged"):
        for m in (1, 2, 3):
            out = tmp_path / f"{layer}-{view}-{m}.{'md' if fmt == 'markdown' else 'tex'}"
            assert main(["derive", layer, "--m", str(m), "--view", view, "--format", fmt, "-o", str(out)]) == 0
            capsys.readouterr()
            code = main(["audit", str(out), "--layer", layer, "--format", "json"])
            data = json.loads(capsys.readouterr().out)
            assert code == 0 and "wrong" not in data["counts"], (out.name, data["counts"])
            assert data["counts"].get("correct", 0) >= 5, (out.name, data["counts"])


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=[n.name for n in NOTEBOOKS])
def test_every_notebook_audits_clean(notebook, capsys):
    code = main(["audit", str(notebook), "--format", "json"])
    data = json.loads(capsys.readouterr().out)
    assert code == 0 and "wrong" not in data["counts"], data["counts"]


def test_the_text_report_ends_with_the_count_of_cannot_read_reasons():
    report = audit_document("$$\\mu = \\frac{1}{m}\\sum_i x_i \\unknowncommand$$\n$$\\hat{x}_i = \\foo$$\n"
                            "$$y_i = \\foo + 1$$")
    tail = report.to_text().rstrip().split("\n\n")[-1]
    assert tail.startswith("cannot-read: 3 equations, by reason:")
    assert "  2 × unknown command \\foo" in tail and "  1 × unknown command \\unknowncommand" in tail
    assert all(f.reason for f in report.findings if f.verdict == "cannot-read")
