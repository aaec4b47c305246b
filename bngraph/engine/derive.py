"""Reverse-mode chain rule over a graph, symbolically: every node's adjoint dL/d<node>.

Local partials come from the primitives table (never ``sympy.diff`` on whole m-term
expressions). In the named view, the partial of a named node with respect to a named
parent is itself a small reverse-mode pass over the staged nodes contracted into it.

>>> from bngraph.engine.layers import LAYERS
>>> from bngraph.engine.graph import build_graph
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

from bngraph.engine.graph import Graph, symbol
from bngraph.engine.primitives import local_partials
from bngraph.engine.replicas import Replicas, example_index


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
            self._memo[node] = sp.Add(*(_mul(self.substituted(c), p) for c, p in adjoint.terms))
        return self._memo[node]

    def in_reading_order(self) -> tuple[Adjoint, ...]:
        """The adjoints in reverse topological order, but each run of one family's examples
        ascending, as people list them: dL_dxhat_1, dL_dxhat_2, dL_dxhat_3, then dL_dsigma2 …
        (a run whose members use one another keeps the order the chain rule needs).
        """
        out: list[Adjoint] = []
        run: list[Adjoint] = []

        def flush():
            names = {a.node for a in run}
            independent = not any(set(self.graph.children(a.node)) & names for a in run)
            out.extend(sorted(run, key=lambda a: example_index(a.node)[1]) if independent else run)
            run.clear()

        for adjoint in self.adjoints.values():
            family = example_index(adjoint.node)[0]
            if run and (family is None or family != example_index(run[-1].node)[0]):
                flush()
            run.append(adjoint)
        flush()
        return tuple(out)

    def local_partials_of(self, child: str) -> dict[str, sp.Expr]:
        """∂child/∂parent for every parent of ``child``."""
        return {p: self.partials[p, child] for p in self.graph[child].parents}

    def __str__(self) -> str:
        return "\n".join(f"{a.name} = {sp.sstr(a.expr)}" for a in self.adjoints.values())

    def to_latex(self, closed=None, **options) -> str:
        """This derivation as LaTeX (see :func:`bngraph.tex.export.to_latex`)."""
        from bngraph.tex.export import to_latex  # a later stage: import on use

        return to_latex(self, closed, **options)

    def _repr_latex_(self) -> str:
        return self.to_latex()

    def _repr_markdown_(self) -> str:
        from bngraph.tex.export import to_markdown

        return to_markdown(self)

    def render(self, path=None, **options):
        """Draw the backward graph with Graphviz (see :mod:`bngraph.output.render`)."""
        from bngraph.output.render import render_graph  # the renderer is a later stage: import on use

        return render_graph(self.graph, path, **{"direction": "backward", "derivation": self, **options})

    def _repr_svg_(self):
        from bngraph.output.render import render_graph

        return render_graph(self.graph, None, direction="backward", derivation=self, format="svg")


def derive(graph: Graph) -> Derivation:
    """All adjoints of ``graph`` by reverse-mode accumulation, with upstream dL_dy_k given."""
    partials = _named_partials(graph) if graph.view == "named" else _staged_partials(graph)
    adjoints = {}
    replicas = Replicas()
    for node in reversed(graph.nodes):
        if node.role in ("output", "constant"):
            continue
        terms = tuple((c, partials[node.name, c]) for c in graph.children(node.name))
        family, k = example_index(node.name)
        if family:
            expr = replicas.get(family, k, (node.name, terms), lambda: _chain_rule_sum(terms))
        else:  # a batch node (mu): its m terms are one example's term renamed
            expr = _chain_rule_sum(terms, replicas, node.name)
        adjoints[node.name] = Adjoint(node.name, terms, expr)
    return Derivation(graph, MappingProxyType(partials), MappingProxyType(adjoints))


def _chain_rule_sum(terms, replicas: Replicas | None = None, node: str = "") -> sp.Expr:
    return sp.Add(*(_mul_per_example(replicas, node, c, adjoint_symbol(c), p) for c, p in terms))


def _mul_per_example(replicas: Replicas | None, node: str, name: str, a: sp.Expr, b: sp.Expr) -> sp.Expr:
    """a·b, where a or b belongs to example ``name``: the first example's product, renamed."""
    family, k = example_index(name)
    if replicas is None or family is None or a is sp.S.One or b is sp.S.One:
        return _mul(a, b)
    return replicas.get((node, family), k, (name, a, b), lambda: _mul(a, b))


def _mul(a: sp.Expr, b: sp.Expr) -> sp.Expr:
    """a·b, skipping SymPy's work for a factor 1 (most seeds and partials on a path are 1)."""
    if a is sp.S.One:
        return b
    if b is sp.S.One:
        return a
    return sp.Mul(a, b)


def _op_partials(node, args: tuple) -> dict[str, list]:
    """The table's partials of one op, gathered per parent (an arg may appear twice: x*x)."""
    gathered = defaultdict(list)
    wanted = tuple(isinstance(a, str) for a in node.args)  # parents only: a folded constant's partial is unused
    for a, p in zip(node.args, local_partials(node.op, args, wanted)):
        if isinstance(a, str):
            gathered[a].append(p)
    return gathered


def _staged_partials(graph: Graph) -> dict:
    partials = {}
    for node in graph:
        if not node.parents:
            continue
        args = tuple(symbol(a) if isinstance(a, str) else a for a in node.args)
        for parent, ps in _op_partials(node, args).items():
            partials[parent, node.name] = sp.Add(*ps)
    return partials


def _named_partials(graph: Graph) -> dict:
    """∂child/∂parent of named nodes, through the unnamed staged nodes contracted into them.

    Forward accumulation over the staged graph: each unnamed node keeps its partials with
    respect to the named nodes it reads, computed once however many named nodes share it
    (the m normalised values all share √(σ² + ε)).
    """
    staged, value = graph.staged, graph.inlined
    through: dict[str, dict[str, sp.Expr]] = {}  # unnamed node -> {named ancestor: partial}
    partials = {}
    replicas = Replicas()
    renamed = set()  # unnamed per-example nodes whose `through` is their family's first one's, renamed
    for node in staged:
        if not node.parents:
            continue
        args = tuple(value[a] if isinstance(a, str) else a for a in node.args)
        family, k = example_index(node.name)
        if family:  # all the result depends on, so that a renamed match has the renamed result
            inputs = (node.op, node.args, args, tuple(
                (a, a in graph, True if a in renamed else through.get(a)) for a in node.parents))
            result = replicas.get(family, k, inputs, lambda: _through(graph, node, args, through))
            if replicas.renamed:
                renamed.add(node.name)
        else:
            result = _through(graph, node, args, through, replicas)
        if node.name in graph:
            for parent in graph[node.name].parents:
                partials[parent, node.name] = result.get(parent, sp.S.Zero)
        else:
            through[node.name] = result
    return partials


def _through(graph: Graph, node, args: tuple, through: dict, replicas: Replicas | None = None) -> dict[str, sp.Expr]:
    """∂node/∂a for every named node a it reads, directly or through unnamed nodes
    (for a batch node, ``replicas`` gives its m per-example products)."""
    gathered = defaultdict(list)
    for parent, ps in _op_partials(node, args).items():
        p = sp.Add(*ps)
        if parent in graph:
            gathered[parent].append(p)
        else:
            for ancestor, q in through[parent].items():
                gathered[ancestor].append(_mul_per_example(replicas, node.name, ancestor, p, q))
    return {ancestor: sp.Add(*ps) for ancestor, ps in gathered.items()}
