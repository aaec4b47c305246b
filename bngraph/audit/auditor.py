r"""Audit a write-up of a normalization layer's backward pass: every formula, with a verdict.

``audit_document`` finds the equations of a Markdown, LaTeX, notebook or text file
(:mod:`bngraph.tex.document`), reads each (:mod:`bngraph.tex.grammar`) and judges it against the
engine's reference formulas (:mod:`bngraph.audit.judge`): correct, correct-other-form,
wrong (with a counterexample and the right formula in the author's notation), helper (a
name or setting of the document's own), not-about-this-layer, or cannot-read (and why).
One unreadable formula does not stop the others. A formula with running statistics in a
training write-up is judged against the evaluation-mode layer's. The correct formulas are never typed
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
from collections import Counter
import sys
import dataclasses
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Mapping

import sympy as sp

from bngraph.audit.adjoints import SHARE_REASON, as_a_share
from bngraph.audit.batcheval import Batch, reference_table
from bngraph.audit.context import build_context, fold_feature_index, name_the_scale
from bngraph.audit.letters import (accented_squares, element_capitals, own_letters, primes, staged_ends, step_updates,
                                   zero_based)
from bngraph.audit.sections import section_layers
from bngraph.audit.compare import CASE_OF_SETTING, sum_scopes
from bngraph.audit.judge import judge, target_of
from bngraph.audit.verdicts import (AMBIGUOUS, CANNOT_EVALUATE, CANNOT_READ, CORRECT, HELPER, NOT_ABOUT, OTHER_FORM,
                                    VERDICTS, WRONG, Context, Counterexample, Judgement)
from bngraph.errors import BngraphError, one_line
from bngraph.tex.document import Snippet, equations_of, read_document
from bngraph.tex.clean import clean
from bngraph.tex.grammar import Equation, TexSyntaxError, parse_equation
from bngraph.tex.names import MAX_INDEX, NotChecked, TooLarge, canonical, symbol
from bngraph.tex.overbar import overbar_adjoints, overbar_declarations
from bngraph.tex.words import own_words, with_own_words

__all__ = ["AuditReport", "Finding", "assert_document_correct", "audit_document", "cli_audit"]

_MENTIONS_LAYER = re.compile(r"\\(?:mu|sigma|hat|widehat|partial|pdv|gamma|beta|epsilon|varepsilon|sum|frac|ell)(?![a-zA-Z])")


@dataclass(frozen=True)
class Finding(Judgement):
    """One equation of the document: where it stands, and the judgement on it."""

    line: int = 0
    cell: int | None = None
    tex: str = ""
    parameters: frozenset[str] = frozenset({"gamma", "beta", "epsilon"})  # the layer's, shown in a counterexample

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
                "counterexample": _counterexample_dict(self.counterexample, self.defines, self.parameters),
                "correction": self.correction, "checked": self.checked}

    def to_text(self) -> str:
        lines = [f"{self.where}: {self.tex}"]
        head = f"  {self.label}: {self.verdict}" if self.label else f"  {self.verdict}"
        lines.append(head + (f" — {self.reason}" if self.reason else ""))
        if self.counterexample is not None:
            lines.append("  counterexample: " + _counterexample_text(self.counterexample, self.defines, self.parameters))
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

    def unreadable(self) -> dict[str, int]:
        """Why formulas could not be read, most frequent first: what an author would rewrite."""
        reasons = Counter(re.sub(r" at column \d+", "", f.reason) for f in self.findings if f.verdict == CANNOT_READ)
        return dict(sorted(reasons.items(), key=lambda kv: (-kv[1], kv[0])))

    def to_text(self) -> str:
        parts = [self.summary(), *(f.to_text() for f in self.findings)]
        reasons = self.unreadable()
        if reasons:
            total = sum(reasons.values())
            parts.append(f"cannot-read: {total} {'equation' if total == 1 else 'equations'}, by reason:\n"
                         + "\n".join(f"  {n} × {reason}" for reason, n in reasons.items()))
        return "\n\n".join(parts) + "\n"

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


def _counterexample_dict(c: Counterexample | None, defines: str | None, parameters=frozenset()) -> dict | None:
    if c is None:
        return None
    if c.batch is None:  # an arithmetic slip: the two members are the counterexample
        return {"index": None, "formula_gives": _round(c.got), "should_be": _round(c.want)}
    shown, b = _shown(defines) - ({"gamma", "beta", "epsilon"} - parameters), c.batch
    out = {"m": b.m, "x": [_round(v) for v in b.x]}
    for name in ("gamma", "beta", "epsilon"):
        if name in shown:
            out[name] = _round(getattr(b, name))
    if "dL_dy" in shown:
        out["dL_dy"] = [_round(v) for v in b.dL_dy]
    out["index"] = {c.index[0]: c.index[1]} if c.index else None
    out["formula_gives"], out["should_be"] = _round(c.got), _round(c.want)
    return out


def _counterexample_text(c: Counterexample, defines: str | None, parameters=frozenset()) -> str:
    if c.batch is None:
        return f"numbers only: the formula gives {c.got + 0.0:.6g}, it should be {c.want + 0.0:.6g}"
    shown, b = _shown(defines) - ({"gamma", "beta", "epsilon"} - parameters), c.batch  # RMSNorm: no β
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
    return dict(_engine_references(layer))


@lru_cache(maxsize=None)
def _engine_references(layer: str) -> tuple[tuple[str, sp.Expr], ...]:
    """Derived once per layer and process: every document of a run is judged against the same."""
    from bngraph.closedform.simplify import closed_form_of  # the engine runs only when a document is judged
    from bngraph.engine.layers import audit_layer

    closed = closed_form_of(audit_layer(layer).function, layer)
    return tuple({**closed.definitions, **closed.formulas}.items())


@lru_cache(maxsize=None)
def _default_table(layer: str) -> tuple:
    return tuple(reference_table(default_references(layer)).items())


def _finding(snippet: Snippet, eq: Equation | TexSyntaxError, ctx: Context) -> Finding | None:
    if snippet.head:  # what the rows after it are equal to: judged with them
        return None
    if isinstance(eq, (TooLarge, MatrixForm, NotChecked)):
        return Finding.of(snippet, Judgement(None, "", CANNOT_EVALUATE, str(eq)))
    if isinstance(eq, DataBinding):
        return Finding.of(snippet, Judgement("setting:x", "setting x", HELPER, str(eq)))
    if isinstance(eq, TexSyntaxError):
        if not snippet.display and not _MENTIONS_LAYER.search(snippet.tex):
            return None  # inline prose math ($i = 1, \dots, m$) that is not a formula of the layer
        return Finding.of(snippet, Judgement(None, "", CANNOT_READ, str(eq)))
    if eq.lhs is None:
        return Finding.of(snippet, Judgement(None, "", CANNOT_READ, "no left side"))
    other = _another_feature(eq, ctx)
    if other:
        return Finding.of(snippet, Judgement(None, "", CANNOT_EVALUATE, f"{other} beside x_{{{','.join(sorted(eq.fixed))}, …}}: "
                                             "the statistic of another feature (or row) than x's, not checked"))
    eq = _of_the_same_feature(eq, ctx)
    if eq.kind == "mapping":
        return Finding.of(snippet, Judgement(None, "", NOT_ABOUT, "a mapping (\\mapsto), not an equation"))
    lhs, chain = canonical(eq.lhs), tuple(canonical(s) for s in eq.chain)
    try:
        j = judge(lhs, chain, eq.notation, ctx)
        if j.verdict == WRONG:
            j = _wrong_in_every_scope(j, lhs, chain, eq, ctx)
        if j.verdict == WRONG and eq.kind == "update":  # x̄ ← …: one path's share, the rows for x̄ adding up
            j = as_a_share(j, lhs, chain, ctx)
    except (KeyboardInterrupt, SystemExit, MemoryError):
        raise
    except Exception as exc:  # noqa: BLE001 — SymPy's own errors; one formula never ends the audit
        reason = one_line(f"cannot check it: {type(exc).__name__}: {exc}")[:160]
        j = Judgement(None, "", CANNOT_READ, reason)
    if j.verdict == NOT_ABOUT and _names_the_whole_batch(eq):  # ∇_X = ∂X̂/∂X · ∇_X̂: about the layer, as matrices
        j = Judgement(None, "", CANNOT_EVALUATE, "matrix form (a capital letter for the whole batch), not checked")
    if j.verdict == CANNOT_EVALUATE and _WHOLE_BATCH.search(j.reason):
        j = dataclasses.replace(j, reason="matrix form (a capital letter for the whole batch), not checked")
    return Finding.of(snippet, j)


def _wrong_in_every_scope(j: Judgement, lhs, chain, eq: Equation, ctx: Context) -> Judgement:
    """Wrong as read, but right with a sum over the left side's index i ending before a factor in i: ambiguous."""
    for other in sum_scopes(lhs, chain, eq.tex):
        again = judge(lhs, other, eq.notation, ctx)
        if again.verdict in (CORRECT, OTHER_FORM, AMBIGUOUS):
            return dataclasses.replace(j, verdict=AMBIGUOUS, counterexample=None, correction=None, reason=(
                "wrong if the sum over the left side's index runs to the end of the term; right if it ends before "
                "a factor that has the free index (the sum reuses the left side's letter)"))
    return j


def _another_feature(eq: Equation, ctx: Context) -> str | None:
    """``∂rms_k/∂x_{i,j}``: a statistic (one number per feature or row) indexed by a free letter other than the
    feature x carries; the auditor's one feature cannot tell whether k = i, so it does not judge it."""
    if not eq.fixed:
        return None
    for e in (eq.lhs, *eq.chain):
        for ix in e.atoms(sp.Indexed):
            name, index = ix.base.label.name, ix.indices[0]
            if (len(ix.indices) == 1 and name in ctx.refs and ctx.refs[name][1] is None and index.is_Symbol
                    and str(index) not in eq.fixed and index in e.free_symbols):
                return f"{name}_{index}"
    return None


def _of_the_same_feature(eq: Equation, ctx: Context) -> Equation:
    """``rms_i`` beside ``x_{i,j}``: the statistic of x's own row (or feature), the one the auditor computes."""
    def plain(e):
        return None if e is None else e.replace(
            lambda a: isinstance(a, sp.Indexed) and len(a.indices) == 1 and str(a.indices[0]) in eq.fixed
            and a.base.label.name in ctx.refs and ctx.refs[a.base.label.name][1] is None,
            lambda a: symbol(a.base.label.name))

    if not eq.fixed:
        return eq
    return dataclasses.replace(eq, lhs=plain(eq.lhs), rhs=plain(eq.rhs), chain=tuple(map(plain, eq.chain)))


# X, \hat{X}, ∂L/∂Y undefined: the batch as one matrix (X̂ = (X − μ)/√(σ² + ε)), not one example's numbers
def _names_the_whole_batch(eq: Equation) -> bool:
    return any(s.name in _CAPITALS for e in (eq.lhs, *eq.chain) if e is not None for s in e.free_symbols)


_CAPITALS = {f"{d}{c}" for d in ("", "dL_d") for c in ("X", "Xhat", "Y", "Z", "Zhat")}
_WHOLE_BATCH = re.compile(r"cannot evaluate it: (?:dL_d)?[XYZ](?:hat)? is not defined")


_NUMBER = r"-?\d+(?:\.\d+)?"
_DATA = re.compile(r"^\s*x\s*=\s*(?:\\left\s*)?[(\[]\s*(%s(?:\s*,\s*%s)+)\s*(?:\\right\s*)?[)\]]"
                   r"(?:\s*\^\s*\{?\s*(?:T|\\top)\s*\}?)?"  # [1, 2, 6]^T: the same numbers, as a column
                   r"(?:\s*\\in\s*\\mathbb\s*\{?\s*R\s*\}?\s*(?:\^\s*\{?\s*\w+\s*\}?)?)?\s*[.,;]?\s*$"  # … \in \mathbb{R}^3
                   % (_NUMBER, _NUMBER))
_SPACES = re.compile(r"\\[ ,;!:]|\\q?quad(?![a-zA-Z])|~")  # [3.0, \ 0.0, \ 4.0]: spacing between the numbers
_CONDITION_BAR = re.compile(r"^[^=]*\\[bB]igg?\s*\|\s*_")  # on the left side, before its first =
_LIST = re.compile(r"=\s*(?:\\left\s*)?(?:\\\{|\{|\(|\[)[^=]*?,\s*(?:\.\.\.|\\[lc]?dots)")  # μ = {μ_0, …, μ_n}
# (\mathbb{1} alone is the ones vector; \mathbb{1}_{i=j} is the indicator of i = j, read as δ_ij)
_MATRIX = re.compile(r"\\begin\{[pbvBV]?matrix\}|\\begin\{array\}|\^\s*\{?\s*(?:\\top|T)\s*\}?(?![a-zA-Z])"
                     r"|\\math(?:bf|bb)\s*\{?\s*1(?!\s*\}\s*_\s*\{\s*[a-z]\s*=)|\\in\s*\\(?:mathbb\s*\{\s*R|R)(?![a-zA-Z])|\\otimes")

# \sum_{t=1}^{T}: T the sum's upper limit (a number of steps or examples), not a transpose
_SUM_LIMITS = re.compile(r"\\(?:sum|prod)\s*(?:\\limits\s*)?(?:_\s*(?:\{[^{}]*\}|\S)\s*)?\^\s*(?:\{[^{}]*\}|\S)")


class DataBinding(TexSyntaxError):
    """``x = (1, 2, 6)``: the document's own numbers, for the equations after it."""

    def __init__(self, values: tuple[float, ...]):
        super().__init__(f"the document's own batch, x = ({', '.join(f'{v:g}' for v in values)})")
        self.values = values


class MatrixForm(TexSyntaxError):
    """A formula over whole matrices or vectors (Xᵀ, ∈ ℝ^{N×D}, pmatrix): read, not checked."""


def _read(snippet: Snippet, words: frozenset[str] = frozenset()) -> Equation | TexSyntaxError:
    data = _DATA.match(_SPACES.sub(" ", snippet.tex))
    if data:
        return DataBinding(tuple(float(v) for v in re.split(r"\s*,\s*", data[1])))
    if _LIST.search(snippet.tex):
        return MatrixForm("a vector written out by its components, not checked")
    if _MATRIX.search(_SUM_LIMITS.sub(r"\\sum ", clean(snippet.tex))):  # not in a note after it (\qquad w, β ∈ ℝ^N)
        return MatrixForm("matrix form, not checked")
    if _CONDITION_BAR.search(snippet.tex):  # ∂x̂_j/∂μ \bigg|_{\bar\sigma}, ∂L/∂x_j \big|_{\mu}: held fixed, or one path
        rest = snippet.tex.split("=", 1)[1]
        if "=" in rest:  # the members after it are still equal to each other
            found = _parsed(rest)
            if isinstance(found, Equation):
                return found
        return NotChecked("a partial with a condition bar (\\big|_{…}: something held fixed, or one path's share): "
                          "not checked")
    if "\\begin{cases}" in snippet.tex:  # μ = \begin{cases} x_1 & m = 1 \\ … \end{cases}
        return NotChecked("a value by cases (\\begin{cases}): one value per condition, not checked")
    tex = with_own_words(snippet.tex, words)
    return _parsed(f"{tex} = {tex}" if snippet.head else tex)  # a chain's head, as an equation of its own to fold


@lru_cache(maxsize=4096)
def _parsed(tex: str) -> Equation | TexSyntaxError:
    """One equation read, once per process: documents repeat their equations (a derivation at
    m = 1, 2, 3, in both views and formats), and what is read is immutable."""
    try:
        return parse_equation(tex)
    except TexSyntaxError as exc:
        return exc
    except (KeyboardInterrupt, SystemExit, MemoryError):
        raise
    except Exception as exc:  # noqa: BLE001 — a formula the grammar reads but SymPy cannot build
        return TexSyntaxError(one_line(f"cannot build it: {type(exc).__name__}: {exc}")[:160])


_APPROX = re.compile(r"\\(?:approx|simeq)(?![a-zA-Z])")


def _tolerance(eq) -> float:
    """One unit of the last digit written after ≈ (``\\approx 4.67``: 0.01), also at the end of a chain
    (``\\sigma^2 = \\frac{1}{m}\\sum … \\approx 4.67``); 0 for an equation."""
    if not isinstance(eq, Equation) or not (eq.kind == "approximation" or _APPROX.search(eq.tex)):
        return 0.0
    number = re.search(r"(\d+)(?:\.(\d+))?[\s}.,;]*$", eq.tex)  # \approx \mathbf{0.000000}: its digits too
    return 10.0 ** -len(number[2] or "") * (1 + 1e-9) if number else 0.0  # (and not a rounding error less)


def audit_document(path_or_text, layer: str = "batchnorm", references: Mapping[str, sp.Expr] | None = None,
                   *, doc_format: str | None = None) -> AuditReport:
    """Audit a document: a ``Path``, a ``str`` naming an existing file, or the text itself.

    ``references`` are the correct formulas, keyed as in the contract; by default the
    engine's for ``layer``. Raises :class:`~bngraph.errors.BngraphError` when the input
    cannot be read at all (missing file, not UTF-8, a broken notebook, too large).
    """
    name, fmt, cells = read_document(path_or_text, doc_format)
    snippets = equations_of(name, fmt, cells)
    words = own_words(s.tex for s in snippets)  # rms(x)_i = …: one name, wherever the document writes it
    declared = overbar_declarations(cells, fmt)  # "\bar{y}" for ∂L/∂y, where the prose says so
    first = overbar_adjoints([_read(s, words) for s in snippets], bool(declared),
                             [(s.cell, s.line) in declared for s in snippets])
    batches, batch, members = [], None, {}
    for eq in first:  # the document's own numbers (x = (1, 2, 6), or x_1 = 1, x_2 = 2 …) hold from where it gives them
        if isinstance(eq, DataBinding):
            batch, members = _own_batch(eq.values), {}
        elif (member := _member_value(eq)) is not None:
            members[member[0]] = member[1]
            if len(members) > 1 and sorted(members) == list(range(1, len(members) + 1)):
                batch = _own_batch(tuple(members[k] for k in sorted(members)))
        batches.append(batch)
    readings: dict[str, _Reading] = {}

    whole: dict[str, _Reading] = {}

    def reading(as_layer: str, own_sections: bool) -> _Reading:
        cache = readings if own_sections else whole
        if as_layer not in cache:
            refs = reference_table(references) if references is not None else dict(_default_table(as_layer))
            # a section a heading gives another layer is read with its own formulas: its x̂ = x/RMS(x), not the
            # x̂ = (x − μ)/σ of the document's Layer Norm sections (a later definition holds where it is given)
            own = [eq if not own_sections or sections[i] == as_layer else None for i, eq in enumerate(first)]
            cache[as_layer] = _Reading.of(snippets, own, refs, as_layer == "batchnorm" and references is None)
            cache[as_layer].ctx.per_entry = as_layer in PER_ENTRY
        return cache[as_layer]

    def judged(k: int, as_layer: str) -> Finding | None:  # in its section, with its section's formulas; else all
        return reading(as_layer, as_layer != layer and sections[k] == as_layer).finding(k, batches[k])

    sections = (section_layers(fmt, cells, [(s.cell, s.line) for s in snippets], layer) if references is None
                else [layer] * len(snippets))
    findings = {}
    for k, snippet in enumerate(snippets):
        found = judged(k, sections[k])
        if found is not None and found.verdict == WRONG and sections[k] != layer:
            found = _under_a_heading(found, sections[k], [judged(k, other) for other in
                                                          dict.fromkeys((layer, *SECTION_LAYERS)) if other != sections[k]])
        if found is not None:
            findings[k] = found
    _rows_that_add_up(findings, sections, lambda k: reading(sections[k], sections[k] != layer), batches)
    return AuditReport(name, layer, tuple(findings.values()))


def _rows_that_add_up(found: dict, sections: list, reading_of, batches: list) -> None:
    """``x̄ ← a``, ``x̄ ← b`` …, each one path's share of ∂L/∂x (an AD page's rows add up): their sum judged once;
    where it is the whole adjoint, each row is right."""
    groups: dict[tuple, list[int]] = {}
    for k, f in found.items():
        eq = reading_of(k).parsed[k]
        if f.verdict == AMBIGUOUS and SHARE_REASON in f.reason and isinstance(eq, Equation) and eq.kind == "update":
            groups.setdefault((sections[k], canonical(eq.lhs)), []).append(k)
    for (section, _), rows in groups.items():
        reading, first = reading_of(rows[0]), rows[0]
        if len(rows) < 2:
            continue
        saved = reading.parsed[first]
        total = sp.Add(*(canonical(reading.parsed[k].rhs) for k in rows))
        reading.parsed[first] = dataclasses.replace(saved, rhs=total, chain=(total,))
        try:
            whole = reading.finding(first, batches[first])
        finally:
            reading.parsed[first] = saved
        if whole is not None and whole.verdict in (CORRECT, OTHER_FORM):
            lines = ", ".join(str(found[k].line) for k in rows)
            for k in rows:
                found[k] = dataclasses.replace(found[k], verdict=CORRECT, reason=f"one path's share; with the other "
                                               f"rows for it (lines {lines}) the whole adjoint: the rows add up")


def _own_batch(values: tuple[float, ...]) -> Batch:
    return Batch(len(values), values, (1.0,) * len(values), 1.0, 0.0, 1e-5)


def _member_value(eq) -> tuple[int, float] | None:
    """(k, v) for ``x_k = v``: one of the document's own numbers, given member by member."""
    if not (isinstance(eq, Equation) and isinstance(eq.lhs, sp.Indexed) and eq.lhs.base.label.name == "x"
            and len(eq.lhs.indices) == 1 and eq.lhs.indices[0].is_Integer and len(eq.chain) == 1
            and eq.rhs.is_Number and 1 <= int(eq.lhs.indices[0]) <= MAX_INDEX):
        return None
    return int(eq.lhs.indices[0]), float(eq.rhs)


SECTION_LAYERS = ("batchnorm", "layernorm", "rmsnorm")  # the layers a heading can name
PER_ENTRY = ("layernorm", "rmsnorm")  # statistics over one example's entries: γ_i, β_i one per entry


def _under_a_heading(found: Finding, section: str, others: list[Finding | None]) -> Finding:
    """A formula wrong for the layer its heading names: "wrong" only if no other layer makes it right
    (a heading alone never makes a formula wrong)."""
    right = [f for f in others if f is not None and f.verdict in (CORRECT, OTHER_FORM, AMBIGUOUS)]
    if right:
        return dataclasses.replace(found, verdict=AMBIGUOUS, counterexample=None, correction=None,
                                   reason=f"wrong for {section}, which its section's heading names; right read as "
                                          "another layer")
    return dataclasses.replace(found, reason=f"{found.reason} (checked as {section}, which its section's heading names)")


@dataclass
class _Reading:
    """The document read against one layer's formulas: its equations (letters folded), context and sizes."""

    snippets: list
    parsed: list
    ctx: Context
    sizes: list

    @classmethod
    def of(cls, snippets, first, refs, eval_mode: bool) -> "_Reading":
        equations = element_capitals([eq if isinstance(eq, Equation) else None for eq in first])
        equations = staged_ends(own_letters(name_the_scale(fold_feature_index(step_updates(
            accented_squares(primes(zero_based(equations)))))), refs))
        parsed = [eq if folded is None else folded for eq, folded in zip(first, equations)]
        ctx, sizes = build_context([None if s.head else eq for s, eq in zip(snippets, equations)], refs)
        if eval_mode:  # Batch Norm's evaluation-mode formulas, where a write-up gives them
            ctx.eval_refs = dict(_default_table("batchnorm-eval"))
        above = None  # the last display equation or head: what a display "$$= …$$" goes on from
        inline = None  # the left side of a chain of "$= …$" rows that a head started (never an equation before prose)
        for k, (snippet, eq) in enumerate(zip(snippets, parsed)):
            row = snippet.tex.lstrip().startswith("=")
            if not isinstance(eq, Equation):
                # an unreadable head or display equation: the "$$= …$$" rows after it go on from it, not from one before
                if snippet.head or snippet.display and not row:
                    above = None if snippet.head or not isinstance(eq, (NotChecked, MatrixForm)) else eq
                inline = inline if row and not snippet.head else None  # an unreadable row: the chain goes on
                continue
            if eq.lhs is None and snippet.display and isinstance(above, (NotChecked, MatrixForm)):  # after a row not checked
                parsed[k] = NotChecked(f"it goes on from the row above, not checked: {above}")
                continue
            if eq.lhs is None and snippet.display and above is not None:  # "$$= …$$" after "$$a = …$$"
                parsed[k] = eq = dataclasses.replace(eq, lhs=above.lhs)
            elif eq.lhs is None and inline is not None:  # "$= …$" right after "$a = …$"
                parsed[k] = eq = dataclasses.replace(eq, lhs=inline)
            if snippet.display or snippet.head:
                above = eq
            inline = eq.lhs if snippet.head or (row and inline is not None) else None
        return cls(snippets, parsed, ctx, sizes)

    def _case_before(self, k: int) -> str | None:
        """μ ≈ 0 ⟹ x̂_i = …, "x̂_i = 0, so y_i = β": the case a setting just before on the same line states."""
        if k == 0 or self.snippets[k - 1].line != self.snippets[k].line or not isinstance(self.parsed[k - 1], Equation):
            return None
        eq = self.parsed[k - 1]
        target = target_of(canonical(eq.lhs)) if eq.lhs is not None else None
        if target is None or not eq.rhs.is_Number:
            return None
        return CASE_OF_SETTING.get((target[0], float(eq.rhs)))

    def finding(self, k: int, batch: Batch | None) -> Finding | None:
        eq, ctx = self.parsed[k], self.ctx
        ctx.batch = batch
        ctx.doc_m = len(batch.x) if batch is not None else self.sizes[k]
        ctx.tolerance = _tolerance(eq)
        ctx.approximate = isinstance(eq, Equation) and (eq.kind == "approximation" or bool(_APPROX.search(eq.tex)))
        ctx.case = self._case_before(k)
        found = _finding(self.snippets[k], eq, ctx)
        used = {s.name for expr, _ in ctx.refs.values() for s in expr.free_symbols} & {"gamma", "beta", "epsilon"}
        return found if found is None else dataclasses.replace(found, parameters=frozenset(used))


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
