r"""bngraph.audit.auditor: every formula of a write-up gets a verdict; every planted slip is found.

The reference formulas the auditor compares against come from the engine in production.
Here they are the textbook formulas written in SymPy — and the first tests check them
against NumPy finite differences of the forward pass, so they are known right without
trusting the auditor or the engine. The documents in tests/data/audit/ were written for
these tests; each planted slip (and each formula that must pass) has a marker comment on
its line (``<!-- slip:… -->`` in Markdown, ``% slip:…`` in LaTeX).
"""
from __future__ import annotations

import argparse
import ast
import doctest
import io
import json
import re
from pathlib import Path

import numpy as np
import pytest
import sympy as sp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import bngraph
from bngraph.audit import auditor as audit, batcheval, judge as auditcheck, runningavg
from bngraph.tex import document as texdoc
from bngraph.audit.auditor import assert_document_correct, audit_document, cli_audit
from bngraph.audit.judge import VERDICTS
from bngraph.errors import BngraphError
from bngraph.tex.names import symbol
from bngraph.tex.printer import to_latex

DATA = Path(__file__).parent / "data" / "audit"
PACKAGE = Path(bngraph.__file__).parent
# every module of bngraph: none may hand text to eval, exec, sympify or parse_expr
MODULES = sorted(str(p.relative_to(PACKAGE)) for p in PACKAGE.rglob("*.py"))

# -- the references: textbook formulas in SymPy … ------------------------------------------
m, i, j = symbol("m"), symbol("i"), symbol("j")
x, xhat, dy = (sp.IndexedBase(symbol(n)) for n in ("x", "xhat", "dL_dy"))
mu, sigma2, gamma, beta, eps = (symbol(n) for n in ("mu", "sigma2", "gamma", "beta", "epsilon"))


def S(body):
    return sp.Sum(body, (j, 1, m))


REFS = {
    "mu": S(x[j]) / m,
    "sigma2": S((x[j] - mu) ** 2) / m,
    "xhat[i]": (x[i] - mu) / sp.sqrt(sigma2 + eps),
    "y[i]": gamma * xhat[i] + beta,
    "dL_dxhat[i]": gamma * dy[i],
    "dL_dsigma2": -gamma / 2 * (sigma2 + eps) ** sp.Rational(-3, 2) * S(dy[j] * (x[j] - mu)),
    "dL_dmu": -gamma / sp.sqrt(sigma2 + eps) * S(dy[j]),
    "dL_dx[i]": gamma / (m * sp.sqrt(sigma2 + eps)) * (m * dy[i] - S(dy[j]) - xhat[i] * S(dy[j] * xhat[j])),
    "dL_dgamma": S(dy[j] * xhat[j]),
    "dL_dbeta": S(dy[j]),
}


# -- … checked against NumPy finite differences, independently of bngraph -------------------
def _concrete(expr: sp.Expr, values: dict, size: int, index: int | None = None) -> float:
    """``expr`` at m = size (and i = index), sums written out, by SymPy substitution alone."""
    e = expr.xreplace({m: sp.Integer(size), **({i: sp.Integer(index)} if index else {})}).doit()
    e = e.replace(lambda a: isinstance(a, sp.Indexed), lambda a: sp.Symbol(f"{a.base}_{int(a.indices[0])}"))
    return float(e.xreplace({sp.Symbol(k): v for k, v in values.items()}).xreplace(
        {s: values[s.name] for s in e.free_symbols if s.name in values}))


def _forward(xs, g, b, e):
    mean = xs.mean()
    var = ((xs - mean) ** 2).mean()
    return mean, var, (xs - mean) / np.sqrt(var + e)


def _numpy_values(xs, dys, g, b, e):
    """μ, σ², x̂ by NumPy and every adjoint by central differences of L = Σ dL_dy_k y_k."""
    h = 1e-6
    mean, var, xh = _forward(xs, g, b, e)

    def loss(xs=xs, g=g, b=b, mean=None, var=None, xh=None):
        m0, v0, x0 = _forward(xs, g, b, e)
        mean = m0 if mean is None else mean
        var = ((xs - mean) ** 2).mean() if var is None else var
        xh = (xs - mean) / np.sqrt(var + e) if xh is None else xh
        return float(np.dot(dys, g * xh + b))

    def diff(f, v):
        return (f(v + h) - f(v - h)) / (2 * h)

    unit = np.eye(len(xs))
    out = {"mu": mean, "sigma2": var, "sigma": np.sqrt(var), "xhat": xh,
           "dL_dx": np.array([diff(lambda t, k=k: loss(xs=xs + (t - xs[k]) * unit[k]), xs[k]) for k in range(len(xs))]),
           "dL_dgamma": diff(lambda t: loss(g=t), g), "dL_dbeta": diff(lambda t: loss(b=t), b),
           "dL_dmu": diff(lambda t: loss(mean=t), mean), "dL_dsigma2": diff(lambda t: loss(mean=mean, var=t), var),
           "dL_dxhat": np.array([diff(lambda t, k=k: loss(xh=xh + (t - xh[k]) * unit[k]), xh[k]) for k in range(len(xs))])}
    return out


@pytest.mark.parametrize("size", [2, 3, 5])
def test_the_reference_formulas_are_the_derivatives_of_the_forward_pass(size):
    rng = np.random.default_rng(size)
    xs, dys = rng.normal(0.5, 2.0, size), rng.normal(0.0, 1.0, size)
    g, b, e = 1.3, -0.4, 0.2
    truth = _numpy_values(xs, dys, g, b, e)
    values = {"gamma": g, "beta": b, "epsilon": e, "mu": truth["mu"], "sigma2": truth["sigma2"]}
    values.update({f"x_{k + 1}": xs[k] for k in range(size)})
    values.update({f"dL_dy_{k + 1}": dys[k] for k in range(size)})
    values.update({f"xhat_{k + 1}": truth["xhat"][k] for k in range(size)})
    for key, expr in REFS.items():
        name = key.split("[")[0]
        if name == "y":
            continue
        if key.endswith("[i]"):
            for k in range(1, size + 1):
                assert _concrete(expr, values, size, k) == pytest.approx(truth[name][k - 1], rel=1e-5, abs=1e-7), key
        else:
            assert _concrete(expr, values, size) == pytest.approx(truth[name], rel=1e-5, abs=1e-7), key


# -- helpers ---------------------------------------------------------------------------------
def markers(path: Path) -> dict[str, int]:
    """marker -> line number, from ``<!-- slip:mean -->`` or ``% slip:mean`` comments."""
    found = {}
    for number, line in enumerate(path.read_text().splitlines(), 1):
        for marker in re.findall(r"(?:<!--|%)\s*((?:ok|other|slip|warn)[:\w/-]*|unreadable)", line):
            found[marker] = number
    return found


def finding_at(report, line):
    found = [f for f in report.findings if f.line == line]
    assert found, f"no equation found at line {line}"
    return found[-1]


@pytest.fixture(scope="module")
def reports():
    return {name: audit_document(DATA / name, references=REFS)
            for name in ("bn_correct.md", "bn_correct.tex", "bn_notebook.ipynb", "bn_slips.md", "bn_slips.tex",
                         "bn_concrete.md")}


# -- correct documents: nothing flagged ----------------------------------------------------
@pytest.mark.parametrize("name, least", [("bn_correct.md", 18), ("bn_correct.tex", 14), ("bn_concrete.md", 6)])
def test_no_correct_formula_is_flagged(reports, name, least):
    report, marked = reports[name], markers(DATA / name)
    slips = {line for marker, line in marked.items() if marker.startswith("slip:")}
    assert not [f.to_text() for f in report.findings if f.verdict in ("wrong", "cannot-read") and f.line not in slips]
    assert report.exit_code == (1 if slips else 0)
    assert len([f for f in report.findings if f.verdict in ("correct", "correct-other-form")]) >= least
    for marker, line in marked.items():
        if not marker.startswith("slip:"):
            expected = {"ok": "correct", "other": "correct-other-form"}[marker.split(":")[0]]
            assert finding_at(report, line).verdict == expected, marker


def test_every_quantity_is_recognised_in_every_notation(reports):
    defined = {f.defines for name in ("bn_correct.md", "bn_correct.tex") for f in reports[name].findings}
    assert set(REFS) <= defined
    assert {"helper:ivar", "update:mu_run", "update:sigma2_run", "setting:epsilon"} <= defined


def test_a_worked_example_is_checked_at_its_own_m(reports):
    report = reports["bn_concrete.md"]
    assert all(f.checked.endswith("m = 3") for f in report.findings if f.checked.startswith("numerically"))
    line = markers(DATA / "bn_concrete.md")["slip:term-missing"]
    wrong = finding_at(report, line)
    assert wrong.verdict == "wrong" and wrong.counterexample.batch.m == 3
    assert r"\sum_{k=1}^{3}" in wrong.correction


# -- every planted slip is found -------------------------------------------------------------
SLIPS = [
    ("bn_slips.md", "slip:mean-without-1/m", "wrong", "the factor 1/m is missing"),
    ("bn_slips.md", "slip:variance-without-1/m", "wrong", "the factor 1/m is missing"),
    ("bn_slips.md", "slip:sigma-for-sigma2", "wrong", "σ (the standard deviation) is written where σ²"),
    ("bn_slips.md", "slip:dx-for-dxhat", "wrong", "∂ℓ/∂x_i is written where ∂ℓ/∂x̂_i is meant"),
    ("bn_slips.md", "slip:dmu-first-term-dropped", "wrong", ""),
    ("bn_slips.md", "ok:dmu-sigma-path-dropped", "correct", ""),
    ("bn_slips.md", "unreadable", "cannot-read", "empty braces"),
    ("bn_slips.tex", "slip:unbiased-variance", "wrong", "m − 1"),
    ("bn_slips.tex", "slip:sigma-defined-as-variance", "wrong", "where σ² (the variance) is meant"),
    ("bn_slips.tex", "slip:gamma-missing", "wrong", "the factor γ is missing"),
    ("bn_slips.tex", "slip:sign", "wrong", "the sign of the term"),
    ("bn_slips.tex", "slip:x-for-xhat", "wrong", "x_i is written where x̂_i is meant"),
    ("bn_notebook.ipynb", None, "wrong", ""),
]


@pytest.mark.parametrize("name, marker, verdict, reason", SLIPS, ids=[f"{s[0]}:{s[1]}" for s in SLIPS])
def test_every_planted_slip_is_found(reports, name, marker, verdict, reason):
    report = reports[name]
    found = finding_at(report, markers(DATA / name)[marker]) if marker else report.findings[-1]
    assert found.verdict == verdict, found.to_text()
    assert reason in found.reason


@pytest.mark.parametrize("marker, warning", [("warn:gamma-per-example", "γ_i: γ is one number per feature"),
                                             ("warn:sigma-update", "it averages σ, the standard deviation"),
                                             ("warn:beta-reused", "β is also the shift")])
def test_slips_that_are_warnings(reports, marker, warning):
    found = finding_at(reports["bn_slips.md"], markers(DATA / "bn_slips.md")[marker])
    assert found.verdict == "correct"
    assert any(warning in w for w in found.warnings), found.warnings


def test_the_slips_document_still_judges_everything_else(reports):
    report = reports["bn_slips.md"]
    assert report.exit_code == 1
    assert len(report.findings) == len(markers(DATA / "bn_slips.md"))
    assert report.counts() == {"correct": 6, "wrong": 5, "cannot-read": 1}


def test_a_notebooks_findings_name_their_cell(reports):
    report = reports["bn_notebook.ipynb"]
    assert [(f.cell, f.line) for f in report.findings] == [(3, 3), (3, 5), (4, 1), (4, 1), (5, 2), (5, 4)]
    assert report.findings[0].where == "cell 3, line 3"


# -- a wrong formula comes with a true counterexample and the right formula -----------------
def test_counterexamples_are_real_and_small(reports):
    for report in (reports["bn_slips.md"], reports["bn_slips.tex"]):
        for f in report.wrong:
            c = f.counterexample
            if c is None:
                continue
            b = c.batch
            assert b.m <= 3 and all(v == int(v) for v in b.x), f.to_text()
            truth = _numpy_values(np.array(b.x), np.array(b.dL_dy), b.gamma, b.beta, b.epsilon)
            name = f.defines.split("[")[0]
            want = truth[name][c.index[1] - 1] if c.index else truth[name]
            assert c.want == pytest.approx(want, rel=1e-5, abs=1e-6), f.to_text()
            assert abs(c.got - c.want) > 1e-6


def test_corrections_are_right_and_in_the_authors_notation(reports):
    for name in ("bn_slips.md", "bn_slips.tex", "bn_concrete.md"):
        for f in reports[name].wrong:
            assert f.correction, f.to_text()
            again = audit_document(f"$${f.correction}$$", references=REFS)
            assert again.findings[0].verdict in ("correct", "correct-other-form"), (f.correction, again.to_text())
    md = {f.defines: f.correction for f in reports["bn_slips.md"].wrong}
    assert md["mu"].startswith(r"\mu_B = ") and r"\sigma_B^2" in md["xhat[i]"] and r"\partial \ell" in md["dL_dsigma2"]
    tex = {f.defines: f.correction for f in reports["bn_slips.tex"].wrong}
    assert r"\mu_{\mathcal{B}}" in tex["sigma2"] and r"\frac{\partial \ell}{\partial y_{i}}" in tex["dL_dmu"]


# -- running averages ---------------------------------------------------------------------------
@pytest.mark.parametrize("tex, verdict, says", [
    (r"\mu_{\text{run}} \gets (1 - \alpha)\mu_{\text{run}} + \alpha \mu_B", "correct", "as in PyTorch"),
    (r"\mu_{\text{run}} \gets \alpha\mu_{\text{run}} + (1 - \alpha) \mu_B", "correct", "as in Keras"),
    (r"\text{running\_var} = 0.9\,\text{running\_var} + 0.1\,\sigma_B^2", "correct", "0.9·running + 0.1·batch"),
    (r"\mu_{\text{run}} \gets 0.9\mu_{\text{run}} + 0.2 \mu_B", "wrong", "add up to"),
    (r"\mu_{\text{run}} \gets 0.9\mu_{\text{run}} + 0.1 \sigma_B^2", "wrong", "running mean updated with the batch variance"),
    (r"\sigma^2_{\text{run}} \gets 0.9\sigma^2_{\text{run}} + 0.1 \sigma_B", "wrong", "σ, the standard deviation"),
])
def test_running_averages(tex, verdict, says):
    found = audit_document(f"$${tex}$$", references=REFS).findings[0]
    assert found.verdict == verdict and found.defines.startswith("update:")
    assert says in found.reason


def test_momentum_named_like_a_layer_parameter_is_a_warning():
    found = audit_document(r"$$\mu_{\text{run}} \gets \gamma\mu_{\text{run}} + (1-\gamma)\mu$$", references=REFS).findings[0]
    assert found.verdict == "correct" and "γ is the momentum here" in found.warnings[0]


# -- what is not checked, and why -------------------------------------------------------------
@pytest.mark.parametrize("tex, verdict, says", [
    (r"\mathrm{softmax}(z)_k = \exp(z_k)", "not-about-this-layer", "none of the layer's quantities"),
    (r"y_i = \max(0, x_i)", "not-about-this-layer", ""),
    (r"\hat{x}_i = \frac{x_i - \mu}{\sigma_{\text{foo}}}", "cannot-evaluate", "sigma_foo is not defined"),
    (r"\hat{x}_i = \frac{x_i - \mu}{\sqrt{\sigma^2 + \epsilon}} + \unknown", "cannot-read", r"unknown command \unknown"),
    (r"\mu = \frac{1}{m} x_i", "ambiguous", "right if i is summed over the batch"),
    (r"\mu = x_i", "wrong", "the index i is free on the right side only"),
    (r"\sum_{i=1}^m \hat{x}_i = 0", "correct", ""),
    # 1 − ε/(σ² + ε) in truth: right with ε = 0, as the paper writes it ("neglecting ε")
    (r"\frac{1}{m}\sum_{i=1}^m \hat{x}_i^2 = 1", "ambiguous", "right with ε = 0"),
    (r"\frac{1}{m}\sum_{i=1}^m \hat{x}_i^2 = 2", "wrong", ""),
    (r"\frac{\partial y_i}{\partial \hat{x}_i} = \gamma", "correct", ""),
    (r"\sigma_B = \sqrt{\sigma_B^2 + \epsilon}", "helper", "σ here is √(σ² + ε)"),
    (r"\epsilon = 10^{-5}", "helper", "sets epsilon = 1e-05"),
])
def test_verdicts_beyond_right_and_wrong(tex, verdict, says):
    found = audit_document(f"$${tex}$$", references=REFS).findings[0]
    assert found.verdict == verdict, found.to_text()
    assert says in found.reason


def test_a_documents_own_sigma_with_epsilon_is_used_later():
    text = "$$\\sigma_B = \\sqrt{\\sigma_B^2 + \\epsilon}$$\n$$\\hat{x}_i = \\frac{x_i - \\mu_B}{\\sigma_B}$$\n"
    assert [f.verdict for f in audit_document(text, references=REFS).findings] == ["helper", "correct"]
    without = audit_document("$$\\hat{x}_i = \\frac{x_i - \\mu_B}{\\sigma_B}$$", references=REFS).findings[0]
    # without the document's σ, ε folded into σ is a convention: ambiguous, never "wrong"
    assert without.verdict == "ambiguous" and "σ stands for √(σ² + ε)" in without.reason


# -- reports, exit codes, the CLI --------------------------------------------------------------
def test_text_report_lists_every_equation_with_its_line(reports):
    text = reports["bn_slips.md"].to_text()
    assert text.startswith(f"{DATA / 'bn_slips.md'} (batchnorm): 12 equations: 6 correct, 5 wrong, 1 cannot-read")
    assert "line 5: \\mu_B = \\sum_{i=1}^m x_i\n  batch mean μ: wrong — the factor 1/m is missing" in text
    assert "counterexample: m = 2, x = (1, 3): the formula gives 4, it should be 2" in text


def test_json_report_is_complete_and_deterministic():
    first = audit_document(DATA / "bn_slips.md", references=REFS).to_json()
    assert first == audit_document(DATA / "bn_slips.md", references=REFS).to_json()
    data = json.loads(first)
    assert list(data) == ["source", "layer", "exit_code", "counts", "findings"]
    assert data["exit_code"] == 1 and data["counts"]["wrong"] == 5
    mean = data["findings"][0]
    assert list(mean) == ["line", "cell", "tex", "defines", "verdict", "reason", "warnings", "counterexample",
                          "correction", "checked"]
    assert mean["counterexample"] == {"m": 2, "x": [1.0, 3.0], "index": None, "formula_gives": 4.0, "should_be": 2.0}


def _cli(path, fmt="text"):
    out, err = io.StringIO(), io.StringIO()
    code = cli_audit(argparse.Namespace(file=str(path), layer="batchnorm", format=fmt), REFS, out, err)
    return code, out.getvalue(), err.getvalue()


def test_exit_codes(tmp_path):
    assert _cli(DATA / "bn_correct.md")[0] == 0
    code, out, _ = _cli(DATA / "bn_slips.tex", "json")
    assert code == 1 and json.loads(out)["exit_code"] == 1
    (tmp_path / "latin1.md").write_bytes("$$\\mu = \xe9$$".encode("latin-1"))
    (tmp_path / "broken.ipynb").write_text("{not json")
    for bad, says in [(tmp_path / "missing.md", "no such file"), (tmp_path / "latin1.md", "not UTF-8"),
                      (tmp_path / "broken.ipynb", "not a Jupyter notebook")]:
        code, out, err = _cli(bad)
        assert code == 2 and out == "" and says in err and err.count("\n") == 1


def test_assert_document_correct(tmp_path):
    assert assert_document_correct(DATA / "bn_correct.tex", references=REFS).exit_code == 0
    with pytest.raises(AssertionError, match="the factor 1/m is missing"):
        assert_document_correct(DATA / "bn_slips.md", references=REFS)


def test_the_engines_references_agree_on_the_correct_documents():
    report = audit_document(DATA / "bn_correct.tex")  # references from the engine itself
    assert report.exit_code == 0 and not [f for f in report.findings if f.verdict == "cannot-read"]


# -- finding the math --------------------------------------------------------------------------
def test_math_is_found_where_people_put_it():
    doc = ("Text $a = b$ and \\(c = d\\), a price $5 and $6, escaped \\$x = 1\\$, `$e = f$` in code.\n"
           "```\n$g = h$\n```\n<!-- $i = j$ -->\n"
           "\\[ k = l \\]\n\\begin{equation*} n = p \\end{equation*}\n"
           "\\begin{multline} q = r \\\\ + s \\end{multline}\n"
           "\\begin{eqnarray} t &=& u \\\\ &=& v \\end{eqnarray}\n")
    found = [(s.line, s.tex) for s in texdoc.find_equations(doc)]
    assert found == [(1, "a = b"), (1, "c = d"), (6, "k = l"), (7, "n = p"), (8, "q = r + s"), (9, "t = u"), (9, "t = v")]


def test_macros_are_expanded():
    doc = ("\\newcommand{\\pd}[2]{\\frac{\\partial #1}{\\partial #2}}\\def\\B{\\mathcal{B}}\n"
           "\\renewcommand\\hx[1][i]{\\hat{x}_{#1}}\\DeclareMathOperator{\\Var}{Var}\n"
           "$\\pd{\\ell}{\\mu_\\B} = \\hx + \\hx[j] + \\Var$")
    (snippet,) = texdoc.find_equations(doc, "tex")
    assert snippet.tex == r"\frac{\partial \ell}{\partial \mu_\mathcal{B}} = \hat{x}_{i} + \hat{x}_{j} + \operatorname{Var}"
    with pytest.raises(BngraphError, match="does not end"):
        texdoc.expand_macros(r"\a", {"a": texdoc.Macro(0, None, r"\a\a")})


# -- robustness: nothing but the auditor's own verdicts, and quickly -------------------------------
GOOD = [to_latex(sp.IndexedBase(symbol(k.split("[")[0]))[i] if "[" in k else symbol(k)) + " = " + to_latex(v)
        for k, v in REFS.items()]
BAD = [r"\mu = \frac{1}{m", r"\sigma_B = \foo", r"\hat{x}_i = x_i^{", r"= =", r"\mu = \sum", r"x_{i_j} = 1",
       r"\frac{\partial}{\partial} = 0", r"\gamma_i = \beta_{i,j,k}", "\\mu = x_{1000}", r"\sqrt[3]{\mu} = \mu"]
PROSE = ["Some text.", "A price: 5 dollars.", "`code $x$`", "&= 2", "%", "\n\n", "<!-- $x = 1$ -->"]


@st.composite
def documents(draw):
    parts = []
    for _ in range(draw(st.integers(1, 6))):
        kind = draw(st.sampled_from(["good", "bad", "prose", "scaled"]))
        if kind == "prose":
            parts.append(draw(st.sampled_from(PROSE)))
            continue
        tex = draw(st.sampled_from(GOOD if kind != "bad" else BAD))
        if kind == "scaled":
            lhs, rhs = tex.split(" = ", 1)
            tex = f"{lhs} = {draw(st.sampled_from(['2', '3', '-1']))} \\left({rhs}\\right)"
        parts.append(draw(st.sampled_from(["$$%s$$", "$%s$", "\\[%s\\]", "\\begin{align}%s\\end{align}"])) % tex)
    return "\n".join(parts)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(documents())
def test_any_document_gets_a_report_and_scaled_formulas_are_wrong(doc):
    report = audit_document(doc, references=REFS)  # its speed is measured in benchmarks/, not here
    assert all(f.verdict in VERDICTS for f in report.findings)
    for f in report.findings:
        if re.search(r"= (2|3|-1) \\left\(", f.tex):
            assert f.verdict == "wrong", f.to_text()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.sampled_from(list("$\\{}_^=+-()[]&xmu%\n ") + [r"\mu", r"\frac", r"\begin{align}",
                                                                   r"\end{align}", r"\hat", r"\sum"]),
                max_size=60).map("".join))
def test_malformed_input_never_crashes_the_auditor(doc):
    report = audit_document(doc, references=REFS)
    assert all(f.verdict in VERDICTS for f in report.findings)


# -- the hard rule: nothing a document says is ever evaluated as code -------------------------------
@pytest.mark.parametrize("module", MODULES)
def test_no_module_evaluates_text(module):
    source = (PACKAGE / module).read_text()
    text_readers = {"eval", "exec", "sympify", "parse_expr", "S"}  # sp.S("...") parses text too
    # importing the user's own FILE.py (``--function``) is the one place that compiles code
    compilers = set() if module == "engine/usercode.py" else {"compile", "__import__"}
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Call):
            if isinstance(node.func, ast.Name):
                assert node.func.id not in text_readers | compilers, f"{module}:{node.lineno}"
            elif isinstance(node.func, ast.Attribute):
                assert node.func.attr not in text_readers, f"{module}:{node.lineno} calls {node.func.attr}"
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            assert not {a.name for a in node.names} & {"sympify", "parse_expr"}, f"{module} imports it"


def test_docstring_examples_run():
    for module in (audit, auditcheck, batcheval, runningavg):
        failed, _ = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
        assert failed == 0, module.__name__
