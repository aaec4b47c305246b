"""Printers of a derivation as text and JSON (the contract's ``derive --format json``).

Printers only read the immutable results; the same input gives byte-identical output.

>>> from bngraph.engine.layers import LAYERS
>>> from bngraph.engine.graph import build_graph
>>> from bngraph.engine.derive import derive
>>> doc = to_json_dict(derive(build_graph(LAYERS["batchnorm"].trace(2))))
>>> list(doc)
['layer', 'm', 'view', 'nodes', 'forward', 'adjoints']
>>> doc["forward"]["mu"]
'(x_1 + x_2)/2'
"""
from __future__ import annotations

import json
from typing import Any, Callable

import sympy as sp
from sympy.printing.str import StrPrinter

from bngraph.engine.derive import Derivation
from bngraph.engine.replicas import Texts, mul_precedence_from_coefficient
from bngraph.engine.layers import LAYERS


class _MemoPrinter(StrPrinter):
    """SymPy's str printer, remembering what it printed: √(σ² + ε) appears in m adjoints.

    StrPrinter prints a subexpression the same wherever it stands (the parentheses are the
    caller's), so one printer can reuse its strings across a whole document.
    """

    def __init__(self, settings=None):
        super().__init__(settings)
        self._printed: dict = {}
        self._replicas = Texts()  # dL_dx_7's text is dL_dx_1's with 7 for 1

    def doprint(self, expr):
        with mul_precedence_from_coefficient():
            return super().doprint(expr)

    def _print(self, expr, **kwargs):
        if kwargs:
            return super()._print(expr, **kwargs)
        text = self._printed.get(expr)
        if text is None:
            text = self._printed[expr] = self._replicas.text(expr, super()._print)
        return text


def expr_printer() -> Callable[[sp.Expr], str]:
    """A printer of expressions as text that ``sympy.parse_expr`` reads back (given the names
    as symbols), in SymPy's own deterministic term order (fast; reads ``x_1 - mu``)."""
    return _MemoPrinter({"order": "none"}).doprint


def expr_str(expr: sp.Expr) -> str:
    return expr_printer()(expr)


def closed_str(expr: sp.Expr) -> str:
    """A (short) closed-form formula in SymPy's sorted term order: m*dL_dy[i] - ... - ..."""
    return sp.sstr(expr)


def to_json_dict(derivation: Derivation, closed=None) -> dict[str, Any]:
    """The contract's JSON object: layer, m, view, nodes, forward, adjoints[, closed_form, definitions]."""
    g = derivation.graph
    expr_str = expr_printer()
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
        doc["definitions"] = {key: closed_str(e) for key, e in closed.definitions.items()}  # dependency order
    return doc


def to_json(derivation: Derivation, closed=None) -> str:
    return json.dumps(to_json_dict(derivation, closed), indent=2, ensure_ascii=False) + "\n"


def to_text(derivation: Derivation, closed=None) -> str:
    """The trace (one node a line), then one adjoint a line (examples ascending), then the closed form.

    A built-in layer's staged view lists its adjoints step by step, last step first.
    """
    expr_str = expr_printer()
    lines = [str(derivation.graph), ""]
    steps = _backward_steps(derivation)
    if steps is None:
        lines.append("adjoints (reverse mode; the upstream dL_dy_k are given):")
        lines += [f"  {a.name} = {expr_str(a.expr)}" for a in derivation.in_reading_order()]
    else:
        layer = LAYERS[derivation.graph.layer]
        lines.append(f"adjoints (reverse mode; the upstream dL_dy_k are given), in the {len(layer.steps)} steps "
                     f"of {layer.name}'s staged backward, last step first:")
        for number in range(len(layer.steps), 0, -1):
            lines.append(f"  step {number}, {layer.steps[number - 1][1]}")
            lines += [f"    {a.name} = {expr_str(a.expr)}"
                      for a in derivation.in_reading_order() if steps[a.node] == number]
    if closed is not None:
        lines += ["", "definitions (symbolic m, in dependency order; the formulas below are written in them):"]
        lines += [f"  {key} = {closed_str(e)}" for key, e in closed.definitions.items()]
        if closed.recognised:
            lines += [f"  ({closed.recognised})"]
        lines += ["", "closed form (symbolic m, for every m >= 1; i free, j summed over 1..m):"]
        lines += [f"  {key} = {closed_str(e)}" for key, e in closed.formulas.items()]
        lines += [f"  ({closed.provenance})"]
        lines += ["", "compact backward (common subexpressions):"]
        lines += [f"  {line}" for line in closed.compact_backward().splitlines()]
    return "\n".join(lines) + "\n"


def _backward_steps(derivation: Derivation) -> dict[str, int] | None:
    """The step of a built-in layer's staged backward in which each adjoint is completed, or None.

    A node belongs to the step that makes it (its name, or its family's, is the step's);
    an unnamed node to the first step that uses it. The adjoint of a node is complete once
    the backward has passed through every node that uses it: in the step of its first user.
    Grouping the adjoints so keeps them in an order in which each can be evaluated.
    """
    graph = derivation.graph
    layer = LAYERS.get(graph.layer)
    if graph.view != "staged" or layer is None or not layer.steps:
        return None
    number = {name: k for k, (name, _) in enumerate(layer.steps, 1)}
    own: dict[str, int] = {}
    for node in reversed(graph.nodes):  # every user of a node before the node itself
        family = node.name.rsplit("_", 1)[0] if node.name.rsplit("_", 1)[-1].isdigit() else node.name
        users = [own[c] for c in graph.children(node.name) if c in own]
        if family in number:
            own[node.name] = number[family]
        elif users and node.role not in ("input", "parameter", "constant"):
            own[node.name] = min(users)
    steps = {}
    for adjoint in derivation.adjoints.values():
        users = [own[c] for c in graph.children(adjoint.node) if c in own]
        if not users:  # a layer whose nodes do not all carry its steps' names: no grouping
            return None
        steps[adjoint.node] = min(users)
    return steps
