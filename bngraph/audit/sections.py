r"""Which layer each part of a write-up is about, by its headings.

A write-up that derives Batch Norm, then Layer Norm, then RMSNorm says so in its headings
(``### Layer Normalization Forward``, ``\subsection{RMSNorm}``). A heading that names a layer puts
the equations under it (until a heading of the same or a higher level) under that layer; a heading
that names none leaves its parent's. The first layer a heading names counts ("RMSNorm (LayerNorm
without bias)" is about RMSNorm). Code blocks are skipped (a ``# comment`` there is no heading).

The auditor never lets a heading alone make a formula "wrong": see :func:`section_layers`' use in
:mod:`bngraph.audit.auditor`.

>>> text = "# Batch Norm\n$$a$$\n## RMSNorm\n$$b$$\n# Notes\n$$c$$"
>>> section_layers("md", [(None, text)], [2, 4, 6], "batchnorm")
['batchnorm', 'rmsnorm', 'batchnorm']
"""
from __future__ import annotations

import re

# the layers by the words write-ups use for them (RMSNorm before Layer Norm: "RMS LayerNorm" is RMSNorm)
LAYER_WORDS = (
    # the abbreviations in capitals only, and not an RMS error ("## RMS error of the gradient check")
    ("rmsnorm", re.compile(r"rms\s*-?\s*(?:layer\s*)?norm|(?:root[\s-]+mean[\s-]+square|(?-i:\bRMS\b))"
                           r"(?![\s-]+(?:error|loss|deviation|difference|value))", re.I)),
    ("layernorm", re.compile(r"layer\s*-?\s*norm|(?-i:\bLN\b)", re.I)),
    ("batchnorm", re.compile(r"batch\s*-?\s*norm|(?-i:\bBN\b)", re.I)),
)
_MD_HEADING = re.compile(r"^ {0,3}(#{1,6})\s+(.*)$")
_FENCE = re.compile(r"^ {0,3}(```|~~~)")
_TEX_HEADING = re.compile(r"\\(chapter|section|subsection|subsubsection|paragraph)\*?\s*(?:\[[^\]]*\])?\s*\{([^}]*)\}")
_TEX_LEVEL = {"chapter": 0, "section": 1, "subsection": 2, "subsubsection": 3, "paragraph": 4}


def layer_named(heading: str) -> str | None:
    """The layer a heading names first, or None."""
    found = [(m.start(), layer) for layer, words in LAYER_WORDS for m in [words.search(heading)] if m]
    return min(found)[1] if found else None


def headings(text: str, fmt: str) -> list[tuple[int, int, str]]:
    """(line, level, title) of every heading of one text (Markdown or LaTeX)."""
    found, fenced = [], False
    for number, line in enumerate(text.splitlines(), 1):
        if fmt == "tex":
            found += [(number, _TEX_LEVEL[m[1]], m[2]) for m in _TEX_HEADING.finditer(line)]
            continue
        if _FENCE.match(line):
            fenced = not fenced
        elif not fenced and (m := _MD_HEADING.match(line)):
            found.append((number, len(m[1]), m[2]))
    return found


def section_layers(fmt: str, cells: list[tuple[int | None, str]], where: list, default: str) -> list[str]:
    """The layer each place (a line, or a (cell, line) of a notebook) of a document read as ``cells``
    (:func:`bngraph.tex.document.read_document`) stands under."""
    marks = []  # (cell order, line, level, layer)
    for order, (cell, text) in enumerate(cells):
        marks += [(order, cell, line, level, layer_named(title)) for line, level, title in headings(text, fmt)]
    order_of = {cell: order for order, (cell, _) in enumerate(cells)}
    layers = []
    for place in where:
        cell, line = place if isinstance(place, tuple) else (None, place)
        here = (order_of.get(cell, 0), line)
        stack: list[tuple[int, str | None]] = []
        for order, _, at, level, layer in marks:
            if (order, at) > here:
                break
            stack = [s for s in stack if s[0] < level] + [(level, layer)]
        named = [layer for _, layer in stack if layer is not None]
        layers.append(named[-1] if named else default)
    return layers
