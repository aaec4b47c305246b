"""A SymPy expression compiled once into nested Python closures, for the evaluator.

The auditor evaluates the same few hundred expressions (a document's sides, the engine's
references, their readings) at many batches and indices. Walking the SymPy tree each time
spends most of the time asking each node what it is; ``compiled(expr)`` asks once and gives a
function ``f(evaluator, env)`` that only computes. What a name means (μ, x̂_k, a helper, a
partial under a reading) is still the evaluator's: the closures call it back
(``_symbol``, ``_member``, ``partial``), so a compiled expression serves every evaluator.

>>> import sympy as sp
>>> f = compiled(sp.Integer(2) * sp.Symbol("a") + 1)
>>> class Names:
...     def _symbol(self, name, env): return env[name]
>>> f(Names(), {"a": 3.0})
7.0
"""
from __future__ import annotations

import math
from functools import lru_cache
from typing import Callable

import sympy as sp

from bngraph.audit.dual import FUNCTIONS, Dual, apply, value_of
from bngraph.tex.names import MAX_INDEX

MAX_SUM_TERMS = 4 * MAX_INDEX  # a sum over more terms is not a sum over a batch


class Unevaluable(Exception):
    """The expression has no value at this batch; ``str()`` says why, for a person."""


def _fail(exc: Exception) -> Callable:
    def f(ev, env):
        raise exc
    return f


def _total(terms: list):
    return sum(terms) if any(isinstance(t, Dual) for t in terms) else math.fsum(terms)


def _power(base, exponent):
    b, e = value_of(base), value_of(exponent)
    if b < 0 and e != int(e):
        raise Unevaluable("a fractional power of a negative number")
    if b == 0 and e < 0:
        raise ZeroDivisionError
    if b != 0 and abs(e * math.log10(abs(b))) > 300:
        raise OverflowError
    return base ** exponent


@lru_cache(maxsize=32768)
def compiled(expr: sp.Basic) -> Callable:
    """``f(evaluator, env)``: the value of ``expr`` (see the module docstring)."""
    if expr.is_Number or isinstance(expr, sp.NumberSymbol):
        if expr.is_finite is False or expr is sp.nan:
            return _fail(Unevaluable("an infinite or undefined constant (1/0?)"))
        try:
            constant = float(expr)
        except OverflowError as exc:
            return _fail(exc)
        return lambda ev, env: constant
    if isinstance(expr, sp.Symbol):
        name = expr.name
        return lambda ev, env: ev._symbol(name, env)
    if isinstance(expr, sp.Indexed):
        return _indexed(expr)
    if isinstance(expr, sp.Add):
        parts = tuple(compiled(a) for a in expr.args)
        return lambda ev, env: _total([p(ev, env) for p in parts])
    if isinstance(expr, sp.Mul):
        return _product(tuple(compiled(a) for a in expr.args))
    if isinstance(expr, sp.Pow):
        base, exponent = compiled(expr.base), compiled(expr.exp)
        return lambda ev, env: _power(base(ev, env), exponent(ev, env))
    if isinstance(expr, sp.Sum):
        return _sum(expr)
    if isinstance(expr, sp.KroneckerDelta):
        a, b = compiled(expr.args[0]), compiled(expr.args[1])
        return lambda ev, env: float(value_of(a(ev, env)) == value_of(b(ev, env)))
    if isinstance(expr, sp.Derivative):
        return lambda ev, env: ev.partial(expr, env)
    if isinstance(expr, (sp.Max, sp.Min)):
        pick = max if isinstance(expr, sp.Max) else min
        parts = tuple(compiled(a) for a in expr.args)
        return lambda ev, env: pick([p(ev, env) for p in parts], key=value_of)
    if isinstance(expr, sp.Function) and type(expr).__name__ in FUNCTIONS and len(expr.args) == 1:
        return _function(type(expr).__name__, compiled(expr.args[0]))
    return _fail(Unevaluable(f"cannot evaluate {type(expr).__name__}"))


def _indexed(expr: sp.Indexed) -> Callable:
    base = expr.base.label.name
    if len(expr.indices) != 1:
        return _fail(Unevaluable(f"{base} with {len(expr.indices)} indices"))
    index = compiled(expr.indices[0])

    def f(ev, env):
        k = value_of(index(ev, env))
        if k != int(k) or not 1 <= k <= ev.batch.m:
            raise Unevaluable(f"index {k:g} of {base} is outside 1..m (m = {ev.batch.m})")
        return ev._member(base, int(k), env)
    return f


def _product(parts: tuple) -> Callable:
    def f(ev, env):
        product = 1.0
        for p in parts:
            product = product * p(ev, env)
        return product
    return f


def _sum(expr: sp.Sum) -> Callable:
    if len(expr.limits) != 1:
        return _fail(Unevaluable("a sum over several indices at once"))
    (var, start, stop), = expr.limits
    name, lo_of, hi_of, term = var.name, compiled(start), compiled(stop), compiled(expr.function)

    def f(ev, env):
        lo, hi = value_of(lo_of(ev, env)), value_of(hi_of(ev, env))
        if lo != int(lo) or hi != int(hi) or hi - lo > MAX_SUM_TERMS:
            raise Unevaluable("a sum whose range is not 1..m")
        return _total([term(ev, {**env, name: float(k)}) for k in range(int(lo), int(hi) + 1)])
    return f


def _function(name: str, argument_of: Callable) -> Callable:
    def f(ev, env):
        argument = argument_of(ev, env)
        if name == "log" and value_of(argument) <= 0:
            raise Unevaluable("a log of a number ≤ 0")
        return apply(name, argument)
    return f
