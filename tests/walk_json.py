"""Evaluate a ``bngraph derive --format json`` document numerically, as its contract says
anyone can: parse every ``forward`` and ``adjoints`` string with ``sympy.parse_expr`` and
walk the graph — forward values from the leaves up, then adjoints from the outputs down.

Each expression is evaluated as soon as every name it uses is known, so the walk does not
trust the document's order; an expression that never becomes ready is an error.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import sympy as sp
from sympy.parsing.sympy_parser import parse_expr


class JsonGraph:
    """One derive JSON document, parsed: ``forward`` and ``adjoints`` as SymPy expressions."""

    def __init__(self, text: str):
        self.doc = json.loads(text)
        self.nodes = {n["name"]: n for n in self.doc["nodes"]}
        names = list(self.nodes) + [f"dL_d{n}" for n in self.nodes]
        # Every name a Symbol: otherwise parse_expr reads gamma, beta as SymPy functions.
        self.symbols = {n: sp.Symbol(n) for n in names}
        self.forward = {k: self.parse(v) for k, v in self.doc["forward"].items()}
        self.adjoints = {k: self.parse(v) for k, v in self.doc["adjoints"].items()}

    def parse(self, text: str) -> sp.Expr:
        return parse_expr(text, local_dict=self.symbols)

    def names_with_role(self, *roles) -> list[str]:
        return [n for n, node in self.nodes.items() if node["role"] in roles]

    @property
    def outputs(self) -> list[str]:
        return self.names_with_role("output")

    def leaf_values(self, x, params: dict) -> dict[str, float]:
        values = {f"x_{k}": float(v) for k, v in enumerate(x, 1)}
        values.update({p: float(v) for p, v in params.items()})
        missing = set(self.names_with_role("input", "parameter", "constant")) - set(values)
        assert not missing, f"no value given for {sorted(missing)}"
        return values

    def evaluate_forward(self, x, params: dict) -> dict[str, float]:
        """Every node's value at the point (x, params)."""
        return walk(self.forward, self.leaf_values(x, params))

    def evaluate_adjoints(self, x, params: dict, dy) -> dict[str, float]:
        """Every adjoint dL_d<node>, given the upstream dL_dy_k = dy[k-1]."""
        known = self.evaluate_forward(x, params)
        known.update({f"dL_d{y}": float(g) for y, g in zip(self.outputs, dy)})
        return walk(self.adjoints, known)

    def gradients(self, x, params: dict, dy, wrt=("gamma", "beta")) -> dict:
        """dL/dx as an array and dL/d<p> for the parameters ``wrt``, from the document."""
        values = self.evaluate_adjoints(x, params, dy)
        grads = {"x": np.array([values[f"dL_dx_{k}"] for k in range(1, len(x) + 1)])}
        grads.update({p: values[f"dL_d{p}"] for p in wrt})
        return grads


def walk(exprs: dict[str, sp.Expr], known: dict[str, float]) -> dict[str, float]:
    """Evaluate ``exprs`` (name -> expression) in dependency order, starting from ``known``."""
    known = dict(known)
    pending = {k: (e, sorted(e.free_symbols, key=str)) for k, e in exprs.items()}
    while pending:
        ready = [k for k, (_, syms) in pending.items() if all(s.name in known for s in syms)]
        assert ready, f"cannot evaluate {sorted(pending)}: they use unknown names or each other"
        for k in ready:
            expr, syms = pending.pop(k)
            f = sp.lambdify(syms, expr, modules="math")
            known[k] = float(f(*(known[s.name] for s in syms)))
    return known


def rel_error(actual, expected, floor: float = 1e-3) -> float:
    """max |actual − expected| / max |expected| (the max-norm relative error).

    ``floor`` keeps an exactly-zero reference (m = 1, where x̂ = 0) from dividing by zero.
    """
    actual, expected = np.atleast_1d(actual).astype(float), np.atleast_1d(expected).astype(float)
    assert actual.shape == expected.shape
    return float(np.max(np.abs(actual - expected)) / max(np.max(np.abs(expected)), floor))


# -- the document under test ----------------------------------------------------------
USER_LAYERS = Path(__file__).parent / "data" / "user_layers.py"


def target_spec(target: str) -> tuple[str | None, str | None]:
    """(layer, function) for a built-in layer name or a function of tests/data/user_layers.py."""
    from bngraph.engine.layers import LAYERS

    return (target, None) if target in LAYERS else (None, f"{USER_LAYERS}:{target}")


def derive_json(target: str, m: int, view: str = "named") -> str:
    """``bngraph derive --format json`` of ``target`` without the closed form, as the CLI builds it."""
    from bngraph.engine.derive import derive
    from bngraph.output.export import to_json
    from bngraph.engine.graph import build_graph
    from bngraph.engine.layers import trace_target

    layer, function = target_spec(target)
    return to_json(derive(build_graph(trace_target(layer, function, m), view, function or layer)))
