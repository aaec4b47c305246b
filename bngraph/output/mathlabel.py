r"""Names and expressions as typeset mathematics for Graphviz HTML-like labels.

Unicode for the symbols (μ, σ², x̂, √, −, ∂, Σ) and ``<SUB>``/``<SUP>`` for indices and
powers, as a person writes them on a slide: ``−1/√(σ² + ε)``, ``2(x₁ − μ)/3``, ``∂L/∂μ``.
Never code: no ``*``, ``**``, ``sqrt(``, ``epsilon``. A SymPy printer, like its LaTeX one.

>>> import sympy as sp
>>> mu, x1, eps, s2 = sp.symbols("mu x_1 epsilon sigma2")
>>> expr_html(-1 / sp.sqrt(s2 + eps))
'−1/√(σ² + ε)'
>>> expr_html(2 * x1 / 3 - 2 * mu / 3)
'2(x<SUB>1</SUB> − μ)/3'
>>> name_html("dL_dxhat_2"), name_html("sigma2"), name_html("γ")
('∂L/∂x̂<SUB>2</SUB>', 'σ²', 'γ')
"""
from __future__ import annotations

import re
from html import escape

import sympy as sp
from sympy.printing.precedence import PRECEDENCE
from sympy.printing.str import StrPrinter

GREEK = {g: chr(c) for g, c in zip(
    "alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu nu xi omicron pi rho "
    "sigma tau upsilon phi chi psi omega".split(), [*range(0x3B1, 0x3C2), *range(0x3C3, 0x3CA)])}
GREEK["eps"] = GREEK["epsilon"]
NAME = re.compile(r"([^\W\d_]+?)(\d*)(?:_(\d+|[a-z]))?")
LAST = {"epsilon", "eps", "ε"}  # written last in a sum: σ² + ε
TAG = re.compile(r"<[^>]*>")
MINUS = "−"


def visible(html: str) -> str:
    """What a reader sees of a label: its tags dropped, entities read."""
    return TAG.sub("", html).replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def name_html(name: str) -> str:
    """A node name as typeset text: ``sigma2`` → σ², ``xhat_1`` → x̂<SUB>1</SUB>, ``dL_dmu`` → ∂L/∂μ."""
    if name.startswith("dL_d") and len(name) > 4:
        return f"∂L/∂{name_html(name[4:])}"
    match = NAME.fullmatch(name)
    if match is None:
        return escape(name)
    base, digits, index = match.groups()
    if base.endswith("hat") and len(base) > 3:
        text = GREEK.get(base[:-3], base[:-3]) + "\u0302"  # combining circumflex: x̂
    else:
        text = GREEK.get(base, base)
    if digits == "2" and text != base:  # sigma2: the variance σ²
        text += "²"
    elif digits:
        text += f"<SUB>{digits}</SUB>"
    return escape(text, quote=False).replace("&lt;", "<").replace("&gt;", ">") + (
        f"<SUB>{index}</SUB>" if index else "")


def partial_html(child: str, parent: str) -> str:
    """∂child/∂parent: ``∂σ²/∂μ``."""
    return f"∂{name_html(child)}/∂{name_html(parent)}"


class HtmlMathPrinter(StrPrinter):
    """SymPy's str printer, writing mathematics instead of code."""

    def _print_Symbol(self, expr):
        return name_html(expr.name)

    def _print_Indexed(self, expr):
        return name_html(f"{expr.base.label}_{expr.indices[0]}")

    def _print_Integer(self, expr):
        return str(expr).replace("-", MINUS)

    def _print_Rational(self, expr):
        return f"{self._print(expr.p)}/{expr.q}"

    def _print_Float(self, expr):
        return f"{float(expr):.4g}".replace("-", MINUS)

    def _print_Add(self, expr, order=None):
        def key(term):
            negative = term.could_extract_minus_sign()
            magnitude = -term if negative else term
            return negative, magnitude.is_Number, getattr(magnitude, "name", "") in LAST

        text = ""
        for k, term in enumerate(sorted(sp.Add.make_args(expr), key=key)):  # stable: SymPy's order otherwise
            negative = term.could_extract_minus_sign()
            magnitude = -term if negative else term
            body = self.parenthesize(magnitude, PRECEDENCE["Add"], strict=True)
            text += (f" {MINUS} " if k else MINUS) + body if negative else (" + " if k else "") + body
        return text

    def _print_Mul(self, expr):
        if expr.could_extract_minus_sign():
            return MINUS + self.parenthesize(-expr, PRECEDENCE["Add"], strict=True)
        numer, denom = sp.fraction(expr, exact=True)
        top = self._product(numer)
        if denom == 1:
            return top
        bottom = self._product(denom)
        if denom.is_Add or denom.is_Mul or _slash(bottom):
            bottom = f"({bottom})"
        return f"{top}/{bottom}"

    def _product(self, expr) -> str:
        """Factors side by side, a number first: 2(x₁ − μ), γ x̂₁; a · beside a fraction (∂L/∂y₁ · γ)."""
        if not expr.is_Mul:
            return self.parenthesize(expr, PRECEDENCE["Mul"], strict=False) if expr.is_Add else self._print(expr)
        coeff, rest = expr.as_coeff_Mul()
        parts = [] if coeff == 1 else [self._print(coeff)]
        for factor in sp.Mul.make_args(rest):
            parts.append(f"({self._print(factor)})" if factor.is_Add else self._print(factor))
        text = parts[0]
        for before, part in zip(parts, parts[1:]):
            if _slash(before) or _slash(part):
                text += " · " + part
            elif before[-1].isdigit() and (part[0] in "(√" or len(visible(part).rstrip("0123456789")) == 1):
                text += part  # 2(x₁ − μ), 2x₁
            else:
                text += " " + part
        return text

    def _print_Pow(self, expr, rational=False):
        base, exp = expr.args
        if exp == sp.S.Half:
            inner = self._print(base)
            return f"√{inner}" if base.is_Atom else f"√({inner})"
        if exp.is_negative:
            return self._print_Mul(expr)
        inner = self._print(base)
        if not base.is_Atom or "<SUP>" in inner or "²" in inner:
            inner = f"({inner})"
        return f"{inner}<SUP>{self._print(exp)}</SUP>"

    def _print_Sum(self, expr):
        (var, start, stop), = expr.limits
        body = self._print(expr.function)
        if expr.function.is_Add:
            body = f"({body})"
        return f"Σ<SUB>{self._print(var)}</SUB> {body}"

    def _print_Function(self, expr):
        name = {"exp": "exp", "log": "log"}.get(expr.func.__name__, expr.func.__name__)
        return f"{escape(name)}({', '.join(self._print(a) for a in expr.args)})"

    def emptyPrinter(self, expr):
        return escape(str(expr))


def _slash(html: str) -> bool:
    """A / at the top level: outside parentheses, indices and powers."""
    text = re.sub(r"<(SUB|SUP)>.*?</\1>", "", html)
    while re.search(r"\([^()]*\)", text):
        text = re.sub(r"\([^()]*\)", "", text)
    return "/" in visible(text)


def expr_html(expr: sp.Expr) -> str:
    """``expr`` typeset for a label, its common numeric factor pulled out first: 2(x₁ − μ)/3."""
    if isinstance(expr, (int, float)):  # a number, never text: no sympify
        expr = sp.Integer(expr) if isinstance(expr, int) else sp.Float(expr)
    if expr.is_Add and len(expr.args) <= 8:  # a long sum is printed as it is (factoring it costs)
        expr = sp.factor_terms(expr)
    return HtmlMathPrinter().doprint(expr)
