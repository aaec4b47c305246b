"""Reverse-mode chain rule over a graph, symbolically: every node's adjoint dL/d<node>.

Local partials come from the primitives table (never ``sympy.diff`` on whole m-term
expressions). In the named view, the partial of a named node with respect to a named
parent is itself a small reverse-mode pass over the staged nodes contracted into it.

>>> from bngraph.layers import LAYERS
>>> from bngraph.graph import build_graph
>>> d = derive(build_graph(LAYERS["batchnorm"].trace(2), "named"))
>>> d.adjoints["xhat_1"].expr
dL_dy_1*gamma
>>> d.adjoints["beta"].expr
dL_dy_1 + dL_dy_2
>>> d.partials["x_1", "mu"]  # (parent, child)
1/2
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Mapping

import sympy as sp

from .graph import Graph, symbol
from .primitives import local_partials


def adjoint_name(node: str) -> str:
    """``mu`` -> ``dL_dmu``; ``x_1`` -> ``dL_dx_1``."""
    return f"dL_d{node}"


def adjoint_symbol(node: str) -> sp.Symbol:
    return symbol(adjoint_name(node))


@dataclass(frozen=True)
class Adjoint:
    """dL/d<node> = Σ over children c of dL/dc · ∂c/∂node (the chain-rule sum, kept term by term)."""

    node: str
    terms: tuple[tuple[str, sp.Expr], ...]  # (child, ∂child/∂node)
    expr: sp.Expr  # the sum, in children's adjoint symbols and forward names

    @property
    def name(self) -> str:
        return adjoint_name(self.node)

    @property
    def symbol(self) -> sp.Symbol:
        return adjoint_symbol(self.node)


@dataclass(frozen=True)
class Derivation:
    """Every adjoint of a graph, with the local partials they were built from."""

    graph: Graph
    partials: Mapping[tuple[str, str], sp.Expr]  # (parent, child) -> ∂child/∂parent
    adjoints: Mapping[str, Adjoint]  # in reverse topological order
    _memo: dict = field(default_factory=dict, repr=False, compare=False)

    @property
    def upstream(self) -> tuple[sp.Symbol, ...]:
        """The given upstream gradients dL_dy_1 … dL_dy_m."""
        return tuple(adjoint_symbol(n.name) for n in self.graph.outputs)

    def substituted(self, node: str) -> sp.Expr:
        """dL/d<node> in forward names and the upstream gradients only (grows with m: for small m)."""
        if node not in self._memo:
            adjoint = self.adjoints.get(node)
            if adjoint is None:  # an output: its adjoint is given
                return adjoint_symbol(node)
            self._memo[node] = sp.Add(*(self.substituted(c) * p for c, p in adjoint.terms))
        return self._memo[node]

    def local_partials_of(self, child: str) -> dict[str, sp.Expr]:
        """∂child/∂parent for every parent of ``child``."""
        return {p: self.partials[p, child] for p in self.graph[child].parents}

    def __str__(self) -> str:
        return "\n".join(f"{a.name} = {sp.sstr(a.expr)}" for a in self.adjoints.values())


def derive(graph: Graph) -> Derivation:
    """All adjoints of ``graph`` by reverse-mode accumulation, with upstream dL_dy_k given."""
    partials = _named_partials(graph) if graph.view == "named" else _staged_partials(graph)
    adjoints = {}
    for node in reversed(graph.nodes):
        if node.role in ("output", "constant"):
            continue
        terms = tuple((c, partials[node.name, c]) for c in graph.children(node.name))
        expr = sp.Add(*(adjoint_symbol(c) * p for c, p in terms))
        adjoints[node.name] = Adjoint(node.name, terms, expr)
    return Derivation(graph, MappingProxyType(partials), MappingProxyType(adjoints))


def _op_partials(node, args: tuple) -> dict[str, list]:
    """The table's partials of one op, gathered per parent (an arg may appear twice: x*x)."""
    gathered = defaultdict(list)
    for a, p in zip(node.args, local_partials(node.op, args)):
        if isinstance(a, str):
            gathered[a].append(p)
    return gathered


def _staged_partials(graph: Graph) -> dict:
    partials = {}
    for node in graph:
        if node.expr is None:
            continue
        args = tuple(symbol(a) if isinstance(a, str) else a for a in node.args)
        for parent, ps in _op_partials(node, args).items():
            partials[parent, node.name] = sp.Add(*ps)
    return partials


def _named_partials(graph: Graph) -> dict:
    """∂child/∂parent of named nodes: reverse mode over each child's contracted region."""
    staged, value = graph.staged, graph.inlined
    partials = {}
    for node in graph:
        if node.expr is None:
            continue
        members = set(node.region)
        bar = defaultdict(list, {node.name: [sp.Integer(1)]})
        local = defaultdict(list)
        for r in reversed(node.region):
            inner = staged[r]
            seed = sp.Add(*bar.pop(r, ()))
            args = tuple(value[a] if isinstance(a, str) else a for a in inner.args)
            for parent, ps in _op_partials(inner, args).items():
                into = bar if (parent in members and parent != node.name) else local
                into[parent].extend(seed * p for p in ps)
        for parent in node.parents:
            partials[parent, node.name] = sp.Add(*local[parent])
    return partials
