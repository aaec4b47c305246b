r"""The builder: the lark parse tree of one equation, turned into SymPy objects.

Two halves, one per kind of rule: :class:`NameRules` reads names with their decorations
(``\hat{x}_i``, ``\mu_{\mathcal{B}}``, ``\sigma^2``); :class:`Builder` adds arithmetic,
fractions, sums and derivatives (``\frac{\partial L}{\partial x_i}`` becomes the adjoint
``dL_dx[i]``). Nothing the user wrote is evaluated: tokens become numbers with ``Fraction``
and names through :func:`~bngraph.tex.names.resolve_name`.
"""
from __future__ import annotations

import math
import re
from dataclasses import replace
from fractions import Fraction

import sympy as sp
from lark import Token, Transformer, v_args

from bngraph.tex.names import (FAMILIES, KNOWN_COMMANDS, LOSS_NAMES, MAX_MAGNITUDE, PRIME_VARIABLE, DiffOp, Items, Name, ParenIndex, Partial,
                               NotChecked, Relation, TexSyntaxError, TooLarge, _is_index_expr, fail, index_symbol, index_symbols, resolve_name,
                               symbol, value)


@v_args(inline=True)
class NameRules(Transformer):
    """The rules that build names: letters, commands, words, accents, fonts, sub- and superscripts.

    A name stays a :class:`~bngraph.tex.names.Name` (letter and decorations, as written)
    until arithmetic needs its value.
    """

    def __init__(self, text: str):
        super().__init__()
        self.text = text
        self.notes: dict[str, str] = {}

    # -- leaves
    def letter(self, tok):
        return Name(str(tok), tex=str(tok))

    def number(self, tok):
        text = str(tok)
        if len(text.split(".")[0].lstrip("0")) > 13:  # checked before Fraction: no huge integer is built
            raise TooLarge(f"the number {text[:20]}… is too large to check")
        value = Fraction(text)  # the token matched [0-9.]+: a decimal literal, nothing else
        return _bounded(sp.Rational(value.numerator, value.denominator), text)

    def command(self, tok):
        name = str(tok)[1:]
        if name not in KNOWN_COMMANDS:
            fail(f"\\{name} cannot stand here")
        font = "mathcal" if KNOWN_COMMANDS[name] == "B" else None
        return Name(KNOWN_COMMANDS[name], font=font, tex=str(tok))

    def word(self, tok):
        cmd, _, rest = str(tok)[1:].partition("{")
        content = rest[:-1].replace("\\_", "_").strip()
        if not re.fullmatch(r"[A-Za-z][A-Za-z0-9_]*", content):
            fail(f"cannot read the text {{{content}}} inside a formula")
        font = "text" if cmd.strip().startswith(("text", "mbox")) else cmd.strip()
        return Name(content, font=font, tex=str(tok))

    def group(self, body):
        return body

    def body(self, expr):
        return expr

    def relbody(self, lhs, op, rhs):
        return Relation(lhs, str(op).strip(), rhs)

    def listbody(self, *items):
        return Items(tuple(items))

    def items(self, *items):
        return items

    def paren(self, *args):
        items = args[1] if len(args) == 3 else args[0]  # \{ items \} keeps its bracket tokens
        if len(items) > 1:
            return Items(tuple(items))
        item = items[0]
        if isinstance(item, sp.Integer) or (isinstance(item, Name) and item.is_plain_letter()):
            return ParenIndex(item)  # (i) may be the index of x^{(i)}
        number = self._num(item)
        if _is_index_expr(number) and {s.name for s in number.free_symbols} <= set("ijklnt"):
            return ParenIndex(number)  # (k-1): the step before, as in 	ilde{\mu}^{(k-1)}
        return number

    # -- decorations and scripts
    def accent(self, tok, arg):
        if isinstance(arg, ParenIndex):
            arg = arg.value
        if not isinstance(arg, Name) or (arg.accent and arg.sub is not None):
            fail(f"cannot read {tok} over an expression")
        kind = {"widehat": "hat", "overline": "bar", "widetilde": "tilde"}.get(str(tok)[1:], str(tok)[1:])
        if arg.accent:  # \bar{\hat{x}}: a name of its own, x̂'s bar (the adjoint of x̂ where the document says so)
            inner = arg.accent_tex or "\\" + arg.accent
            return replace(arg, accent=arg.accent + kind, accent_tex=f"{tok}{{{inner}", tex=f"{tok}{{{arg.tex}}}")
        return replace(arg, accent=kind, accent_tex=str(tok), inner_sub=arg.sub is not None,
                       tex=f"{tok}{{{arg.tex}}}")

    def font(self, tok, arg):
        if not isinstance(arg, Name):
            return arg  # \mathbf{(x - \mu)}: a font does not change a value
        return replace(arg, font=str(tok)[1:], tex=f"{tok}{{{arg.tex}}}")

    @v_args(meta=True)
    def subscript(self, meta, args):
        return self._script(args[0], "sub", args[1], meta)

    @v_args(meta=True)
    def superscript(self, meta, args):
        return self._script(args[0], "sup", args[1], meta)

    def _script(self, base, which, arg, meta):
        tex = self.text[meta.start_pos:meta.end_pos]
        if isinstance(base, ParenIndex):
            base = base.value
        if isinstance(base, Name):
            if getattr(base, which) is not None:
                fail(f"double {'subscript' if which == 'sub' else 'superscript'} in {tex}")
            return replace(base, **{which: arg}, tex=tex)
        if which == "sup":
            return _power(self._num(base), self._num(arg), tex)
        if isinstance(base, sp.Symbol):  # {\frac{\partial L}{\partial x}}_{i}: index a family
            return resolve_name(Name(base.name, sub=arg, tex=tex), self.notes)
        if isinstance(base, sp.Expr) and not isinstance(base, sp.Derivative):
            entry = _entry_of(base, arg, self)
            if entry is not None:
                return entry
        if isinstance(base, sp.Derivative) and isinstance(arg, Name):
            # \frac{\partial \hat{x}_i}{\partial x_j}_{\text{via }\mu}: one path's share of the derivative
            raise NotChecked(f"a derivative with a subscript of its own ({tex}): one path's share or one row, not checked")
        fail(f"cannot read a subscript on {tex}")

    def lower(self, arg):
        return ("_", arg)

    def upper(self, arg):
        return ("^", arg)


def _entry_of(expr: sp.Expr, sub, rules: NameRules) -> sp.Expr | None:
    r"""``\left(\frac{\partial L}{\partial y}\gamma\right)_{k,j}``: one entry of an elementwise expression of the batch's
    families, each family written bare inside it taken at that entry (None where no family is bare there)."""
    bare = [s for s in expr.atoms(sp.Symbol) if s.name in FAMILIES]
    if not bare or expr.atoms(sp.Indexed, sp.Sum):
        return None
    return expr.xreplace({s: resolve_name(Name(s.name, sub=sub), rules.notes) for s in bare})


@v_args(inline=True)
class Builder(NameRules):
    """Parse tree -> SymPy: the name rules, and the rules of arithmetic, sums and derivatives."""

    # -- arithmetic
    def add(self, a, _op, b):
        return self._num(a) + self._num(b)

    def minus(self, a, _op, b):
        return self._num(a) - self._num(b)

    def neg(self, _op, a):
        return -self._num(a)

    def pos(self, _op, a):
        return self._num(a)

    def mul(self, *args):
        a, b = args[0], args[-1]
        if isinstance(a, Partial) and not isinstance(b, (Partial, DiffOp)):
            # \frac{\partial \sum_i (x_i - \mu)^2}{\partial x_j}: what follows ∂ up to the fraction bar is differentiated
            return Partial(self._num(b) if a.target is None else self._num(a.target) * self._num(b))
        if isinstance(a, DiffOp):
            if _constant(b):  # ∂/∂x_i (1/n) Σ_r x_r: a constant factor first, the operator still waits for its operand
                return DiffOp(a.wrt, a.coefficient * self._num(b))
            return a.coefficient * self._derivative(b, a.wrt, "frac")
        if isinstance(b, DiffOp):  # (x_i - μ) ∂/∂x_i √…: the operator still waits for its operand
            return DiffOp(b.wrt, self._num(a) * b.coefficient)
        return self._num(a) * self._num(b)

    def div(self, a, _op, b):
        if isinstance(a, Partial) and isinstance(b, Partial) and a.target is not None:
            return self._derivative(a.target, b.target, "slash")
        return self._num(a) / self._num(b)

    def frac(self, tok, num, den):
        self.notes.setdefault("frac", str(tok))
        if isinstance(den, Partial):
            if not isinstance(num, Partial):
                fail("cannot read a fraction with \\partial only in the denominator")
            if num.target is None:
                return DiffOp(den.target)
            return self._derivative(num.target, den.target, "frac")
        if isinstance(num, Partial) and num.target is not None and isinstance(den, Name):
            return self._derivative(num.target, den, "frac")  # \frac{\partial y_j}{x_i}: the ∂ below left out
        top, bottom = _differential(self._num(num)), _differential(self._num(den))
        if bottom is not None and _is_d(self._num(num)):  # \frac{d}{d\sigma^2}(…): the operator, like ∂/∂σ²
            return DiffOp(bottom)
        if top is not None and bottom is not None:
            return self._derivative(top, bottom, "d")
        return self._num(num) / self._num(den)

    def sqrt(self, _tok, index, arg):
        radicand = self._num(arg)
        return sp.sqrt(radicand) if index is None else sp.root(radicand, self._num(index))

    def pdv(self, _tok, num, den):
        return self._derivative(num, den, "pdv")

    def func(self, tok, arg):
        name = str(tok)[1:]
        values = [self._num(a) for a in (arg.items if isinstance(arg, Items) else (arg,))]
        if name in ("max", "min"):
            return (sp.Max if name == "max" else sp.Min)(*values)
        if len(values) != 1:
            fail(f"\\{name} takes one argument")
        return {"exp": sp.exp, "log": sp.log, "ln": sp.log, "tanh": sp.tanh, "sin": sp.sin, "cos": sp.cos}[name](values[0])

    def partial(self, tok, sub, target):
        if sub is not None:  # \partial_{\mu} \ell: the operator ∂/∂μ applied to the loss
            if target is None:
                fail(f"{tok} needs something to differentiate")
            return self._derivative(target, sub, "sub")
        return Partial(target)

    def nabla_sub(self, tok, sub, target):
        """``\\nabla_x L`` is ∂L/∂x; ``\\nabla_{\\hat{x}_j}`` alone is the loss's gradient too, so in
        ``\\nabla_{\\hat{x}_j} \\hat{x}_j`` what follows is a factor, not what is differentiated."""
        if target is None or not (isinstance(target, Name) and target.is_plain()
                                  and (target.base in LOSS_NAMES or target.font == "mathcal" and target.base == "L")):
            wrt = self._num(sub)
            if not isinstance(wrt, (sp.Symbol, sp.Indexed)):
                fail("cannot read \\nabla of an expression")
            self.notes.setdefault("derivative", "nabla")
            return _adjoint(wrt) if target is None else _adjoint(wrt) * self._num(target)
        return self._derivative(target, sub, "sub")

    def nabla(self, _tok, target):
        """``\\nabla y``, ``\\nabla \\gamma`` (XLA's notation): the loss's gradient with respect to it."""
        wrt = self._num(target)
        if not isinstance(wrt, (sp.Symbol, sp.Indexed)):
            fail("cannot read \\nabla of an expression")
        self.notes.setdefault("derivative", "nabla")
        return _adjoint(wrt)

    def sum(self, _tok, *args):
        *scripts, body = args
        if scripts and isinstance(scripts[-1], Token):  # \sum_j - a_j: the body is negated
            scripts, body = scripts[:-1], -self._num(body)
        limits = {"_": None, "^": None}
        for which, arg in scripts:
            if limits[which] is not None:
                fail("\\sum with two " + ("subscripts" if which == "_" else "superscripts"))
            limits[which] = arg
        body = _over_the_batch(self._num(body)) if limits["_"] is None else self._num(body)
        lower = limits["_"]
        if isinstance(lower, Relation) and lower.op in ("\\neq", "\\ne"):  # \sum_{i \neq j}: all but the j-th term
            lower = _running_first(lower, body)
            var, _, stop = self._limits(lower.lhs, limits["^"], body)
            self.notes.setdefault("sum_style", "index")
            return sp.Sum(body, (var, sp.Integer(1), stop)) - body.xreplace({var: self._num(lower.rhs)})
        var, start, stop = self._limits(lower, limits["^"], body)
        style = "full" if limits["^"] is not None else ("index" if limits["_"] is not None else "bare")
        self.notes.setdefault("sum_style", style)
        self.notes.setdefault("sum_index", var.name)
        return sp.Sum(body, (var, start, stop))

    def _limits(self, lower, upper, body):
        start, stop, var = sp.Integer(1), symbol("m"), lower
        if isinstance(lower, sp.Integer):  # \sum_1^m x_i: the start alone, the index the body's
            start, var = lower, None
        elif isinstance(lower, Relation):
            if lower.op == "\\in":  # \sum_{i \in \mathcal{B}}: over the batch
                var = lower.lhs
            elif lower.op == "=":
                var, start = lower.lhs, self._num(lower.rhs)
            else:
                fail(f"cannot read the sum's range {lower.op}")
        if upper is not None:
            stop = self._num(upper)
            if start == 0 and (stop + 1).is_Symbol or start == 0 and stop.is_Integer:
                # \sum_{j=0}^{N-1}: counted from 0, as code is; the same members as \sum_{j=1}^{N} (a summed index
                # is only a label)
                start, stop = sp.Integer(1), stop + 1
            if isinstance(stop, sp.Symbol) and stop.name != "m":
                self.notes.setdefault("m", stop.name)
        if var is None:
            free = sorted({s.name for s in index_symbols(body)})
            if len(free) != 1:
                fail("\\sum without a summation index")
            return index_symbol(free[0]), start, stop
        if isinstance(var, ParenIndex):
            var = var.value
        if not (isinstance(var, Name) and var.is_plain_letter()):
            fail("the summation index must be a single letter")
        return index_symbol(var.base), start, stop

    # -- derivatives
    def prime(self, base, _tok):
        r"""``\sigma'``, ``(x_i - \mu)'``: Lagrange's derivative by the variable of the derivation around it."""
        self.notes.setdefault("derivative", "prime")
        return sp.Derivative(self._num(base), symbol(PRIME_VARIABLE), evaluate=False)

    def _derivative(self, top, bottom, style):
        if isinstance(top, ParenIndex):
            top = top.value
        bottom_value = self._num(bottom)
        if not isinstance(bottom_value, (sp.Symbol, sp.Indexed)):
            fail("cannot differentiate with respect to an expression")
        if isinstance(top, Name) and top.base in LOSS_NAMES and top.is_plain():
            self.notes.setdefault("loss", top.tex or top.base)
            self.notes.setdefault("derivative", style)
            return _adjoint(bottom_value)
        top_value = self._num(top)
        if isinstance(top_value, sp.Symbol) and top_value.name == "L":
            self.notes.setdefault("derivative", style)
            return _adjoint(bottom_value)
        if style == "d" and isinstance(top_value, sp.Symbol) and top_value.name in LOSS_NAMES:  # dJ/dμ: J the loss
            self.notes.setdefault("loss", top_value.name)
            self.notes.setdefault("derivative", style)
            return _adjoint(bottom_value)
        return sp.Derivative(top_value, bottom_value, evaluate=False)

    def _num(self, obj):
        return value(obj, self.notes)

    # -- top level
    def relation(self, op, expr):
        return (str(op), self._num(expr))

    def equation(self, lhs, *relations):
        return (None if lhs is None else self._num(lhs), relations)

    def expression(self, expr):
        return self._num(expr)


def _constant(obj) -> bool:
    r"""A number or a size's reciprocal (2, 1/n, \frac{1}{N}): no operator's operand."""
    if isinstance(obj, (DiffOp, Partial, Items, tuple)) or not isinstance(obj, (sp.Expr, Name)):
        return False
    try:
        v = value(obj)
    except TexSyntaxError:  # not a plain value: an operand
        return False
    return isinstance(v, sp.Expr) and not v.atoms(sp.Indexed, sp.Sum, sp.Derivative) and \
        {s.name for s in v.free_symbols} <= {"m", "n", "N", "M", "B", "D", "d"}


def _power(base, exponent, tex: str):
    """``base ** exponent``, refusing before SymPy builds it a number too large to check
    (``10^{10^{10}}`` would take SymPy hours and gigabytes)."""
    if base.is_Number and exponent.is_Number and base != 0:
        digits = float(exponent) * math.log10(abs(float(base)))
        if digits > math.log10(MAX_MAGNITUDE) or digits < -30:
            raise TooLarge(f"{tex} is out of the range that can be checked (about 10^{digits:.3g})")
    if exponent.is_Number and abs(exponent) > MAX_MAGNITUDE:
        raise TooLarge(f"{tex} has an exponent too large to check")
    return sp.Pow(base, exponent)


def _bounded(number, text: str):
    if abs(number) > MAX_MAGNITUDE:
        raise TooLarge(f"the number {text} is too large to check")
    return number


def _over_the_batch(body):
    """An index-free body whose per-example families stand bare (``sum(\\nabla y * x)``): the batch's
    vectors, summed elementwise, so each gets the sum's index."""
    if index_symbols(body):
        return body
    labels = {ix.base.label for ix in body.atoms(sp.Indexed)}
    bare = [s for s in body.atoms(sp.Symbol) if s.name in FAMILIES and s not in labels]
    j = index_symbol("j")
    return body.xreplace({s: sp.IndexedBase(symbol(s.name))[j] for s in bare}) if bare else body


def _adjoint(wrt):
    """``dL_d<name>`` for the quantity ``wrt`` (Symbol or Indexed)."""
    if isinstance(wrt, sp.Indexed):
        return sp.IndexedBase(symbol(f"dL_d{wrt.base.label.name}"))[wrt.indices]
    return symbol(f"dL_d{wrt.name}")


def _running_first(lower: Relation, body) -> Relation:
    """``\\sum_{i \\neq j} (x_j - μ)``: the letter the summand uses runs (j), the other (i, bound
    outside the sum) is the term left out; written either way round."""
    used = {s.name for s in index_symbols(body)}
    names = [getattr(side, "base", None) for side in (lower.lhs, lower.rhs)]
    if names[0] not in used and names[1] in used:
        return Relation(lower.rhs, lower.op, lower.lhs)
    return lower


def _is_d(expr) -> bool:
    return isinstance(expr, sp.Symbol) and expr.name == "d"


def _differential(expr):
    """``q`` when ``expr`` is ``d q`` (the d of dL/dx), else None."""
    if isinstance(expr, sp.Mul) and len(expr.args) == 2:
        d = [a for a in expr.args if isinstance(a, sp.Symbol) and a.name == "d"]
        if len(d) == 1:
            return next(a for a in expr.args if a is not d[0])
    return None
