"""Printers of a derivation as text and JSON (the contract's ``derive --format json``).

Printers only read the immutable results; the same input gives byte-identical output.

>>> from bngraph.layers import LAYERS
>>> from bngraph.graph import build_graph
>>> from bngraph.derive import derive
>>> doc = to_json_dict(derive(build_graph(LAYERS["batchnorm"].trace(2))))
>>> list(doc)
['layer', 'm', 'view', 'nodes', 'forward', 'adjoints']
>>> doc["forward"]["mu"]
'(x_1 + x_2)/2'
"""
from __future__ import annotations

import json
from typing import Any

import sympy as sp

from .derive import Derivation


def expr_str(expr: sp.Expr) -> str:
    """An expression as text that ``sympy.parse_expr`` reads back (given the names as symbols)."""
    return sp.sstr(expr, order="none")  # SymPy's own (deterministic) term order: fast, reads x_1 - mu


def closed_str(expr: sp.Expr) -> str:
    """A (short) closed-form formula in SymPy's sorted term order: m*dL_dy[i] - ... - ..."""
    return sp.sstr(expr)


def to_json_dict(derivation: Derivation, closed=None) -> dict[str, Any]:
    """The contract's JSON object: layer, m, view, nodes, forward, adjoints[, closed_form]."""
    g = derivation.graph
    doc: dict[str, Any] = {
        "layer": g.layer,
        "m": g.m,
        "view": g.view,
        "nodes": [{"name": n.name, "role": n.role, "parents": list(n.parents)} for n in g],
        "forward": {n.name: expr_str(n.expr) for n in g if n.expr is not None},
        "adjoints": {a.name: expr_str(a.expr) for a in derivation.adjoints.values()},
    }
    if closed is not None:
        doc["closed_form"] = {key: closed_str(e) for key, e in closed.formulas.items()}
    return doc


def to_json(derivation: Derivation, closed=None) -> str:
    return json.dumps(to_json_dict(derivation, closed), indent=2, ensure_ascii=False) + "\n"


def to_text(derivation: Derivation, closed=None) -> str:
    """The trace (one node a line), then one adjoint a line, then the closed form."""
    lines = [str(derivation.graph), "", "adjoints (reverse mode; the upstream dL_dy_k are given):"]
    lines += [f"  {a.name} = {expr_str(a.expr)}" for a in derivation.adjoints.values()]
    if closed is not None:
        lines += ["", "closed form (symbolic m, for every m >= 1; i free, j summed over 1..m):"]
        lines += [f"  {key} = {closed_str(e)}" for key, e in closed.formulas.items()]
        lines += ["", "compact backward (common subexpressions):"]
        lines += [f"  {line}" for line in closed.compact_backward().splitlines()]
    return "\n".join(lines) + "\n"
