r"""Print an expression back in its author's notation: ``\mu_B`` or ``\mu_{\mathcal{B}}``,
``\ell`` or ``L``, ``\pdv{\ell}{\gamma}`` or ``\frac{\partial \ell}{\partial \gamma}``.

The auditor uses it to show a correct formula the way the document would have written it.
A printer is a SymPy ``LatexPrinter`` with a :class:`~bngraph.tex.names.Notation`; it never
changes what it prints, and :func:`bngraph.tex.grammar.parse_expression` reads its output back.

>>> import sympy as sp
>>> from bngraph.tex.grammar import parse_equation, parse_expression
>>> seen = parse_equation(r"\pdv{\ell}{\mu_{\mathcal{B}}} = \sum_{k=1}^{m} \pdv{\ell}{\hat{x}_k}").notation
>>> to_latex(parse_expression(r"\frac{1}{m}\sum_{j=1}^{m} \frac{\partial L}{\partial y_j} - \mu"), seen)
'\\frac{1}{m} \\sum_{j=1}^{m} \\pdv{\\ell}{y_{j}} - \\mu_{\\mathcal{B}}'
"""
from __future__ import annotations

import sympy as sp
from sympy.printing.latex import LatexPrinter

from bngraph.tex.names import KNOWN_COMMANDS, Notation

DEFAULTS = {"mu": r"\mu", "sigma2": r"\sigma^{2}", "sigma": r"\sigma", "epsilon": r"\epsilon",
            "gamma": r"\gamma", "beta": r"\beta", "L": "L", "m": "m"}
FAMILY_DEFAULTS = {"x": "x_{%s}", "y": "y_{%s}", "xhat": r"\hat{x}_{%s}", "yhat": r"\hat{y}_{%s}"}


def name_tex(name: str) -> str:
    r"""A name with no recorded notation: ``mu_run`` -> ``\mu_{\text{run}}``, ``ivar`` -> ``\mathrm{ivar}``."""
    if name in DEFAULTS:
        return DEFAULTS[name]
    head, _, tail = name.partition("_")
    if head.endswith("2") and head[:-1] in KNOWN_COMMANDS:  # sigma2_run
        head_tex = rf"\{head[:-1]}^{{2}}"
    elif head in KNOWN_COMMANDS and head not in ("B", "ell"):
        head_tex = "\\" + head
    elif head.endswith("hat") and len(head) > 3:
        head_tex = rf"\hat{{{name_tex(head[:-3])}}}"
    elif len(head) == 1:
        head_tex = head
    else:
        return r"\mathrm{%s}" % name.replace("_", r"\_")
    return head_tex + (rf"_{{\text{{{tail}}}}}" if tail else "")


class NotationPrinter(LatexPrinter):
    """SymPy's LaTeX printer with one document's way of writing names."""

    def __init__(self, notation: Notation = Notation()):
        super().__init__()
        self.notation = notation

    def _print_Symbol(self, expr, style="plain"):
        if expr.name.startswith("dL_d"):
            return self.adjoint(self.name(expr.name[4:]))
        return self.name(expr.name)

    def name(self, name: str) -> str:
        return self.notation.get(name) or name_tex(name)

    def family(self, base: str, index: str) -> str:
        template = self.notation.get(f"{base}[]") or FAMILY_DEFAULTS.get(base) or (name_tex(base) + "_{%s}")
        return template % index

    def _print_Indexed(self, expr):
        base = expr.base.label.name
        index = ",".join(self._print(k) for k in expr.indices)
        if base.startswith("dL_d"):
            return self.adjoint(self.family(base[4:], index))
        return self.family(base, index)

    def adjoint(self, target: str) -> str:
        loss = self.notation.get("loss", "L")
        style = self.notation.get("derivative", "frac")
        if style == "pdv":
            return rf"\pdv{{{loss}}}{{{target}}}"
        if style == "nabla":
            return rf"\nabla {target}"
        if style == "d":
            return rf"\frac{{d{loss}}}{{d{target}}}"
        return rf"\frac{{\partial {loss}}}{{\partial {target}}}"

    def _print_Add(self, expr, order=None):
        """Positive terms first and ε last, as people write: x_i − μ, σ² + ε."""
        def key(term):
            return term.could_extract_minus_sign(), getattr(term, "name", "") == "epsilon"

        tex = ""
        for k, term in enumerate(sorted(self._as_ordered_terms(expr, order=order), key=key)):
            negative = term.could_extract_minus_sign()
            tex += (" - " if k else "- ") if negative else (" + " if k else "")
            term = -term if negative else term
            text = self._print(term)
            tex += rf"\left({text}\right)" if self._needs_add_brackets(term) else text
        return tex

    def _print_Mul(self, expr):
        """``\\frac{1}{m} \\sum …`` rather than ``\\frac{\\sum …}{m}``."""
        negative = expr.could_extract_minus_sign()
        factors = sp.Mul.make_args(-expr if negative else expr)
        inverse = [f for f in factors if f.is_Pow and f.exp == -1 and f.base.is_Symbol]
        rest = [f for f in factors if f not in inverse]
        if not inverse or not any(isinstance(f, sp.Sum) for f in rest):
            return super()._print_Mul(expr)
        body = sp.Mul(*rest)
        text = self._print(body)
        if body.is_Add:
            text = rf"\left({text}\right)"
        return ("- " if negative else "") + rf"\frac{{1}}{{{self._print(sp.Mul(*(f.base for f in inverse)))}}} {text}"

    def _print_Derivative(self, expr):
        (var, count), = expr.variable_count
        return rf"\frac{{\partial {self._print(expr.expr)}}}{{\partial {self._print(var)}}}"

    def _print_Sum(self, expr):
        (var, start, stop), = expr.limits
        compact = self.notation.get("sum_style") in ("index", "bare") and start == 1 and getattr(stop, "name", "") == "m"
        if compact:
            head = rf"\sum_{{{self._print(var)}}}"
        else:
            head = rf"\sum_{{{self._print(var)}={self._print(start)}}}^{{{self._print(stop)}}}"
        body = self._print(expr.function)
        if expr.function.is_Add:
            body = rf"\left({body}\right)"
        return f"{head} {body}"


def to_latex(expr: sp.Expr, notation: Notation = Notation()) -> str:
    """``expr`` as LaTeX in ``notation``."""
    return NotationPrinter(notation).doprint(expr)
