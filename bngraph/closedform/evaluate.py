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
from typing import Mapping

import numpy as np
import sympy as sp

from bngraph.errors import BngraphError
from bngraph.engine.derive import Derivation, adjoint_name
from bngraph.engine.graph import Graph, symbol
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
    """``formula`` at m: for each i when ``key`` ends in [i], else once."""
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

