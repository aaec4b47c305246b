r"""Read one equation of Batch-Norm notation, as people write it in LaTeX, into SymPy.

A lark grammar (LALR, so reading is linear in the length) turns the text into a parse
tree; a transformer builds the SymPy objects from the tree. Nothing the user wrote is
ever handed to ``eval``, ``sympify`` or ``parse_expr``.

The result uses the contract's symbolic-m names: IndexedBase ``x``, ``xhat``, ``y``,
``dL_dx``, ``dL_dxhat``, ``dL_dy``; Symbols ``m``, ``mu``, ``sigma2``, ``gamma``,
``beta``, ``epsilon``, ``L``, ``dL_dmu``, ``dL_dsigma2``, ``dL_dgamma``, ``dL_dbeta``;
indices ``i``, ``j``, ``k``; sums ``Sum(..., (j, 1, m))``. Choices a reader should know:

- ``\sigma`` without a square is the Symbol ``sigma`` (the standard deviation), never
  ``sigma2``: ``\sigma_B`` and ``\sigma_B^2`` stay distinguishable.
- Concrete indices read as Indexed: ``x_1`` is ``x[1]``, ``\hat{x}_3`` is ``xhat[3]``
  (:func:`concrete_names` turns them into the engine's ``x_1``, ``xhat_3``).
- A sum's bound index is renamed ``j`` (then ``k``, ``l`` …, skipping indices that are
  free in the equation), so ``\sum_i x_i`` and ``\sum_j x_j`` read the same.
- ``\partial L/\partial q`` for a loss letter (L, \ell, l, \mathcal{L}, J) is the
  adjoint ``dL_dq``; any other ∂a/∂b is a SymPy ``Derivative`` (a local partial).
- The batch marker (``\mu_B``, ``\mu_{\mathcal{B}}``, ``\mu_\B``) is dropped; other
  word subscripts make names: ``\mu_{\text{run}}`` is ``mu_run``.

>>> parse_expression(r"\frac{1}{m}\sum_{i=1}^m x_i")
Sum(x[j], (j, 1, m))/m
>>> eq = parse_equation(r"\hat{x}_i = \frac{x_i - \mu_\mathcal{B}}{\sqrt{\sigma^2_{\mathcal{B}} + \epsilon}}")
>>> eq.lhs, eq.rhs
(xhat[i], (-mu + x[i])/sqrt(epsilon + sigma2))
>>> parse_equation(r"\frac{\partial \ell}{\partial \gamma} = \sum_i \frac{\partial \ell}{\partial y_i} \hat x_i").rhs
Sum(dL_dy[j]*xhat[j], (j, 1, m))
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from fractions import Fraction
from typing import Iterator

import sympy as sp
from lark import Lark, Token, Transformer, v_args
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken, VisitError

from bngraph.errors import BngraphError
from bngraph.tex.clean import brace_short_arguments, check_balance, clean
from bngraph.tex.names import (KNOWN_COMMANDS, LOSS_NAMES, DiffOp, Items, Name, Notation, ParenIndex, Partial, Relation,
                       TexSyntaxError, canonical_bound, fail, concrete_names, free_index_names, index_symbol, index_symbols, resolve_name,
                       symbol, value)

__all__ = ["Equation", "Notation", "TexSyntaxError", "concrete_names", "parse_equation", "parse_expression", "symbol"]

MAX_CHARS = 4000  # one equation; longer input is not an equation someone wrote by hand


GRAMMAR_TEMPLATE = r"""
equation: [expr] relation+
relation: REL expr
expression: expr

?expr: term
     | expr PLUS term         -> add
     | expr MINUS term        -> minus
     | MINUS term             -> neg
     | PLUS term              -> pos

?term: factor
     | term MULOP factor      -> mul
     | term DIV factor        -> div
     | term factor            -> mul

?factor: postfix
       | SUM script* term                   -> sum
       | SUM script* MINUS term             -> sum
       | PARTIAL ["_" sarg] [postfix]       -> partial
       | NABLA "_" sarg postfix             -> partial

?postfix: primary
        | postfix "_" sarg    -> subscript
        | postfix "^" sarg    -> superscript

script: "_" sarg -> lower
      | "^" sarg -> upper

?primary: atom
        | NUMBER               -> number
        | "(" items ")"        -> paren
        | "[" items "]"        -> paren
        | LBRACE items RBRACE  -> paren
        | FRAC sarg sarg       -> frac
        | SQRT ["[" expr "]"] sarg -> sqrt
        | DERIV sarg sarg      -> pdv
        | FUNC postfix         -> func

?sarg: atom
     | DIGIT                  -> number

?atom: LETTER                 -> letter
     | CMD                    -> command
     | "{" body "}"           -> group
     | ACCENT sarg            -> accent
     | FONT sarg              -> font
     | WORD                   -> word

body: [expr]
    | expr (REL | IN | CMP) expr -> relbody
    | expr ("," expr)+        -> listbody

items: expr ("," expr)*

PLUS: "+"
MINUS: "-"
DIV: "/"
MULOP.3: /\*|\\(<MULOP>)(?![a-zA-Z])/
REL.3: /=|:\s*=|\\(<REL>)(?![a-zA-Z])/
IN.3: /\\in(?![a-zA-Z])/
CMP.3: /<|>|\\(<CMP>)(?![a-zA-Z])/
FRAC.3: /\\(<FRAC>)(?![a-zA-Z])/
SQRT.3: /\\sqrt(?![a-zA-Z])/
SUM.3: /\\sum(?![a-zA-Z])/
PARTIAL.3: /\\partial(?![a-zA-Z])/
NABLA.3: /\\nabla(?![a-zA-Z])/
DERIV.3: /\\(<DERIV>)(?![a-zA-Z])/
FUNC.3: /\\(<FUNC>)(?![a-zA-Z])/
ACCENT.3: /\\(<ACCENT>)(?![a-zA-Z])/
FONT.3: /\\(<FONT>)(?![a-zA-Z])/
WORD.4: /\\(<WORD>)\s*\{[^{}]*\}/
LBRACE.3: /\\\{|\\lbrace(?![a-zA-Z])/
RBRACE.3: /\\\}|\\rbrace(?![a-zA-Z])/
CMD.1: /\\[a-zA-Z]+/
LETTER: /[a-zA-Z]/
DIGIT: /[0-9]/
NUMBER.2: /[0-9]+(\.[0-9]*)?|\.[0-9]+/

SPACE: /\s+|~|&/
THINSPACE.5: /\\[,;:!> ]/
LEFTRIGHTDOT.5: /\\(left|right)\./
LAYOUT.4: /\\(<LAYOUT>)(?![a-zA-Z])/
LABEL.5: /\\(<LABEL>)\*?\{[^{}]*\}/
%ignore SPACE
%ignore THINSPACE
%ignore LEFTRIGHTDOT
%ignore LAYOUT
%ignore LABEL
"""

# The commands each terminal reads; ``_check_commands`` accepts exactly these and the names.
COMMANDS = {
    "MULOP": "cdot times ast bullet",
    "REL": "gets leftarrow longleftarrow coloneqq coloneq triangleq equiv defeq doteq approx simeq",
    "CMP": "le leq ge geq lt gt ne neq",
    "FRAC": "frac dfrac tfrac cfrac",
    "DERIV": "pdv dv partialderivative derivative",
    "FUNC": "exp log ln max min tanh sin cos",
    "ACCENT": "hat widehat bar overline tilde widetilde check breve vec",
    "FONT": "mathcal mathbb mathscr mathfrak mathbf boldsymbol bm mathit mathnormal",
    "WORD": "text textrm textit textbf textsf texttt mbox mathrm operatorname mathsf mathtt",
    "LAYOUT": "qquad quad displaystyle textstyle scriptstyle limits nolimits left right middle big Big bigg Bigg "
              "bigl bigr Bigl Bigr biggl biggr Biggl Biggr nonumber notag enspace thinspace medspace thickspace",
    "LABEL": "label tag hspace vspace phantom",
}
GRAMMAR = re.sub(r"<([A-Z]+)>", lambda k: "|".join(COMMANDS[k[1]].split()), GRAMMAR_TEMPLATE)
GRAMMAR_COMMANDS = {c for v in COMMANDS.values() for c in v.split()} | {
    "sqrt", "sum", "partial", "nabla", "in", "lbrace", "rbrace"}

_PARSER = Lark(GRAMMAR, start=["equation", "expression"], parser="lalr", propagate_positions=True,
               maybe_placeholders=True)

RELATION_KIND = {"gets": "update", "leftarrow": "update", "longleftarrow": "update",
                 "approx": "approximation", "simeq": "approximation"}


@dataclass(frozen=True)
class Equation:
    """``lhs = rhs`` (``= chain[1] = …``), read from one line of LaTeX.

    ``kind`` is "definition" (=, :=, \\coloneqq, \\equiv …), "update" (\\gets, \\leftarrow)
    or "approximation" (\\approx). ``lhs`` is None for an align continuation row
    (``&= …``). Iterating gives ``(lhs, rhs)``.
    """

    lhs: sp.Expr | None
    rhs: sp.Expr
    kind: str = "definition"
    chain: tuple[sp.Expr, ...] = ()
    notation: Notation = field(default_factory=Notation)
    tex: str = ""

    def __iter__(self) -> Iterator[sp.Expr | None]:
        return iter((self.lhs, self.rhs))


@v_args(inline=True)
class _Builder(Transformer):
    """Parse tree -> SymPy. Names stay :class:`Name` until arithmetic needs their value."""

    def __init__(self, text: str):
        super().__init__()
        self.text = text
        self.notes: dict[str, str] = {}

    # -- leaves
    def letter(self, tok):
        return Name(str(tok), tex=str(tok))

    def number(self, tok):
        value = Fraction(str(tok))  # the token matched [0-9.]+: a decimal literal, nothing else
        return sp.Rational(value.numerator, value.denominator)

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
        return self._num(item)

    # -- decorations and scripts
    def accent(self, tok, arg):
        if isinstance(arg, ParenIndex):
            arg = arg.value
        if not isinstance(arg, Name) or arg.accent:
            fail(f"cannot read {tok} over an expression")
        kind = {"widehat": "hat", "overline": "bar", "widetilde": "tilde"}.get(str(tok)[1:], str(tok)[1:])
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
            return sp.Pow(self._num(base), self._num(arg))
        if isinstance(base, sp.Symbol):  # {\frac{\partial L}{\partial x}}_{i}: index a family
            return resolve_name(Name(base.name, sub=arg, tex=tex), self.notes)
        fail(f"cannot read a subscript on {tex}")

    def lower(self, arg):
        return ("_", arg)

    def upper(self, arg):
        return ("^", arg)

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
        if isinstance(a, DiffOp):
            return self._derivative(b, a.wrt, "frac")
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
        top, bottom = _differential(self._num(num)), _differential(self._num(den))
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

    def sum(self, _tok, *args):
        *scripts, body = args
        if scripts and isinstance(scripts[-1], Token):  # \sum_j - a_j: the body is negated
            scripts, body = scripts[:-1], -self._num(body)
        limits = {"_": None, "^": None}
        for which, arg in scripts:
            if limits[which] is not None:
                fail("\\sum with two " + ("subscripts" if which == "_" else "superscripts"))
            limits[which] = arg
        body = self._num(body)
        var, start, stop = self._limits(limits["_"], limits["^"], body)
        style = "full" if limits["^"] is not None else ("index" if limits["_"] is not None else "bare")
        self.notes.setdefault("sum_style", style)
        self.notes.setdefault("sum_index", var.name)
        return sp.Sum(body, (var, start, stop))

    def _limits(self, lower, upper, body):
        start, stop, var = sp.Integer(1), symbol("m"), lower
        if isinstance(lower, Relation):
            if lower.op == "\\in":  # \sum_{i \in \mathcal{B}}: over the batch
                var = lower.lhs
            elif lower.op == "=":
                var, start = lower.lhs, self._num(lower.rhs)
            else:
                fail(f"cannot read the sum's range {lower.op}")
        if upper is not None:
            stop = self._num(upper)
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


def _adjoint(wrt):
    """``dL_d<name>`` for the quantity ``wrt`` (Symbol or Indexed)."""
    if isinstance(wrt, sp.Indexed):
        return sp.IndexedBase(symbol(f"dL_d{wrt.base.label.name}"))[wrt.indices]
    return symbol(f"dL_d{wrt.name}")


def _differential(expr):
    """``q`` when ``expr`` is ``d q`` (the d of dL/dx), else None."""
    if isinstance(expr, sp.Mul) and len(expr.args) == 2:
        d = [a for a in expr.args if isinstance(a, sp.Symbol) and a.name == "d"]
        if len(d) == 1:
            return next(a for a in expr.args if a is not d[0])
    return None


def _check_commands(tex: str) -> None:
    for match in re.finditer(r"\\([a-zA-Z]+)", tex):
        name = match[1]
        if name not in KNOWN_COMMANDS and name not in GRAMMAR_COMMANDS:
            fail(f"unknown command \\{name}")


def _syntax_error(exc: UnexpectedInput, tex: str) -> TexSyntaxError:
    if isinstance(exc, UnexpectedEOF) or (isinstance(exc, UnexpectedToken) and exc.token.type == "$END"):
        return TexSyntaxError("the formula ends too early (a missing argument or closing bracket?)")
    if isinstance(exc, UnexpectedCharacters):
        return TexSyntaxError(f"cannot read {tex[exc.pos_in_stream]!r} at column {exc.column}")
    token = exc.token
    if token.type in ("RBRACE", "RPAR", "RSQB") or str(token) in ")]}":
        return TexSyntaxError(f"unbalanced brackets: unexpected {str(token)!r} at column {exc.column}")
    if token.type == "REL":
        return TexSyntaxError(f"unexpected {str(token)!r} at column {exc.column}: a relation where a value is needed")
    return TexSyntaxError(f"unexpected {str(token)!r} at column {exc.column}")


def _parse(tex: str, start: str):
    if not isinstance(tex, str):
        raise TexSyntaxError("a formula must be text")
    if len(tex) > MAX_CHARS:
        fail(f"the formula is too long ({len(tex)} characters)")
    if "\\\\" in tex:
        fail("several rows (\\\\) in one equation: pass one row at a time")
    check_balance(tex)
    _check_commands(tex)
    if not tex.strip():
        fail("empty formula")
    tex = brace_short_arguments(tex)
    try:
        tree = _PARSER.parse(tex, start=start)
    except UnexpectedInput as exc:
        raise _syntax_error(exc, tex) from None
    builder = _Builder(tex)
    try:
        return builder.transform(tree), builder.notes
    except VisitError as exc:
        orig = exc.orig_exc
        if isinstance(orig, BngraphError):
            raise TexSyntaxError(str(orig)) from None
        raise TexSyntaxError(f"cannot build the formula: {type(orig).__name__}: {orig}".splitlines()[0]) from None
    except RecursionError:
        raise TexSyntaxError("the formula is nested too deeply to be read") from None


def parse_expression(tex: str) -> sp.Expr:
    r"""One expression (no relation) as SymPy.

    >>> parse_expression(r"\gamma \hat{x}_{i} + \beta")
    beta + gamma*xhat[i]
    >>> parse_expression(r"\left(\sigma_B^2 + \varepsilon\right)^{-\frac{3}{2}}")
    (epsilon + sigma2)**(-3/2)
    """
    expr, _ = _parse(clean(tex), "expression")
    expr = value(expr)
    return canonical_bound(expr, free_index_names([expr]))


def parse_equation(tex: str) -> Equation:
    r"""One equation ``lhs = rhs`` (or ``lhs \gets rhs``, a chain ``a = b = c``, or an
    align continuation ``= rhs`` with no left side).

    >>> eq = parse_equation(r"\sigma^2_\B \gets \frac{1}{m}\sum_{i=1}^m (x_i - \mu_\B)^2")
    >>> eq.lhs, eq.kind, eq.rhs
    (sigma2, 'update', Sum((-mu + x[j])**2, (j, 1, m))/m)
    """
    text = clean(tex)
    (lhs, relations), notes = _parse(text, "equation")
    sides = [expr for _, expr in relations]
    avoid = free_index_names([lhs, *sides])
    lhs = None if lhs is None else canonical_bound(lhs, avoid)
    sides = tuple(canonical_bound(s, avoid) for s in sides)
    op = relations[0][0].lstrip("\\").replace(" ", "")
    kind = RELATION_KIND.get(op, "definition")
    if notes.get("sum_index") in avoid:
        notes.pop("sum_index")
    return Equation(lhs, sides[0], kind, sides, Notation.of(notes), text)
