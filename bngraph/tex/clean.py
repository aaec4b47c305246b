r"""What surrounds a formula as people write it, and the checks made before parsing.

``\text{for } i = 1 \dots m``, ``, \quad i = 1, \ldots, m``, ``// comment`` and a trailing
full stop are dropped; ``\frac12`` gets its braces; unbalanced braces and runaway
nesting are reported in one line before the grammar sees the text.
"""
from __future__ import annotations

import re

from bngraph.tex.names import TexSyntaxError, fail

MAX_DEPTH = 40  # nested braces; deeper is not notation, and would exhaust recursion


_QUALIFIER = re.compile(
    r"(?:[,;.]\s*)?(?:\\q?quad\s*|\\[,;:! ]\s*|~\s*)*"
    r"(?:\\forall\b|//|\\(?:text|textrm|mbox|textit)\s*\{\s*(?:[^A-Za-z{}]|(?:for|where|if|with|and|when|since|over|on|i\.e|e\.g|all|each|every)\b|[^{}]*\s))")
_RANGE = re.compile(  # ", i = 1, \dots, m" or "\quad i \in \mathcal{B}" after the formula
    r"(?:,|\\q?quad|\\[,;])\s*(?:\\q?quad\s*|\\[,;]\s*)*[a-z]\s*(?:=\s*[01]\s*,|\\in\b|=\s*1\s*(?:,\s*)?\\[lc]?dots)")
_TRAILING = re.compile(r"(?:\s|\\[,;!]|\\q?quad)*[,.;]?(?:\s|\\[,;!]|\\q?quad)*$")


def clean(tex: str) -> str:
    r"""``tex`` without what surrounds the formula: ``\text{for } i = 1 \dots m``, ``//`` comments,
    a trailing comma or full stop.

    >>> clean(r"\hat{x}_i = x_i - \mu, \quad \text{for all } i.")
    '\\hat{x}_i = x_i - \\mu'
    """
    for match in sorted([*_QUALIFIER.finditer(tex), *_RANGE.finditer(tex)], key=lambda k: k.start()):
        before = tex[:match.start()]
        if before.count("{") - before.count("\\{") == before.count("}") - before.count("\\}"):
            tex = before
            break
    return _TRAILING.sub("", tex).strip()


_SHORT_ARGUMENT = re.compile(r"(\\[dtc]?frac(?:\{[^{}]*\})?)\s*([0-9A-Za-z]|\\[A-Za-z]+)")


def brace_short_arguments(tex: str) -> str:
    r"""``\frac12`` -> ``\frac{1}{2}``: a fraction's one-token arguments braced, so that the
    lexer never reads ``12`` as one number there."""
    for _ in range(2):
        tex = _SHORT_ARGUMENT.sub(lambda k: f"{k[1]}{{{k[2]}}}" if k[2] not in _NOT_ARGUMENTS else k[0], tex)
    return tex


_NOT_ARGUMENTS = {"\\left", "\\right", "\\big", "\\Big"}


def check_balance(tex: str) -> None:
    """Braces balanced and not nested too deeply, or a one-line error."""
    depth = 0
    deepest = 0
    for k, ch in enumerate(tex):
        if k and tex[k - 1] == "\\":
            continue
        if ch == "{":
            depth += 1
            deepest = max(deepest, depth)
        elif ch == "}":
            depth -= 1
            if depth < 0:
                fail("unbalanced braces: a } without its {")
    if depth > 0:
        fail(f"unbalanced braces: {depth} {{ without }}")
    brackets = len(re.findall(r"[(\[]", tex))
    if deepest > MAX_DEPTH or brackets > 4 * MAX_DEPTH:
        fail("the formula is nested too deeply to be read")
