r"""A document's own letters for the layer's families, read as the contract's names.

- A capital written with an index is one element: ``X_i``, ``\hat{X}_{ij}``, ``Y_i``, ``\nabla_{X_i}`` are
  x_i, x̂_i, y_i, ∂L/∂x_i, where the document writes no lower-case x (x̂, y) of its own. Written bare
  (``\hat{X} = (X - \mu)/\sigma``), a capital stays the whole batch: matrix form, not checked.
- A letter the document defines by x̂'s formula (``n_i = (x_i - \mu)/\sqrt{\sigma^2 + \epsilon}``) is x̂, and one
  it defines by y's (``z_i = \gamma n_i + \beta``) is y, with its derivatives (``\frac{dJ}{dn_i}``), where the
  document does not write x̂ (y) itself.
"""
from __future__ import annotations

from dataclasses import replace

import sympy as sp

from bngraph.tex.grammar import Equation
from bngraph.tex.names import canonical, symbol

CAPITALS = {"X": "x", "Xhat": "xhat", "Y": "y"}
OWN_TARGETS = ("xhat", "y")  # in this order: z_i = γ n_i + β is y's formula once n is x̂
KNOWN = {"x", "xhat", "y", "delta", "gamma", "beta", "mu", "sigma", "sigma2"}


def _sides(eq: Equation) -> list[sp.Expr]:
    return [e for e in (eq.lhs, eq.rhs, *eq.chain) if e is not None]


def _families(equations: list[Equation | None]) -> set[str]:
    return {ix.base.label.name for eq in equations if eq is not None for e in _sides(eq)
            for ix in canonical(e).atoms(sp.Indexed)}


def _renamed(equations: list[Equation | None], names: dict[str, str]) -> list[Equation | None]:
    """Every indexed ``a[…]`` and ``dL_da[…]`` of ``names`` renamed (bare symbols keep their meaning)."""
    full = {**names, **{f"dL_d{a}": f"dL_d{b}" for a, b in names.items()}}

    def rename(e):
        if e is None:
            return None
        return canonical(e).replace(lambda a: isinstance(a, sp.Indexed) and a.base.label.name in full,
                                    lambda a: sp.IndexedBase(symbol(full[a.base.label.name]))[a.indices])

    return [None if eq is None else replace(eq, lhs=rename(eq.lhs), rhs=rename(eq.rhs),
                                            chain=tuple(rename(c) for c in eq.chain))
            for eq in equations]


def element_capitals(equations: list[Equation | None]) -> list[Equation | None]:
    """``X_i``, ``\\hat{X}_i``, ``Y_i`` read as x_i, x̂_i, y_i where the lower-case family is not written."""
    families = _families(equations)
    names = {cap: low for cap, low in CAPITALS.items() if cap in families and low not in families}
    return _renamed(equations, names) if names else equations


def own_letters(equations: list[Equation | None], refs) -> list[Equation | None]:
    """A letter defined by x̂'s (y's) formula read as x̂ (y) throughout, where x̂ (y) is not written."""
    for target in OWN_TARGETS:
        families = _families(equations)
        if target in families or target not in refs:
            continue
        formula, index = refs[target]
        letter = next((name for eq in equations if eq is not None and (name := _defines(eq, formula, index))
                       and name not in KNOWN and not name.startswith("dL_d")), None)
        if letter is not None:
            equations = _renamed(equations, {letter: target})
    return equations


def _defines(eq: Equation, formula: sp.Expr, index: str | None) -> str | None:
    """The letter ``eq`` defines, if its right side is ``formula`` at the left side's index."""
    if eq.kind != "definition" or not isinstance(eq.lhs, sp.Indexed) or len(eq.lhs.indices) != 1 or index is None:
        return None
    at = eq.lhs.indices[0]
    if not at.is_Symbol:
        return None
    want = canonical(formula).xreplace({symbol(index): at})
    try:
        same = sp.simplify(canonical(eq.rhs) - want) == 0
    except (TypeError, ValueError):
        return None
    return eq.lhs.base.label.name if same else None
