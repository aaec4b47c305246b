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
from bngraph.output.picture import MORE
from bngraph.output.render import evaluate, render_graph

ROOT = Path(__file__).resolve().parents[1]
M = 3
K = range(1, M + 1)
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
STAGED_LABELS = {  # each computed node: its step of the nine, then what it computes
    **{f"x_{k}": [f"x{k}"] for k in K}, "gamma": ["γ"], "beta": ["β"], "epsilon": ["ε"],
    "t1": ["step 1", "t1 = x1 + x2 + x3"], "mu": ["step 1", "μ = t1/3"],
    **{f"xmu_{k}": ["step 2", f"xmu{k} = x{k} − μ"] for k in K},
    **{f"sq_{k}": ["step 3", f"sq{k} = xmu{k}2"] for k in K},
    "t2": ["step 4", "t2 = sq1 + sq2 + sq3"], "sigma2": ["step 4", "σ² = t2/3"], "t3": ["step 5", "t3 = σ² + ε"],
    "sqrtvar": ["step 5", "sqrtvar = √t3"], "ivar": ["step 6", "ivar = 1/sqrtvar"],
    **{f"xhat_{k}": ["step 7", f"x̂{k} = xmu{k} · ivar"] for k in K},
    **{f"gammax_{k}": ["step 8", f"gammax{k} = γ · x̂{k}"] for k in K},
    **{f"y_{k}": ["step 9", f"y{k} = gammax{k} + β"] for k in K},
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
    head = lines[-1].split(" = ")[0]
    return [f"∂L/∂{head}" + (" (given)" if name.startswith("y_") else "")]


def expected(view, direction):
    labels, edges = EXPECTED[view]
    if direction == "backward":
        labels = {n: lines + adjoint_line(n, lines) for n, lines in labels.items()}
    return labels, edges


def text_lines(html_label: str) -> list[str]:
    """The lines a person reads in an HTML-like label: table rows or <BR/> breaks, other tags dropped."""
    rows = re.findall(r"<TD[^>]*>(.*?)</TD>", html_label) or html_label.split("<BR/>")
    return [re.sub(r"<[^>]*>", "", line) for line in rows]


def visible_edges(dot) -> set:
    return {(a, b) for a, b in dot.edges() if dot.get_edge(a, b).attr.get("style") != "invis"}


@pytest.fixture(scope="module", params=["named", "staged"])
def bn3(request):
    return derive(build_graph(LAYERS["batchnorm"].trace(M), request.param))


@pytest.mark.parametrize("direction", ["forward", "backward"])
def test_dot_holds_exactly_the_expected_labels_and_edges(bn3, direction):
    dot = pygraphviz.AGraph(string=render_graph(bn3.graph, format="dot", direction=direction, derivation=bn3))
    labels, edges = expected(bn3.graph.view, direction)
    assert set(dot.nodes()) == set(labels)
    assert {n: text_lines(dot.get_node(n).attr["label"]) for n in labels} == labels
    assert set(dot.edges()) == edges  # the backward DOT keeps the forward's edges, drawn reversed
    assert {dot.get_edge(*e).attr.get("dir") for e in edges} == ({"back"} if direction == "backward" else {None})
    # each example in its own box, the shared statistics outside every box
    cluster = dot.get_subgraph("cluster_example_2")
    assert {"x_2", "xhat_2", "y_2"} <= set(cluster.nodes()) and "mu" not in cluster


@pytest.mark.parametrize("direction", ["forward", "backward"])
def test_svg_holds_exactly_the_expected_nodes_and_edges(bn3, direction):
    svg = ET.fromstring(render_graph(bn3.graph, format="svg", direction=direction, derivation=bn3))
    groups = {cls: {g.find(SVG + "title").text: g for g in svg.iter(SVG + "g") if g.get("class") == cls}
              for cls in ("node", "edge")}
    labels, edges = expected(bn3.graph.view, direction)
    assert set(groups["node"]) == set(labels)
    assert {n: "".join(t.text or "" for t in groups["node"][n].iter(SVG + "text")) for n in labels} == {
        n: "".join(lines) for n, lines in labels.items()}
    if direction == "backward":  # no adjoint edge into the constant ε unless asked
        edges = {(p, c) for p, c in edges if p != "epsilon"}
    assert set(groups["edge"]) == {f"{a}->{b}" for a, b in edges}


def test_backward_edges_carry_the_local_partials_typeset():
    named = pygraphviz.AGraph(string=render_graph(build_graph(LAYERS["batchnorm"].trace(3)), format="dot",
                                                  direction="backward"))
    staged = pygraphviz.AGraph(string=render_graph(build_graph(LAYERS["batchnorm"].trace(3), "staged"),
                                                   format="dot", direction="backward"))
    known = [  # (drawing, parent, child, ∂child/∂parent typeset by hand, as read)
        (named, "x_1", "mu", "1/3"),
        (named, "mu", "xhat_1", "−1/√(σ² + ε)"),
        (named, "x_2", "xhat_2", "1/√(σ² + ε)"),
        (named, "x_3", "sigma2", "2(x3 − μ)/3"),
        (named, "beta", "y_2", "1"),
        (named, "xhat_1", "y_1", "γ"),
        (named, "gamma", "y_3", "x̂3"),
        (named, "sigma2", "xhat_1", "∂x̂1/∂σ²"),  # too long for the edge: named there, written out below
        (named, "mu", "sigma2", "∂σ²/∂μ"),
        (staged, "t1", "mu", "1/3"),
        (staged, "xmu_1", "sq_1", "2 xmu1"),
        (staged, "t3", "sqrtvar", "1/(2√t3)"),
        (staged, "sqrtvar", "ivar", "−1/sqrtvar2"),
        (staged, "ivar", "xhat_1", "xmu1"),
        (staged, "mu", "xmu_2", "−1"),
    ]
    for drawing, parent, child, partial in known:
        assert text_lines(drawing.get_edge(parent, child).attr["xlabel"]) == [partial], (parent, child)
    table = text_lines(named.graph_attr["label"])
    assert "∂x̂k/∂σ² = −(xk − μ)/(2(σ² + ε)3/2)" in table  # one row for the whole family
    assert "∂σ²/∂μ = −(2/m) Σj (xj − μ) = 0 since μ is the mean" in table
    assert named.get_edge("epsilon", "xhat_1").attr["style"] == "invis"  # no adjoint for a constant


def test_constants_get_their_edges_only_when_asked():
    g = build_graph(LAYERS["batchnorm"].trace(3))
    dot = pygraphviz.AGraph(string=render_graph(g, format="dot", direction="backward", constants=True))
    edge = dot.get_edge("epsilon", "xhat_2")
    assert edge.attr["style"] == "dashed" and text_lines(edge.attr["xlabel"]) == ["∂x̂2/∂ε"]
    assert "∂x̂k/∂ε = −(xk − μ)/(2(σ² + ε)3/2)" in text_lines(dot.graph_attr["label"])
    quiet = pygraphviz.AGraph(string=render_graph(g, format="dot", direction="backward"))
    assert {quiet.get_edge("epsilon", f"xhat_{k}").attr["style"] for k in K} == {"invis"}
    assert not any("∂ε" in line for line in text_lines(quiet.graph_attr["label"]))


def test_chain_rule_puts_every_term_of_the_sum_in_the_node():
    dot = pygraphviz.AGraph(string=render_graph(build_graph(LAYERS["batchnorm"].trace(3)), format="dot",
                                                direction="backward", chain_rule=True))
    assert text_lines(dot.get_node("beta").attr["label"]) == ["β", "∂L/∂β ="] + [f"+ ∂L/∂y{k} · 1" for k in K]
    assert text_lines(dot.get_node("mu").attr["label"]) == ["μ", "∂L/∂μ =", "+ ∂L/∂σ² · ∂σ²/∂μ"] + [
        f"− ∂L/∂x̂{k} · 1/√(σ² + ε)" for k in K]  # a negative partial's sign leads its term


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


def test_large_m_is_collapsed_to_a_column_of_the_hidden_examples():
    g = build_graph(LAYERS["batchnorm"].trace(64), "staged")
    collapsed = pygraphviz.AGraph(string=render_graph(g, format="dot", direction="backward"))
    nodes = set(collapsed.nodes())
    ghosts = sorted(n for n in nodes if n.startswith(MORE))
    assert {text_lines(collapsed.get_node(n).attr["label"])[0] for n in ghosts} == {
        "x3 ⋯ x63", "xmu3 ⋯ xmu63", "sq3 ⋯ sq63", "x̂3 ⋯ x̂63", "gammax3 ⋯ gammax63", "y3 ⋯ y63"}
    column = collapsed.get_subgraph("cluster_example_more")
    assert set(column.nodes()) == set(ghosts) and column.graph_attr["label"] == "examples 3 ⋯ 63 (61 more)"
    assert {"x_1", "x_2", "x_64", "y_64", "mu", "ivar"} <= nodes and not {"x_3", "xhat_63"} & nodes
    assert len(nodes) < len(g) / 10
    by_label = {text_lines(collapsed.get_node(n).attr["label"])[0]: n for n in ghosts}
    assert collapsed.has_edge(by_label["x3 ⋯ x63"], "t1") and collapsed.has_edge("ivar", by_label["x̂3 ⋯ x̂63"])
    full = pygraphviz.AGraph(string=render_graph(g, format="dot", full=True))
    assert set(full.nodes()) == {n.name for n in g}


def test_m_1024_collapsed_draws_a_bounded_picture():
    """The drawing's size does not grow with m (its time is measured in benchmarks/)."""
    g = build_graph(LAYERS["batchnorm"].trace(1024), "staged")
    svg = render_graph(g, format="svg")
    assert "1021 more" in svg
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
    dot = pygraphviz.AGraph(string=d.render(format="dot"))
    assert dot.get_edge("x_1", "mu").attr["dir"] == "back"  # backward by default


def test_cli_writes_every_format(tmp_path, capsys):
    for name in ("bn.svg", "bn.png", "bn.pdf", "bn.dot", "bn.gv"):
        assert main(["render", "--view", "staged", "--direction", "backward", "-o", str(tmp_path / name)]) == 0
    assert main(["render", "--m", "64", "-o", str(tmp_path / "big.dot")]) == 0
    assert any(n.startswith(MORE) for n in pygraphviz.AGraph(filename=str(tmp_path / "big.dot")).nodes())
    assert (tmp_path / "bn.pdf").read_bytes().startswith(b"%PDF")
    gv = pygraphviz.AGraph(filename=str(tmp_path / "bn.gv"))
    assert gv.get_edge("t1", "mu").attr["dir"] == "back"
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
    drawn = set(pygraphviz.AGraph(string=render_graph(g, format="dot")).nodes())
    # per example x, exp(x), log(s), a·x, y, for examples 1, 2, 40 and the hidden column; shared a and the sum
    assert len(drawn) == 4 * 5 + 2


def test_cli_values_and_chain_rule_annotate_the_backward_graph(tmp_path):
    out = tmp_path / "bn.dot"
    spec = "x_1=1,x_2=2,x_3=6,gamma=2,beta=0.5,epsilon=0.01,dL_dy_1=1,dL_dy_2=0,dL_dy_3=0"
    assert main(["render", "--direction", "backward", "--chain-rule", "--values", spec, "-o", str(out)]) == 0
    agraph = pygraphviz.AGraph(string=out.read_text())
    labels = {n: text_lines(agraph.get_node(n).attr["label"]) for n in ("mu", "beta")}
    # μ = 3 by hand; dL/dβ = Σ dL/dy_k = 1
    assert "value 3" in labels["mu"] and "∂L/∂β = 1 =" in labels["beta"]
    assert "+ ∂L/∂σ² · ∂σ²/∂μ" in labels["mu"]  # the chain-rule sum names μ's children's adjoints


@pytest.mark.parametrize("spec, message", [("x_1=abc", "is not name=number"), ("x_1", "is not name=number"),
                                           ("x_1=1", "no number for x_2"), ("x_1=inf", "finite number")])
def test_cli_bad_values_are_one_line(tmp_path, capsys, spec, message):
    assert main(["render", "--values", spec, "-o", str(tmp_path / "v.svg")]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1
    assert not list(tmp_path.iterdir())
