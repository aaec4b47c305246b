"""What the closed form is: a layer's adjoints for a symbolic batch size m, with how they were found.

:class:`ClosedForm` is the immutable result that :mod:`bngraph.closedform.simplify` computes
(and :mod:`bngraph.closedform.cache` keeps between runs); ``concrete`` writes one of its
formulas out at a given m.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping

import sympy as sp

from bngraph.closedform.plates import i, j, m


@dataclass(frozen=True)
class Identity:
    """``lhs = rhs``, and why it holds."""

    lhs: sp.Expr
    rhs: sp.Expr
    reason: str


@dataclass(frozen=True)
class Step:
    """One step of a simplification: what was done, and the expression after it."""

    description: str
    expr: sp.Expr


@dataclass(frozen=True)
class ClosedForm:
    """The adjoints of a layer in symbolic m, with the chain of steps that led to each."""

    layer: str
    formulas: Mapping[str, sp.Expr]  # "dL_dx[i]", "dL_dmu", … (i free, j summed)
    definitions: Mapping[str, sp.Expr]  # "mu", "sigma2", "xhat[i]", "y[i]", …
    chain_rule: Mapping[str, sp.Expr]  # each adjoint in other adjoints' symbols
    identities: tuple[Identity, ...]
    steps: Mapping[str, tuple[Step, ...]]
    provenance: str = ""  # what the closed form rests on, in one sentence
    # The local partials at symbolic m, child -> parent -> ∂child/∂parent ("xhat[i]" -> "mu" -> …),
    # and each adjoint's chain-rule terms: (child key, summed over j).
    partials: Mapping[str, Mapping[str, sp.Expr]] = field(default_factory=dict)
    chain_terms: Mapping[str, tuple[tuple[str, bool], ...]] = field(default_factory=dict)
    recognised: str = ""  # which batch statistics bngraph recognised and named, in one sentence

    def compact_backward(self) -> str:
        """The formulas with common subexpressions pulled out, as a kernel writer codes them."""
        keys = list(self.formulas)
        subs, reduced = sp.cse([self.formulas[k] for k in keys], symbols=sp.numbered_symbols("s"), order="none")
        lines = [f"{s} = {sp.sstr(e)}" for s, e in subs]
        lines += [f"{k} = {sp.sstr(e)}" for k, e in zip(keys, reduced)]
        return "\n".join(lines)

    def instantiate(self, key: str, size: int, index: int | None = None) -> sp.Expr:
        """``formulas[key]`` at a concrete m, in the concrete names (x_1, xhat_2, dL_dy_3 …)."""
        return concrete(self.formulas[key], size, index)


def concrete(expr: sp.Expr, size: int, index: int | None = None) -> sp.Expr:
    """A symbolic-m expression at m = ``size`` (and i = ``index``), sums written out.

    >>> concrete(sp.Sum(sp.IndexedBase("x")[j], (j, 1, m)) / m, 2)
    x_1/2 + x_2/2
    """
    expr = expr.xreplace({m: sp.Integer(size)})
    if index is not None:
        expr = expr.xreplace({i: sp.Integer(index)})
    expr = expr.replace(lambda e: isinstance(e, sp.Sum), lambda s: sp.Add(*(
        s.function.xreplace({s.variables[0]: sp.Integer(k)}) for k in range(1, size + 1))))
    return expr.replace(lambda e: isinstance(e, sp.Indexed),
                        lambda e: sp.Symbol(f"{e.base}_{int(e.indices[0])}"))
