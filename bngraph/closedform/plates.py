"""Lift a traced function to a *plate* program: the same computation for a symbolic m.

Traced at m = 4, 5 and 6, a layer shows its shape: *families* of per-example nodes
(x_k, xmu_k, xhat_k, y_k: one node per example, all made by the same rule) and *batch*
nodes (mu, sigma2: one per batch), the two joined only by reductions (sums over a whole
family). Constants that change with m (1/m, 1/(m-1)) are fitted as functions of m and
checked on the third trace. A function whose traces do not share one shape (it treats
x_1 specially, or mixes examples in another way) has no plate program: ``lift`` says why.

>>> from bngraph.engine.layers import LAYERS
>>> p = lift(LAYERS["batchnorm"].function)
>>> p.values["mu"]
Sum(x[j], (j, 1, m))/m
>>> p.values["xhat"]
(-mu + x[i])/sqrt(epsilon + sigma2)
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from types import MappingProxyType
from typing import Callable, Mapping, Sequence

import sympy as sp

from bngraph.errors import BngraphError
from bngraph.engine.primitives import forward
from bngraph.engine.trace import Trace, trace

m = sp.Symbol("m", integer=True, positive=True)
i, j = sp.symbols("i j", integer=True)
SIZES = (4, 5, 6)  # traced sizes: two to fit a constant's dependence on m, one to check it


@dataclass(frozen=True)
class PlateNode:
    """``kind`` is "example" (one per example, value at index i) or "batch" (one per batch)."""

    name: str
    kind: str
    op: str
    args: tuple  # ("e", family) | ("b", batch node) | ("c", constant) | ("sum", family)
    role: str  # input, parameter, constant, intermediate, output
    named: bool


@dataclass(frozen=True)
class Plates:
    """A plate program and, for the kept (named) nodes, their values at symbolic m."""

    nodes: tuple[PlateNode, ...]
    values: Mapping[str, sp.Expr]  # kept node -> its definition in kept nodes' symbols
    kept: tuple[str, ...]  # topological order

    def __post_init__(self):
        object.__setattr__(self, "_by_name", MappingProxyType({n.name: n for n in self.nodes}))

    def __getitem__(self, name: str) -> PlateNode:
        return self._by_name[name]


class NotLiftable(BngraphError):
    """The function has no single shape for every m (so no closed form in symbolic m)."""


def lift(func: Callable) -> Plates:
    """The plate program of ``func``, from its traces at m = 4, 5, 6."""
    return lift_traces([trace(func, size) for size in SIZES])


def lift_traces(traces: Sequence[Trace]) -> Plates:
    """The plate program of a function from its traces at m = 4, 5, 6 (``SIZES``)."""
    shapes = [_shape(t) for t in traces]
    first = shapes[0]
    if any(len(s) != len(first) for s in shapes):
        raise NotLiftable("its graph does not grow uniformly with m")
    nodes = []
    for rows in zip(*shapes):
        head = rows[0]
        if any(r[:3] != head[:3] or len(r[3]) != len(head[3]) for r in rows):
            raise NotLiftable("its graph does not have the same shape for every m")
        args = []
        for position, arg in enumerate(head[3]):
            if arg[0] != "c":
                if any(r[3][position] != arg for r in rows):
                    raise NotLiftable("its graph does not have the same shape for every m")
                args.append(arg)
            else:
                args.append(("c", _fit([r[3][position][1] for r in rows])))
        nodes.append(PlateNode(head[0], head[1], head[2], tuple(args), head[4], head[5]))
    return contract(tuple(nodes))


def _fit(values: list) -> sp.Expr:
    """A constant as a function of m: the same, a + b m, or 1/(a + b m), checked on every size."""
    sizes = SIZES[: len(values)]
    if all(v == values[0] for v in values):
        return values[0]
    for transform in (lambda v: v, lambda v: 1 / v if v != 0 else None):
        ys = [transform(v) for v in values]
        if None in ys:
            continue
        b = (ys[1] - ys[0]) / (sizes[1] - sizes[0])
        a = ys[0] - b * sizes[0]
        if all(a + b * s == y for s, y in zip(sizes, ys)):
            return transform(a + b * m)
    raise NotLiftable(f"a constant changes with m in a way bngraph cannot fit ({values})")


_FAMILY = re.compile(r"^(.*)_(\d+)$")


def _shape(t: Trace) -> list[tuple]:
    """Rows (name, kind, op, args, role, named), one per family or batch node, in order."""
    index, family, rows = {}, {}, []  # node -> example index; node -> family name
    batch: dict[str, str] = {}  # batch node -> its plate name (generated ones renumbered)
    seen: dict[tuple, str] = {}  # (op, args) of a batch node -> its plate name
    sig_family: dict[tuple, str] = {}
    members: dict[str, list[int]] = {}
    outputs = set(t.outputs)
    for k, r in enumerate(t.records):
        if r.op == "input":
            index[r.name], family[r.name] = int(r.name.split("_")[1]), "x"
            if "x" not in members:
                rows.append(("x", "example", "input", (), "input", False))
            members.setdefault("x", []).append(index[r.name])
            continue
        if r.op in ("parameter", "constant"):
            batch[r.name] = r.name
            rows.append((r.name, "batch", r.op, (), r.op, False))
            continue
        examples = {index[a] for a in r.args if isinstance(a, str) and a in index}
        args = tuple(_arg(a, family, batch) for a in r.args)
        role = "output" if r.name in outputs else "intermediate"
        if len(examples) == 1:
            sig = (r.op, args, role, r.named)
            name = sig_family.get(sig)
            if name is None:
                match = _FAMILY.match(r.name)
                name = match.group(1) if (match and not r.generated) else f"u{len(rows)}"
                if name in members:  # two rules share a stem: keep them apart
                    name = f"{name}{len(rows)}"
                sig_family[sig] = name
                rows.append((name, "example", r.op, args, role, r.named))
            index[r.name], family[r.name] = examples.pop(), name
            if index[r.name] not in members.setdefault(name, []):  # else: the same value again
                members[name].append(index[r.name])
            continue
        if examples:
            args = _reduction(r, args, index, t.m)
        if r.generated and (r.op, args) in seen:  # the same batch value computed again
            batch[r.name] = seen[r.op, args]
            continue
        batch[r.name] = f"b{len(rows)}" if r.generated else r.name
        seen[r.op, args] = batch[r.name]
        rows.append((batch[r.name], "batch", r.op, args, role, r.named))
    for name, ks in members.items():
        if sorted(ks) != list(range(1, t.m + 1)):
            raise NotLiftable(f"the values {name}_k are not made once per example")
    return rows


def _arg(a, family, batch) -> tuple:
    if not isinstance(a, str):
        return ("c", a)
    return ("e", family[a]) if a in family else ("b", batch[a])


def _reduction(r, args, index, size) -> tuple:
    """A sum over a whole family (plus batch terms): the only way examples meet."""
    fams = {a[1] for a in args if a[0] == "e"}
    ks = sorted(index[a] for a in r.args if isinstance(a, str) and a in index)
    if r.op != "add" or len(fams) != 1 or ks != list(range(1, size + 1)):
        raise NotLiftable(f"{r.name} combines different examples other than by summing them all")
    fam = fams.pop()
    return (("sum", fam),) + tuple(a for a in args if a[0] != "e")


LEAVES = ("input", "parameter", "constant")


def node_value(n: PlateNode, value: dict[str, sp.Expr]) -> sp.Expr:
    """A plate node's value from the values of the nodes before it (a family's at index i):
    a leaf is its own symbol, a sum over the batch a ``Sum`` over j, any other op its rule."""
    if n.op in LEAVES:
        return sp.IndexedBase(n.name)[i] if n.kind == "example" else sp.Symbol(n.name)

    def arg_value(a):
        tag, ref = a
        if tag == "c":
            return ref
        if tag == "sum":
            return sp.Sum(value[ref].xreplace({i: j}), (j, 1, m))
        return value[ref]

    args = tuple(arg_value(a) for a in n.args)
    return sp.Add(*args) if n.op == "add" and n.args and n.args[0][0] == "sum" else forward(n.op, args)


def contract(nodes: tuple[PlateNode, ...]) -> Plates:
    """Inline unnamed nodes into the kept ones (as graph.py does for the named view)."""
    value: dict[str, sp.Expr] = {}  # node -> value (at index i for families), in kept symbols
    kept, defs = [], {}
    # Unnamed batch nodes that examples use (through other unnamed batch nodes): if one
    # holds a sum, it stays a symbol of its own so that sums never nest.
    by_name = {n.name: n for n in nodes}
    used_by_examples = set()
    for n in reversed(nodes):
        if n.kind == "example" or n.name in used_by_examples:
            used_by_examples.update(ref for tag, ref in n.args if tag == "b" and not by_name[ref].named)

    for n in nodes:
        expr = node_value(n, value)
        if n.op in LEAVES:
            value[n.name] = expr
            kept.append(n.name)
            continue
        # Keep named nodes, outputs, and unnamed batch sums that examples use (so sums never nest).
        keep = n.named or n.role == "output" or (n.name in used_by_examples and expr.has(sp.Sum))
        if keep:
            defs[n.name] = expr
            kept.append(n.name)
            value[n.name] = sp.IndexedBase(n.name)[i] if n.kind == "example" else sp.Symbol(n.name)
        else:
            value[n.name] = expr
    return Plates(nodes, defs, tuple(kept))
