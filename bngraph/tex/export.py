r"""Printers of a derivation as LaTeX and Markdown, in the paper's notation.

The document has five parts: the forward definitions; the local partial of every edge,
grouped by node; each adjoint as the chain-rule sum over the node's children, then with
the local partials substituted; the simplification into closed form (when given); and,
for small m, every gradient fully substituted. Both printers read the same list of
blocks (:func:`document`), so the LaTeX and the Markdown always say the same thing.

Symbols print as in the paper: ``mu`` -> ``\mu``, ``sigma2`` -> ``\sigma^{2}``,
``xhat_1`` -> ``\hat{x}_{1}``, ``dL_dmu`` -> ``\frac{\partial L}{\partial \mu}``, the
local partial of ``sigma2`` with respect to ``mu`` (SymPy name ``dsigma2_dmu``) ->
``\frac{\partial \sigma^{2}}{\partial \mu}``; other multi-letter names upright
(``xmu_1`` -> ``\mathrm{xmu}_{1}``).

>>> import sympy as sp
>>> mu, x1, eps, s2 = sp.symbols("mu x_1 epsilon sigma2")
>>> tex((x1 - mu) / sp.sqrt(s2 + eps))
'\\frac{x_{1} - \\mu}{\\sqrt{\\sigma^{2} + \\epsilon}}'
>>> tex(sp.Symbol("dL_dmu") / 3, loss="\\ell")
'\\frac{1}{3} \\frac{\\partial \\ell}{\\partial \\mu}'
"""
from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from typing import Mapping

import sympy as sp
from sympy.printing.latex import LatexPrinter, greek_letters_set

from bngraph.engine.derive import Derivation, adjoint_symbol

MAX_EXPANDED_M = 4  # fully substituted forms grow like m^2: print them for small m only
TERMS_PER_LINE = 3  # a long sum breaks onto a new line every few terms …
LINE_CHARS = 110  # … or sooner, when a line's LaTeX gets this long
LAST = {"epsilon", "eps"}  # written last in a sum: sigma^2 + epsilon


# -- names ------------------------------------------------------------------------------
def partial_name(child: str, parent: str) -> str:
    """The SymPy name of the local partial ∂child/∂parent: ``dsigma2_dmu``."""
    return f"d{child}_d{parent}"


def partial_symbol(child: str, parent: str) -> sp.Symbol:
    return sp.Symbol(partial_name(child, parent))


@dataclass(frozen=True)
class Notation:
    """How names read: the loss (``L`` or ``\\ell``) and μ_𝓑, σ²_𝓑 with ``batch_subscript``."""

    loss: str = "L"
    batch_subscript: bool = False

    def name(self, name: str, index: str | None = None) -> str:
        """A forward name as LaTeX: ``xhat_2`` -> ``\\hat{x}_{2}``, ``x`` with index ``i`` -> ``x_{i}``."""
        if name.startswith("dL_d"):
            return self.fraction(self.loss, self.name(name[4:], index))
        if index is None:
            base, _, index = name.rpartition("_")
            if not (base and index.isdigit()):
                base, index = name, None
        else:
            base = name
        sub = "" if index is None else f"_{{{index}}}"
        batch = r"_{\mathcal{B}}" if self.batch_subscript else ""
        if base == "mu":
            return rf"\mu{batch}{sub}"
        if base == "sigma2":
            return rf"\sigma{batch}^{{2}}{sub}"
        return _letter(base) + sub

    def fraction(self, top: str, bottom: str) -> str:
        return rf"\frac{{\partial {top}}}{{\partial {bottom}}}"


def _letter(base: str) -> str:
    if base.endswith("hat") and len(base) > 3 and _is_letter(base[:-3]):
        return rf"\hat{{{_letter(base[:-3])}}}"
    if base.lower() in greek_letters_set:
        return "\\" + base
    if len(base) == 1 and base.isalpha():
        return base
    return r"\mathrm{%s}" % base.replace("_", r"\_")


def _is_letter(base: str) -> bool:
    return (len(base) == 1 and base.isalpha()) or base.lower() in greek_letters_set


def _natural(text: str) -> tuple:
    """A sort key that puts x_2 before x_10."""
    return tuple(int(p) if p.isdigit() else p for p in re.split(r"(\d+)", text))


def _is_adjoint(factor: sp.Expr) -> bool:
    name = factor.base.name if isinstance(factor, sp.Indexed) else getattr(factor, "name", "")
    return isinstance(factor, (sp.Symbol, sp.Indexed)) and name.startswith("dL_d")


# -- the printer --------------------------------------------------------------------------
class PaperLatexPrinter(LatexPrinter):
    """SymPy's LaTeX printer with the paper's names and term order.

    Sums put positive terms first (x_i − μ, not −μ + x_i), lone symbols and ε last
    (γ x̂_i + β, σ² + ε); a product with an adjoint puts the adjoint first
    (∂L/∂x̂_i · 1/√(σ² + ε)).
    """

    def __init__(self, notation: Notation = Notation(), partials: Mapping[str, tuple[str, str]] = {}):
        super().__init__({"fold_frac_powers": True})
        self.notation, self.partials = notation, partials

    def _print_Symbol(self, expr, style="plain"):
        if expr.name in self.partials:
            child, parent = self.partials[expr.name]
            return self.notation.fraction(self.notation.name(child), self.notation.name(parent))
        return self.notation.name(expr.name)

    def _print_Indexed(self, expr):
        return self.notation.name(expr.base.name, ",".join(map(self._print, expr.indices)))

    def ordered_terms(self, expr: sp.Expr) -> list[sp.Expr]:
        def key(term):
            negative = term.could_extract_minus_sign()
            magnitude = -term if negative else term
            lone = magnitude.is_Symbol or magnitude.is_Number
            return negative, lone, getattr(magnitude, "name", "") in LAST, _natural(sp.sstr(magnitude))

        return sorted(sp.Add.make_args(expr), key=key)

    def _print_Add(self, expr, order=None):
        return "".join(self.term(t, first=k == 0) for k, t in enumerate(self.ordered_terms(expr)))

    def term(self, term: sp.Expr, first: bool) -> str:
        """One term of a sum with its sign: ``- \\mu`` first, `` + x_{1}`` after (no sign if first and positive)."""
        negative = term.could_extract_minus_sign()
        if negative:
            term = -term
        text = self._print(term)
        if self._needs_add_brackets(term):
            text = rf"\left({text}\right)"
        if first:
            return ("- " if negative else "") + text
        return (" - " if negative else " + ") + text

    def _print_Mul(self, expr):
        adjoints = [f for f in expr.args if _is_adjoint(f)]
        if not adjoints or len(adjoints) == len(expr.args):
            return super()._print_Mul(expr)
        coeff, rest = sp.Mul(*(f for f in expr.args if not _is_adjoint(f))).as_coeff_Mul()
        sign = "- " if coeff < 0 else ""
        coeff = abs(coeff)
        head = " ".join(self._print(a) for a in adjoints)
        if rest == sp.Symbol("m"):  # the batch size reads as a coefficient: m ∂L/∂y_i
            coeff, rest = coeff * rest, sp.S.One
        if coeff != 1:
            head = f"{self._print(coeff)} {head}"
        if rest == 1:
            return sign + head
        text = self._print(rest)
        if rest.is_Add:
            text = rf"\left({text}\right)"
        return rf"{sign}{head} \cdot {text}"


def tex(expr: sp.Expr, loss: str = "L", batch_subscript: bool = False) -> str:
    """One expression in the paper's notation (no line breaks)."""
    expr = sp.Integer(expr) if isinstance(expr, int) else expr  # never sympify: it would parse a string
    return PaperLatexPrinter(Notation(loss, batch_subscript))._print(expr)


# -- the document, as blocks both printers read -------------------------------------------
@dataclass(frozen=True)
class Equation:
    """``lhs = sides[0] = sides[1] …``; ``notes[k]`` says why side k holds (may be empty)."""

    lhs: sp.Expr
    sides: tuple[sp.Expr, ...]
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class Block:
    kind: str  # "heading1", "heading2", "text" (``$…$`` inline math allowed) or "math"
    text: str = ""
    equations: tuple[Equation, ...] = ()


def _indexed(key: str) -> sp.Expr:
    """A closed form's key as its left-hand side: ``dL_dx[i]`` -> Indexed, ``dL_dmu`` -> Symbol."""
    match = re.fullmatch(r"(\w+)\[(\w+)\]", key)
    return sp.IndexedBase(match[1])[sp.Symbol(match[2])] if match else sp.Symbol(key)


def document(derivation: Derivation, closed=None) -> tuple[Block, ...]:
    """The five parts of the derivation, in reading order."""
    g = derivation.graph
    blocks = [Block("heading1", f"Backward pass of {g.layer} ($m = {g.m}$, {g.view} view)")]
    blocks += _forward(derivation, closed)
    blocks += _local_partials(derivation)
    blocks += _chain_rule(derivation)
    if closed is not None:
        blocks += _closed_form(closed)
    blocks += _expanded(derivation)
    return tuple(blocks)


def _forward(derivation: Derivation, closed) -> list[Block]:
    g = derivation.graph
    blocks = [Block("heading2", "Forward pass")]
    if closed is not None:
        blocks.append(Block("text", "For every batch size $m$, with $i = 1, \\dots, m$:"))
        blocks.append(Block("math", equations=tuple(
            Equation(_indexed(k), (e,)) for k, e in closed.definitions.items())))
        if closed.recognised:  # issue 15: which batch statistics bngraph recognised and named
            blocks.append(Block("text", closed.recognised))
        blocks.append(Block("text", f"At $m = {g.m}$, each node from its parents:"))
    eqs = tuple(Equation(n.symbol, (n.expr,)) for n in g if n.expr is not None)
    blocks.append(Block("math", equations=eqs))
    return blocks


def _local_partials(derivation: Derivation) -> list[Block]:
    blocks = [Block("heading2", "Local partial derivatives"),
              Block("text", "The partial derivative of each node with respect to each of its parents:")]
    for node in derivation.graph:
        if node.expr is not None:
            blocks.append(Block("math", equations=tuple(
                Equation(partial_symbol(node.name, p), (d,)) for p, d in derivation.local_partials_of(node.name).items())))
    return blocks


def _chain_rule(derivation: Derivation) -> list[Block]:
    """Each adjoint: the sum over children of (child's adjoint) · (local partial), then substituted."""
    outputs = ", ".join(f"$y_{{{k}}}$" for k in range(1, len(derivation.upstream) + 1))
    eqs = []
    for a in derivation.adjoints.values():
        chain = sp.Add(*(adjoint_symbol(c) * partial_symbol(c, a.node) for c, _ in a.terms))
        eqs.append(Equation(a.symbol, (chain, a.expr) if a.terms else (a.expr,)))
    return [Block("heading2", "Adjoints by the chain rule"),
            Block("text", f"In reverse topological order; the upstream gradients of the outputs {outputs} "
                          "are given."),
            Block("math", equations=tuple(eqs))]


def _closed_form(closed) -> list[Block]:
    blocks = [Block("heading2", "Closed form for every batch size $m$"),
              Block("text", "The identities the simplification uses:"),
              Block("math", equations=tuple(Equation(i.lhs, (i.rhs,), (f"({k}) {i.reason}",))
                                            for k, i in enumerate(closed.identities, 1)))]
    for key, formula in closed.formulas.items():
        steps = tuple(closed.steps.get(key, ()))
        sides = [closed.chain_rule[key]] if key in closed.chain_rule else []
        notes = ["chain rule"] if sides else []
        for step in steps:  # a step that changes nothing is not shown
            if not sides or step.expr != sides[-1]:
                sides.append(step.expr)
                notes.append(step.description)
        if not sides or sides[-1] != formula:
            sides.append(formula)
            notes.append("")
        blocks.append(Block("math", equations=(Equation(_indexed(key), tuple(sides), tuple(notes)),)))
    blocks.append(Block("text", "In closed form, for every $m \\ge 1$ and $i = 1, \\dots, m$:"))
    if closed.provenance:
        blocks.append(Block("text", closed.provenance.replace(">= 1", "$\\ge 1$")))
    blocks.append(Block("math", equations=tuple(Equation(_indexed(k), (f,)) for k, f in closed.formulas.items())))
    return blocks


def _expanded(derivation: Derivation) -> list[Block]:
    g = derivation.graph
    blocks = [Block("heading2", f"Fully substituted at $m = {g.m}$")]
    if g.m > MAX_EXPANDED_M:
        text = (f"Omitted: at $m = {g.m}$ each fully substituted gradient has a number of terms "
                f"that grows like $m^2$; they are printed for $m \\le {MAX_EXPANDED_M}$.")
        return blocks + [Block("text", text)]
    blocks.append(Block("text", "Each gradient in the forward values and the upstream gradients only:"))
    nodes = [n.name for n in g.with_role("input", "parameter") if n.name in derivation.adjoints]
    eqs = tuple(Equation(adjoint_symbol(n), (derivation.substituted(n),)) for n in nodes)
    return blocks + [Block("math", equations=eqs)]


# -- printing the blocks -----------------------------------------------------------------
def _printer(derivation: Derivation, loss: str, batch_subscript: bool) -> PaperLatexPrinter:
    partials = {partial_name(c, p): (c, p) for p, c in derivation.partials}
    return PaperLatexPrinter(Notation(loss, batch_subscript), partials)


def _pieces(printer: PaperLatexPrinter, expr: sp.Expr, first: bool = True) -> list[str]:
    """An expression's LaTeX in pieces a line may break between: the terms of a sum, and inside
    an over-long product, the terms of its sums (in plain parentheses, which need no pairing)."""
    if expr.is_Add:
        return [p for k, t in enumerate(printer.ordered_terms(expr)) for p in _pieces(printer, t, first and k == 0)]
    whole = printer.term(expr, first)
    if not expr.is_Mul or len(whole) <= LINE_CHARS:
        return [whole]
    negative = expr.could_extract_minus_sign()
    factors = sp.Mul.make_args(-expr if negative else expr)
    long = [f for f in factors if f.is_Add and len(printer._print(f)) > LINE_CHARS // 2]
    if not long:
        return [whole]
    short = sp.Mul(*(f for f in factors if f not in long))
    head = ("- " if negative else "") if first else (" - " if negative else " + ")
    text = printer._print(short)
    pieces = [head + ("" if short == 1 else (rf"\left({text}\right) " if short.is_Add else text + " "))]
    for factor in long:
        inner = _pieces(printer, factor)
        pieces[-1] += "(" + inner[0]
        pieces += inner[1:]
        pieces[-1] += ") "
    pieces[-1] = pieces[-1].rstrip()
    return pieces


def _rows(printer: PaperLatexPrinter, eq: Equation) -> list[str]:
    """An equation as align rows: ``lhs &= …``, long sums continued on ``&\\quad …`` rows."""
    rows = []
    for k, side in enumerate(eq.sides):
        lines, line, count = [], "", 0
        for piece in _pieces(printer, side):
            if line and (count == TERMS_PER_LINE or len(line) + len(piece) > LINE_CHARS):
                lines.append(line)
                line, count = "", 0
            line, count = line + piece, count + 1
        lines.append(line)
        note = eq.notes[k] if k < len(eq.notes) else ""
        head = (printer._print(eq.lhs) + " ") if k == 0 else ""
        rows.append(f"{head}&= {lines[0].strip()}" + (rf" && \text{{({_text(note)})}}" if note else ""))
        rows += [rf"&\quad {line.strip()}" for line in lines[1:]]
    return rows


def _math(printer, block: Block, environment: str) -> str:
    rows = [row for eq in block.equations for row in _rows(printer, eq)]
    return f"\\begin{{{environment}}}\n" + " \\\\\n".join(rows) + f"\n\\end{{{environment}}}"


_UNICODE = {"μ": r"$\mu$", "σ": r"$\sigma$", "ε": r"$\epsilon$", "γ": r"$\gamma$", "β": r"$\beta$",
            "Σ": r"$\Sigma$", "∑": r"$\sum$", "∂": r"$\partial$", "²": r"$^2$", "−": "-", "·": r"$\cdot$",
            "≥": r"$\ge$", "≤": r"$\le$", "→": r"$\to$", "√": r"$\surd$", "…": r"\dots{}", "–": "--", "—": "---"}
_SPECIAL = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "#": r"\#", "_": r"\_", "{": r"\{",
            "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}", "$": r"\$"}


def _text(text: str) -> str:
    """Plain text (a step's description) safe for pdflatex: specials escaped, Greek as math."""
    out = []
    for ch in text:
        if ch in _SPECIAL or ch in _UNICODE:
            out.append(_SPECIAL.get(ch) or _UNICODE[ch])
        elif ord(ch) < 128:
            out.append(ch)
        elif unicodedata.combining(ch):  # the hat of x̂: dropped
            continue
        else:  # x̂ -> x; anything pdflatex cannot set becomes "?"
            plain = unicodedata.normalize("NFKD", ch).encode("ascii", "ignore").decode()
            out.append(plain or "?")
    return "".join(out)


def _prose(text: str) -> str:
    """Block text for LaTeX: escape outside ``$…$``, keep the inline math as written."""
    parts = text.split("$")
    return "$".join(p if k % 2 else _text(p) for k, p in enumerate(parts))


PREAMBLE = r"""\documentclass{article}
\usepackage{amsmath}
\usepackage{amssymb}
\allowdisplaybreaks
\begin{document}
"""


def to_latex(derivation: Derivation, closed=None, *, standalone: bool = False, loss: str = "L",
             batch_subscript: bool = False) -> str:
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
    printer = _printer(derivation, loss, batch_subscript)
    parts = []
    for block in document(derivation, closed):
        if block.kind == "heading1":
            parts.append(f"\\section*{{{_prose(block.text)}}}")
        elif block.kind == "heading2":
            parts.append(f"\\subsection*{{{_prose(block.text)}}}")
        elif block.kind == "text":
            parts.append(_prose(block.text))
        elif block.equations:
            parts.append(_math(printer, block, "align*"))
    body = "\n\n".join(parts) + "\n"
    return PREAMBLE + "\n" + body + "\n\\end{document}\n" if standalone else body


def to_markdown(derivation: Derivation, closed=None, *, loss: str = "L", batch_subscript: bool = False) -> str:
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
    printer = _printer(derivation, loss, batch_subscript)
    parts = []
    for block in document(derivation, closed):
        if block.kind == "heading1":
            parts.append(f"# {block.text}")
        elif block.kind == "heading2":
            parts.append(f"## {block.text}")
        elif block.kind == "text":
            parts.append(block.text)
        elif block.equations:
            parts.append("$$\n" + _math(printer, block, "aligned") + "\n$$")
    return "\n\n".join(parts) + "\n"
