"""Graphviz diagrams of a graph: the forward pass, and the backward pass with its adjoints.

A printer over the immutable Graph and Derivation: networkx builds the picture,
``nx.nx_agraph.to_agraph`` hands it to pygraphviz, whose bundled Graphviz lays it out
(no ``dot`` executable needed). DOT text needs no layout at all and is byte-identical
across runs. Above m = 8 only examples 1, 2 and m are drawn, the rest as one ``⋯`` node.

>>> from bngraph.engine.layers import LAYERS
>>> from bngraph.engine.graph import build_graph
>>> import pygraphviz
>>> g = build_graph(LAYERS["batchnorm"].trace(3), "named")
>>> dot = pygraphviz.AGraph(string=render_graph(g, format="dot", direction="backward"))
>>> dot.get_edge("mu", "x_1").attr["label"]  # ∂mu/∂x_1, gradient flowing from mu back to x_1
'1/3'
"""
from __future__ import annotations

import math
import re
from html import escape
from pathlib import Path

import networkx as nx
import sympy as sp

from bngraph.engine.derive import adjoint_name, derive
from bngraph.errors import BngraphError
from bngraph.closedform.evaluate import NotANumber, adjoint_values, forward_values, random_point
from bngraph.engine.graph import Graph
from bngraph.output.files import write_atomic

FORMATS = {".svg": "svg", ".png": "png", ".pdf": "pdf", ".dot": "dot", ".gv": "dot"}
DIRECTIONS = ("forward", "backward")
LEAVES = ("input", "parameter", "constant")
COLLAPSE_ABOVE = 8  # larger batches draw examples 1, 2 and m only, unless full=True
SHORT = 40  # characters of an edge's partial (or a chain-rule term) before "…"

# Each role its own shape and colour, so the picture reads without the legend too.
ROLE_STYLE = {
    "input": {"shape": "ellipse", "fillcolor": "#dbeafe"},
    "parameter": {"shape": "hexagon", "fillcolor": "#dcfce7"},
    "constant": {"shape": "diamond", "fillcolor": "#e5e7eb"},
    "intermediate": {"shape": "box", "fillcolor": "#fef9c3"},
    "output": {"shape": "doubleoctagon", "fillcolor": "#fee2e2"},
}
GREEK = {g: chr(c) for g, c in zip(
    "alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu nu xi omicron pi rho "
    "sigma tau upsilon phi chi psi omega".split(), [*range(0x3B1, 0x3C2), *range(0x3C3, 0x3CA)])}
NAME = re.compile(r"([A-Za-z]+?)(\d*)(?:_(\d+))?")
INFIX = {"sub": " − ", "mul": " · ", "div": " / "}
LEGEND, MORE = "legend:", "more:examples"  # not valid symbol names: they never clash with a node


def render_graph(graph: Graph, path=None, *, direction="forward", derivation=None, values=None,
                 full=False, format=None, chain_rule=False) -> bytes | str:
    """Draw ``graph`` to ``path`` (.svg .png .pdf .dot/.gv) and return the drawing.

    ``direction="backward"`` reverses every edge (the gradient flow), labels it with its
    local partial ∂child/∂parent and each node with its adjoint ∂L/∂node (the whole
    chain-rule sum if ``chain_rule``). ``values`` (floats for the inputs, parameters and
    constants, optionally ``dL_dy_k``, else 1) shows each node's value and gradient.
    SVG and DOT come back as ``str``, PNG and PDF as ``bytes``.
    """
    fmt = _format(path, format)
    if direction not in DIRECTIONS:
        raise BngraphError(f"unknown direction {direction!r}; choose forward or backward")
    if path is not None and not Path(path).parent.is_dir():  # fail before the layout, not after
        raise BngraphError(f"cannot write {path}: the folder {Path(path).parent} does not exist")
    if derivation is None and (direction == "backward" or values is not None):
        derivation = derive(graph)
    numbers = evaluate(derivation, values) if values is not None else None
    example, shown = examples(graph), shown_examples(graph.m, full)
    agraph = nx.nx_agraph.to_agraph(_picture(graph, direction, derivation, numbers, example, shown, chain_rule))
    _add_clusters(agraph, example, shown)
    if fmt == "dot":
        data = agraph.string()
    else:
        agraph.layout("dot")
        data = agraph.draw(format=fmt)
        data = data.decode("utf-8") if fmt == "svg" else data
    if path is not None:
        write_atomic(path, data)
    return data


def cli_render(args, graph: Graph, derivation=None) -> int:
    """``bngraph render``: draw ``graph`` (backward: with its derivation) to ``args.output``."""
    values = parse_values(args.values, graph) if args.values else None
    render_graph(graph, args.output, direction=args.direction, derivation=derivation, full=args.full,
                 values=values, chain_rule=args.chain_rule)
    return 0


def parse_values(spec: str, graph: Graph) -> dict[str, float]:
    """``random`` (a seeded random point) or ``name=number,…`` pairs (read with float(), nothing else).

    >>> from bngraph.engine.layers import LAYERS
    >>> from bngraph.engine.graph import build_graph
    >>> parse_values("x_1=1, gamma=2.5", build_graph(LAYERS["batchnorm"].trace(1)))
    {'x_1': 1.0, 'gamma': 2.5}
    """
    if spec.strip() == "random":
        leaves, upstream = random_point(graph)
        return {**leaves, **upstream}
    values = {}
    for item in filter(None, (part.strip() for part in spec.split(","))):
        name, sep, number = item.partition("=")
        try:
            values[name.strip()] = float(number) if sep else float("nan")
        except ValueError:
            raise BngraphError(f"--values: {item!r} is not name=number") from None
        if not sep or not math.isfinite(values[name.strip()]):
            raise BngraphError(f"--values: {item!r} is not name=number with a finite number")
    return values


def _format(path, format) -> str:
    if format is not None:
        if format not in FORMATS.values():
            raise BngraphError(f"unknown format {format!r}; choose svg, png, pdf or dot")
        return format
    if path is None:
        return "svg"
    suffix = Path(path).suffix.lower()
    if suffix not in FORMATS:
        raise BngraphError(f"cannot render to {path}: unknown suffix {suffix or '(none)'!r}; "
                           f"use .svg, .png, .pdf or .dot")
    return FORMATS[suffix]


# --- which example each node belongs to, and which examples are drawn -------------------

def examples(graph: Graph) -> dict[str, int | None]:
    """The example k of every node computed from x_k alone (with shared values); None if shared.

    >>> from bngraph.engine.layers import LAYERS
    >>> from bngraph.engine.graph import build_graph
    >>> e = examples(build_graph(LAYERS["batchnorm"].trace(3), "staged"))
    >>> e["xmu_2"], e["mu"], e["y_3"]
    (2, None, 3)
    """
    found = {n.name: k for k, n in enumerate(graph.inputs, 1)} if graph.m > 1 else {}
    for node in graph:
        if node.name not in found:
            ks = {found.get(p) for p in node.parents} - {None}
            found[node.name] = ks.pop() if len(ks) == 1 else None
    for node in reversed(graph.nodes):  # a shared value only one example uses (log(s) in y_k) joins it
        if found[node.name] is None and node.role not in LEAVES:
            ks = {found[c] for c in graph.digraph.successors(node.name)}
            found[node.name] = ks.pop() if len(ks) == 1 else None
    return found


def shown_examples(m: int, full: bool) -> tuple[int, ...]:
    return tuple(range(1, m + 1)) if full or m <= COLLAPSE_ABOVE else (1, 2, m)


# --- the picture, as an nx.DiGraph with Graphviz attributes ------------------------------

def _picture(graph, direction, derivation, numbers, example, shown, chain_rule) -> nx.DiGraph:
    backward, shown = direction == "backward", set(shown)
    hidden = [k for k in range(1, graph.m + 1) if k not in shown]
    pic = nx.DiGraph(name=f"{graph.layer}_{direction}")
    pic.graph["graph"] = {
        "label": f"{graph.layer}: {direction} graph, m = {graph.m}, {graph.view} view"
        + ("  (edges: local partial ∂child/∂parent)" if backward else ""),
        "labelloc": "t", "fontname": "Helvetica", "rankdir": "BT" if backward else "TB",
        "nodesep": "0.3", "ranksep": "0.45", "newrank": "true",  # newrank: ranks across clusters
    }
    pic.graph["node"] = {"fontname": "Helvetica", "fontsize": "12", "style": "filled"}
    pic.graph["edge"] = {"fontname": "Helvetica", "fontsize": "9", "arrowsize": "0.7",
                         "color": "#b91c1c" if backward else "#374151", "fontcolor": "#b91c1c"}

    def drawn(name):  # a hidden example's nodes all stand behind one "⋯" node
        return example[name] is None or example[name] in shown

    for node in graph:
        if drawn(node.name):
            lines = _node_lines(graph, node, backward, derivation, numbers, chain_rule, drawn)
            pic.add_node(node.name, label=_html(lines), **ROLE_STYLE[node.role])
        elif MORE not in pic:
            pic.add_node(MORE, shape="note", style="dashed", label=_html([
                f"⋯ {len(hidden)} more examples", f"(k = {hidden[0]} … {hidden[-1]})"]))
    for node in graph:
        child = node.name if drawn(node.name) else MORE
        for parent in node.parents:
            tail = parent if drawn(parent) else MORE
            if tail == child == MORE:
                continue
            if not backward:
                pic.add_edge(tail, child)
            elif MORE in (tail, child):
                pic.add_edge(child, tail, label="…")
            else:  # no adjoint flows into a constant: its edge is dashed
                dashed = {"style": "dashed"} if graph[parent].role == "constant" else {}
                pic.add_edge(child, tail, label=_short_expr(derivation.partials[parent, child]), **dashed)
    for role in ROLE_STYLE:
        if graph.with_role(role):
            pic.add_node(LEGEND + role, label=role, fontsize="10", **ROLE_STYLE[role])
    return pic


def _add_clusters(agraph, example: dict, shown: tuple[int, ...]) -> None:
    """One dashed box per drawn example (the fan-in to μ, σ² and back is then plain) and the legend."""
    members = {k: [] for k in shown}
    for name in agraph.nodes():
        if example.get(name) in members:
            members[example[name]].append(name)
    for k, names in members.items():
        if names:
            agraph.add_subgraph(names, name=f"cluster_example_{k}", label=f"example {k}",
                                style="rounded,dashed", color="#9ca3af", fontsize="10")
    legend = [n for n in agraph.nodes() if n.startswith(LEGEND)]
    agraph.add_subgraph(legend, name="cluster_legend", label="legend", style="rounded", color="#9ca3af",
                        fontsize="10")


def _node_lines(graph, node, backward, derivation, numbers, chain_rule, drawn) -> list[str]:
    lines = [pretty(node.name)]
    if graph.view == "staged" and node.role not in LEAVES:
        lines.append(_small("= " + formula(node)))
    if backward and node.role == "output":
        lines.append(f"∂L/∂{pretty(node.name)} (given)")
    elif backward and node.name in derivation.adjoints:
        lines.append(f"∂L/∂{pretty(node.name)}" + (" =" if chain_rule else ""))
        if chain_rule:
            lines += _chain_rule(derivation.adjoints[node.name], drawn)
    if numbers is not None:
        value, grad = numbers
        lines.append(_small(f"value {value[node.name]:.4g}"))
        if node.name in grad:
            lines.append(_small(f"grad {grad[node.name]:.4g}"))
    return lines


def _chain_rule(adjoint, drawn) -> list[str]:
    """One line per term ∂L/∂c · ∂c/∂node of the sum; a hidden example's terms as one count."""
    terms = [t for t in adjoint.terms if drawn(t[0])]
    lines = [_small(f"+ ∂L/∂{pretty(c)} · ({escape(_short_expr(p))})") for c, p in terms]
    if len(terms) < len(adjoint.terms):
        lines.append(_small(f"+ … ({len(adjoint.terms) - len(terms)} more terms)"))
    return lines


# --- text: symbols as a person writes them ----------------------------------------------

def pretty(name: str) -> str:
    """A node name as HTML-like Graphviz text: ``sigma2`` → σ², ``xhat_1`` → x̂<sub>1</sub>.

    >>> pretty("mu"), pretty("sigma2"), pretty("xhat_1"), pretty("t1"), pretty("xmu_2")
    ('μ', 'σ²', 'x̂<sub>1</sub>', 't<sub>1</sub>', 'xmu<sub>2</sub>')
    """
    match = NAME.fullmatch(name)
    if match is None:
        return escape(name)
    base, digits, index = match.groups()
    if base.endswith("hat") and len(base) > 3:
        text = GREEK.get(base[:-3], base[:-3]) + "\u0302"  # combining circumflex: x̂
    else:
        text = GREEK.get(base, base)
    if digits == "2" and base in GREEK:  # sigma2: the variance σ²
        text += "²"
    elif digits:
        text += f"<sub>{digits}</sub>"
    return text + (f"<sub>{index}</sub>" if index else "")


def formula(node) -> str:
    """A staged node's one op, infix: ``xmu_1`` → x<sub>1</sub> − μ (a long sum keeps its ends)."""
    args = [pretty(a) if isinstance(a, str) else escape(sp.sstr(a)) for a in node.args]
    if node.op == "add":
        return " + ".join(args if len(args) <= 4 else [*args[:2], "…", args[-1]])
    if node.op in INFIX:
        return INFIX[node.op].join(args)
    if node.op == "pow":
        return f"{args[0]}<sup>{args[1]}</sup>"
    if node.op == "neg":
        return f"−{args[0]}"
    if node.op == "sqrt":
        return f"√{args[0]}"
    return args[0] if node.op == "id" else f"{node.op}({', '.join(args)})"


def _short_expr(expr: sp.Expr) -> str:
    """``sympy.sstr``, cut at SHORT characters; of a long sum only the first terms (printing all is slow)."""
    if isinstance(expr, sp.Add) and len(expr.args) > 4:
        return _short(sp.sstr(sp.Add(*expr.args[:3], evaluate=False), order="none") + " + …")
    return _short(sp.sstr(expr, order="none"))  # as the JSON prints it: x_1 - mu


def _short(text: str, limit: int = SHORT) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _small(html: str) -> str:
    return f'<FONT POINT-SIZE="10">{html}</FONT>'


def _html(lines: list[str]) -> str:
    return "<" + "<BR/>".join(lines) + ">"


# --- numbers, as micrograd shows them ---------------------------------------------------

def evaluate(derivation, values) -> tuple[dict[str, float], dict[str, float]]:
    """Every node's value (in topological order) and gradient dL/dnode (in reverse order).

    >>> from bngraph.engine.layers import LAYERS
    >>> from bngraph.engine.graph import build_graph
    >>> from bngraph.engine.derive import derive
    >>> d = derive(build_graph(LAYERS["batchnorm"].trace(2), "named"))
    >>> value, grad = evaluate(d, {"x_1": 1, "x_2": 3, "gamma": 2, "beta": 0, "epsilon": 0})
    >>> value["mu"], value["y_2"], grad["beta"]  # upstream dL_dy_k default to 1
    (2.0, 2.0, 2.0)
    """
    graph = derivation.graph
    leaves = [n.name for n in graph if n.role in LEAVES]
    upstream = {adjoint_name(n.name): n.name for n in graph.outputs}
    missing = [n for n in leaves if n not in values]
    unknown = sorted(set(values) - set(leaves) - set(upstream))
    if missing:
        raise BngraphError(f"values: no number for {', '.join(missing)}")
    if unknown:
        raise BngraphError(f"values: {', '.join(unknown)}: not a leaf or upstream gradient of this graph")
    try:
        value = forward_values(graph, {n: float(values[n]) for n in leaves})
        given = {a: float(values.get(a, 1.0)) for a in upstream}
        grad = adjoint_values(derivation, value, given) | {n: given[a] for a, n in upstream.items()}
    except NotANumber as exc:  # a root of a negative number, a division by 0
        raise BngraphError(f"values: {exc.name} is {exc.reason}, not a finite real number; "
                           "check epsilon and the inputs") from None
    except (TypeError, ValueError) as exc:  # a value that is no number
        raise BngraphError(f"values: {exc}; give every leaf a real number") from None
    for name, number in {**value, **grad}.items():
        if not math.isfinite(number):
            raise BngraphError(f"values: {name} is not a finite real number; check epsilon and the inputs")
    return value, grad
