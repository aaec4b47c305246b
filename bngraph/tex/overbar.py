r"""The overbar adjoint of automatic-differentiation write-ups: ``\bar{v}`` (``\overline{v}``) for ∂L/∂v.

An overbar means an adjoint only where the document says so: by an equation ``\bar{x}_i = \frac{\partial
L}{\partial x_i}``, or in its prose, a lone overbar name set beside words of gradients and of notation
("Given upstream gradient ∂L/∂y (denoted ȳ)", "Using the notation \overline{name} for name_delta"). Then every
overbar name ``vbar`` (``\bar{\hat{x}}``, x̂'s bar, included) is ``dL_dv``, save one the document defines as a
forward quantity (``\bar{x} = \frac{1}{m}\sum_i x_i``, a mean). Elsewhere an overbar keeps its meaning (a mean,
a name of the document's own).

>>> from bngraph.tex.grammar import parse_equation
>>> eqs = [parse_equation(r"\bar{x}_i = \frac{\partial L}{\partial x_i}"), parse_equation(r"\bar{\hat{x}}_i = \bar{y}_i \gamma")]
>>> read = overbar_adjoints(eqs, declared=False)
>>> read[1].lhs, read[1].rhs
(dL_dxhat[i], gamma*dL_dy[i])
"""
from __future__ import annotations

import re
from dataclasses import replace

import sympy as sp

from bngraph.tex.document import group_end, prose_math
from bngraph.tex.grammar import Equation
from bngraph.tex.names import canonical, symbol

BAR = "bar"
_BAR_OPEN = re.compile(r"\s*\\(?:bar|overline)(?![A-Za-z])\s*")
_LETTER = re.compile(r"\\?[A-Za-z]+")
_SUBSCRIPT_ONLY = re.compile(r"\s*(?:_\s*(?:\{[^{}]*\}|\w))?\s*$")
_GRADIENT = re.compile(r"adjoint|gradient|_delta|\bdelta\b|backprop|\\partial|\\nabla|derivative", re.I)
_NOTATION = re.compile(r"notation|denote|written|\bwrite|\bcall|stands? for", re.I)
_A_MEAN = re.compile(r"\b(?:the|batch|sample|empirical|its) mean\b|\bmean (?:of|value)|average|expectation", re.I)
_SENTENCE = re.compile(r"(?<=[.!?])\s+(?=[A-Z])|\n\s*\n|\n\s*[-*#|]")
WINDOW = 200  # characters either side of the overbar: one sentence of prose


def overbar_declarations(cells, fmt: str) -> frozenset[tuple[int | None, int]]:
    """The (cell, line) of each line of prose that says an overbar marks an adjoint (gradient, delta): empty
    where the document does not say so. An equation on those lines is the notation's example, not a claim."""
    lines = set()
    for cell, text in cells:
        masked, blocks = prose_math(text, fmt)
        for offset, content, _, display in blocks:
            span = None if display or not _lone_bar(content) else _declaring(masked, offset, offset + len(content))
            if span is not None:
                first, last = (masked.count("\n", 0, at) + 1 for at in span)
                lines |= {(cell, n) for n in range(first, last + 1)}
    return frozenset(lines)


def _lone_bar(tex: str) -> bool:
    """``\\bar{y}``, ``\\overline{\\texttt{name}}``, ``\\bar y_i``: one overbar name and nothing else."""
    opening = _BAR_OPEN.match(tex)
    if opening is None:
        return False
    at = opening.end()
    end = group_end(tex, at) if tex[at:at + 1] == "{" else (m.end() if (m := _LETTER.match(tex, at)) else None)
    return end is not None and _SUBSCRIPT_ONLY.match(tex, end) is not None


def _declaring(text: str, start: int, end: int) -> tuple[int, int] | None:
    """The span of the sentence around text[start:end] if it names a gradient and a notation, and no mean."""
    before, after = text[max(0, start - WINDOW):start], text[end:end + WINDOW]
    before, after = _SENTENCE.split(before)[-1], _SENTENCE.split(after)[0]
    sentence = before + " " + after
    if _GRADIENT.search(sentence) and _NOTATION.search(sentence) and not _A_MEAN.search(sentence):
        return start - len(before), end + len(after)
    return None


def _name(e) -> tuple[str | None, tuple]:
    if isinstance(e, sp.Indexed):
        return e.base.label.name, e.indices
    return (e.name, ()) if isinstance(e, sp.Symbol) else (None, ())


def _is_convention(eq: Equation) -> bool:
    """``\\bar{v} = ∂L/∂v``: the equation that sets the notation."""
    (left, at), sides = _name(canonical(eq.lhs)) if eq.lhs is not None else (None, ()), [eq.rhs, *eq.chain]
    return bool(left and left.endswith(BAR) and len(left) > len(BAR)) and any(
        _name(canonical(s)) == (f"dL_d{left[:-len(BAR)]}", at) for s in sides)


def _names(e: sp.Expr) -> set[str]:
    return {s.name for s in e.free_symbols} | {ix.base.label.name for ix in e.atoms(sp.Indexed)}


def _forward(equations: list) -> set[str]:
    """Overbar names the document defines from forward quantities alone (a mean ``\\bar{x} = …``)."""
    found = set()
    for eq in equations:
        left = _name(canonical(eq.lhs))[0] if eq.lhs is not None and eq.kind == "definition" else None
        if left and left.endswith(BAR) and not any(n.endswith(BAR) or n.startswith("dL_d")
                                                   for n in _names(canonical(eq.rhs))):
            found.add(left)
    return found


def overbar_adjoints(items: list, declared: bool, examples: list[bool] | None = None) -> list:
    """The parsed equations (other items kept as they are) with each overbar name read as its adjoint, where
    the document declares that notation (``declared``, its prose) or sets it by an equation; an equation of
    ``examples`` (on a declaring line) stays as written."""
    equations = [eq for eq in items if isinstance(eq, Equation)]
    if not (declared or any(_is_convention(eq) for eq in equations)):
        return items
    keep = _forward(equations)
    names = {n for eq in equations for side in (eq.lhs, eq.rhs, *eq.chain) if side is not None
             for n in _names(canonical(side)) if n.endswith(BAR) and len(n) > len(BAR) and n not in keep}
    if not names:
        return items
    full = {n: f"dL_d{n[:-len(BAR)]}" for n in names}

    def rename(e):
        if e is None:
            return None
        e = canonical(e).replace(lambda a: isinstance(a, sp.Indexed) and a.base.label.name in full,
                                 lambda a: sp.IndexedBase(symbol(full[a.base.label.name]))[a.indices])
        return e.xreplace({symbol(n): symbol(m) for n, m in full.items()})

    examples = examples or [False] * len(items)
    return [eq if not isinstance(eq, Equation) or _is_convention(eq) or example else
            replace(eq, lhs=rename(eq.lhs), rhs=rename(eq.rhs), chain=tuple(rename(c) for c in eq.chain))
            for eq, example in zip(items, examples)]
