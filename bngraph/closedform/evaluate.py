"""Numbers from the symbolic results: walk the graph forward, the adjoints backward.

This is how anyone can use the JSON: each node from its parents, in order, then each
adjoint from its children's. The closed form is evaluated from the leaves alone: its
definitions first, in order, then its formulas, sums written out. A value that is not a
finite real number (a division by zero, the root of a negative number) is a
:class:`NotANumber` naming it.

>>> from bngraph.engine.layers import LAYERS
>>> from bngraph.engine.graph import build_graph
>>> from bngraph.engine.derive import derive
>>> d = derive(build_graph(LAYERS["batchnorm"].trace(2)))
>>> v = forward_values(d.graph, {"x_1": 1.0, "x_2": 3.0, "gamma": 2.0, "beta": 0.5, "epsilon": 0.0})
>>> v["mu"], v["sigma2"], v["y_2"]
(2.0, 1.0, 2.5)
>>> g = adjoint_values(d, v, {"dL_dy_1": 1.0, "dL_dy_2": 0.0})
>>> g["gamma"], g["beta"]
(-1.0, 1.0)
"""
from __future__ import annotations

import math
from functools import lru_cache
from typing import Callable, Mapping

import numpy as np
import sympy as sp
from sympy.printing.codeprinter import PrintMethodNotImplementedError
from sympy.printing.pycode import PythonCodePrinter

from bngraph.errors import BngraphError
from bngraph.engine.derive import Derivation, adjoint_name
from bngraph.engine.graph import Graph, symbol
from bngraph.engine.replicas import Texts, mul_precedence_from_coefficient
from bngraph.closedform import plates
from bngraph.closedform.simplify import ClosedForm, concrete


class NotANumber(BngraphError):
    """A value that is not a finite real number at the point: ``name`` and ``reason`` say which and why."""

    def __init__(self, name: str, reason: str):
        super().__init__(f"{name} is {reason}")
        self.name, self.reason = name, reason


def _number(expr: sp.Expr, values: Mapping[sp.Symbol, sp.Float], name: str = "a value") -> float:
    value = expr.xreplace(values).evalf()
    if value.has(sp.zoo, sp.nan, sp.oo, -sp.oo):
        raise NotANumber(name, "not finite")
    try:
        number = float(value)
    except TypeError:  # complex (the root or log of a negative number), or a symbol left over
        if value.free_symbols:
            raise
        raise NotANumber(name, "not real") from None
    if not math.isfinite(number):
        raise NotANumber(name, "not finite")
    return number


def forward_values(graph: Graph, leaves: Mapping[str, float]) -> dict[str, float]:
    """Every node's value, given the leaves (inputs, parameters, constants) by name."""
    known = {symbol(k): sp.Float(v) for k, v in leaves.items()}
    values = dict(leaves)
    for node in graph:
        if node.expr is None:
            if node.name not in leaves:
                raise KeyError(f"no value given for {node.name}")
            continue
        values[node.name] = _number(node.expr, known, node.name)
        known[node.symbol] = sp.Float(values[node.name])
    return values


def adjoint_values(derivation: Derivation, values: Mapping[str, float], upstream: Mapping[str, float]) -> dict[str, float]:
    """Every adjoint's value by node name, from the forward values and dL_dy_k."""
    known = {symbol(k): sp.Float(v) for k, v in values.items()}
    known.update({symbol(k): sp.Float(v) for k, v in upstream.items()})
    out = {}
    for name, adjoint in derivation.adjoints.items():  # reverse topological order
        out[name] = _number(adjoint.expr, known, adjoint_name(name))
        known[symbol(adjoint_name(name))] = sp.Float(out[name])
    return out


class _SafeNamePrinter(PythonCodePrinter):
    """Python code for ``lambdify`` in which every node is called by a name of ours: a node may
    be named ``math`` or ``sqrt``, which the generated code uses itself. Example k's code is
    example 1's with k for 1 (:class:`~bngraph.engine.replicas.Texts`): its names keep the index."""

    def __init__(self, names: Mapping[str, str]):
        super().__init__({"fully_qualified_modules": False, "order": "none"})  # math's sqrt; terms unsorted
        self._names = names
        self._printed: dict = {}
        self._replicas = Texts()

    def _print(self, expr, **kwargs):
        if kwargs or not isinstance(expr, sp.Basic):
            return super()._print(expr, **kwargs)
        text = self._printed.get(expr)
        if text is None:
            text = self._printed[expr] = self._replicas.text(expr, super()._print)
        return text

    def _print_Symbol(self, expr):
        return self._names.get(expr.name) or _SAFE + expr.name

    def doprint(self, expr, assign_to=None):
        """CodePrinter's, without its rebuilding of every expression to unwrap ``re(…)`` of an
        ``UnevaluatedExpr``: that changes nothing where no ``re`` is printed, and printing one
        fails here (this printer is strict), so such an expression goes the whole way. lambdify
        prints every node's assignment through this; those rebuilds were a fifth of ``verify``'s
        printing at m = 256."""
        if assign_to is not None or not isinstance(expr, sp.Basic):
            return super().doprint(expr, assign_to)
        self._not_supported, self._number_symbols = set(), set()
        try:
            with mul_precedence_from_coefficient():
                lines = self._print(expr).splitlines()
        except PrintMethodNotImplementedError:
            lines = None
        plain = lines is not None and not (self._not_supported or self._number_symbols)
        self._not_supported, self._number_symbols = set(), set()
        return "\n".join(lines) if plain else super().doprint(expr, assign_to)


_SAFE = "_bngraph_"  # the prefix of our names in generated code


def _safe_names(order: list[str]) -> dict[str, str]:
    """_bngraph_x_1 for x_1: the index stays in the name; a name that is no identifier gets a number."""
    return {name: _SAFE + (name if name.isidentifier() else f"{k}") for k, name in enumerate(order)}


def compiled_values(derivation: Derivation) -> Callable[[Mapping, Mapping], tuple[dict, dict]]:
    """``forward_values`` and ``adjoint_values`` of ``derivation`` as one function, lambdified once
    and run on Python floats (IEEE double, as NumPy's float64): for evaluating at many points.

    xreplace + evalf of every node at every point was most of ``verify``'s time. Where a value
    comes out other than a finite real number, the exact evaluation runs instead, so the
    :class:`NotANumber` names the node and the reason as before.
    """
    graph = derivation.graph
    leaves = [n.name for n in graph if n.expr is None]
    upstream = [adjoint_name(n.name) for n in graph.outputs]
    nodes = [n for n in graph if n.expr is not None]
    adjoints = list(derivation.adjoints.values())
    order = leaves + upstream + [n.name for n in nodes] + [a.name for a in adjoints]
    names = _safe_names(order)
    # every value in order, each from the ones before: lambdify's cse hook takes the assignments as they are
    assignments = [(n.symbol, n.expr) for n in nodes] + [(a.symbol, a.expr) for a in adjoints]
    results = sp.Tuple(*(symbol(name) for name in order[len(leaves) + len(upstream):]))  # one walk, not one per value
    function = sp.lambdify([sp.Symbol(names[n]) for n in leaves + upstream], results, modules="math",
                           printer=_SafeNamePrinter(names), cse=lambda exprs: (assignments, exprs))

    def values(leaf_values: Mapping[str, float], upstream_values: Mapping[str, float]) -> tuple[dict, dict]:
        got = None
        try:
            got = function(*(float(leaf_values[n]) for n in leaves), *(float(upstream_values[n]) for n in upstream))
        except (ArithmeticError, ValueError):  # 1/0, the root of a negative number, an overflow
            pass
        if got is None or not all(isinstance(v, (int, float)) and math.isfinite(v) for v in got):
            forward = forward_values(graph, leaf_values)
            return forward, adjoint_values(derivation, forward, upstream_values)
        forward = dict(leaf_values)
        forward.update((n.name, float(v)) for n, v in zip(nodes, got))
        return forward, {a.node: float(v) for a, v in zip(adjoints, got[len(nodes):])}

    return values


def closed_form_values(closed: ClosedForm, leaves: Mapping[str, float], upstream: Mapping[str, float], m: int) -> dict[str, list | float]:
    """Each closed-form formula at m examples, from the leaves (x_k, the parameters) and dL_dy_k
    alone: its definitions are evaluated first, in their order. A list over i = 1..m for
    per-example formulas."""
    known = {symbol(k): sp.Float(v) for k, v in leaves.items()}
    known.update({symbol(k): sp.Float(v) for k, v in upstream.items()})
    for key, definition in closed.definitions.items():
        value = _at_every_i(key, definition, known, m)
        if isinstance(value, list):
            known.update({symbol(f"{key[:-3]}_{k}"): sp.Float(v) for k, v in enumerate(value, 1)})
        else:
            known[symbol(key)] = sp.Float(value)
    return {key: _at_every_i(key, formula, known, m) for key, formula in closed.formulas.items()}


def _at_every_i(key: str, formula: sp.Expr, known: dict, m: int) -> list | float:
    """``formula`` at m: for each i when ``key`` ends in [i], else once; in float64 over arrays
    when that gives finite real numbers, else exactly (which names what is not a number)."""
    fast = _in_float64(key, formula, known, m)
    return fast if fast is not None else _exactly(key, formula, known, m)


def _in_float64(key: str, formula: sp.Expr, known: dict, size: int) -> list | float | None:
    """The formula lambdified once, i running over a NumPy array (x[i] the array of x_k), each
    Σ_j a NumPy sum; None where that does not give finite real numbers, or cannot be done."""
    try:
        with np.errstate(all="ignore"):
            sums, totals = {}, {}  # each Σ_j by a stand-in symbol: its value goes in as an argument, all its bits
            for s in formula.atoms(sp.Sum):
                (index, low, high), = s.limits
                if low != 1 or high != plates.m:
                    return None
                body = _over_batch(s.function, index, known, size)
                if body is None:
                    return None
                sums[s] = _stand_in(s)
                totals[sums[s]] = float(np.sum(body))
            value = _over_batch(formula.xreplace(sums), plates.i, {**known, **totals}, size)
    except (ArithmeticError, ValueError, TypeError, KeyError):
        return None
    if value is None:
        return None
    return [float(v) for v in value] if key.endswith("[i]") else float(value[0])


def _over_batch(expr: sp.Expr, index: sp.Symbol, known: dict, size: int) -> np.ndarray | None:
    """``expr`` (in base[index], batch scalars and m) for index = 1..size, as a float64 array."""
    compiled = _batch_function(expr, index, size)
    if compiled is None:
        return None
    function, bases, scalars = compiled
    arrays = [np.array([float(known[symbol(f"{base}_{k}")]) for k in range(1, size + 1)]) for base in bases]
    value = np.broadcast_to(np.asarray(function(*arrays, *(float(known[s]) for s in scalars))), (size,))
    if value.dtype.kind != "f" or not np.all(np.isfinite(value)):
        return None
    return value


@lru_cache(maxsize=256)
def _stand_in(total: sp.Sum) -> sp.Dummy:
    """The one symbol that stands for ``total``'s value (the same at every point: one lambdify)."""
    return sp.Dummy()


@lru_cache(maxsize=256)
def _batch_function(expr: sp.Expr, index: sp.Symbol, size: int):
    """``expr`` lambdified over the batch (each base[index] an array), with the bases and scalars it
    takes; None where it is not a function of one index. Once per formula, however many points."""
    expr = expr.xreplace({plates.m: sp.Integer(size)})
    indexed = expr.atoms(sp.Indexed)
    if any(e.indices != (index,) for e in indexed):
        return None
    stand_in = {e: sp.Dummy() for e in indexed}
    expr = expr.xreplace(stand_in)
    scalars = sorted(expr.free_symbols - set(stand_in.values()), key=str)
    if expr.has(sp.Sum) or plates.i in scalars or plates.j in scalars:
        return None
    function = sp.lambdify([*stand_in.values(), *scalars], expr, "numpy")
    return function, tuple(str(e.base) for e in stand_in), tuple(scalars)


def _exactly(key: str, formula: sp.Expr, known: dict, m: int) -> list | float:
    # each Σ_j is a batch quantity, the same for every i: evaluate it once, not m times
    sums = {s: sp.Float(_number(concrete(s, m), known, key)) for s in formula.atoms(sp.Sum)}
    formula = formula.xreplace(sums)
    if key.endswith("[i]"):
        return [_number(concrete(formula, m, k), known, key.replace("[i]", f"_{k}")) for k in range(1, m + 1)]
    return _number(concrete(formula, m), known, key)


def random_point(graph: Graph, seed: int = 0, epsilon: float = 1e-5) -> tuple[dict[str, float], dict[str, float]]:
    """A random point for ``graph``: its leaves, and the upstream gradients dL_dy_k.

    Inputs are drawn around 0.5 with spread 2, parameters (and running statistics) in
    [0.5, 2), so variances and square roots stay positive; ε (any leaf named eps…) is fixed.

    >>> from bngraph.engine.layers import LAYERS
    >>> from bngraph.engine.graph import build_graph
    >>> leaves, upstream = random_point(build_graph(LAYERS["batchnorm"].trace(2)))
    >>> sorted(leaves), sorted(upstream), leaves["epsilon"]
    (['beta', 'epsilon', 'gamma', 'x_1', 'x_2'], ['dL_dy_1', 'dL_dy_2'], 1e-05)
    """
    rng = np.random.default_rng(seed)
    leaves = {}
    for node in graph.with_role("input", "parameter", "constant"):
        if "eps" in node.name or node.name == "ε":
            leaves[node.name] = epsilon
        elif node.role == "input":
            leaves[node.name] = float(rng.normal(0.5, 2.0))
        else:
            leaves[node.name] = float(rng.uniform(0.5, 2.0))
    upstream = {f"dL_d{n.name}": float(rng.normal()) for n in graph.outputs}
    return leaves, upstream

