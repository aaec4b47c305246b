"""Replicas change nothing a derivation holds (issue 17): graphs, partials, adjoints and printed
text are the same trees and bytes as when every example is built by SymPy, on every built-in
layer and the NumPy forwards, and on forwards made to defeat the renaming (an example treated
apart, neighbours mixed, family names whose order flips with the index)."""
from __future__ import annotations

import bngraph

import pytest
import sympy as sp

import bngraph.engine.replicas as replicas_module
from bngraph.engine.derive import derive
from bngraph.engine.graph import build_graph
from bngraph.engine.layers import LAYERS
from bngraph.engine.trace import name, stage, trace
from bngraph.output.export import to_json, to_text
from tests.data import numpy_forwards


def first_treated_apart(x, gamma, beta):
    """Example 3's family members are made by another rule than the others'."""
    mu = name(sum(x) / len(x), "mu")
    d = stage([xk - mu for xk in x], "d")
    h = name([dk * dk if k == 2 else 2 * dk for k, dk in enumerate(d)], "h")  # k counts the loop, not data
    return [gamma * hk + beta for hk in h]


def neighbours(x, gamma, beta):
    """Each example's nodes read the previous example's input too."""
    mu = name(sum(x) / len(x), "mu")
    d = stage([x[k] - x[k - 1] for k in range(len(x))], "d")
    h = name([dk * (xk - mu) for dk, xk in zip(d, x)], "h")
    return [gamma * hk + beta for hk in h]


def flipping_names(x, gamma, beta):
    """Families a and a_1 (nodes a_k, a_1_k): a_1 < a_1_1, but a_1_2 < a_2."""
    mu = name(sum(x) / len(x), "mu")
    a = name([xk - mu for xk in x], "a")
    e = name([ak * bngraph.exp(ak) for ak in a], "a_1")
    s = stage([ak + ek for ak, ek in zip(a, e)], "s")  # a_k + a_1_k: its order is the index's
    return [gamma * sk / (ak * ak + 1) + xk * beta for sk, ak, xk in zip(s, a, x)]


FORWARDS = [first_treated_apart, neighbours, flipping_names,
            numpy_forwards.kratzert_nine_steps, numpy_forwards.unbiased_ddof1, numpy_forwards.rmsnorm_square]


def _everything(graph):
    d = derive(graph)
    trees = {
        "values": {k: sp.srepr(v) for k, v in graph.inlined.items()} if graph.view == "named" else {},
        "partials": {k: sp.srepr(v) for k, v in d.partials.items()},
        "adjoints": {k: sp.srepr(a.expr) for k, a in d.adjoints.items()},
    }
    return trees, to_json(d), to_text(d)


def _both(monkeypatch, make_graph):
    with_replicas = _everything(make_graph())
    monkeypatch.setattr(replicas_module.Replicas, "get", lambda self, family, k, inputs, compute: compute())
    monkeypatch.setattr(replicas_module.Texts, "text", lambda self, expr, print_expr: print_expr(expr))
    without = _everything(make_graph())
    monkeypatch.undo()
    return with_replicas, without


@pytest.mark.parametrize("view", ["named", "staged"])
@pytest.mark.parametrize("layer", sorted(LAYERS))
def test_built_in_layers(monkeypatch, layer, view):
    got, want = _both(monkeypatch, lambda: build_graph(LAYERS[layer].trace(12), view, layer))
    assert got == want


@pytest.mark.parametrize("view", ["named", "staged"])
@pytest.mark.parametrize("forward", FORWARDS, ids=lambda f: f.__name__)
def test_forwards_made_to_defeat_the_renaming(monkeypatch, forward, view):
    got, want = _both(monkeypatch, lambda: build_graph(trace(forward, 11), view, forward.__name__))
    assert got == want
