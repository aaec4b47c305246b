"""Readable names for the intermediates of generated code, read off what each one is.

A name is built from the expression's structure, the way a person names it: a batch sum
``Sum(dL_dy[j]*xhat[j])`` is ``sum_dy_xhat``, ``1/x`` is ``inv_x``, ``a*b/m`` is
``a_b_over_m``, the square root of a variance plus ε is a standard deviation ``std``.
Nothing is looked up by a layer's exact expressions: which values are variances is
measured (:func:`variances`), and every other piece is named by the same few rules.

>>> import sympy as sp
>>> dy, xhat, sigma2, eps, m = sp.symbols("dy xhat sigma2 eps m")
>>> namer = Namer(variances={sigma2}, epsilons={eps})
>>> namer.describe(sp.Sum(dy * xhat, (sp.Symbol("j"), 1, m)))
'sum_dy_xhat'
>>> namer.describe(1 / sp.sqrt(sigma2 + eps))
'inv_std'
"""
from __future__ import annotations

import random
from typing import Iterable, Mapping

import sympy as sp

from bngraph.closedform.simplify import concrete

MAX_LENGTH = 28  # a longer name no longer reads as one word; a generic one is clearer
SPELLED = {sp.Rational(1, 2): "half", sp.Integer(2): "twice"}


class Namer:
    """Names expressions from their structure; ``None`` where no short name says what it is."""

    def __init__(self, names: Mapping[sp.Symbol, str] | None = None, variances: Iterable = (),
                 epsilons: Iterable = ()):
        self.names = dict(names or {})  # symbols already named (code names, earlier intermediates)
        self.variances = set(variances)
        self.epsilons = set(epsilons)
        self.values: dict[sp.Symbol, sp.Expr] = {}  # earlier intermediates' values, to see through them

    def describe(self, expr: sp.Expr) -> str | None:
        name = self._describe(expr)
        return name if name and len(name) <= MAX_LENGTH and name.isidentifier() else None

    def _describe(self, e: sp.Expr) -> str | None:
        if isinstance(e, sp.Symbol):
            return self.names.get(e, str(e))
        if isinstance(e, sp.Indexed):
            return self._describe(e.base.label)
        if isinstance(e, sp.Sum) or getattr(e.func, "is_batch_sum", False):
            body = self._describe(e.args[0])
            return body and f"sum_{body}"
        if isinstance(e, sp.Mul):
            return self._product(e)
        if isinstance(e, sp.Pow):
            return self._power(e.base, e.exp)
        if isinstance(e, sp.Add):
            return self._sum_of_terms(e)
        if isinstance(e, (sp.exp, sp.log)):
            inner = self._describe(e.args[0])
            return inner and f"{e.func.__name__}_{inner}"
        return None

    def _product(self, e: sp.Mul) -> str | None:
        coefficient, factors = e.as_coeff_mul()
        prefix = ""
        if coefficient < 0:
            prefix, coefficient = "neg_", -coefficient
        if coefficient != 1:
            if coefficient not in SPELLED:
                return None
            prefix += SPELLED[coefficient] + "_"
        numerator, denominator = [], []
        for factor in factors:
            if isinstance(factor, sp.Pow) and factor.exp == -1 and isinstance(factor.base, sp.Symbol):
                denominator.append(self._describe(factor.base))
            else:
                numerator.append(self._describe(factor))
        if None in numerator or None in denominator or not numerator:
            return None
        return prefix + "_".join(numerator) + "".join(f"_over_{d}" for d in denominator)

    def _power(self, base: sp.Expr, exp: sp.Expr) -> str | None:
        if exp.is_negative:
            inner = self._power(base, -exp) if exp != -1 else self._describe(base)
            return inner and f"inv_{inner}"
        if exp == sp.Rational(1, 2):
            std = self._standard_deviation(base)
            if std:
                return std
            inner = self._describe(base)
            return inner and f"sqrt_{inner}"
        inner = self._describe(base)
        if inner is None:
            return None
        return {2: f"{inner}_sq", 3: f"{inner}_cubed"}.get(exp, None)

    def _standard_deviation(self, base: sp.Expr) -> str | None:
        """√(v + ε) of a variance v: ``std`` (or ``running_std`` for ``running_var``)."""
        terms = sp.Add.make_args(self.values.get(base, base))
        others = [t for t in terms if t not in self.epsilons]
        if len(others) == 1 and len(terms) <= 2 and others[0] in self.variances:
            name = self.names.get(others[0], str(others[0]))
            return name.replace("var", "std") if "var" in name else "std"
        return None

    def _sum_of_terms(self, e: sp.Add) -> str | None:
        terms = sorted(e.args, key=lambda t: t.could_extract_minus_sign())
        if len(terms) != 2:
            return None
        first = self._describe(terms[0])
        if terms[1].could_extract_minus_sign():
            second = self._describe(-terms[1])
            return first and second and f"{first}_minus_{second}"
        second = self._describe(terms[1])
        return first and second and f"{first}_plus_{second}"


def unique(name: str, taken: set[str]) -> str:
    """``name``, or ``name_2``, ``name_3`` … if taken; the result is added to ``taken``.

    >>> taken = {"inv_std"}
    >>> unique("inv_std", taken), unique("inv_std", taken)
    ('inv_std_2', 'inv_std_3')
    """
    candidate, k = name, 1
    while candidate in taken:
        k += 1
        candidate = f"{name}_{k}"
    taken.add(candidate)
    return candidate


def variances(definitions: Mapping[str, sp.Expr], size: int = 5, seed: int = 0) -> set[sp.Symbol]:
    """The batch values among ``definitions`` that equal the biased variance of x, measured.

    Every definition is evaluated at m = ``size`` on random numbers (inputs, parameters and
    constants alike); a batch value that comes out as (1/m) Σ (x_k − mean)² is a variance,
    whether it is written two-pass, one-pass or any other way.

    >>> import sympy as sp
    >>> from bngraph.closedform.plates import j, m
    >>> x = sp.IndexedBase("x")
    >>> mu = sp.Sum(x[j], (j, 1, m)) / m
    >>> sorted(map(str, variances({"mu": mu, "v": sp.Sum(x[j]**2, (j, 1, m))/m - sp.Symbol("mu")**2})))
    ['v']
    """
    rng = random.Random(seed)
    xs = [rng.uniform(-2, 3) for _ in range(size)]
    known: dict[sp.Symbol, sp.Expr] = {sp.Symbol(f"x_{k}"): sp.Float(v) for k, v in enumerate(xs, 1)}
    mean = sum(xs) / size
    variance = sum((v - mean) ** 2 for v in xs) / size
    found = set()
    for key, expr in definitions.items():
        free = {str(s) for s in expr.free_symbols} | {str(b.label) for b in expr.atoms(sp.IndexedBase)}
        for name in sorted(free - {"m", "i", "j", "x"} - {str(s) for s in known}):
            if not any(str(k).startswith(f"{name}_") for k in known):
                known[sp.Symbol(name)] = sp.Float(rng.uniform(0.5, 2))  # a parameter or constant
        if key.endswith("[i]"):
            for k in range(1, size + 1):
                known[sp.Symbol(f"{key[:-3]}_{k}")] = concrete(expr, size, k).xreplace(known).evalf()
            continue
        value = concrete(expr, size).xreplace(known).evalf()
        known[sp.Symbol(key)] = value
        if value.is_number and abs(float(value) - variance) <= 1e-9 * variance:
            found.add(sp.Symbol(key))
    return found
