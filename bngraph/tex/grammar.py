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
from dataclasses import dataclass, field
from typing import Iterator

import sympy as sp
from lark import Lark
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken, VisitError

from bngraph.errors import BngraphError
from bngraph.tex.builder import Builder
from bngraph.tex.clean import brace_short_arguments, check_balance, clean, rewrite_constructs
from bngraph.tex.names import (KNOWN_COMMANDS, Notation, TexSyntaxError, canonical_bound, concrete_names, fail,
                               free_index_names, symbol, value)

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
       | NABLA "_" sarg [postfix]           -> nabla_sub
       | NABLA postfix                      -> nabla

?postfix: primary
        | postfix "_" sarg    -> subscript
        | postfix "^" sarg    -> superscript
        | postfix PRIME       -> prime

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
PRIME: /'/
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
    "REL": "gets leftarrow longleftarrow coloneqq coloneq triangleq equiv defeq doteq approx simeq mapsto",
    "CMP": "le leq ge geq lt gt ne neq",
    "FRAC": "frac dfrac tfrac cfrac",
    "DERIV": "pdv dv partialderivative derivative",
    "FUNC": "exp log ln max min tanh sin cos",
    "ACCENT": "hat widehat bar overline tilde widetilde check breve vec",
    "FONT": "mathcal mathbb mathscr mathfrak mathbf boldsymbol bm mathit mathnormal",
    "WORD": "text textrm textit textbf textsf texttt mbox mathrm operatorname mathsf mathtt",
    "LAYOUT": "qquad quad displaystyle textstyle scriptstyle limits nolimits left right middle big Big bigg Bigg "
              "bigl bigr Bigl Bigr biggl biggr Biggl Biggr nonumber notag enspace thinspace medspace thickspace",
    "LABEL": "label tag hspace vspace phantom",  # (\boxed, \color, \underbrace: see clean.rewrite_constructs)
}
GRAMMAR = re.sub(r"<([A-Z]+)>", lambda k: "|".join(COMMANDS[k[1]].split()), GRAMMAR_TEMPLATE)
GRAMMAR_COMMANDS = {c for v in COMMANDS.values() for c in v.split()} | {
    "sqrt", "sum", "partial", "nabla", "in", "lbrace", "rbrace"}

_PARSER = Lark(GRAMMAR, start=["equation", "expression"], parser="lalr", propagate_positions=True,
               maybe_placeholders=True)

RELATION_KIND = {"gets": "update", "leftarrow": "update", "longleftarrow": "update",
                 "approx": "approximation", "simeq": "approximation", "mapsto": "mapping"}


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
    fixed: frozenset[str] = frozenset()  # the feature (or row) index x_{i,j} carried, once folded away by the auditor

    def __iter__(self) -> Iterator[sp.Expr | None]:
        return iter((self.lhs, self.rhs))


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


def _stray_close(exc: UnexpectedInput, tex: str) -> int | None:
    """Where an unexpected ``)`` stands that no ``(`` opened (more closing than opening ones): else None."""
    token = getattr(exc, "token", None)
    if token is None or str(token) != ")" or tex.count(")") <= tex.count("("):
        return None
    return token.start_pos


def _parse(tex: str, start: str):
    if not isinstance(tex, str):
        raise TexSyntaxError("a formula must be text")
    if len(tex) > MAX_CHARS:
        fail(f"the formula is too long ({len(tex)} characters)")
    tex = rewrite_constructs(tex)
    if "\\\\" in tex:
        fail("several rows (\\\\) in one equation: pass one row at a time")
    check_balance(tex)
    _check_commands(tex)
    if not tex.strip():
        fail("empty formula")
    tex = brace_short_arguments(tex)
    for _ in range(3):
        try:
            tree = _PARSER.parse(tex, start=start)
            break
        except UnexpectedInput as exc:
            stray = _stray_close(exc, tex)
            if stray is None:
                raise _syntax_error(exc, tex) from None
            tex = tex[:stray] + " " + tex[stray + 1:]  # \frac{2}{N}(x_i - \mu) ): a ")" nothing opened, a typo
    else:
        raise TexSyntaxError("unbalanced brackets: more ')' than '('")
    builder = Builder(tex)
    try:
        return builder.transform(tree), builder.notes
    except VisitError as exc:
        orig = exc.orig_exc
        if isinstance(orig, TexSyntaxError):
            raise orig from None
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
