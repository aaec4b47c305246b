"""The LaTeX and Markdown printers: every printed equation reads back (through
``bngraph.tex.grammar``) to the expression it was printed from; the standalone document
compiles; the output is byte-identical across runs."""
from __future__ import annotations

import os
import random
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import sympy as sp

from bngraph import LAYERS, build_graph, derive
from bngraph.tex import export as latex
from bngraph.tex import grammar as texmath

ROOT = Path(__file__).resolve().parents[1]
CASES = [("batchnorm", 3, "named"), ("batchnorm", 2, "staged"), ("layernorm", 2, "named"),
         ("batchnorm-eval", 2, "named"), ("batchnorm", 5, "named")]


def _derivation(layer="batchnorm", m=3, view="named"):
    return derive(build_graph(LAYERS[layer].trace(m), view, layer))


def _closed(derivation):
    try:
        from bngraph.closedform.simplify import closed_form
    except ImportError:
        return None
    return closed_form(derivation)


# -- reading the printed document back ---------------------------------------------------
def _printed_equations(tex: str) -> list[tuple[str, list[str]]]:
    """(lhs, [side, …]) of every equation in the align blocks, as LaTeX strings.

    Our layout: ``lhs &= side`` starts an equation, ``&= side`` adds a side, ``&\\quad …``
    continues the side above; ``&& \\text{…}`` is a note.
    """
    equations = []
    for block in re.findall(r"\\begin\{(?:align\*|aligned)\}\n(.*?)\n\\end\{(?:align\*|aligned)\}", tex, re.S):
        for row in block.split(" \\\\\n"):
            row = re.sub(r" && \\text\{.*\}$", "", row)
            if row.startswith(r"&\quad "):
                equations[-1][1][-1] += " " + row[len(r"&\quad "):]
            elif row.startswith("&= "):
                equations[-1][1].append(row[3:])
            else:
                lhs, side = row.split(" &= ", 1)
                equations.append((lhs, [side]))
    return equations


def _document_equations(derivation, closed):
    return [eq for block in latex.document(derivation, closed) for eq in block.equations]


def _value(expr: sp.Expr, point: dict, m: int = 3, i: int = 2) -> complex:
    """``expr`` at a point given by symbol names; symbolic m, i and sums made concrete first."""
    expr = sp.sympify(expr)
    concrete = {"m": m, "i": i}  # by name: a parser may give m and i assumptions
    expr = expr.subs({s: concrete[s.name] for s in expr.free_symbols if s.name in concrete}).doit()
    expr = expr.replace(lambda e: isinstance(e, sp.Indexed), lambda e: sp.Symbol(f"{e.base.name}_{e.indices[0]}"))
    values = {s: point.setdefault(s.name, random.Random(s.name).uniform(0.5, 2.0)) for s in expr.free_symbols}
    return complex(expr.subs(values).evalf())


def _sides(texmath, parsed):
    """(lhs, rhs) of texmath's equation, in the engine's concrete names (x[2] -> x_2, ∂σ²/∂μ -> dsigma2_dmu)."""
    return tuple(texmath.concrete_names(e) for e in (parsed.lhs, parsed.rhs))


def test_every_printed_equation_is_one_the_document_holds():
    d = _derivation()
    closed = _closed(d)
    printed = _printed_equations(latex.to_latex(d, closed))
    held = _document_equations(d, closed)
    assert len(printed) == len(held)
    assert [len(sides) for _, sides in printed] == [len(eq.sides) for eq in held]
    assert printed[0] == (r"\mu", [r"\frac{\sum_{j=1}^{m} x_{j}}{m}"])  # for every m
    assert any(lhs == r"\mu" and "x_{3}" in sides[0] for lhs, sides in printed)  # at m = 3


@pytest.mark.parametrize("layer, m, view", CASES)
@pytest.mark.parametrize("options", [{}, {"loss": r"\ell", "batch_subscript": True}])
def test_every_equation_parses_back_to_what_was_printed(layer, m, view, options):
    d = _derivation(layer, m, view)
    closed = _closed(d)
    printed = _printed_equations(latex.to_latex(d, closed, **options))
    failures = []
    for (lhs_tex, sides_tex), eq in zip(printed, _document_equations(d, closed), strict=True):
        for side_tex, side in zip(sides_tex, eq.sides, strict=True):
            point: dict = {}
            try:
                lhs, rhs = _sides(texmath, texmath.parse_equation(f"{lhs_tex} = {side_tex}"))
                ok = (abs(_value(lhs, point) - _value(eq.lhs, point)) < 1e-9
                      and abs(_value(rhs, point) - _value(side, point)) < 1e-9 * (1 + abs(_value(side, point))))
            except Exception as exc:  # noqa: BLE001 — collect every construct that fails
                ok, side_tex = False, f"{side_tex}  [{type(exc).__name__}: {exc}]"
            if not ok:
                failures.append(f"{lhs_tex} = {side_tex}")
    assert not failures, f"{len(failures)} equations do not read back, e.g.:\n" + "\n".join(failures[:5])


# -- the notation -------------------------------------------------------------------------
def test_symbols_print_in_the_papers_notation():
    x, xhat, dy = sp.IndexedBase("x"), sp.IndexedBase("xhat"), sp.IndexedBase("dL_dy")
    i, j, m = sp.symbols("i j m")
    assert latex.tex(sp.Symbol("xhat_1")) == r"\hat{x}_{1}"
    assert latex.tex(sp.Symbol("dL_dxhat_1")) == r"\frac{\partial L}{\partial \hat{x}_{1}}"
    assert latex.tex(sp.Symbol("sigma2")) == r"\sigma^{2}"
    assert latex.tex(sp.Symbol("sigma2"), batch_subscript=True) == r"\sigma_{\mathcal{B}}^{2}"
    assert latex.tex(sp.Symbol("mu"), batch_subscript=True) == r"\mu_{\mathcal{B}}"
    assert latex.tex(sp.Symbol("dL_dmu"), loss=r"\ell") == r"\frac{\partial \ell}{\partial \mu}"
    assert latex.tex(x[i] - sp.Symbol("mu")) == r"x_{i} - \mu"
    assert latex.tex(sp.Sum(dy[j] * xhat[j], (j, 1, m))) == r"\sum_{j=1}^{m} \frac{\partial L}{\partial y_{j}} \cdot \hat{x}_{j}"
    assert latex.tex(sp.Symbol("xmu_1")) == r"\mathrm{xmu}_{1}"
    assert latex.tex(sp.Symbol("running_mean")) == r"\mathrm{running\_mean}"


def test_terms_are_written_as_a_person_writes_them():
    mu, x1, eps, s2, gamma, beta, xh = sp.symbols("mu x_1 epsilon sigma2 gamma beta xhat_1")
    assert latex.tex(-mu + x1) == r"x_{1} - \mu"
    assert latex.tex(sp.sqrt(eps + s2)) == r"\sqrt{\sigma^{2} + \epsilon}"
    assert latex.tex(beta + gamma * xh) == r"\gamma \hat{x}_{1} + \beta"
    assert latex.tex((eps + s2) ** sp.Rational(-3, 2)) == r"\left(\sigma^{2} + \epsilon\right)^{-3/2}"


def test_sections_for_the_five_parts():
    d = _derivation()
    text = latex.to_latex(d, _closed(d))
    for heading in ("Forward pass", "Local partial derivatives", "Adjoints by the chain rule",
                    "Closed form for every batch size $m$", "Fully substituted at $m = 3$"):
        assert f"\\subsection*{{{heading}}}" in text
    assert r"\frac{\partial \sigma^{2}}{\partial \mu} &= " in text  # a local partial
    big = latex.to_latex(_derivation(m=5))
    assert "Omitted: at $m = 5$" in big and "Closed form" not in big  # closed=None: no section


def test_long_sums_are_broken_over_lines():
    rows = latex.to_latex(_derivation(m=4)).splitlines()
    assert any(row.startswith(r"&\quad + ") for row in rows)
    assert max(len(row) for row in rows if "&" in row) < 4 * latex.LINE_CHARS


# -- documents ----------------------------------------------------------------------------
def test_standalone_is_a_whole_document_and_the_fragment_is_not():
    d = _derivation(m=2)
    full, fragment = latex.to_latex(d, standalone=True), latex.to_latex(d)
    assert full.startswith("\\documentclass{article}\n\\usepackage{amsmath}\n\\usepackage{amssymb}")
    assert full.rstrip().endswith(r"\end{document}") and fragment in full
    assert r"\documentclass" not in fragment


@pytest.mark.skipif(shutil.which("pdflatex") is None, reason="pdflatex is not installed (apt-get install texlive-latex-base)")
@pytest.mark.parametrize("layer, m, view", CASES)
def test_standalone_document_compiles_with_pdflatex(tmp_path, layer, m, view):
    d = _derivation(layer, m, view)
    (tmp_path / "doc.tex").write_text(latex.to_latex(d, _closed(d), standalone=True, batch_subscript=True))
    run = subprocess.run(["pdflatex", "-interaction=nonstopmode", "-halt-on-error", "doc.tex"],
                         cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stdout[-2000:]
    assert (tmp_path / "doc.pdf").stat().st_size > 0


def test_descriptions_are_escaped_for_latex():
    assert latex._text("x_i & 50% — Σ_j x̂_j = 0") == r"x\_i \& 50\% --- $\Sigma$\_j x\_j = 0"


def test_markdown_has_headings_and_balanced_display_math():
    d = _derivation()
    text = latex.to_markdown(d, _closed(d))
    assert text.startswith("# Backward pass of batchnorm")
    assert "\n## Adjoints by the chain rule\n" in text
    lines = text.splitlines()
    assert lines.count("$$") % 2 == 0 and lines.count("$$") > 0
    opens = [k for k, line in enumerate(lines) if line == "$$"][::2]
    assert all(lines[k + 1] == r"\begin{aligned}" for k in opens)
    assert len(_printed_equations(text)) == len(_document_equations(d, _closed(d)))


def test_derivation_shows_itself_in_jupyter():
    d = _derivation(m=2)
    assert d._repr_latex_() == latex.to_latex(d)
    assert d._repr_markdown_() == latex.to_markdown(d)


def test_output_is_byte_identical_across_runs():
    script = ("import sys; from bngraph import LAYERS, build_graph, derive; from bngraph.tex import export as latex; "
              "from bngraph.closedform.simplify import closed_form; "
              "d = derive(build_graph(LAYERS['batchnorm'].trace(3))); c = closed_form(d); "
              "sys.stdout.write(latex.to_latex(d, c, standalone=True) + latex.to_markdown(d, c))")
    outputs = set()
    for seed in ("0", "1", "12345"):
        env = {**os.environ, "PYTHONHASHSEED": seed, "PYTHONPATH": str(ROOT)}
        run = subprocess.run([sys.executable, "-c", script], capture_output=True, env=env, timeout=300)
        assert run.returncode == 0, run.stderr.decode()[-2000:]
        outputs.add(run.stdout)
    assert len(outputs) == 1
