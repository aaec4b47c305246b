r"""Printers of a derivation as LaTeX and Markdown, in the paper's notation.

The document follows a derivation on paper, for every batch size m: the forward pass; the
local partial of every edge (∂x̂ᵢ/∂μ = −1/√(σ² + ε)); each adjoint by the chain rule, with
sums over the examples where a batch value is used by all of them; the identities the
simplification uses, numbered, and each simplification step citing them; the compact
backward pass. With ``full``, the same at the traced m, node by node, follows. Without a
closed form (a function bngraph cannot lift to every m), the document is the one at m.
Both printers read the same list of blocks (:func:`document`), so the LaTeX and the Markdown
always say the same thing; names print as :mod:`bngraph.tex.paper` says.

>>> import sympy as sp
>>> mu, x1, eps, s2 = sp.symbols("mu x_1 epsilon sigma2")
>>> tex((x1 - mu) / sp.sqrt(s2 + eps))
'\\frac{x_{1} - \\mu}{\\sqrt{\\sigma^{2} + \\epsilon}}'
"""
from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

import sympy as sp

from bngraph.closedform.batchsum import batch_sum_symbolic
from bngraph.engine.derive import Derivation, adjoint_symbol
from bngraph.tex.paper import (Notation, PaperLatexPrinter, family_partial, greek_command, partial_name,
                               partial_symbol, tex, width)

__all__ = ["Block", "Equation", "document", "partial_name", "partial_symbol", "tex", "to_latex", "to_markdown"]

MAX_EXPANDED_M = 4  # fully substituted forms grow like m^2: print them for small m only
TEXT_WIDTH = 470  # points: the line of the document (letter paper, 2.2 cm margins)
LINE_WIDTH = TEXT_WIDTH - 30  # what a row of an alignment may fill before it breaks
i_, j_ = sp.symbols("i j", integer=True)


# -- the document, as blocks both printers read -------------------------------------------
@dataclass(frozen=True)
class Equation:
    """``lhs = sides[0] = sides[1] …``; ``notes[k]`` says why side k holds (may be empty);
    ``number`` numbers the equation (1), (2) … for the steps that cite it."""

    lhs: sp.Expr
    sides: tuple[sp.Expr, ...]
    notes: tuple[str, ...] = ()
    number: str = ""


@dataclass(frozen=True)
class Block:
    kind: str  # "heading1", "heading2", "heading3", "text" (``$…$`` inline math allowed) or "math"
    text: str = ""
    equations: tuple[Equation, ...] = ()


def _indexed(key: str, index=None) -> sp.Expr:
    """A closed form's key as an expression: ``dL_dx[i]`` -> Indexed (at ``index`` if given), ``dL_dmu`` -> Symbol."""
    match = re.fullmatch(r"(\w+)\[(\w+)\]", key)
    if not match:
        return sp.Symbol(key)
    return sp.IndexedBase(match[1])[index if index is not None else sp.Symbol(match[2], integer=True)]


def document(derivation: Derivation, closed=None, full: bool = False) -> tuple[Block, ...]:
    """The derivation in reading order: for every m (when there is a closed form), then at the traced m."""
    g = derivation.graph
    if closed is None:
        blocks = [Block("heading1", f"Backward pass of {g.layer} ($m = {g.m}$, {g.view} view)")]
        return tuple(blocks + _at_m(derivation, level="heading2"))
    blocks = [Block("heading1", f"Backward pass of {g.layer}"),
              Block("text", "For a batch of $m$ examples $x_{1}, \\dots, x_{m}$ and every $m \\ge 1$; "
                            "$i$ is one example, $j$ runs over the batch.")]
    blocks += _forward(closed)
    blocks += _local_partials(derivation, closed)
    blocks += _chain_rule(closed)
    blocks += _simplification(closed)
    blocks += _backward(closed)
    if full:
        blocks.append(Block("heading2", f"The same at $m = {g.m}$, node by node ({g.view} view)"))
        blocks += _at_m(derivation, level="heading3")
    return tuple(blocks)


# -- for every m ------------------------------------------------------------------------
def _forward(closed) -> list[Block]:
    blocks = [Block("heading2", "Forward pass"),
              Block("math", equations=tuple(Equation(_indexed(k), (e,)) for k, e in closed.definitions.items()))]
    if closed.recognised:  # which batch statistics bngraph recognised in an unnamed layer, and named
        blocks.append(Block("text", closed.recognised))
    return blocks


def _role(derivation: Derivation, key: str) -> str:
    base = key.split("[", 1)[0]
    g = derivation.graph
    name = base if base in g else f"{base}_1"
    return g[name].role if name in g else "intermediate"


def _is_family(key: str) -> bool:
    return "[" in key


def _partial_of(child: str, parent: str, summed: bool) -> sp.Expr:
    """The symbol of ∂child/∂parent where it is used: at j inside a sum, else at i."""
    family = _is_family(child) or _is_family(parent)
    return family_partial(child, parent, (j_ if summed else i_) if family else None)


def _local_partials(derivation: Derivation, closed) -> list[Block]:
    m = sp.Symbol("m", integer=True, positive=True)
    eqs = []
    for child, parents in closed.partials.items():
        for parent, partial in parents.items():
            if _role(derivation, parent) == "constant":
                continue  # no gradient is asked of a constant (ε)
            found = batch_sum_symbolic(partial, closed.definitions, m, j_)
            lhs = _partial_of(child, parent, summed=False)
            if found is None:
                eqs.append(Equation(lhs, (partial,)))
                continue
            sides, notes = [found.expr(m, j_)], [""]
            if found.vanishes:  # the engine checked it against the definition of found.shared
                sides.append(sp.S.Zero)
                notes.append(f"since ${tex(sp.Symbol(found.shared))}$ is the mean")
            eqs.append(Equation(lhs, tuple(sides), tuple(notes)))
    return [Block("heading2", "Local partial derivatives"),
            Block("text", "Each node with respect to each of its parents (none is needed with respect to a "
                          "constant such as $\\epsilon$):"),
            Block("math", equations=tuple(eqs))]


def _chain_rule(closed) -> list[Block]:
    eqs = []
    for key, terms in closed.chain_terms.items():
        node = key[len("dL_d"):]
        parts = []
        for child, summed in terms:
            index = j_ if summed else (i_ if _is_family(child) else None)
            term = _indexed(f"dL_d{child}", index) * _partial_of(child, node, summed)
            parts.append(sp.Sum(term, (j_, 1, sp.Symbol("m", integer=True, positive=True))) if summed else term)
        general = sp.Add(*parts)
        sides = (general, closed.chain_rule[key]) if general != closed.chain_rule[key] else (general,)
        eqs.append(Equation(_indexed(key), sides))
    return [Block("heading2", "Adjoints by the chain rule"),
            Block("text", "Each adjoint sums over the nodes that use it; a batch value such as $\\mu$ is used by "
                          "every example, so its sum runs over $j = 1, \\dots, m$. The upstream gradients of the "
                          "outputs $y_{i}$ are given."),
            Block("math", equations=tuple(eqs))]


def _identity_text(closed) -> str:
    """What each numbered identity is, in words and inline math."""
    said = []
    for k, identity in enumerate(closed.identities, 1):
        solved = re.fullmatch(r"the definition of (\w+) solved for (\w+)", identity.reason)
        plain = re.fullmatch(r"from the definition of (\w+)", identity.reason)
        if solved:
            said.append(f"({k}) is the definition of ${tex(_indexed(solved[1] + '[i]'))}$ solved for "
                        f"${tex(_indexed(solved[2] + '[i]'))}$")
        elif plain:
            said.append(f"({k}) follows from the definition of ${tex(sp.Symbol(plain[1]))}$ and (1)")
        else:
            said.append(f"({k}) {identity.reason}")
    return "; ".join(said) + "."


def _simplification(closed) -> list[Block]:
    blocks = [Block("heading2", "Simplification")]
    if closed.identities:
        blocks += [Block("text", "The forward definitions give identities that the steps below cite: "
                                 + _identity_text(closed)),
                   Block("math", equations=tuple(Equation(ident.lhs, (ident.rhs,), number=str(k))
                                                 for k, ident in enumerate(closed.identities, 1)))]
    blocks.append(Block("text", "Each adjoint, with the adjoints found before it substituted, simplified:"))
    eqs = []
    for key, formula in closed.formulas.items():
        sides, notes = [], []
        for step in closed.steps.get(key, ())[1:]:  # the chain-rule form is in the section above
            if not sides or step.expr != sides[-1]:
                sides.append(step.expr)
                notes.append("" if not notes else step.description)
        if not sides or sides[-1] != formula:
            sides.append(formula)
            notes.append("")
        if sides != [closed.chain_rule.get(key)]:
            eqs.append(Equation(_indexed(key), tuple(sides), tuple(notes)))
    return blocks + [Block("math", equations=tuple(eqs))]


def _backward(closed) -> list[Block]:
    blocks = [Block("heading2", "The backward pass"),
              Block("text", "For every $m \\ge 1$ and $i = 1, \\dots, m$:"),
              Block("math", equations=tuple(Equation(_indexed(k), (f,)) for k, f in closed.formulas.items()))]
    if closed.provenance:
        blocks.append(Block("text", closed.provenance.replace(">= 1", "$\\ge 1$")))
    return blocks


# -- at the traced m --------------------------------------------------------------------
def _at_m(derivation: Derivation, level: str) -> list[Block]:
    g = derivation.graph
    blocks = [Block(level, f"Forward pass at $m = {g.m}$"),
              Block("text", "Each node from its parents:"),
              Block("math", equations=tuple(Equation(n.symbol, (n.expr,)) for n in g if n.expr is not None)),
              Block(level, "Local partial derivatives"),
              Block("text", "The partial derivative of each node with respect to each of its parents "
                            "(but constants):")]
    for node in g:
        partials = [(p, d) for p, d in derivation.local_partials_of(node.name).items() if g[p].role != "constant"]
        if node.expr is not None and partials:
            blocks.append(Block("math", equations=tuple(Equation(partial_symbol(node.name, p), (d,)) for p, d in partials)))
    outputs = ", ".join(f"$y_{{{k}}}$" for k in range(1, len(derivation.upstream) + 1))
    eqs = []
    for a in derivation.in_reading_order():
        chain = sp.Add(*(adjoint_symbol(c) * partial_symbol(c, a.node) for c, _ in a.terms))
        eqs.append(Equation(a.symbol, (chain, a.expr) if a.terms else (a.expr,)))
    blocks += [Block(level, "Adjoints by the chain rule"),
               Block("text", f"In reverse topological order; the upstream gradients of the outputs {outputs} "
                             "are given."),
               Block("math", equations=tuple(eqs)),
               Block(level, f"Fully substituted at $m = {g.m}$")]
    if g.m > MAX_EXPANDED_M:
        text = (f"Omitted: at $m = {g.m}$ each fully substituted gradient has a number of terms "
                f"that grows like $m^2$; they are printed for $m \\le {MAX_EXPANDED_M}$.")
        return blocks + [Block("text", text)]
    nodes = [n.name for n in g.with_role("input", "parameter") if n.name in derivation.adjoints]
    eqs = tuple(Equation(adjoint_symbol(n), (derivation.substituted(n),)) for n in nodes)
    return blocks + [Block("text", "Each gradient in the forward values and the upstream gradients only:"),
                     Block("math", equations=eqs)]


# -- printing the blocks -----------------------------------------------------------------
def _printer(derivation: Derivation, closed, loss: str, batch_subscript: bool) -> PaperLatexPrinter:
    partials = {partial_name(c, p): (c, p, False, False) for p, c in derivation.partials}
    if closed is not None:
        for child, parents in closed.partials.items():
            for parent in parents:
                c, p = child.split("[")[0], parent.split("[")[0]
                partials[partial_name(c, p)] = (c, p, _is_family(child), _is_family(parent))
    return PaperLatexPrinter(Notation(loss, batch_subscript), partials)


def _pieces(printer: PaperLatexPrinter, expr: sp.Expr, budget: float, first: bool = True) -> list[str]:
    """An expression's LaTeX in pieces a line may break between: the terms of a sum and, inside a
    product too wide for a line, the terms of its widest sum, in \\Bigl( … \\Bigr) (delimiters
    that need no pairing on one line)."""
    if expr.is_Add:
        terms = printer.ordered_terms(expr)
        return [p for k, t in enumerate(terms) for p in _pieces(printer, t, budget, first and k == 0)]
    whole = printer.term(expr, first)
    if not expr.is_Mul or width(whole) <= budget:
        return [whole]
    negative = expr.could_extract_minus_sign()
    coefficient, late = printer.split_product(-expr if negative else expr)
    sums = [f for f in late if f.is_Add]
    if not sums:
        return [whole]
    widest = max(sums, key=lambda f: width(printer._print(f)))
    sign = ("- " if negative else "") if first else (" - " if negative else " + ")
    head = [] if coefficient == 1 else [printer._coefficient(coefficient)]
    before, after = late[:late.index(widest)], late[late.index(widest) + 1:]
    head += [rf"\left({printer._print(f)}\right)" if f.is_Add else printer._print(f) for f in before]
    tail = [rf"\left({printer._print(f)}\right)" if f.is_Add else printer._print(f) for f in after]
    inner = _pieces(printer, widest, budget)
    inner[0] = sign + " ".join([*head, r"\Bigl(" + inner[0]])
    inner[-1] = " ".join([inner[-1] + r"\Bigr)", *tail])
    return inner


def _rows(printer: PaperLatexPrinter, eq: Equation, markdown: bool) -> list[str]:
    """An equation as align rows: ``lhs &= …``, long sides continued on ``&\\quad …`` rows.

    A note goes at the end of its side: as ``\\tag*{…}`` in LaTeX (set at the right margin, or
    on a line of its own when there is no room), as ``\\qquad \\text{(…)}`` in Markdown.
    """
    lhs = printer._print(eq.lhs)
    budget = LINE_WIDTH - width(lhs) - 20
    rows = []
    for k, side in enumerate(eq.sides):
        lines, line = [], ""
        for piece in _pieces(printer, side, budget):
            if line and width(line + piece) > budget:
                lines.append(line)
                line = ""
            line += piece
        lines.append(line)
        rows.append(f"{lhs + ' ' if k == 0 else ''}&= {lines[0].strip()}")
        rows += [rf"&\quad {text.strip()}" for text in lines[1:]]
        note = eq.notes[k] if k < len(eq.notes) else ""
        if note and markdown:
            rows[-1] += rf" \qquad \text{{({_text(note, markdown)})}}"
        elif note:
            rows[-1] += rf" \tag*{{{_text(note, markdown)}}}"
    if eq.number:
        rows[0] += "" if markdown else rf" \tag{{{eq.number}}}"
        rows[-1] += rf" \qquad \text{{({eq.number})}}" if markdown else ""
    return rows


def _math(printer, block: Block, environment: str) -> str:
    markdown = environment == "aligned"
    rows = [row for eq in block.equations for row in _rows(printer, eq, markdown)]
    return f"\\begin{{{environment}}}\n" + " \\\\\n".join(rows) + f"\n\\end{{{environment}}}"


_UNICODE = {"μ": r"$\mu$", "σ": r"$\sigma$", "ε": r"$\epsilon$", "γ": r"$\gamma$", "β": r"$\beta$",
            "Σ": r"$\Sigma$", "∑": r"$\sum$", "∂": r"$\partial$", "²": r"$^2$", "−": "-", "·": r"$\cdot$",
            "≥": r"$\ge$", "≤": r"$\le$", "→": r"$\to$", "√": r"$\surd$", "…": r"\dots{}", "–": "--", "—": "---"}
_SPECIAL = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "#": r"\#", "_": r"\_", "{": r"\{",
            "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}", "$": r"\$"}


def _text(text: str, markdown: bool = False) -> str:
    """Plain text (a note) safe for pdflatex: specials escaped, Greek as math; ``$…$`` kept as written."""
    parts = text.split("$")
    if len(parts) > 1:
        return "$".join(p if k % 2 else _text(p, markdown) for k, p in enumerate(parts))
    out = []
    for ch in text:
        if ch in _SPECIAL or ch in _UNICODE:
            out.append(_SPECIAL.get(ch) or _UNICODE[ch])
        elif ord(ch) < 128:
            out.append(ch)
        elif unicodedata.combining(ch):  # the hat of x̂: dropped
            continue
        elif greek_command(ch):
            out.append(f"${greek_command(ch)}$")
        else:  # x̂ -> x; anything pdflatex cannot set becomes "?"
            plain = unicodedata.normalize("NFKD", ch).encode("ascii", "ignore").decode()
            out.append(plain or "?")
    return "".join(out)


def _prose(text: str) -> str:
    """Block text for LaTeX: escape outside ``$…$``, keep the inline math as written."""
    parts = text.split("$")
    return "$".join(p if k % 2 else _text(p) for k, p in enumerate(parts))


PREAMBLE = r"""\documentclass{article}
\usepackage[margin=2.2cm]{geometry}
\usepackage{amsmath}
\usepackage{amssymb}
\allowdisplaybreaks
\begin{document}
"""


def to_latex(derivation: Derivation, closed=None, *, standalone: bool = False, loss: str = "L",
             batch_subscript: bool = False, full: bool = False) -> str:
    r"""The derivation as LaTeX: a fragment, or with ``standalone`` a document pdflatex compiles.

    >>> from bngraph.engine.layers import LAYERS
    >>> from bngraph.engine.graph import build_graph
    >>> from bngraph.engine.derive import derive
    >>> text = to_latex(derive(build_graph(LAYERS["batchnorm"].trace(2))))
    >>> print(text.splitlines()[0])
    \section*{Backward pass of batchnorm ($m = 2$, named view)}
    >>> r"\frac{\partial L}{\partial \beta} &= \frac{\partial L}{\partial y_{1}} + \frac{\partial L}{\partial y_{2}}" in text
    True
    """
    printer = _printer(derivation, closed, loss, batch_subscript)
    parts = []
    for block in document(derivation, closed, full):
        if block.kind == "heading1":
            parts.append(f"\\section*{{{_prose(block.text)}}}")
        elif block.kind == "heading2":
            parts.append(f"\\subsection*{{{_prose(block.text)}}}")
        elif block.kind == "heading3":
            parts.append(f"\\subsubsection*{{{_prose(block.text)}}}")
        elif block.kind == "text":
            parts.append(_prose(block.text))
        elif block.equations:
            parts.append(_math(printer, block, "align*"))
    body = "\n\n".join(parts) + "\n"
    return PREAMBLE + "\n" + body + "\n\\end{document}\n" if standalone else body


def to_markdown(derivation: Derivation, closed=None, *, loss: str = "L", batch_subscript: bool = False,
                full: bool = False) -> str:
    r"""The derivation as Markdown with ``$$ … $$`` display math, as Jupyter shows it.

    >>> from bngraph.engine.layers import LAYERS
    >>> from bngraph.engine.graph import build_graph
    >>> from bngraph.engine.derive import derive
    >>> text = to_markdown(derive(build_graph(LAYERS["batchnorm"].trace(2))))
    >>> text.splitlines()[0]
    '# Backward pass of batchnorm ($m = 2$, named view)'
    >>> text.count("$$") % 2
    0
    """
    printer = _printer(derivation, closed, loss, batch_subscript)
    parts = []
    heading = {"heading1": "#", "heading2": "##", "heading3": "###"}
    for block in document(derivation, closed, full):
        if block.kind in heading:
            parts.append(f"{heading[block.kind]} {block.text}")
        elif block.kind == "text":
            parts.append(block.text)
        elif block.equations:
            parts.append("$$\n" + _math(printer, block, "aligned") + "\n$$")
    return "\n\n".join(parts) + "\n"
