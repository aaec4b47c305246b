"""The table of primitive operations: each op's forward rule beside its local partials.

The tracer records only op names; this table is the one place that knows calculus.
An op's arguments are SymPy expressions (a parent's symbol, or a folded constant).

>>> import sympy as sp
>>> a, b = sp.symbols("a b")
>>> PRIMITIVES["div"].forward(a, b)
a/b
>>> PRIMITIVES["div"].partials(a, b)
(1/b, -a/b**2)
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import sympy as sp

Expr = sp.Expr


@dataclass(frozen=True)
class Primitive:
    """One op: ``forward(*args)`` is its value, ``rules[k](*args)`` is d value / d args[k]
    (``rules`` one function ``rules(k, args)`` for every argument of an op of any arity, like
    ``add``: it takes the tuple whole, since unpacking an m-term sum's arguments for each of
    its m partials would cost m² at batch size m)."""

    name: str
    forward: Callable[..., Expr]
    rules: tuple[Callable[..., Expr | None], ...] | Callable[..., Expr | None]

    def partial(self, k: int, args: tuple) -> Expr | None:
        """d value / d args[k], and nothing else: the others may be costly and unwanted
        (div's -a/b**2 with a an m-term sum and b the constant m)."""
        if callable(self.rules):
            return self.rules(k, args)
        return self.rules[k](*args)

    def partials(self, *args) -> tuple:
        return tuple(self.partial(k, args) for k in range(len(args)))


PRIMITIVES: dict[str, Primitive] = {}


def defprimitive(name: str, forward: Callable[..., Expr], *rules: Callable[..., Expr | None],
                 any_arity: bool = False) -> None:
    """Add one op to the table (one line per op, one rule per argument, as in HIPS autograd's
    ``defvjp``); ``any_arity``: a single rule serves every argument."""
    PRIMITIVES[name] = Primitive(name, forward, rules[0] if any_arity else rules)


ONE, HALF = sp.Integer(1), sp.Rational(1, 2)

defprimitive("id", lambda a: a, lambda a: ONE)
defprimitive("add", lambda *a: sp.Add(*a), lambda k, a: ONE, any_arity=True)
defprimitive("sub", lambda a, b: a - b, lambda a, b: ONE, lambda a, b: -ONE)
defprimitive("neg", lambda a: -a, lambda a: -ONE)
defprimitive("mul", lambda a, b: a * b, lambda a, b: b, lambda a, b: a)
defprimitive("div", lambda a, b: a / b, lambda a, b: 1 / b, lambda a, b: -a / b**2)
defprimitive("pow", lambda a, n: a**n, lambda a, n: n * a ** (n - 1), lambda a, n: None)
defprimitive("sqrt", lambda a: sp.sqrt(a), lambda a: HALF / sp.sqrt(a))
defprimitive("exp", lambda a: sp.exp(a), lambda a: sp.exp(a))
defprimitive("log", lambda a: sp.log(a), lambda a: 1 / a)


def forward(op: str, args: tuple) -> Expr:
    """The value of ``op`` applied to ``args``."""
    return PRIMITIVES[op].forward(*args)


def local_partials(op: str, args: tuple, wanted: tuple[bool, ...] | None = None) -> tuple:
    """d value / d arg for every argument of ``op`` (None where the op takes no derivative,
    or where ``wanted[k]`` is false: a folded constant's partial is never computed)."""
    primitive = PRIMITIVES[op]
    return tuple(primitive.partial(k, args) if wanted is None or wanted[k] else None for k in range(len(args)))
