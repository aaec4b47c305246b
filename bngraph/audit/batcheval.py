r"""Evaluate contract-notation expressions at one concrete batch.

A :class:`Batch` is m, the inputs x_1 … x_m, the upstream gradients dL_dy_1 … dL_dy_m and
γ, β, ε. An :class:`Evaluator` gives any expression in the contract's symbolic-m names
(``x[i]``, ``xhat[j]``, ``mu``, ``Sum(..., (j, 1, m))``, ``dL_dmu`` …) a number there: sums
are run over 1..m, indices take integer values, and every layer quantity (μ, σ², x̂_k,
y_k, each adjoint) is computed from its *reference* expression — the engine's — never
from a formula typed here. ``sigma`` is √σ² unless the document defines it.

In *free* mode the forward intermediates (μ, σ², x̂_k …) are independent random numbers
instead: two expressions that agree there agree as formulas in those symbols, not only
because of how the symbols are defined ("the same form").

>>> import sympy as sp
>>> from bngraph.tex.grammar import parse_expression as tex
>>> refs = {"mu": tex(r"\frac{1}{m}\sum_j x_j")}
>>> Evaluator(Batch(3, (1.0, 2.0, 6.0), (0.0, 0.0, 0.0), 1.0, 0.0, 0.1), refs).value(tex(r"\mu + x_2"))
5.0
"""
from __future__ import annotations

import math
import random
from functools import lru_cache
import re
from dataclasses import dataclass
from typing import Mapping

import networkx as nx
import sympy as sp

from bngraph.audit.compiled import Unevaluable, compiled
from bngraph.audit.dual import Dual, lift, value_of
from bngraph.tex.names import MAX_INDEX, PRIME_VARIABLE, canonical

SIZES = (2, 3, 5, 8)  # batch sizes every symbolic-m formula is checked at
RELATIVE_TOLERANCE = 1e-7
MAX_BATCH = MAX_INDEX  # the largest m a formula is checked at (x_{64})
MAX_VALUE = 1e100  # a value beyond this is an overflow waiting to happen, never agreement


@dataclass(frozen=True)
class Batch:
    m: int
    x: tuple[float, ...]
    dL_dy: tuple[float, ...]
    gamma: float
    beta: float
    epsilon: float

    @classmethod
    def random(cls, m: int, seed: int) -> "Batch":
        """A random batch, the same for the same (m, seed): reports are reproducible."""
        rng = random.Random(1009 * m + seed)
        return cls(m, tuple(rng.gauss(0.5, 2.0) for _ in range(m)), tuple(rng.gauss(0.0, 1.0) for _ in range(m)),
                   rng.uniform(0.5, 2.0), rng.uniform(-1.0, 1.0), rng.uniform(0.1, 0.6))

    @classmethod
    def small(cls, m: int, variant: int = 0) -> "Batch":
        """A batch of small round numbers, for a counterexample a person can follow."""
        xs = ((1, 3, 2, 6, 4, 0, 5, 7), (0, 1, 5, 2, 3, 7, 4, 6))[variant % 2]
        dys = ((1, -2, 3, 1, -1, 2, 0, 1), (2, 1, -1, 3, 0, 1, -2, 1))[variant % 2]
        x = tuple(float(v) for v in xs[:m]) if m <= len(xs) else tuple(float(k % 7) for k in range(m))
        dy = tuple(float(v) for v in dys[:m]) if m <= len(dys) else tuple(float(k % 3 - 1) for k in range(m))
        return cls(m, x, dy, 2.0, 0.5, 0.1)


@dataclass(frozen=True)
class Helper:
    """A name the document defines itself (``\\text{ivar} = 1/\\sqrt{\\sigma^2+\\epsilon}``)."""

    expr: sp.Expr
    index: str | None = None  # the free index of an indexed helper, z_i = …


def reference_table(references: Mapping[str, sp.Expr]) -> dict[str, tuple[sp.Expr, str | None]]:
    """``{"xhat": (expr, "i"), "mu": (expr, None)}`` from the contract's keys."""
    table = {}
    for key, expr in references.items():
        match = re.fullmatch(r"(\w+)(?:\[(\w+)\])?", key)
        if match is None:
            continue
        table[match[1]] = (canonical(expr), match[2])
    return table


class Evaluator:
    """Numbers for expressions at one batch; see the module docstring.

    ``reading`` says what a partial derivative ∂a/∂b that a formula names means: "local"
    (every quantity but b held fixed), "total" (μ, σ², x̂ … follow b), or a set of names
    held fixed (the paths the formula spells out elsewhere). A partial is computed with
    :class:`~bngraph.audit.dual.Dual` numbers by a child evaluator whose ``seed`` is b.
    """

    def __init__(self, batch: Batch, references: Mapping[str, sp.Expr] | Mapping[str, tuple], *,
                 free: bool = False, helpers: Mapping[str, Helper] | None = None,
                 size_names: frozenset[str] = frozenset({"m"}), reading="local",
                 seed: tuple | None = None, held: frozenset[str] = frozenset(), parent: "Evaluator | None" = None,
                 definitions: Mapping[str, list] | None = None, shared: dict | None = None):
        self.batch = batch
        first = next(iter(references.values()), None)
        self.refs = dict(references) if isinstance(first, tuple) else reference_table(references)
        self.helpers = dict(helpers or {})
        self.size_names = size_names | {"m"}
        self.reading, self.seed, self.held, self.parent = reading, seed, held, parent
        self.definitions = dict(definitions or {})  # the document's own formulas for μ, x̂_1 … (staged write-ups)
        self.free: dict[tuple, float] = {}
        self.free_names = {n for n in self.refs if not n.startswith("dL_d")} if free else set()
        self.rng = random.Random(7919 * batch.m + 17)
        self.active: set[tuple] = set()
        self.inputs = parent.inputs if parent is not None else _other_inputs(tuple(self.refs.items()))
        # Shared by every evaluator of one document (its helpers, references and definitions are
        # fixed): which formula a partial differentiates, and the values at one batch under one
        # reading. Free mode draws its numbers in the order they are asked for: never shared.
        self.shared = parent.shared if parent is not None else (shared if shared is not None else {})
        shareable = parent is None and not free
        self.memo: dict[tuple, float] = self.shared.setdefault(("memo", batch, reading), {}) if shareable else {}
        self.quantities = parent.quantities if parent is not None else frozenset(
            set(self.refs) | set(self.helpers) | {"sigma"})

    # -- names
    def _symbol(self, name: str, env: Mapping[str, float]):
        if name in env:
            return env[name]
        if self.parent is not None and ((name,) == self.seed or name in self.held):
            plain = value_of(self.parent._symbol(name, env))
            return Dual(plain, 1.0 if (name,) == self.seed else 0.0)
        if name in self.helpers and self.helpers[name].index is None:
            return self._cached(("helper", name), lambda: self.value(self.helpers[name].expr))
        if name in self.size_names:
            return float(self.batch.m)
        if name in ("gamma", "beta", "epsilon"):
            return getattr(self.batch, name)
        if name in self.free_names and self.refs[name][1] is None:
            return self._free((name,))
        if name == "sigma":
            return self._value(sp.sqrt(sp.Symbol("sigma2")), env)
        if name in self.refs and self.refs[name][1] is None:
            return self._cached((name,), lambda: self.value(self.refs[name][0]))
        if name in self.inputs:
            seeded = random.Random(sum(map(ord, name)) + 31 * self.batch.m)  # the same at every call
            return seeded.uniform(0.5, 2.0) if "var" in name else seeded.gauss(0.0, 1.0)
        if name.endswith(HELD):  # a path that does not count: the value, not its derivative
            return value_of(self._symbol(name[:-len(HELD)], env))
        if name.startswith("dL_d"):  # ∂L/∂g, g a name of the document's own: through its own formulas
            return self._cached(("adjoint", name), lambda: graph_adjoint(self, name, None))
        raise Unevaluable(f"{name} is not defined")

    def _member(self, base: str, k: int, env: Mapping[str, float]):
        """``base_k``, k an integer in 1..m."""
        if self.parent is not None and ((base, k) == self.seed or base in self.held):
            plain = value_of(self.parent._member(base, k, env))
            return Dual(plain, 1.0 if (base, k) == self.seed else 0.0)
        member = self.helpers.get(f"{base}[{k}]")  # xmu_2 = x_2 - μ, written out by the document
        if member is not None:
            return self._cached(("helper", base, k), lambda: self.value(member.expr))
        helper = self.helpers.get(base)
        if helper is not None and helper.index is not None:
            return self._cached(("helper", base, k), lambda: self.value(helper.expr, {helper.index: k}))
        if base in ("x", "dL_dy"):
            return getattr(self.batch, base)[k - 1]
        if base in ("gamma", "beta"):  # one value per feature: γ_i is γ (the auditor warns)
            return getattr(self.batch, base)
        if base in self.free_names:
            return self._free((base, k))
        if base in self.refs and self.refs[base][1] is not None:
            ref, index = self.refs[base]
            return self._cached((base, k), lambda: self.value(ref, {index: k}))
        if base.endswith(HELD):
            return value_of(self._member(base[:-len(HELD)], k, env))
        if base.startswith("dL_d"):
            return self._cached(("adjoint", base, k), lambda: graph_adjoint(self, base, k))
        raise Unevaluable(f"{base}_k is not defined")

    def _free(self, key: tuple) -> float:
        if key not in self.free:
            positive = key[0].startswith("sigma")
            self.free[key] = self.rng.uniform(0.5, 2.0) if positive else self.rng.gauss(0.0, 1.5)
        return self.free[key]

    def _cached(self, key: tuple, compute):
        if key not in self.memo:
            if key in self.active:
                raise Unevaluable(f"{key[-1] if key[0] == 'helper' else key[0]} is defined in terms of itself")
            self.active.add(key)
            try:
                self.memo[key] = compute()
            finally:
                self.active.discard(key)
        return self.memo[key]

    # -- expressions
    def value(self, expr: sp.Expr, env: Mapping[str, float] | None = None):
        """The number ``expr`` stands for (a Dual in a child evaluator); ``env`` gives index values by name."""
        env = env or {}
        try:
            result = self._value(expr, env)
        except (ZeroDivisionError, OverflowError):
            raise Unevaluable("a division by zero or an overflow") from None
        if not math.isfinite(value_of(result)) or abs(value_of(result)) > MAX_VALUE:
            raise Unevaluable("a value out of the range that can be checked (an overflow?)")
        return result

    def _value(self, expr, env):
        return compiled(expr)(self, env)

    def partial(self, derivative: sp.Derivative, env) -> float:
        """∂a/∂b, named in a formula, read as ``self.reading`` says."""
        (var, count), = derivative.variable_count
        if count != 1:
            raise Unevaluable("a higher derivative")
        if getattr(var, "name", None) == PRIME_VARIABLE:
            raise Unevaluable("a prime (q′) before the text names a variable to differentiate by")
        var = self._unaliased(var, derivative.expr)
        if isinstance(var, sp.Indexed):
            seed = (var.base.label.name, int(value_of(self._value(var.indices[0], env))))
        elif isinstance(var, sp.Symbol):
            seed = (var.name,)
        else:
            raise Unevaluable("a derivative with respect to an expression")
        key = ("definition", derivative.expr, var, self.reading == "total")
        if key not in self.shared:
            try:
                self.shared[key] = definition_of(self, derivative.expr, var)
            except Unevaluable as exc:
                self.shared[key] = exc
        top = self.shared[key]
        if isinstance(top, Unevaluable):
            raise Unevaluable(str(top))
        quantities = self.quantities
        held = {"local": quantities, "total": set()}.get(self.reading) if isinstance(self.reading, str) else self.reading
        child = Evaluator(self.batch, self.refs, helpers=self.helpers, size_names=self.size_names, reading=self.reading,
                          seed=seed, held=frozenset(set(held) - {seed[0]}), parent=self, definitions=self.definitions)
        return lift(child._value(top, env)).d

    def _unaliased(self, var, top):
        """``v = σ²`` or ``r = RMS(x)``, a name the document gives a quantity: ∂σ/∂v is ∂σ/∂σ², unless the
        formula ∂top/∂v differentiates names v itself."""
        for _ in range(4):  # r = RMS(x), RMS(x) = √(…): a short chain of names
            helper = self.helpers.get(var.name) if isinstance(var, sp.Symbol) else None
            if helper is None or helper.index is not None or not isinstance(helper.expr, sp.Symbol):
                return var
            try:
                if var.name in _names(definition_of(self, top, var)):
                    return var
            except Unevaluable:
                pass
            var = helper.expr
        return var


# -- adjoints of the document's own names (staged write-ups: ∂L/∂c_i, ∂L/∂g) ------------------------------
HELD = "@held"  # a name's occurrences in a formula whose path is left out of an adjoint's share
SHARE = "@"  # dL_dc@y+v: the share of ∂L/∂c through the formulas of y and v only


def document_graph(helpers: Mapping[str, Helper], definitions: Mapping[str, list], node: str) -> dict[str, Helper]:
    """The document's own formulas by name: its helpers, and its definitions of the layer's quantities that
    follow from ``node`` (the one that names it where it gives two; the others keep the layer's values), members
    written out one by one left aside."""
    graph = {name: h for name, h in helpers.items() if "[" not in name}
    layer = {name: _naming(own, node) for name, own in definitions.items() if "[" not in name and own and name not in graph}
    full = {**layer, **graph}
    return {**{name: h for name, h in layer.items() if reaches(full, node, name)}, **graph}


def _naming(own: list[Helper], node: str) -> Helper:
    """Of a quantity's formulas, the first that names ``node``, one member's (y_i = …) before the whole's (y = …)."""
    return min(own, key=lambda h: (node not in _names(h.expr), h.index is None))


def consumers(graph: Mapping[str, Helper], node: str) -> list[str]:
    """The names whose formulas use ``node`` directly: the paths out of it."""
    return sorted(name for name, h in graph.items() if node in _names(h.expr))


def reaches(graph: Mapping[str, Helper], node: str, start: str) -> bool:
    """Whether ``start``'s formula depends on ``node``, through the document's formulas."""
    return depends_on({name: h.expr for name, h in graph.items()}, start, node)


def depends_on(formulas: Mapping[str, sp.Expr], name: str, source: str) -> bool:
    """Whether ``name``'s formula uses ``source``, directly or through the other formulas (a path in their graph)."""
    graph = nx.DiGraph([(n, used) for n, e in formulas.items() for used in _names(e)])
    return name == source or (name in graph and source in graph and nx.has_path(graph, name, source))


def _held(expr: sp.Expr, node: str) -> sp.Expr:
    held = sp.Symbol(node + HELD)
    expr = expr.replace(lambda e: isinstance(e, sp.Indexed) and e.base.label.name == node,
                        lambda e: sp.IndexedBase(held)[e.indices])
    return expr.xreplace({sp.Symbol(node): held})


def graph_adjoint(ev: Evaluator, adjoint: str, k: int | None):
    """∂L/∂node (at member k): L = Σ_j ∂L/∂y_j · y_j, y_j by the document's own formula, node perturbed and what
    follows from it in the document's formulas following (x, γ, β held); a share ``dL_dc@y+v`` counts only
    the paths through those formulas. A name on no path to y has no adjoint here (never a silent 0)."""
    node, _, via = adjoint[len("dL_d"):].partition(SHARE)
    graph = document_graph(ev.helpers, ev.definitions, node)
    if (node not in graph and not consumers(graph, node)) or not (ev.definitions.get("y") or "y" in ev.helpers):
        raise Unevaluable(f"{adjoint} is not defined")
    if "y" not in graph:  # the document's y is kept only where it follows from the node
        raise Unevaluable(f"{adjoint} is not defined ({node} is on no path to y in the document's formulas)")
    if graph["y"].index is None:
        raise Unevaluable(f"{adjoint} is not defined (the document's y has no index to sum the loss over)")
    if not _output_is_the_layers(ev, graph):  # a slip in its forward pass: its adjoints are of another graph
        raise Unevaluable(f"{adjoint} is not defined (the document's own formulas for y_i do not give the "
                          "layer's output)")
    if via:
        keep = set(via.split("+"))
        graph = {name: h if name in keep or node not in _names(h.expr) else Helper(_held(h.expr, node), h.index)
                 for name, h in graph.items()}
    child = Evaluator(ev.batch, ev.refs, helpers=graph, size_names=ev.size_names, reading="total",
                      seed=(node,) if k is None else (node, k), parent=ev, definitions=ev.definitions)
    child.free_names, child.free, child.rng = ev.free_names, ev.free, ev.rng  # free mode: the same numbers
    output = graph["y"]
    return sum(ev.batch.dL_dy[j - 1] * lift(child.value(output.expr, {output.index: j})).d
               for j in range(1, ev.batch.m + 1))


def _output_is_the_layers(ev: Evaluator, graph: Mapping[str, Helper]) -> bool:
    """The document's y_i through its own formulas is the layer's y_i at this batch (free mode: not asked)."""
    if ev.free_names or "y" not in ev.refs:
        return True
    key = ("output", ev.batch, graph["y"])
    if key not in ev.shared:
        own = Evaluator(ev.batch, ev.refs, helpers=graph, size_names=ev.size_names, parent=ev,
                        definitions=ev.definitions)
        (ref, index), mine = ev.refs["y"], graph["y"]
        ev.shared[key] = all(close(value_of(own.value(mine.expr, {mine.index: j})), value_of(ev.value(ref, {index: j})))
                             for j in range(1, ev.batch.m + 1))
    return ev.shared[key]


def definition_of(ev: Evaluator, top: sp.Expr, var) -> sp.Expr:
    """What ∂top/∂var differentiates: a quantity's own formula (one level down), or the expression."""
    name = top.base.label.name if isinstance(top, sp.Indexed) else getattr(top, "name", None)
    if isinstance(top, sp.Indexed) and name == "x" and "x" not in ev.helpers:  # ∂x_i/∂x_j: 1 where i = j, else 0
        return top
    if isinstance(top, sp.Indexed) and top.indices[0].is_Integer and f"{name}[{top.indices[0]}]" in ev.helpers:
        return ev.helpers[f"{name}[{top.indices[0]}]"].expr
    if name in ev.helpers:
        wrt = var.base.label.name if isinstance(var, sp.Indexed) else var.name
        # x̂_i = x_i/RMS(x) first, x̂_i = x_i/r later: ∂x̂_j/∂r differentiates the definition that names r
        for helper in (ev.helpers[name], *ev.definitions.get(name, ())):
            if helper.index is None:
                own = helper.expr
            elif isinstance(top, sp.Indexed):
                own = _rename_bound(helper.expr).xreplace({sp.Symbol(helper.index): top.indices[0]})
            else:
                continue
            if wrt in _names(own):
                return own
        helper = ev.helpers[name]
        if helper.index is None:
            return helper.expr
        if isinstance(top, sp.Indexed):
            return _rename_bound(helper.expr).xreplace({sp.Symbol(helper.index): top.indices[0]})
    if name in ev.refs:
        ref, index = ev.refs[name]
        if index is not None:
            if not isinstance(top, sp.Indexed):
                raise Unevaluable(f"∂{name}/∂{var} without the index of {name}")
            ref = _rename_bound(ref).xreplace({sp.Symbol(index): top.indices[0]})
        wrt = var.base.label.name if isinstance(var, sp.Indexed) else var.name
        if wrt in _names(ref):
            return ref
        key = f"{name}[{top.indices[0]}]" if isinstance(top, sp.Indexed) else name
        for own in ev.definitions.get(key, ()):  # x̂_1 = ivar · xmu_1: the document's graph, not the layer's
            if wrt in _names(own.expr):
                return own.expr
        if ev.reading == "total" and wrt in ("x", "gamma", "beta"):  # ∂y_i/∂x_j, total: through x̂, μ, σ²
            return ref
        raise Unevaluable(f"∂{name}/∂{wrt}: {wrt} is not one of {name}'s own inputs")
    if name == "sigma":
        return sp.sqrt(sp.Symbol("sigma2"))
    if name is not None:
        raise Unevaluable(f"the partial ∂{name}/∂{var}: {name} is not defined")
    return top


@lru_cache(maxsize=16)
def _other_inputs(refs: tuple) -> frozenset[str]:
    """Inputs the references use besides x and the layer's own (running_mean, running_var)."""
    # (x and dL_dy are the batch's families, reached through their members x_k: a bare x is not a number)
    used = {s.name for _, (ref, _) in refs for s in ref.free_symbols if not isinstance(s, sp.Indexed)}
    families = {ix.base.label.name for _, (ref, _) in refs for ix in ref.atoms(sp.Indexed)}
    return frozenset(used - families - {name for name, _ in refs} - {index for _, (_, index) in refs} - {"m", "sigma"})


@lru_cache(maxsize=4096)
def _names(expr: sp.Expr) -> frozenset[str]:
    return frozenset({s.name for s in expr.free_symbols} | {e.base.label.name for e in expr.atoms(sp.Indexed)})


def _rename_bound(expr: sp.Expr) -> sp.Expr:
    """Bound indices made Dummies, so substituting a free index cannot be captured."""
    return expr.replace(lambda e: isinstance(e, sp.Sum),
                        lambda s: s.xreplace({v: sp.Dummy(v.name) for v in s.variables}))


def close(a: float, b: float) -> bool:
    """Equal to the checking precision; an overflow or a NaN is never equal to anything."""
    if not (math.isfinite(a) and math.isfinite(b)):
        return False
    return abs(a - b) <= RELATIVE_TOLERANCE * max(1.0, abs(a), abs(b))
