r"""Sums over the batch as the paper writes them: c Σ_j (x_j − μ), and when they vanish.

A partial such as ∂σ²/∂μ comes out of the engine as ``2μ − 2x₁/3 − 2x₂/3 − 2x₃/3`` (or, at
symbolic m, ``Σ_j (2μ − 2x_j)/m``). Read as c Σ_j (x_j − μ) it is −(2/m) Σ_j (x_j − μ), and
it is zero because μ is defined as the batch mean of the x_j: that is checked here against
μ's own definition, with SymPy, not assumed.

>>> from bngraph.engine.layers import LAYERS
>>> from bngraph.engine.graph import build_graph
>>> from bngraph.engine.derive import derive
>>> d = derive(build_graph(LAYERS["batchnorm"].trace(3)))
>>> batch_sum(d.partials["mu", "sigma2"], d.graph)
BatchSum(per_m=-2, family='x', shared='mu', vanishes=True)
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Mapping

import sympy as sp

from bngraph.engine.graph import Graph

_MEMBER = re.compile(r"^(.+)_(\d+)$")


@dataclass(frozen=True)
class BatchSum:
    """``(per_m / m) Σ_j (family_j − shared)``; ``vanishes`` when ``shared`` is the family's batch mean."""

    per_m: sp.Expr
    family: str
    shared: str
    vanishes: bool

    def expr(self, m: sp.Symbol, j: sp.Symbol) -> sp.Expr:
        """The sum as a SymPy expression at symbolic m: −(2/m) Σ_j (x_j − μ)."""
        term = sp.IndexedBase(self.family)[j] - sp.Symbol(self.shared)
        return self.per_m / m * sp.Sum(term, (j, 1, m))


def batch_sum(expr: sp.Expr, graph: Graph) -> BatchSum | None:
    """``expr`` (at the graph's concrete m) as c Σ_k (u_k − v) over one whole family u, or None."""
    if not expr.is_Add or len(expr.args) != graph.m + 1:
        return None
    coefficients = expr.as_coefficients_dict()
    family, shared = {}, []
    for term, c in coefficients.items():
        match = _MEMBER.match(getattr(term, "name", ""))
        if not isinstance(term, sp.Symbol):
            return None
        if match and match[1] in graph or not match:
            shared.append((term, c))
        else:
            family.setdefault(match[1], {})[int(match[2])] = c
    if len(family) != 1 or len(shared) != 1:
        return None
    (name, members), = family.items()
    values = set(members.values())
    (v, d), = shared
    if sorted(members) != list(range(1, graph.m + 1)) or len(values) != 1:
        return None
    c = values.pop()
    if d != -graph.m * c:
        return None
    vanishes = v.name in graph and _is_mean(graph[v.name].expr, [sp.Symbol(f"{name}_{k}") for k in members], graph.m)
    return BatchSum(c * graph.m, name, v.name, vanishes)


def _is_mean(definition, members, m) -> bool:
    return definition is not None and sp.expand(definition * m - sp.Add(*members)) == 0


def batch_sum_symbolic(expr: sp.Expr, definitions: Mapping[str, sp.Expr], m: sp.Symbol,
                       j: sp.Symbol) -> BatchSum | None:
    """The same at symbolic m: ``expr`` holds ``Sum(…, (j, 1, m))`` and ``definitions`` the batch values."""
    sums = list(expr.atoms(sp.Sum))
    if len(sums) != 1:
        return None
    body = sp.expand(sums[0].function)
    parts = sp.Add.make_args(body)
    indexed = [p for p in parts if p.has(sp.Indexed)]
    if len(indexed) != 1:
        return None
    c, member = indexed[0].as_coeff_Mul()
    if not (isinstance(member, sp.Indexed) and member.indices == (j,)):
        return None
    rest = sp.Add(*(p for p in parts if p is not indexed[0])) / -c
    if not isinstance(rest, sp.Symbol):
        return None
    stand_in = sp.Dummy()
    flat = expr.xreplace({sums[0]: stand_in})
    outside = sp.simplify(flat.diff(stand_in))  # expr = outside · Σ_j body: linear in the sum
    if sp.simplify(flat - outside * stand_in) != 0 or outside.has(stand_in) or outside.free_symbols - {m}:
        return None
    family, shared = member.base.label.name, rest.name
    per_m = sp.simplify(outside * c * m)
    if per_m.free_symbols:
        return None
    definition = definitions.get(shared)
    mean = sp.Sum(member, (j, 1, m)) / m
    vanishes = definition is not None and sp.simplify(definition - mean) == 0
    return BatchSum(per_m, family, shared, vanishes)
