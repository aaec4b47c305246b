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
    """One op: ``forward(*args)`` is its value, ``partials(*args)[k]`` is d value / d args[k]."""

    name: str
    forward: Callable[..., Expr]
    partials: Callable[..., tuple]


PRIMITIVES: dict[str, Primitive] = {}


def defprimitive(name: str, forward: Callable[..., Expr], partials: Callable[..., tuple]) -> None:
    """Add one op to the table (one line per op, as in HIPS autograd's ``defvjp``)."""
    PRIMITIVES[name] = Primitive(name, forward, partials)


ONE, HALF = sp.Integer(1), sp.Rational(1, 2)

defprimitive("id", lambda a: a, lambda a: (ONE,))
defprimitive("add", lambda *a: sp.Add(*a), lambda *a: (ONE,) * len(a))
defprimitive("sub", lambda a, b: a - b, lambda a, b: (ONE, -ONE))
defprimitive("neg", lambda a: -a, lambda a: (-ONE,))
defprimitive("mul", lambda a, b: a * b, lambda a, b: (b, a))
defprimitive("div", lambda a, b: a / b, lambda a, b: (1 / b, -a / b**2))
defprimitive("pow", lambda a, n: a**n, lambda a, n: (n * a ** (n - 1), None))
defprimitive("sqrt", lambda a: sp.sqrt(a), lambda a: (HALF / sp.sqrt(a),))
defprimitive("exp", lambda a: sp.exp(a), lambda a: (sp.exp(a),))
defprimitive("log", lambda a: sp.log(a), lambda a: (1 / a,))


def forward(op: str, args: tuple) -> Expr:
    """The value of ``op`` applied to ``args``."""
    return PRIMITIVES[op].forward(*args)


def local_partials(op: str, args: tuple) -> tuple:
    """d value / d arg for every argument of ``op`` (None where the op takes no derivative)."""
    return PRIMITIVES[op].partials(*args)
