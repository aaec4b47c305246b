r"""Audit a write-up of a normalization layer's backward pass: every formula, with a verdict.

``audit_document`` finds the equations of a Markdown, LaTeX, notebook or text file
(:mod:`bngraph.tex.document`), reads each (:mod:`bngraph.tex.grammar`) and judges it against the
engine's reference formulas (:mod:`bngraph.audit.judge`): correct, correct-other-form,
wrong (with a counterexample and the right formula in the author's notation), helper (a
name or setting of the document's own), not-about-this-layer, or cannot-read (and why).
One unreadable formula does not stop the others. The correct formulas are never typed
here: they are ``references``, the engine's closed forms, keyed as in the contract
(``"mu"``, ``"sigma2"``, ``"xhat[i]"``, ``"y[i]"``, ``"dL_dxhat[i]"``, ``"dL_dsigma2"``,
``"dL_dmu"``, ``"dL_dx[i]"``, ``"dL_dgamma"``, ``"dL_dbeta"``).

>>> from bngraph.tex.grammar import parse_expression as tex
>>> refs = {"mu": tex(r"\frac{1}{m}\sum_j x_j")}
>>> report = audit_document(r"The mean: $\mu_B = \sum_{i=1}^m x_i$.", references=refs)
>>> report.findings[0].verdict, report.findings[0].reason, report.exit_code
('wrong', 'the factor 1/m is missing', 1)
>>> report.findings[0].correction
'\\mu_B = \\frac{1}{m} \\sum_{i=1}^{m} x_{i}'
"""
from __future__ import annotations

import json
import re
import sys
import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

import sympy as sp

from bngraph.audit.judge import (CANNOT_READ, GIVEN, VERDICTS, WRONG, Context, Counterexample, Judgement, judge,
                         names_in, target_of)
from bngraph.audit.batcheval import Batch, Helper, close, reference_table, Unevaluable
from bngraph.errors import BngraphError
from bngraph.tex.document import Snippet, document_equations
from bngraph.tex.grammar import Equation, TexSyntaxError, parse_equation
from bngraph.tex.names import Notation, canonical, symbol

__all__ = ["AuditReport", "Finding", "assert_document_correct", "audit_document", "cli_audit"]

_MENTIONS_LAYER = re.compile(r"\\(?:mu|sigma|hat|widehat|partial|pdv|gamma|beta|epsilon|varepsilon|sum|frac|ell)(?![a-zA-Z])")


@dataclass(frozen=True)
class Finding(Judgement):
    """One equation of the document: where it stands, and the judgement on it."""

    line: int = 0
    cell: int | None = None
    tex: str = ""

    @classmethod
    def of(cls, snippet: Snippet, judgement: Judgement) -> "Finding":
        fields = {f.name: getattr(judgement, f.name) for f in dataclasses.fields(Judgement)}
        return cls(**fields, line=snippet.line, cell=snippet.cell, tex=snippet.tex)

    @property
    def where(self) -> str:
        return f"cell {self.cell}, line {self.line}" if self.cell is not None else f"line {self.line}"

    def to_dict(self) -> dict:
        return {"line": self.line, "cell": self.cell, "tex": self.tex, "defines": self.defines,
                "verdict": self.verdict, "reason": self.reason, "warnings": list(self.warnings),
                "counterexample": _counterexample_dict(self.counterexample, self.defines),
                "correction": self.correction, "checked": self.checked}

    def to_text(self) -> str:
        lines = [f"{self.where}: {self.tex}"]
        head = f"  {self.label}: {self.verdict}" if self.label else f"  {self.verdict}"
        lines.append(head + (f" — {self.reason}" if self.reason else ""))
        if self.counterexample is not None:
            lines.append("  counterexample: " + _counterexample_text(self.counterexample, self.defines))
        if self.correction:
            lines.append(f"  correct: {self.correction}")
        lines += [f"  warning: {w}" for w in self.warnings]
        if self.checked and self.verdict != CANNOT_READ:
            lines.append(f"  checked {self.checked}")
        return "\n".join(lines)


@dataclass(frozen=True)
class AuditReport:
    """Every finding of one document, in document order."""

    source: str
    layer: str
    findings: tuple[Finding, ...]

    @property
    def exit_code(self) -> int:
        """1 when a formula is wrong, else 0 (unreadable input raises before a report exists)."""
        return 1 if self.wrong else 0

    @property
    def wrong(self) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if f.verdict == WRONG)

    def counts(self) -> dict[str, int]:
        return {v: sum(f.verdict == v for f in self.findings) for v in VERDICTS
                if any(f.verdict == v for f in self.findings)}

    def summary(self) -> str:
        counts = ", ".join(f"{n} {v}" for v, n in self.counts().items()) or "no equations found"
        warned = sum(bool(f.warnings) for f in self.findings)
        noun = "equation" if len(self.findings) == 1 else "equations"
        return (f"{self.source} ({self.layer}): {len(self.findings)} {noun}: {counts}"
                + (f"; {warned} with warnings" if warned else ""))

    def to_text(self) -> str:
        return "\n\n".join([self.summary(), *(f.to_text() for f in self.findings)]) + "\n"

    def to_dict(self) -> dict:
        return {"source": self.source, "layer": self.layer, "exit_code": self.exit_code,
                "counts": self.counts(), "findings": [f.to_dict() for f in self.findings]}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, ensure_ascii=False) + "\n"


# -- counterexamples for people -----------------------------------------------------------
def _round(v: float) -> float:
    return float(f"{v:.10g}")


def _shown(defines: str | None) -> set[str]:
    """Which inputs matter for a quantity: the mean and variance need only x."""
    name = (defines or "").split("[")[0]
    if name in ("mu", "sigma2", "sigma"):
        return {"x"}
    if name == "xhat":
        return {"x", "epsilon"}
    if name == "y":
        return {"x", "gamma", "beta", "epsilon"}
    return {"x", "gamma", "beta", "epsilon", "dL_dy"}


def _counterexample_dict(c: Counterexample | None, defines: str | None) -> dict | None:
    if c is None:
        return None
    shown, b = _shown(defines), c.batch
    out = {"m": b.m, "x": [_round(v) for v in b.x]}
    for name in ("gamma", "beta", "epsilon"):
        if name in shown:
            out[name] = _round(getattr(b, name))
    if "dL_dy" in shown:
        out["dL_dy"] = [_round(v) for v in b.dL_dy]
    out["index"] = {c.index[0]: c.index[1]} if c.index else None
    out["formula_gives"], out["should_be"] = _round(c.got), _round(c.want)
    return out


def _counterexample_text(c: Counterexample, defines: str | None) -> str:
    shown, b = _shown(defines), c.batch
    parts = [f"m = {b.m}", "x = (" + ", ".join(f"{v:g}" for v in b.x) + ")"]
    parts += [f"{sym} = {getattr(b, n):g}" for n, sym in (("gamma", "γ"), ("beta", "β"), ("epsilon", "ε")) if n in shown]
    if "dL_dy" in shown:
        parts.append("∂ℓ/∂y = (" + ", ".join(f"{v:g}" for v in b.dL_dy) + ")")
    if c.index:
        parts.append(f"{c.index[0]} = {c.index[1]}")
    return ", ".join(parts) + f": the formula gives {c.got + 0.0:.6g}, it should be {c.want + 0.0:.6g}"


# -- the document -------------------------------------------------------------------------
def default_references(layer: str) -> Mapping[str, sp.Expr]:
    """The engine's reference formulas for ``layer``: the closed form it derives (definitions and adjoints)."""
    from bngraph.closedform.simplify import closed_form_of  # the engine runs only when a document is judged
    from bngraph.engine.layers import get_layer

    closed = closed_form_of(get_layer(layer).function, layer)
    return {**closed.definitions, **closed.formulas}


def _context(parsed: list[tuple[Snippet, Equation | TexSyntaxError]], refs) -> Context:
    """What the document says as a whole: its notation, its m, its own names."""
    equations = [(canonical(eq.lhs), tuple(canonical(s) for s in eq.chain), eq)
                 for _, eq in parsed if isinstance(eq, Equation) and eq.lhs is not None]
    notation = Notation()
    for _, _, eq in equations:
        notation = notation.merged(eq.notation)
    ctx = Context(refs, notation=notation)
    size_names = {"m"} | {notation.get("m")} - {None}
    concrete = []
    for lhs, sides, _ in equations:
        target = target_of(lhs)
        if target and target[0] in size_names | {"m"} and sides[0].is_Integer:
            ctx.doc_m = int(sides[0])
        for e in (lhs, *sides):
            concrete += [int(k) for ix in e.atoms(sp.Indexed) for k in ix.indices if k.is_Integer]
            concrete += [int(s.limits[0][2]) for s in e.atoms(sp.Sum) if s.limits[0][2].is_Integer]
            size_names |= {s.limits[0][2].name for s in e.atoms(sp.Sum) if s.limits[0][2].is_Symbol}
        if target and target[0] == "y" and "beta" in names_in(sides[0]):
            ctx.beta_is_shift = True
    ctx.size_names = frozenset(size_names)
    if ctx.doc_m is None and concrete and max(concrete) > 1:  # a worked example: x_1, x_2, x_3 make m = 3
        ctx.doc_m = max(concrete)
    for lhs, sides, _ in equations:
        _register_helper(lhs, sides, ctx)
    return ctx


def _register_helper(lhs, sides, ctx: Context) -> None:
    """A name the document defines for itself becomes usable by the equations after it."""
    target = target_of(lhs)
    if target is None:
        return
    name, index = target
    if (name in ctx.refs or name in GIVEN or name in ctx.size_names or name in ctx.helpers
            or any(name in names_in(s) for s in sides) or name.startswith("dL_d")):
        return
    if index is not None and not isinstance(index, sp.Symbol):
        return
    if name == "sigma":  # σ defined with ε inside, √(σ² + ε): later formulas mean that σ
        try:
            ev = ctx.evaluator(Batch.random(3, 0))
            with_eps = ev.value(sp.sqrt(symbol("sigma2") + symbol("epsilon")))
            if not close(ev.value(sides[0]), with_eps):
                return
        except Unevaluable:
            return
    ctx.helpers[name] = Helper(sides[0], index.name if index is not None else None)


def _finding(snippet: Snippet, eq: Equation | TexSyntaxError, ctx: Context) -> Finding | None:
    if isinstance(eq, TexSyntaxError):
        if not snippet.display and not _MENTIONS_LAYER.search(snippet.tex):
            return None  # inline prose math ($i = 1, \dots, m$) that is not a formula of the layer
        return Finding.of(snippet, Judgement(None, "", CANNOT_READ, str(eq)))
    if eq.lhs is None:
        return Finding.of(snippet, Judgement(None, "", CANNOT_READ, "no left side"))
    try:
        j = judge(canonical(eq.lhs), tuple(canonical(s) for s in eq.chain), eq.notation, ctx)
    except (TypeError, ValueError, AttributeError, RecursionError, sp.PolynomialError) as exc:  # SymPy's own
        j = Judgement(None, "", CANNOT_READ, f"cannot check it: {type(exc).__name__}")
    return Finding.of(snippet, j)


def audit_document(path_or_text, layer: str = "batchnorm", references: Mapping[str, sp.Expr] | None = None,
                   *, doc_format: str | None = None) -> AuditReport:
    """Audit a document: a ``Path``, a ``str`` naming an existing file, or the text itself.

    ``references`` are the correct formulas, keyed as in the contract; by default the
    engine's for ``layer``. Raises :class:`~bngraph.errors.BngraphError` when the input
    cannot be read at all (missing file, not UTF-8, a broken notebook).
    """
    refs = reference_table(references if references is not None else default_references(layer))
    name, snippets = document_equations(path_or_text, doc_format)
    parsed: list[tuple[Snippet, Equation | TexSyntaxError]] = []
    for snippet in snippets:
        try:
            parsed.append((snippet, parse_equation(snippet.tex)))
        except TexSyntaxError as exc:
            parsed.append((snippet, exc))
    ctx = _context(parsed, refs)
    findings = (_finding(s, eq, ctx) for s, eq in parsed)
    return AuditReport(name, layer, tuple(f for f in findings if f is not None))


# -- for the command line and for tests ---------------------------------------------------
def cli_audit(args, references: Mapping[str, sp.Expr] | None = None, out=None, err=None) -> int:
    """``bngraph audit FILE [--layer L] [--format text|json]``: 0 all right, 1 a formula is
    wrong, 2 the file cannot be read. ``args`` has ``file``, ``layer``, ``format``."""
    out, err = out or sys.stdout, err or sys.stderr
    try:
        report = audit_document(Path(args.file), getattr(args, "layer", None) or "batchnorm", references)
    except BngraphError as exc:
        print(f"bngraph audit: {exc}", file=err)
        return 2
    out.write(report.to_json() if getattr(args, "format", "text") == "json" else report.to_text())
    return report.exit_code


def assert_document_correct(path, layer: str = "batchnorm", references: Mapping[str, sp.Expr] | None = None,
                            allow_unreadable: bool = False) -> AuditReport:
    """For a test: fail, listing them, when a formula of the document is wrong (or unreadable)."""
    __tracebackhide__ = True  # pytest shows the caller's line
    report = audit_document(path, layer, references)
    bad = [f for f in report.findings if f.verdict == WRONG or (f.verdict == CANNOT_READ and not allow_unreadable)]
    if bad:
        raise AssertionError(f"{len(bad)} formulas of {report.source} are not right:\n\n"
                             + "\n\n".join(f.to_text() for f in bad))
    return report
