"""Graphviz diagrams: what each drawing holds, read back from the DOT and the SVG it wrote."""
from __future__ import annotations

import hashlib
import re
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pygraphviz
import pytest
import sympy as sp

from bngraph.cli import main
from bngraph.engine.derive import derive
from bngraph.errors import BngraphError
from bngraph.engine.graph import build_graph
from bngraph.engine.layers import LAYERS
from bngraph.output.render import MORE, evaluate, render_graph

ROOT = Path(__file__).resolve().parents[1]
M = 3
K = range(1, M + 1)
LEGEND = {f"legend:{r}" for r in ("input", "parameter", "constant", "intermediate", "output")}
SVG = "{http://www.w3.org/2000/svg}"

# Batch norm at m = 3, written out by hand: every node's label lines and every edge parent -> child.
NAMED_LABELS = {
    **{f"x_{k}": [f"x{k}"] for k in K}, "gamma": ["γ"], "beta": ["β"], "epsilon": ["ε"],
    "mu": ["μ"], "sigma2": ["σ²"], **{f"xhat_{k}": [f"x̂{k}"] for k in K}, **{f"y_{k}": [f"y{k}"] for k in K},
}
NAMED_EDGES = {
    *((f"x_{k}", "mu") for k in K), *((f"x_{k}", "sigma2") for k in K), ("mu", "sigma2"),
    *((p, f"xhat_{k}") for k in K for p in (f"x_{k}", "epsilon", "mu", "sigma2")),
    *((p, f"y_{k}") for k in K for p in ("gamma", "beta", f"xhat_{k}")),
}
STAGED_LABELS = {
    **{f"x_{k}": [f"x{k}"] for k in K}, "gamma": ["γ"], "beta": ["β"], "epsilon": ["ε"],
    "t1": ["t1", "= x1 + x2 + x3"], "mu": ["μ", "= t1 / 3"],
    **{f"xmu_{k}": [f"xmu{k}", f"= x{k} − μ"] for k in K}, **{f"sq_{k}": [f"sq{k}", f"= xmu{k}2"] for k in K},
    "t2": ["t2", "= sq1 + sq2 + sq3"], "sigma2": ["σ²", "= t2 / 3"], "t3": ["t3", "= σ² + ε"],
    "sqrtvar": ["sqrtvar", "= √t3"], "ivar": ["ivar", "= 1 / sqrtvar"],
    **{f"xhat_{k}": [f"x̂{k}", f"= xmu{k} · ivar"] for k in K},
    **{f"gammax_{k}": [f"gammax{k}", f"= γ · x̂{k}"] for k in K},
    **{f"y_{k}": [f"y{k}", f"= gammax{k} + β"] for k in K},
}
STAGED_EDGES = {
    *((f"x_{k}", "t1") for k in K), ("t1", "mu"),
    *((p, f"xmu_{k}") for k in K for p in (f"x_{k}", "mu")), *((f"xmu_{k}", f"sq_{k}") for k in K),
    *((f"sq_{k}", "t2") for k in K), ("t2", "sigma2"), ("sigma2", "t3"), ("epsilon", "t3"),
    ("t3", "sqrtvar"), ("sqrtvar", "ivar"), *((p, f"xhat_{k}") for k in K for p in (f"xmu_{k}", "ivar")),
    *((p, f"gammax_{k}") for k in K for p in ("gamma", f"xhat_{k}")),
    *((p, f"y_{k}") for k in K for p in (f"gammax_{k}", "beta")),
}
EXPECTED = {"named": (NAMED_LABELS, NAMED_EDGES), "staged": (STAGED_LABELS, STAGED_EDGES)}


def adjoint_line(name, lines):
    if name == "epsilon":  # a constant: no adjoint
        return []
    return [f"∂L/∂{lines[0]}" + (" (given)" if name.startswith("y_") else "")]


def expected(view, direction):
    labels, edges = EXPECTED[view]
    if direction == "backward":
        labels = {n: lines + adjoint_line(n, lines) for n, lines in labels.items()}
        edges = {(c, p) for p, c in edges}
    return labels, edges


def text_lines(html_label: str) -> list[str]:
    """The lines a person reads in an HTML-like label: <BR/> breaks, other tags dropped."""
    return [re.sub(r"<[^>]*>", "", line) for line in html_label.split("<BR/>")]


@pytest.fixture(scope="module", params=["named", "staged"])
def bn3(request):
    return derive(build_graph(LAYERS["batchnorm"].trace(M), request.param))


@pytest.mark.parametrize("direction", ["forward", "backward"])
def test_dot_holds_exactly_the_expected_labels_and_edges(bn3, direction):
    dot = pygraphviz.AGraph(string=render_graph(bn3.graph, format="dot", direction=direction, derivation=bn3))
    labels, edges = expected(bn3.graph.view, direction)
    nodes = set(dot.nodes())
    assert nodes - LEGEND == set(labels) and LEGEND <= nodes
    assert {n: text_lines(dot.get_node(n).attr["label"]) for n in labels} == labels
    assert set(dot.edges()) == edges
    # each example in its own cluster, the shared statistics outside every cluster
    cluster = dot.get_subgraph("cluster_example_2")
    assert {"x_2", "xhat_2", "y_2"} <= set(cluster.nodes()) and "mu" not in cluster


@pytest.mark.parametrize("direction", ["forward", "backward"])
def test_svg_holds_exactly_the_expected_nodes_and_edges(bn3, direction):
    svg = ET.fromstring(render_graph(bn3.graph, format="svg", direction=direction, derivation=bn3))
    groups = {cls: {g.find(SVG + "title").text: g for g in svg.iter(SVG + "g") if g.get("class") == cls}
              for cls in ("node", "edge")}
    labels, edges = expected(bn3.graph.view, direction)
    assert set(groups["node"]) - LEGEND == set(labels)
    assert {n: "".join(t.text or "" for t in groups["node"][n].iter(SVG + "text")) for n in labels} == {
        n: "".join(lines) for n, lines in labels.items()}
    assert set(groups["edge"]) == {f"{a}->{b}" for a, b in edges}


def test_backward_edges_carry_the_local_partials():
    x1, mu, sigma2, eps, ivar, sqrtvar, t3, xmu1 = sp.symbols("x_1 mu sigma2 epsilon ivar sqrtvar t3 xmu_1")
    named = pygraphviz.AGraph(string=render_graph(build_graph(LAYERS["batchnorm"].trace(3)), format="dot",
                                                  direction="backward"))
    staged = pygraphviz.AGraph(string=render_graph(build_graph(LAYERS["batchnorm"].trace(3), "staged"),
                                                   format="dot", direction="backward"))
    known = [  # (drawing, child, parent, ∂child/∂parent known by hand)
        (named, "mu", "x_1", sp.Rational(1, 3)),
        (named, "xhat_1", "mu", -1 / sp.sqrt(sigma2 + eps)),
        (named, "y_2", "beta", 1),
        (staged, "mu", "t1", sp.Rational(1, 3)),
        (staged, "sq_1", "xmu_1", 2 * xmu1),
        (staged, "sqrtvar", "t3", 1 / (2 * sp.sqrt(t3))),
        (staged, "ivar", "sqrtvar", -1 / sqrtvar**2),
        (staged, "xhat_1", "ivar", xmu1),
    ]
    for drawing, child, parent, partial in known:
        label = drawing.get_edge(child, parent).attr["label"]
        assert sp.simplify(sp.sympify(label) - partial) == 0, (child, parent, label)
    assert named.get_edge("xhat_1", "epsilon").attr["style"] == "dashed"  # no adjoint for a constant


def test_chain_rule_puts_every_term_of_the_sum_in_the_node():
    dot = pygraphviz.AGraph(string=render_graph(build_graph(LAYERS["batchnorm"].trace(3)), format="dot",
                                                direction="backward", chain_rule=True))
    assert text_lines(dot.get_node("beta").attr["label"]) == ["β", "∂L/∂β ="] + [f"+ ∂L/∂y{k} · (1)" for k in K]


def numpy_batchnorm(x, gamma, beta, eps, dy):
    """The textbook forward and backward, independent of bngraph."""
    mu, var = x.mean(), x.var()
    xhat = (x - mu) / np.sqrt(var + eps)
    dxhat = dy * gamma
    dx = (len(x) * dxhat - dxhat.sum() - xhat * (dxhat * xhat).sum()) / (len(x) * np.sqrt(var + eps))
    return {"mu": mu, "sigma2": var, "y": gamma * xhat + beta}, {"x": dx, "gamma": (dy * xhat).sum(),
                                                                   "beta": dy.sum()}


def test_values_and_gradients_match_numpy():
    x, dy = np.array([1.0, 2.0, 4.0]), np.array([1.0, -1.0, 0.5])
    values = {"x_1": 1, "x_2": 2, "x_3": 4, "gamma": 2, "beta": 0.5, "epsilon": 1e-5,
              **{f"dL_dy_{k}": dy[k - 1] for k in K}}
    fwd, grad = numpy_batchnorm(x, 2.0, 0.5, 1e-5, dy)
    for view in ("named", "staged"):
        value, gradient = evaluate(derive(build_graph(LAYERS["batchnorm"].trace(3), view)), values)
        assert value["mu"] == pytest.approx(fwd["mu"]) and value["sigma2"] == pytest.approx(fwd["sigma2"])
        assert [value[f"y_{k}"] for k in K] == pytest.approx(fwd["y"])
        assert [gradient[f"x_{k}"] for k in K] == pytest.approx(grad["x"])
        assert gradient["gamma"] == pytest.approx(grad["gamma"]) and gradient["beta"] == pytest.approx(grad["beta"])
        assert "epsilon" not in gradient
    dot = pygraphviz.AGraph(string=render_graph(build_graph(LAYERS["batchnorm"].trace(3)), format="dot",
                                                values=values))
    assert text_lines(dot.get_node("x_1").attr["label"]) == ["x1", f"value 1", f"grad {grad['x'][0]:.4g}"]


def test_values_must_cover_every_leaf():
    g = build_graph(LAYERS["batchnorm"].trace(2))
    with pytest.raises(BngraphError, match="no number for x_2, epsilon"):
        render_graph(g, format="dot", values={"x_1": 1, "gamma": 1, "beta": 0})
    with pytest.raises(BngraphError, match="not a finite real"):  # the variance is 0 and epsilon too
        render_graph(g, format="dot", values={"x_1": 1, "x_2": 1, "gamma": 1, "beta": 0, "epsilon": 0})


def test_png_and_pdf_need_no_dot_executable(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    assert shutil.which("dot") is None
    g = build_graph(LAYERS["batchnorm"].trace(3), "staged")
    for suffix, magic in ((".png", b"\x89PNG"), (".pdf", b"%PDF")):
        data = render_graph(g, tmp_path / f"bn{suffix}", direction="backward")
        assert data.startswith(magic) and len(data) > 1024
        assert (tmp_path / f"bn{suffix}").read_bytes() == data
    assert render_graph(g, tmp_path / "bn.svg").startswith("<?xml")


def test_dot_and_svg_are_byte_identical_across_runs_and_hash_seeds():
    g = build_graph(LAYERS["batchnorm"].trace(3), "staged")
    assert render_graph(g, format="dot") == render_graph(g, format="dot")
    assert render_graph(g, format="svg", direction="backward") == render_graph(g, format="svg", direction="backward")
    script = (
        "import hashlib; from bngraph.engine.layers import LAYERS; from bngraph.engine.graph import build_graph;"
        "from bngraph.output.render import render_graph\n"
        "for v in ('named', 'staged'):\n"
        "    g = build_graph(LAYERS['batchnorm'].trace(3), v)\n"
        "    for d in ('forward', 'backward'):\n"
        "        for f in ('dot', 'svg'):\n"
        "            print(hashlib.sha256(render_graph(g, format=f, direction=d).encode()).hexdigest())\n"
    )
    procs = [subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True, cwd=ROOT,
                              env={"PYTHONHASHSEED": seed, "PATH": ""}) for seed in ("0", "1", "12345")]
    runs = {p.communicate()[0] for p in procs}
    assert all(p.returncode == 0 for p in procs)
    assert len(runs) == 1
    here = hashlib.sha256(render_graph(build_graph(LAYERS["batchnorm"].trace(3)), format="dot").encode())
    assert runs.pop().split()[0] == here.hexdigest()


def test_large_m_is_collapsed_to_an_ellipsis():
    g = build_graph(LAYERS["batchnorm"].trace(64), "staged")
    collapsed = pygraphviz.AGraph(string=render_graph(g, format="dot", direction="backward"))
    nodes = set(collapsed.nodes()) - LEGEND
    assert MORE in nodes and "61 more examples" in collapsed.get_node(MORE).attr["label"]
    assert {"x_1", "x_2", "x_64", "y_64", "mu", "ivar"} <= nodes and not {"x_3", "xhat_63"} & nodes
    assert len(nodes) < len(g) / 10
    assert collapsed.has_edge("t1", MORE) and collapsed.has_edge(MORE, "ivar")  # gradient from hidden examples
    full = pygraphviz.AGraph(string=render_graph(g, format="dot", full=True))
    assert set(full.nodes()) - LEGEND == {n.name for n in g}


def test_m_1024_collapsed_draws_a_bounded_picture():
    """The drawing's size does not grow with m (its time is measured in benchmarks/)."""
    g = build_graph(LAYERS["batchnorm"].trace(1024), "staged")
    svg = render_graph(g, format="svg")
    assert "1021 more examples" in svg
    assert svg.count('class="node"') < 60 < len(g)


def test_bad_suffix_or_folder_is_one_clear_error(tmp_path):
    g = build_graph(LAYERS["batchnorm"].trace(2))
    with pytest.raises(BngraphError, match="unknown suffix '.xyz'"):
        render_graph(g, tmp_path / "bn.xyz")
    with pytest.raises(BngraphError, match="does not exist"):
        render_graph(g, tmp_path / "missing" / "bn.svg")
    assert list(tmp_path.iterdir()) == []


def test_graph_and_derivation_draw_themselves():
    d = derive(build_graph(LAYERS["batchnorm"].trace(2)))
    assert d.graph._repr_svg_().startswith("<?xml") and "∂L/∂μ" in d._repr_svg_()
    assert pygraphviz.AGraph(string=d.render(format="dot")).has_edge("mu", "x_1")  # backward by default


def test_cli_writes_every_format(tmp_path, capsys):
    for name in ("bn.svg", "bn.png", "bn.pdf", "bn.dot", "bn.gv"):
        assert main(["render", "--view", "staged", "--direction", "backward", "-o", str(tmp_path / name)]) == 0
    assert main(["render", "--m", "64", "-o", str(tmp_path / "big.dot")]) == 0
    assert MORE in pygraphviz.AGraph(filename=str(tmp_path / "big.dot"))
    assert (tmp_path / "bn.pdf").read_bytes().startswith(b"%PDF")
    assert pygraphviz.AGraph(filename=str(tmp_path / "bn.gv")).has_edge("mu", "t1")
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize("output", ["bn.xyz", "missing/bn.svg"])
def test_cli_bad_output_exits_2_with_one_line(tmp_path, capsys, output):
    assert main(["render", "-o", str(tmp_path / output)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("bngraph: error: ") and err.count("\n") == 1
    assert list(tmp_path.iterdir()) == []


def test_a_shared_value_only_one_example_uses_is_hidden_with_it():
    from bngraph import exp, log, trace

    def logsumexp_shift(x, a):  # log(s) is computed again for every example: t_k = log(s) in y_k only
        s = sum(exp(xk) for xk in x)
        return [log(s) - a * xk for xk in x]

    g = build_graph(trace(logsumexp_shift, 40), "staged")
    drawn = set(pygraphviz.AGraph(string=render_graph(g, format="dot")).nodes()) - LEGEND
    assert len(drawn) == 3 * 5 + 3  # per example x, exp(x), log(s), a·x, y; shared a, the sum, "⋯"


def test_cli_values_and_chain_rule_annotate_the_backward_graph(tmp_path):
    out = tmp_path / "bn.dot"
    spec = "x_1=1,x_2=2,x_3=6,gamma=2,beta=0.5,epsilon=0.01,dL_dy_1=1,dL_dy_2=0,dL_dy_3=0"
    assert main(["render", "--direction", "backward", "--chain-rule", "--values", spec, "-o", str(out)]) == 0
    agraph = pygraphviz.AGraph(string=out.read_text())
    labels = {n: agraph.get_node(n).attr["label"] for n in ("mu", "beta")}
    # μ = 3 by hand; dL/dβ = Σ dL/dy_k = 1
    assert "value 3<" in labels["mu"] and "grad 1<" in labels["beta"]
    assert "∂L/∂σ²" in labels["mu"]  # the chain-rule sum names μ's children's adjoints


@pytest.mark.parametrize("spec, message", [("x_1=abc", "is not name=number"), ("x_1", "is not name=number"),
                                           ("x_1=1", "no number for x_2"), ("x_1=inf", "finite number")])
def test_cli_bad_values_are_one_line(tmp_path, capsys, spec, message):
    assert main(["render", "--values", spec, "-o", str(tmp_path / "v.svg")]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1
    assert not list(tmp_path.iterdir())
