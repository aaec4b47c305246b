r"""Dual numbers: a value and its derivative along one direction, carried through arithmetic.

The evaluator uses them to give a partial derivative that a write-up *names*
(``\frac{\partial \hat{x}_j}{\partial x_i}``) a number, under each reading an author may
mean: holding every other quantity fixed (local), or letting μ, σ² … follow (total). This
is forward-mode differentiation of the layer's own reference formulas at one batch; no
derivative is typed here.

>>> x = Dual(3.0, 1.0)
>>> y = x * x + 2 * x
>>> y.v, y.d
(15.0, 8.0)
>>> apply("log", Dual(2.0, 1.0)).d
0.5
"""
from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class Dual:
    v: float
    d: float = 0.0

    def __add__(self, o):
        o = lift(o)
        return Dual(self.v + o.v, self.d + o.d)

    __radd__ = __add__

    def __neg__(self):
        return Dual(-self.v, -self.d)

    def __sub__(self, o):
        return self + (-lift(o))

    def __rsub__(self, o):
        return lift(o) - self

    def __mul__(self, o):
        o = lift(o)
        return Dual(self.v * o.v, self.d * o.v + self.v * o.d)

    __rmul__ = __mul__

    def __truediv__(self, o):
        o = lift(o)
        return Dual(self.v / o.v, (self.d * o.v - self.v * o.d) / (o.v * o.v))

    def __rtruediv__(self, o):
        return lift(o) / self

    def __pow__(self, o):
        o = lift(o)
        value = self.v ** o.v
        d = o.v * self.v ** (o.v - 1) * self.d if self.d else 0.0
        if o.d:
            d += value * math.log(self.v) * o.d
        return Dual(value, d)

    def __rpow__(self, o):
        return lift(o) ** self

    def __float__(self):
        return float(self.v)


def lift(v) -> Dual:
    return v if isinstance(v, Dual) else Dual(float(v), 0.0)


def value_of(v) -> float:
    """The plain number: a Dual's value, or the number itself."""
    return v.v if isinstance(v, Dual) else float(v)


_RULES = {  # f and f' for the functions a formula may use
    "exp": (math.exp, math.exp),
    "log": (math.log, lambda v: 1.0 / v),
    "tanh": (math.tanh, lambda v: 1.0 - math.tanh(v) ** 2),
    "sin": (math.sin, math.cos),
    "cos": (math.cos, lambda v: -math.sin(v)),
    "Abs": (abs, lambda v: math.copysign(1.0, v)),
}


def apply(name: str, arg):
    """``name(arg)`` for a float or a Dual."""
    f, df = _RULES[name]
    if isinstance(arg, Dual):
        return Dual(f(arg.v), df(arg.v) * arg.d)
    return f(arg)


FUNCTIONS = frozenset(_RULES)
