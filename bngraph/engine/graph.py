"""The computation graph of a trace, in two views, as a thin typed wrapper over networkx
(built on first use: deriving needs only each node's children, and networkx takes a
noticeable part of a cold start to import).

*staged*: one node per primitive op (the 9-step graph). *named*: only the values the
function named (and inputs, parameters, outputs), each expressed in terms of its nearest
named ancestors; it is made from the staged view by contracting every unnamed node
into the named nodes that use it.

>>> from bngraph.engine.layers import LAYERS
>>> g = build_graph(LAYERS["batchnorm"].trace(3), "named")
>>> g["mu"].parents
('x_1', 'x_2', 'x_3')
>>> g["mu"].expr
(x_1 + x_2 + x_3)/3
>>> g["xhat_2"].expr
(-mu + x_2)/sqrt(epsilon + sigma2)
"""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from types import MappingProxyType
from typing import TYPE_CHECKING, Iterator, Mapping

import sympy as sp

from bngraph.errors import BngraphError
from bngraph.engine.replicas import Replicas, example_index, symbol  # noqa: F401 (node names' symbols: re-exported)
from bngraph.engine.primitives import forward
from bngraph.engine.trace import Trace

if TYPE_CHECKING:
    import networkx as nx

VIEWS = ("named", "staged")
LEAF_OPS = {"input": "input", "parameter": "parameter", "constant": "constant"}


@dataclass(frozen=True)
class Node:
    """One scalar of the graph.

    ``args`` are the op's arguments (parent names or folded constants), ``expr`` the
    node's value in terms of its parents' symbols. In the named view, ``region`` lists
    the staged nodes contracted into this one (itself last).
    """

    name: str
    op: str
    role: str
    args: tuple
    parents: tuple[str, ...]
    definition: sp.Expr | None = None  # named view: the contracted value; staged: made on use
    region: tuple[str, ...] = ()
    named: bool = False  # named by the user: kept in the named view

    @property
    def symbol(self) -> sp.Symbol:
        return symbol(self.name)

    @cached_property
    def expr(self) -> sp.Expr | None:
        """The node's value in terms of its parents' symbols (None for a leaf)."""
        if self.definition is not None or self.op in LEAF_OPS:
            return self.definition
        return forward(self.op, tuple(symbol(a) if isinstance(a, str) else a for a in self.args))


@dataclass(frozen=True)
class Graph:
    """One view of one trace: nodes in topological order and the ``nx.DiGraph`` of them."""

    layer: str
    m: int
    view: str
    nodes: tuple[Node, ...]
    staged: "Graph | None" = field(default=None, repr=False, compare=False)
    # In the named view: every staged node's value in terms of named-view symbols.
    inlined: Mapping[str, sp.Expr] = field(default_factory=dict, repr=False, compare=False)
    trace: Trace | None = field(default=None, repr=False, compare=False)

    def __post_init__(self):
        object.__setattr__(self, "_by_name", MappingProxyType({n.name: n for n in self.nodes}))

    def __getitem__(self, name: str) -> Node:
        return self._by_name[name]

    def __contains__(self, name: str) -> bool:
        return name in self._by_name

    def __iter__(self) -> Iterator[Node]:
        return iter(self.nodes)

    def __len__(self) -> int:
        return len(self.nodes)

    def with_role(self, *roles: str) -> tuple[Node, ...]:
        return tuple(n for n in self.nodes if n.role in roles)

    @property
    def inputs(self) -> tuple[Node, ...]:
        return self.with_role("input")

    @property
    def outputs(self) -> tuple[Node, ...]:
        return self.with_role("output")

    def children(self, name: str) -> tuple[str, ...]:
        """The nodes that use ``name``, in topological order."""
        return self._children.get(name, ())

    @cached_property
    def _children(self) -> Mapping[str, tuple[str, ...]]:
        children: dict[str, list[str]] = {}
        for n in self.nodes:  # in topological order, so each list is too
            for p in n.parents:
                children.setdefault(p, []).append(n.name)
        return {p: tuple(c) for p, c in children.items()}

    @cached_property
    def digraph(self) -> "nx.DiGraph":
        """The graph as a frozen ``networkx.DiGraph`` (nodes carry ``op`` and ``role``)."""
        import networkx as nx

        g = nx.DiGraph()
        for n in self.nodes:
            g.add_node(n.name, op=n.op, role=n.role)
        for n in self.nodes:
            g.add_edges_from((p, n.name) for p in n.parents)
        return nx.freeze(g)

    @cached_property
    def _order(self) -> Mapping[str, int]:
        return {n.name: k for k, n in enumerate(self.nodes)}

    def __str__(self) -> str:
        return format_graph(self)

    def render(self, path=None, **options):
        """Draw this graph with Graphviz (see :mod:`bngraph.output.render`)."""
        from bngraph.output.render import render_graph  # the renderer is a later stage: import on use

        return render_graph(self, path, **options)

    def _repr_svg_(self):
        from bngraph.output.render import render_graph

        return render_graph(self, None, format="svg")


def build_graph(trace: Trace, view: str = "named", layer: str | None = None) -> Graph:
    """The ``view`` of ``trace``: ``"staged"`` or ``"named"``."""
    if view not in VIEWS:
        raise BngraphError(f"unknown view {view!r}; choose one of: {', '.join(VIEWS)}")
    staged = _staged(trace, layer or trace.function)
    return staged if view == "staged" else _named(staged)


def _role(record, outputs: set[str]) -> str:
    if record.op in LEAF_OPS:
        return LEAF_OPS[record.op]
    return "output" if record.name in outputs else "intermediate"


def _staged(trace: Trace, layer: str) -> Graph:
    outputs = set(trace.outputs)
    nodes = []
    for r in trace.records:
        parents = tuple(dict.fromkeys(a for a in r.args if isinstance(a, str)))
        nodes.append(Node(r.name, r.op, _role(r, outputs), r.args, parents, named=r.named))
    nodes = tuple(nodes)
    return Graph(layer, trace.m, "staged", nodes, trace=trace)


def _named(staged: Graph) -> Graph:
    """Contract every unnamed staged node into the named nodes that use it."""
    kept = {n.name for n in staged if n.role != "intermediate" or n.named}
    value: dict[str, sp.Expr] = {}  # staged node -> its value in named-view symbols
    region: dict[str, frozenset] = {}  # unnamed staged node -> the unnamed nodes it stands for
    nodes = []
    replicas = Replicas()  # x_7 - mu is x_1 - mu renamed
    for n in staged:
        if n.op in LEAF_OPS:
            value[n.name] = n.symbol
            nodes.append(n)
            continue
        args = tuple(value[a] if isinstance(a, str) else a for a in n.args)
        family, k = example_index(n.name)
        if family:
            expr = replicas.get(family, k, (n.op, n.args, args), lambda: _scaled_sum(n.op, args))
        else:
            expr = _scaled_sum(n.op, args)
        if _undefined(expr):  # x_1 / (x_1 - x_1): SymPy folds the denominator to 0
            raise BngraphError(f"{n.name} = {expr}: the traced function divides by a value that is always 0")
        inner = frozenset().union(*(region[a] for a in n.parents if a not in kept))
        if n.name in kept:
            value[n.name] = n.symbol
            members = sorted(inner | {n.name}, key=staged._order.__getitem__)
            parents = sorted(
                {a for r in members for a in staged[r].parents if a in kept},
                key=staged._order.__getitem__,
            )
            nodes.append(Node(n.name, "named", n.role, tuple(parents), tuple(parents), expr, tuple(members), True))
        else:
            value[n.name] = expr
            region[n.name] = inner | {n.name}
    nodes = tuple(nodes)
    return Graph(staged.layer, staged.m, "named", nodes, staged, MappingProxyType(value), staged.trace)


def _undefined(expr: sp.Expr) -> bool:
    """zoo or nan where an op made it (at the top of its result: its arguments were checked
    before, so no walk of the whole expression, which would cost O(m) per node)."""
    top = expr.args if (expr.is_Mul or expr.is_Add) else (expr,)
    return any(a is sp.zoo or a is sp.nan for a in top)


def _scaled_sum(op: str, args: tuple) -> sp.Expr:
    """A sum divided by (or times) a number stays one: (x_1 + x_2 + x_3)/3, as a person writes
    it (SymPy would distribute the 1/3 over the m terms, which also costs m products). The
    number leads the product, so that x_1 − it prints as x_1 - (x_1 + x_2 + x_3)/3."""
    if op == "div" and args[0].is_Add and args[1].is_Rational and args[1] != 0:
        return sp.Mul(1 / args[1], args[0], evaluate=False)
    if op == "mul":
        number, total = sorted(args, key=lambda a: not a.is_Rational)
        if number.is_Rational and total.is_Add:
            return sp.Mul(number, total, evaluate=False)
    return forward(op, args)


def format_graph(g: Graph) -> str:
    """The trace as a jaxpr reads: leaves at the top, one node a line, outputs at the bottom."""
    head = f"{g.layer}  (m = {g.m}, {g.view} view)"
    lines = [head]
    for role, label in (("input", "inputs"), ("parameter", "parameters"), ("constant", "constants")):
        names = [n.name for n in g.with_role(role)]
        if names:
            lines.append(f"  {label + ':':<12}{' '.join(names)}")
    body = [n for n in g if n.expr is not None]
    width = max((len(n.name) for n in body), default=0)
    for n in body:
        if g.view == "staged":
            rhs = f"{n.op} " + " ".join(str(a) for a in n.args)
        else:
            rhs = sp.sstr(n.expr, order="none")
        lines.append(f"  {n.name:<{width}} = {rhs}")
    lines.append(f"  {'outputs:':<12}{' '.join(n.name for n in g.outputs)}")
    return "\n".join(lines)
