"""The diagrams as a reader sees them, read back from the SVG Graphviz drew: examples left to
right in order, the backward diagram the forward one's mirror, labels that are mathematics,
and the staged graph with values that reads like the well-known figure of the nine steps."""
from __future__ import annotations

import re
import textwrap
import xml.etree.ElementTree as ET

import numpy as np
import pygraphviz
import pytest

from bngraph.engine.derive import derive
from bngraph.engine.graph import build_graph
from bngraph.engine.layers import LAYERS, trace_target
from bngraph.output import picture
from bngraph.output.picture import MORE, examples
from bngraph.output.render import render_graph

SVG = "{http://www.w3.org/2000/svg}"
ASCII_GREEK = re.compile(r"\b(alpha|beta|gamma|delta|eps|epsilon|lambda|mu|sigma|sigma2|theta|rho|tau|phi|omega|xhat)\b")


def svg_of(layer="batchnorm", m=3, view="named", **options):
    graph = build_graph(LAYERS[layer].trace(m), view, layer)
    return ET.fromstring(render_graph(graph, format="svg", **options)), graph


def _points(element) -> list[tuple[float, float]]:
    text = element.get("points") or element.get("d") or ""
    numbers = [float(v) for v in re.findall(r"-?\d+(?:\.\d+)?", text)]
    if element.tag == SVG + "ellipse":
        return [(float(element.get("cx")), float(element.get("cy")))]
    return list(zip(numbers[::2], numbers[1::2]))


def boxes_left_to_right(svg) -> list[str]:
    """The example boxes (clusters), by their left edge."""
    left = {}
    for g in svg.iter(SVG + "g"):
        if g.get("class") == "cluster":
            shape = g.find(SVG + "path") if g.find(SVG + "path") is not None else g.find(SVG + "polygon")
            left[g.find(SVG + "title").text.removeprefix("cluster_example_")] = min(x for x, _ in _points(shape))
    return sorted(left, key=left.get)


def centres(svg) -> dict[str, tuple[float, float]]:
    """Every node's centre (x, y)."""
    found = {}
    for g in svg.iter(SVG + "g"):
        if g.get("class") == "node":
            shape = next(e for e in g if e.tag in (SVG + "ellipse", SVG + "polygon", SVG + "path"))
            xs, ys = zip(*_points(shape))
            found[g.find(SVG + "title").text] = ((min(xs) + max(xs)) / 2, (min(ys) + max(ys)) / 2)
    return found


def rows(svg) -> list[list[str]]:
    """The nodes rank by rank (one y), each rank left to right: the picture's arrangement."""
    by_y: dict[float, list] = {}
    for name, (x, y) in centres(svg).items():
        by_y.setdefault(round(y), []).append((x, name))
    return [[name for _, name in sorted(row)] for _, row in sorted(by_y.items())]


def expected_order(m: int) -> list[str]:
    return [str(k) for k in range(1, m + 1)] if m <= 8 else ["1", "2", "more", str(m)]


def example_rows_in_order(svg, graph) -> None:
    """In every rank, the nodes of examples 1, 2, (the hidden ones), m stand in that order."""
    example = examples(graph)
    rank_of = {str(k): k for k in range(1, graph.m + 1)}
    for row in rows(svg):
        ks = [example.get(n) if not n.startswith(MORE) else 2.5 for n in row]
        ks = [k for k in ks if k is not None]
        assert ks == sorted(ks), (row, rank_of and ks)


@pytest.mark.parametrize("m", [2, 3, 8, 64, 1024])
@pytest.mark.parametrize("view", ["named", "staged"])
@pytest.mark.parametrize("direction", ["forward", "backward"])
def test_examples_stand_left_to_right_in_order(m, view, direction):
    svg, graph = svg_of(m=m, view=view, direction=direction)
    assert boxes_left_to_right(svg) == expected_order(m)
    example_rows_in_order(svg, graph)


@pytest.mark.parametrize("m", [3, 64])
def test_without_boxes_the_rows_are_held_in_order_too(m, monkeypatch):
    """Where Graphviz moves a box, the drawing falls back to invisible edges that hold each row."""
    monkeypatch.setattr(picture.Picture, "in_order", lambda self, agraph: False)
    for direction in ("forward", "backward"):
        svg, graph = svg_of(m=m, view="staged", direction=direction)
        assert boxes_left_to_right(svg) == []
        example_rows_in_order(svg, graph)
        xs = centres(svg)
        firsts = ["x_1", "x_2", *([n for n in xs if n.startswith(MORE)][:1] if m > 8 else ["x_3"])]
        assert [xs[n][0] for n in firsts] == sorted(xs[n][0] for n in firsts)


@pytest.mark.parametrize("view", ["named", "staged"])
def test_backward_is_the_forward_mirrored(view):
    forward, _ = svg_of(view=view, direction="forward")
    backward, _ = svg_of(view=view, direction="backward")
    assert rows(backward) == rows(forward)  # every node in the same rank, in the same place in it
    width = {d: float(s.get("width").removesuffix("pt")) for d, s in (("forward", forward), ("backward", backward))}
    assert width["backward"] <= 1.3 * width["forward"]


def test_backward_arrows_point_from_child_to_parent():
    """dir=back: the arrowhead is drawn at the parent (x₁), the end the gradient flows to."""
    svg, _ = svg_of(direction="backward")
    centre = centres(svg)
    edge = next(g for g in svg.iter(SVG + "g") if g.get("class") == "edge" and g.find(SVG + "title").text == "x_1->mu")
    head = edge.find(SVG + "polygon")
    tip = np.mean(_points(head), axis=0)
    to_x1 = np.hypot(*(tip - centre["x_1"]))
    to_mu = np.hypot(*(tip - centre["mu"]))
    assert to_x1 < to_mu


def label_texts(svg) -> list[str]:
    """Every line of every label as read (a subscript sits a little lower: it joins its line),
    and each piece of text on its own."""
    texts = []
    for g in svg.iter(SVG + "g"):
        if g.get("class") in ("node", "edge", "graph", "cluster"):
            lines: list[list] = []
            for t in sorted(g.findall(SVG + "text"), key=lambda t: float(t.get("y"))):
                y = float(t.get("y"))
                if not lines or y - lines[-1][0] > 6:
                    lines.append([y, []])
                lines[-1][1].append((float(t.get("x")), t.text or ""))
            texts += ["".join(text for _, text in sorted(pieces)) for _, pieces in lines]
            texts += [t.text or "" for t in g.findall(SVG + "text")]
    return texts


@pytest.mark.parametrize("layer, m, view, options", [
    ("batchnorm", 3, "named", {"direction": "backward"}),
    ("batchnorm", 3, "named", {"direction": "backward", "chain_rule": True, "constants": True}),
    ("batchnorm", 3, "staged", {"direction": "backward", "values": {"x_1": 1, "x_2": 2, "x_3": 6, "gamma": 1.5,
                                                                   "beta": 0.5, "epsilon": 1e-5}}),
    ("batchnorm", 64, "named", {"direction": "backward", "chain_rule": True}),
    ("batchnorm", 3, "staged", {"direction": "forward"}),
    ("layernorm", 4, "named", {"direction": "backward"}),
    ("batchnorm-eval", 3, "named", {"direction": "backward", "constants": True}),
])
def test_every_label_is_mathematics_not_code(layer, m, view, options):
    svg, _ = svg_of(layer, m, view, **options)
    texts = label_texts(svg)
    assert len(texts) > 20
    for text in texts:
        assert "*" not in text and "sqrt(" not in text and "…" not in text, text
        assert not ASCII_GREEK.search(text), text
    joined = " ".join(texts)
    assert ("∂L/∂" in joined) == (options["direction"] == "backward")
    assert "σ²" in joined or "μ" in joined or "ε" in joined


def test_the_mean_makes_the_variance_blind_to_mu():
    """∂σ²/∂μ at m = 3 is 2μ − 2x₁/3 − 2x₂/3 − 2x₃/3: the figure writes it as the paper does,
    and says it is 0 only because μ is the mean of the x (checked against μ's definition)."""
    svg, _ = svg_of(direction="backward")
    assert "∂σ²/∂μ = −(2/m) Σj (xj − μ) = 0 since μ is the mean" in label_texts(svg)

    def shifted(x, gamma, beta):  # "mu" here is not the mean: the sum does not vanish
        from bngraph import name
        mu = name(sum(x) / len(x) + 1, "mu")
        sigma2 = name(sum((xk - mu) ** 2 for xk in x) / len(x), "sigma2")
        return [gamma * (xk - mu) * sigma2 + beta for xk in x]

    from bngraph import trace
    g = build_graph(trace(shifted, 3), "named")
    texts = label_texts(ET.fromstring(render_graph(g, format="svg", direction="backward")))
    assert "∂σ²/∂μ = −(2/m) Σj (xj − μ)" in texts and not any("since μ is the mean" in t for t in texts)


def kratzert(x, gamma, beta, eps, dout):
    """The nine steps forward and backward, as the well-known blog post codes them (NumPy, one feature)."""
    n = len(x)
    mu = x.sum() / n
    xmu = x - mu
    sq = xmu**2
    var = sq.sum() / n
    sqrtvar = np.sqrt(var + eps)
    ivar = 1 / sqrtvar
    xhat = xmu * ivar
    gammax = gamma * xhat
    out = gammax + beta
    dgamma, dxhat = (dout * xhat).sum(), dout * gamma
    divar, dxmu1 = (dxhat * xmu).sum(), dxhat * ivar
    dsqrtvar = -divar / sqrtvar**2
    dvar = 0.5 / np.sqrt(var + eps) * dsqrtvar
    dsq = np.full(n, dvar / n)
    dxmu = dxmu1 + 2 * xmu * dsq
    dmu = -dxmu.sum()
    dx = dxmu + dmu / n
    values = {"mu": mu, "sigma2": var, "sqrtvar": sqrtvar, "ivar": ivar, "gamma": gamma, "beta": beta}
    grads = {"mu": dmu, "sigma2": dvar, "sqrtvar": dsqrtvar, "ivar": divar, "gamma": dgamma, "beta": dout.sum()}
    for k in range(n):
        for name, v, d in (("x", x, dx), ("xmu", xmu, dxmu), ("sq", sq, dsq), ("xhat", xhat, dxhat),
                           ("gammax", gammax, dout), ("y", out, dout)):
            values[f"{name}_{k + 1}"], grads[f"{name}_{k + 1}"] = v[k], d[k]
    return values, grads


def test_staged_graph_with_values_reads_like_the_nine_step_figure():
    x, dy = np.array([1.0, 2.0, 6.0]), np.array([0.3, -1.0, 0.5])
    leaves = {"x_1": 1, "x_2": 2, "x_3": 6, "gamma": 1.5, "beta": 0.5, "epsilon": 1e-5,
              **{f"dL_dy_{k}": dy[k - 1] for k in (1, 2, 3)}}
    dot = pygraphviz.AGraph(string=render_graph(build_graph(LAYERS["batchnorm"].trace(3), "staged"), format="dot",
                                                direction="backward", values=leaves))
    values, grads = kratzert(x, 1.5, 0.5, 1e-5, dy)
    steps = {"mu": 1, "xmu": 2, "sq": 3, "sigma2": 4, "sqrtvar": 5, "ivar": 6, "xhat": 7, "gammax": 8, "y": 9}

    def number(text):
        return float(text.replace("−", "-"))

    for name, value in values.items():
        lines = [re.sub(r"<[^>]*>", "", r) for r in re.findall(r"<TD>(.*?)</TD>", dot.get_node(name).attr["label"])]
        family = re.sub(r"_\d+$", "", name)
        if family in steps:  # each step named and numbered
            assert lines[0] == f"step {steps[family]}", lines
        value_line = next(line for line in lines if line.startswith("value "))
        grad_line = next(line for line in lines if line.startswith("∂L/∂"))
        assert number(value_line.split()[1]) == pytest.approx(value, rel=1e-3, abs=1e-4), (name, lines)
        assert number(grad_line.split(" = ")[1].split()[0]) == pytest.approx(grads[name], rel=1e-3, abs=1e-4), (name, lines)


def test_greek_parameter_names_are_drawn_as_greek_letters(tmp_path):
    source = tmp_path / "greek.py"
    source.write_text(textwrap.dedent("""
        from bngraph import sqrt, name

        def f(x, γ, β, ε):
            m = len(x)
            μ = name(sum(x) / m, "mu")
            v = name(sum((xk - μ) ** 2 for xk in x) / m, "sigma2")
            return [γ * (xk - μ) / sqrt(v + ε) + β for xk in x]
    """), encoding="utf-8")
    graph = build_graph(trace_target(function=f"{source}:f", m=3), "named", "f")
    texts = label_texts(ET.fromstring(render_graph(graph, format="svg", direction="backward")))
    assert {"γ", "β", "ε", "∂L/∂γ"} <= set(texts)
    assert not any(ASCII_GREEK.search(t) for t in texts)
    assert "ε" not in derive(graph).adjoints  # ε, like epsilon, is a constant
