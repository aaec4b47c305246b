r"""The paper's notation for printing: names, a LaTeX printer, and how wide a formula sets.

Symbols print as in the paper: ``mu`` -> ``\mu``, ``sigma2`` -> ``\sigma^{2}``,
``xhat_1`` -> ``\hat{x}_{1}``, ``dL_dmu`` -> ``\frac{\partial L}{\partial \mu}``, a user's
``γ`` -> ``\gamma``; the local partial of ``sigma2`` with respect to ``mu`` (SymPy name
``dsigma2_dmu``) -> ``\frac{\partial \sigma^{2}}{\partial \mu}``, and at symbolic m the
partials of a family are indexed: ``dxhat_dmu[j]`` -> ``\frac{\partial \hat{x}_{j}}{\partial \mu}``.
Other multi-letter names are upright (``xmu_1`` -> ``\mathrm{xmu}_{1}``).

Products put their coefficient first, as a paper does: ``m \frac{\partial L}{\partial y_{i}}``,
``\frac{\gamma}{\sqrt{\sigma^{2} + \epsilon}} \frac{\partial L}{\partial y_{i}}``.

>>> import sympy as sp
>>> mu, x1, eps, s2 = sp.symbols("mu x_1 epsilon sigma2")
>>> tex((x1 - mu) / sp.sqrt(s2 + eps))
'\\frac{x_{1} - \\mu}{\\sqrt{\\sigma^{2} + \\epsilon}}'
>>> tex(sp.Symbol("dL_dmu") / 3, loss="\\ell")
'\\frac{1}{3} \\frac{\\partial \\ell}{\\partial \\mu}'
>>> tex(sp.Symbol("dL_dy_1") * sp.Symbol("m")), tex(sp.Symbol("γ"))
('m \\frac{\\partial L}{\\partial y_{1}}', '\\gamma')
"""
from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from typing import Mapping

import sympy as sp
from sympy.printing.latex import LatexPrinter, greek_letters_set

from bngraph.tex.document import group_end

LAST = {"epsilon", "eps", "ε"}  # written last in a sum: sigma^2 + epsilon
GREEK_CAPITALS = {"Gamma", "Delta", "Theta", "Lambda", "Xi", "Pi", "Sigma", "Upsilon", "Phi", "Psi", "Omega"}


def greek_command(ch: str) -> str | None:
    r"""A Greek letter typed in Unicode as its LaTeX command: γ -> \gamma, ε -> \varepsilon, Δ -> \Delta."""
    name = unicodedata.name(ch, "")
    match = re.fullmatch(r"GREEK (SMALL|CAPITAL) LETTER (\w+)", name)
    if match is None:
        return r"\epsilon" if name == "GREEK LUNATE EPSILON SYMBOL" else None
    letter = match[2].lower()
    if match[1] == "CAPITAL":
        letter = letter.capitalize()
        return "\\" + letter if letter in GREEK_CAPITALS else unicodedata.lookup(f"LATIN CAPITAL LETTER {letter[0]}")
    if letter == "epsilon":
        return r"\varepsilon"  # ε is the curly one; \epsilon is ϵ
    if letter == "final sigma":
        return r"\varsigma"
    return "\\" + letter if letter in greek_letters_set or letter == "omicron" else None


def _unicode_tex(text: str) -> str:
    """Every Greek letter of a name as its command (pdflatex cannot set a raw γ)."""
    out = []
    for ch in text:
        command = greek_command(ch) if ord(ch) > 127 else None
        out.append(command + " " if command and command.startswith("\\") else (command or ch))
    return "".join(out).strip()


def partial_name(child: str, parent: str) -> str:
    """The SymPy name of the local partial ∂child/∂parent: ``dsigma2_dmu``."""
    return f"d{child}_d{parent}"


def partial_symbol(child: str, parent: str) -> sp.Symbol:
    return sp.Symbol(partial_name(child, parent))


def family_partial(child: str, parent: str, index: sp.Symbol | None) -> sp.Expr:
    """∂child/∂parent at symbolic m: a family's partial is indexed (``dxhat_dmu[j]``), a batch one is not.

    ``child`` and ``parent`` are closed-form keys: ``xhat[i]``, ``mu``.
    """
    name = partial_name(_base(child), _base(parent))
    return sp.IndexedBase(name)[index] if index is not None else sp.Symbol(name)


def _base(key: str) -> str:
    return key.split("[", 1)[0]


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
    if len(base) == 1 and base.isascii() and base.isalpha():
        return base
    if len(base) == 1 and greek_command(base):
        return greek_command(base)
    text = _unicode_tex(base.replace("_", r"\_"))
    return r"\mathrm{%s}" % text


def _is_letter(base: str) -> bool:
    return (len(base) == 1 and base.isalpha()) or base.lower() in greek_letters_set


def _natural(text: str) -> tuple:
    """A sort key that puts x_2 before x_10."""
    return tuple(int(p) if p.isdigit() else p for p in re.split(r"(\d+)", text))


def _is_derivative(factor: sp.Expr, partials) -> bool:
    """An adjoint ∂L/∂… or a local partial ∂c/∂p: what a coefficient is written before."""
    name = factor.base.label.name if isinstance(factor, sp.Indexed) else getattr(factor, "name", "")
    return isinstance(factor, (sp.Symbol, sp.Indexed)) and (name.startswith("dL_d") or name in partials)


class PaperLatexPrinter(LatexPrinter):
    """SymPy's LaTeX printer with the paper's names and term order.

    Sums put positive terms first (x_i − μ, not −μ + x_i), lone symbols and ε last
    (γ x̂_i + β, σ² + ε); a product puts its coefficient first, then its sums, then the
    derivatives (m ∂L/∂y_i, γ/√(σ² + ε) ∂L/∂y_i).
    """

    def __init__(self, notation: Notation = Notation(), partials: Mapping[str, tuple] = {}):
        super().__init__({"fold_frac_powers": True})
        self.notation, self.partials = notation, partials

    def _print_Symbol(self, expr, style="plain"):
        if expr.name in self.partials:
            child, parent = self.partials[expr.name][:2]
            return self.notation.fraction(self.notation.name(child), self.notation.name(parent))
        return self.notation.name(expr.name)

    def _print_Indexed(self, expr):
        index = ",".join(map(self._print, expr.indices))
        name = expr.base.label.name
        if name in self.partials:  # ∂x̂_j/∂μ: the index on whichever of the two is a family
            child, parent, child_family, parent_family = self.partials[name]
            top = self.notation.name(child, index if child_family else None)
            return self.notation.fraction(top, self.notation.name(parent, index if parent_family else None))
        return self.notation.name(name, index)

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

    def split_product(self, expr: sp.Expr) -> tuple[sp.Expr, list[sp.Expr]]:
        """(coefficient, [sums and sums-with-derivatives …, derivatives …]) of a positive product."""
        factors = sp.Mul.make_args(expr)
        late = [f for f in factors if f.has(sp.Sum) or _is_derivative(f, self.partials)
                or any(_is_derivative(a, self.partials) for a in f.atoms(sp.Symbol, sp.Indexed))]
        coefficient = sp.Mul(*(f for f in factors if f not in late))
        for k, factor in enumerate(late):  # 2(mμ − Σ x_j): the 2 joins the coefficient
            number, rest = sp.factor_terms(factor).as_coeff_Mul() if factor.is_Add else (1, factor)
            if number != 1 and number > 0 and rest.is_Add:
                coefficient, late[k] = coefficient * number, rest
        late.sort(key=lambda f: (_is_derivative(f, self.partials), not f.is_Add))
        return coefficient, late

    def _print_Mul(self, expr):
        negative = expr.could_extract_minus_sign()
        magnitude = -expr if negative else expr
        if not magnitude.is_Mul:  # 1/Σ e^{x_j}: SymPy prints this power as a product, which would come back here
            return ("- " if negative else "") + super()._print_Mul(magnitude)
        coefficient, late = self.split_product(magnitude)
        for k, factor in enumerate(late):  # c Σ (−f) is −c Σ f: the sign leads the product
            if _negative_sum(factor):
                late[k], negative = sp.Sum(-factor.function, *factor.limits), not negative
        if not late:
            return ("- " if negative else "") + super()._print_Mul(magnitude)
        parts = [] if coefficient == 1 else [self._coefficient(coefficient)]
        for factor in late:
            parts.append(self.factor(factor))
        return ("- " if negative else "") + " ".join(parts)

    def factor(self, factor: sp.Expr) -> str:
        """One factor of a product: a sum in parentheses, its common factor pulled out (2(x_i − μ))."""
        if not factor.is_Add:
            return self._print(factor)
        pulled = sp.factor_terms(factor)
        if pulled.is_Mul and not pulled.could_extract_minus_sign():
            return self._print_Mul(pulled)
        return rf"\left({self._print(factor)}\right)"

    def _coefficient(self, coefficient: sp.Expr) -> str:
        """A coefficient as ``\\frac{a}{b}``: ``\\frac{2}{m}``, ``\\frac{\\gamma}{m \\sqrt{…}}``."""
        if coefficient.is_Add:
            return self.factor(coefficient)
        numer, denom = (sp.factor_terms(part) for part in sp.fraction(sp.factor_terms(coefficient)))
        if denom == 1:
            return self._print(numer)
        return rf"\frac{{{self._print(numer)}}}{{{self._print(denom)}}}"

    def _print_Sum(self, expr):
        """``- \\sum …`` for a sum of negative products, not ``\\sum - …``."""
        if _negative_sum(expr):
            return "- " + self._print(sp.Sum(-expr.function, *expr.limits))
        return super()._print_Sum(expr)


def _negative_sum(expr) -> bool:
    return isinstance(expr, sp.Sum) and expr.function.is_Mul and expr.function.could_extract_minus_sign()


def tex(expr: sp.Expr, loss: str = "L", batch_subscript: bool = False) -> str:
    """One expression in the paper's notation (no line breaks)."""
    expr = sp.Integer(expr) if isinstance(expr, int) else expr  # never sympify: it would parse a string
    return PaperLatexPrinter(Notation(loss, batch_subscript))._print(expr)


# -- how wide a formula sets -------------------------------------------------------------
_GLYPH = 5.5  # points, at 10pt: a letter or symbol in math
_COMMANDS = {r"\partial": _GLYPH, r"\cdot": 8, r"\quad": 10, r"\qquad": 20, r"\dots": 12, r"\ge": 10,
             r"\left": 0, r"\right": 0, r"\Bigl": 0, r"\Bigr": 0, r"\mathcal": 0, r"\mathrm": 0}


def width(tex_text: str) -> float:
    """A rough width in points of display math at 10pt: fractions as wide as their wider part,
    indices smaller, a \\sum with its limits set below it. Used to break lines before they overflow."""
    total, k = 0.0, 0
    text = tex_text
    while k < len(text):
        ch = text[k]
        if ch == "\\":
            match = re.match(r"\\([A-Za-z]+|.)", text[k:])
            command = match[0]
            k += len(command)
            if command in (r"\frac", r"\dfrac"):
                top, k = _group(text, k)
                bottom, k = _group(text, k)
                total += max(width(top), width(bottom)) + 3
            elif command == r"\sqrt":
                inner, k = _group(text, k)
                total += width(inner) + 9
            elif command in (r"\hat", r"\mathrm", r"\mathcal", r"\text"):
                inner, k = _group(text, k)
                total += width(inner) if command != r"\text" else 5 * len(inner)
            elif command == r"\sum":
                limits = 0.0
                while k < len(text) and text[k] in "_^":
                    inner, k = _group(text, k + 1)
                    limits = max(limits, 0.7 * width(inner))
                total += max(12, limits) + 2
            else:
                total += _COMMANDS.get(command, _GLYPH)
        elif ch in "_^":
            inner, k = _group(text, k + 1)
            total += 0.7 * width(inner)
        elif ch in "+-=":
            total += 13
            k += 1
        elif ch in " {}&":
            k += 1
        else:
            total += 4 if ch in "()[]|,." else _GLYPH
            k += 1
    return total


def _group(text: str, k: int) -> tuple[str, int]:
    """The braced group (or the single token) at ``k``: (its content, the index after it)."""
    while k < len(text) and text[k] == " ":
        k += 1
    if k >= len(text):
        return "", k
    if text[k] != "{":
        match = re.match(r"\\[A-Za-z]+|.", text[k:])
        return match[0], k + len(match[0])
    end = group_end(text, k)
    return (text[k + 1:], len(text)) if end is None else (text[k + 1:end - 1], end)
