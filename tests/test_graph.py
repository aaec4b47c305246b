"""Graph views: the traced Batch Norm has exactly the paper's nodes and edges (named view)
and the 9-step nodes (staged view); forward expressions match a NumPy forward."""
import re

import networkx as nx
import numpy as np
import pytest
import sympy as sp
from sympy.parsing.sympy_parser import parse_expr

from bngraph import BngraphError, build_graph
from bngraph.engine.layers import LAYERS, trace_target
from numpy_layers import REFERENCES
from walk_json import JsonGraph, derive_json, rel_error, target_spec

GENERATED = re.compile(r"t\d+")


def graph_of(target, m, view):
    layer, function = target_spec(target)
    return build_graph(trace_target(layer, function, m), view, function or layer)


def op_label(op, parents):
    """How an unnamed node (t1, t2 …) is identified: its op and its parents."""
    return f"{op}({','.join(sorted(parents))})"


def canonical(graph):
    """{node: set of parents}, every generated name replaced by its ``op_label``."""
    label = {}
    for n in graph:  # topological order: parents are labelled first
        parents = [label[p] for p in n.parents]
        label[n.name] = op_label(n.op, parents) if GENERATED.fullmatch(n.name) else n.name
    return {label[n.name]: {label[p] for p in n.parents} for n in graph}


def xs(m):
    return [f"x_{k}" for k in range(1, m + 1)]


def leaves(m, constants=("epsilon",)):
    return {**{x: set() for x in xs(m)}, "gamma": set(), "beta": set(), **{c: set() for c in constants}}


def batchnorm_named(m, epsilon="epsilon"):
    """The paper's graph: mu <- x_*, sigma2 <- x_*, mu; xhat_k <- x_k, mu, sigma2, epsilon; y_k <- xhat_k, gamma, beta."""
    parents = {**leaves(m, (epsilon,)), "mu": set(xs(m)), "sigma2": set(xs(m)) | {"mu"}}
    for k in range(1, m + 1):
        parents[f"xhat_{k}"] = {f"x_{k}", "mu", "sigma2", epsilon}
        parents[f"y_{k}"] = {f"xhat_{k}", "gamma", "beta"}
    return parents


def batchnorm_staged(m):
    """The 9 steps: mu, xmu, sq, sigma2, sqrtvar, ivar, xhat, gammax, y (and the adds between)."""
    parents = leaves(m)
    sq = [f"sq_{k}" for k in range(1, m + 1)]
    if m > 1:  # builtin sum of one item is the item: no add node
        parents[op_label("add", xs(m))] = set(xs(m))
        parents[op_label("add", sq)] = set(sq)
    parents["mu"] = {op_label("add", xs(m)) if m > 1 else "x_1"}
    parents["sigma2"] = {op_label("add", sq) if m > 1 else "sq_1"}
    shifted = op_label("add", ["sigma2", "epsilon"])
    parents.update({shifted: {"sigma2", "epsilon"}, "sqrtvar": {shifted}, "ivar": {"sqrtvar"}})
    for k in range(1, m + 1):
        parents[f"xmu_{k}"] = {f"x_{k}", "mu"}
        parents[f"sq_{k}"] = {f"xmu_{k}"}
        parents[f"xhat_{k}"] = {f"xmu_{k}", "ivar"}
        parents[f"gammax_{k}"] = {"gamma", f"xhat_{k}"}
        parents[f"y_{k}"] = {f"gammax_{k}", "beta"}
    return parents


# (nodes, edges) of Batch Norm, counted by hand: named 3m+5 nodes, 9m+1 edges.
COUNTS = {
    "named": {1: (8, 10), 2: (11, 19), 3: (14, 28), 8: (29, 73)},
    "staged": {1: (14, 15), 2: (22, 28), 3: (28, 39), 8: (58, 94)},
}


@pytest.mark.parametrize("m", [1, 2, 3, 8])
@pytest.mark.parametrize("view, expected", [("named", batchnorm_named), ("staged", batchnorm_staged)])
def test_batchnorm_has_exactly_its_nodes_and_edges(m, view, expected):
    g = build_graph(LAYERS["batchnorm"].trace(m), view)
    assert canonical(g) == expected(m)
    n_nodes, n_edges = COUNTS[view][m]
    assert (len(g), g.digraph.number_of_nodes(), g.digraph.number_of_edges()) == (n_nodes, n_nodes, n_edges)
    assert set(g.digraph.edges) == {(p, n.name) for n in g for p in n.parents}


@pytest.mark.parametrize("view", ["named", "staged"])
def test_nodes_are_in_topological_order_with_their_roles(view):
    g = build_graph(LAYERS["batchnorm"].trace(3), view)
    position = {n.name: k for k, n in enumerate(g)}
    assert nx.is_directed_acyclic_graph(g.digraph)
    assert all(position[p] < position[n.name] for n in g for p in n.parents)
    roles = {n.name: n.role for n in g}
    assert [n.name for n in g.inputs] == xs(3) and [n.name for n in g.outputs] == ["y_1", "y_2", "y_3"]
    assert (roles["gamma"], roles["beta"], roles["epsilon"]) == ("parameter", "parameter", "constant")
    assert {roles[n] for n in roles if n not in {*xs(3), "gamma", "beta", "epsilon", "y_1", "y_2", "y_3"}} \
        == {"intermediate"}
    assert all(dict(g.digraph.nodes[n.name]) == {"op": n.op, "role": n.role} for n in g)


def test_named_view_of_the_other_layers():
    ln = build_graph(LAYERS["layernorm"].trace(4), "named")
    assert canonical(ln) == batchnorm_named(4)
    ev = build_graph(LAYERS["batchnorm-eval"].trace(2), "named")
    expected = leaves(2, ("epsilon", "running_mean", "running_var"))
    for k in (1, 2):
        expected[f"xhat_{k}"] = {f"x_{k}", "epsilon", "running_mean", "running_var"}
        expected[f"y_{k}"] = {f"xhat_{k}", "gamma", "beta"}
    assert canonical(ev) == expected
    assert [n.name for n in ev.with_role("constant")] == ["epsilon", "running_mean", "running_var"]


def test_a_user_batchnorm_written_differently_has_the_same_named_graph():
    g = graph_of("my_batchnorm", 3, "named")
    assert canonical(g) == batchnorm_named(3, epsilon="eps")
    assert g.layer.endswith("user_layers.py:my_batchnorm")


def test_named_view_contracts_the_staged_steps_into_regions():
    g = build_graph(LAYERS["batchnorm"].trace(2), "named")
    assert g["xhat_1"].region == ("xmu_1", "t3", "sqrtvar", "ivar", "xhat_1")
    assert g["y_2"].region == ("gammax_2", "y_2")
    assert g.staged.view == "staged"
    assert sp.expand(g["mu"].expr - (sp.Symbol("x_1") + sp.Symbol("x_2")) / 2) == 0


def test_an_unknown_view_is_an_error():
    with pytest.raises(BngraphError, match="unknown view 'flat'; choose one of: named, staged"):
        build_graph(LAYERS["batchnorm"].trace(2), "flat")


# -- print(graph) reads like a jaxpr ----------------------------------------------------
@pytest.mark.parametrize("view", ["named", "staged"])
def test_printed_graph_reads_like_a_jaxpr(view):
    g = build_graph(LAYERS["batchnorm"].trace(3), view)
    lines = str(g).splitlines()
    assert lines[0] == f"batchnorm  (m = 3, {view} view)"
    assert lines[1].split() == ["inputs:", "x_1", "x_2", "x_3"]
    assert lines[2].split() == ["parameters:", "gamma", "beta"]
    assert lines[3].split() == ["constants:", "epsilon"]
    assert lines[-1].split() == ["outputs:", "y_1", "y_2", "y_3"]
    body = lines[4:-1]
    computed = [n for n in g if n.expr is not None]
    assert [line.split(" = ")[0].strip() for line in body] == [n.name for n in computed]  # one node a line
    assert all(line.startswith("  ") and line.count(" = ") == 1 for line in body)
    symbols = {n.name: sp.Symbol(n.name) for n in g}
    for line, n in zip(body, computed):
        rhs = line.split(" = ")[1]
        if view == "named":
            assert sp.expand(parse_expr(rhs, local_dict=symbols) - n.expr) == 0
        else:  # "op arg arg …"
            assert rhs.split() == [n.op, *map(str, n.args)]
    if view == "staged":
        assert "  mu       = div t1 3" in lines


# -- forward expressions agree with NumPy -----------------------------------------------
FORWARD_TARGETS = ["batchnorm", "batchnorm-eval", "layernorm", "my_batchnorm", "batchnorm_one_pass",
                   "rmsnorm", "log_softmax"]


@pytest.mark.parametrize("m", [1, 4])
@pytest.mark.parametrize("view", ["named", "staged"])
@pytest.mark.parametrize("target", FORWARD_TARGETS)
def test_forward_expressions_agree_with_numpy(target, view, m):
    doc = JsonGraph(derive_json(target, m, view))
    for name, expr in doc.forward.items():  # each node from its parents only
        assert {s.name for s in expr.free_symbols} <= set(doc.nodes[name]["parents"]), name
    reference = REFERENCES[target]
    rng = np.random.default_rng([m, len(target)])
    compared = set()
    for _ in range(3):
        x, params = rng.normal(0.5, 1.5, m), reference.sample_params(rng)
        values = doc.evaluate_forward(x, params)
        for quantity, expected in reference.forward(x, **params).items():
            names = [quantity] if np.ndim(expected) == 0 else [f"{quantity}_{k}" for k in range(1, m + 1)]
            if names[0] in values:
                assert rel_error([values[n] for n in names], expected) < 1e-12, quantity
                compared.add(quantity)
    assert "y" in compared
    if view == "named":  # every named intermediate was checked
        named = {re.sub(r"_\d+$", "", n) for n in doc.names_with_role("intermediate")}
        assert named <= compared
