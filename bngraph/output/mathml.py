r"""The derivation's LaTeX blocks as HTML with MathML, which browsers set natively.

One source of truth: the blocks are :func:`bngraph.tex.export.document`'s and each row's LaTeX is
:func:`bngraph.tex.export.rows`', exactly what the ``--format latex`` document sets; latex2mathml
only translates each piece of that LaTeX into MathML. An equation becomes a ``<tbody>`` of a
table aligned at its ``=`` (the page's ``align*``), marked with the graph nodes it is about.

>>> math(r"\mu").startswith('<math xmlns="http://www.w3.org/1998/Math/MathML"')
True
>>> prose(r"a batch value such as $\mu$ & more")
'a batch value such as <math xmlns="http://www.w3.org/1998/Math/MathML" display="inline"><mrow><mi>&#x003BC;</mi></mrow></math> &amp; more'
"""
from __future__ import annotations

import itertools
from html import escape
from xml.etree.ElementTree import Element, tostring
from xml.sax.saxutils import unescape

from latex2mathml.converter import convert_to_element

from bngraph.tex.export import Equation, rows
from bngraph.tex.paper import PaperLatexPrinter


def math(tex: str, display: bool = False) -> str:
    """One piece of LaTeX as a ``<math>`` element ("" for nothing); ``display`` sets it as a displayed
    formula is set (limits under and over a sum), for a cell of an equation's table."""
    if not tex.strip():
        return ""
    element = convert_to_element(tex, display="block" if display else "inline")
    _as_tex_sets(element, display)
    return unescape(tostring(element, encoding="unicode"))  # latex2mathml's own serialisation


TALL = {"mfrac", "munderover", "munder", "msqrt", "mroot", "mtable"}


def _as_tex_sets(math: Element, display: bool) -> None:
    r"""Corrections, so that the browser sets what TeX would: in a displayed formula every sum has its
    limits under and over it (latex2mathml does so only outside ``\left( … \right)``); such
    parentheses around one line of type keep the text's size (Chromium stretches them to a larger
    glyph whose side bearings read as spaces, ``( σ² + ε )``); ``/`` is an ordinary symbol, unspaced."""
    for script in math.iter("msubsup"):
        if display and script[0].tag == "mo" and script[0].text == "&#x02211;":
            script.tag = "munderover"
    for row in math.iter("mrow"):
        kids = list(row)
        fenced = len(kids) > 2 and all(k.tag == "mo" and k.get("fence") == "true" for k in (kids[0], kids[-1]))
        if fenced and not any(e.tag in TALL for k in kids[1:-1] for e in k.iter()):
            kids[0].set("stretchy", "false")
            kids[-1].set("stretchy", "false")
    for mo in math.iter("mo"):
        if mo.text == "&#x0002F;":
            mo.set("lspace", "0em")
            mo.set("rspace", "0em")


def prose(text: str) -> str:
    """Text with ``$…$`` inline math: the text escaped, the math as MathML."""
    parts = text.split("$")
    return "".join(math(p) if k % 2 else escape(p, quote=False) for k, p in enumerate(parts))


def plain(text: str) -> str:
    """Text with ``$…$`` inline math for a place MathML cannot go (a ``<title>``): the math dropped."""
    return " ".join("".join(p for p in text.split("$")[::2]).split())


def equation(printer: PaperLatexPrinter, eq: Equation, anchor: str) -> str:
    """One equation as table rows: left side, ``= …`` (continued on rows of its own), why it holds."""
    about = f' data-about="{escape(" ".join(eq.about))}"' if eq.about else ""
    out = [f'<tbody class="eq" id="{anchor}"{about}>']
    for k, row in enumerate(rows(printer, eq)):
        note = prose(row.note)
        if eq.number and k == 0:
            note = f"({escape(eq.number)}) {note}".strip()
        out.append(f'<tr><td class="lhs">{math(row.lhs, True)}</td><td class="rhs">{math(row.rhs, True)}</td>'
                   f'<td class="note">{note}</td></tr>')
    return "\n".join(out + ["</tbody>"])


def equations(printer: PaperLatexPrinter, eqs, anchors: itertools.count) -> str:
    """A block of equations as one table aligned at ``=``; ``anchors`` numbers them across the page."""
    body = "\n".join(equation(printer, eq, f"eq-{next(anchors)}") for eq in eqs)
    return f'<div class="math"><table class="align">\n{body}\n</table></div>'
