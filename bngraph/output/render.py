"""Graphviz diagrams of a graph: the forward pass, and the backward pass as its mirror.

A printer over the immutable Graph and Derivation: :mod:`bngraph.output.picture` says what
is drawn, ``nx.nx_agraph.to_agraph`` hands it to pygraphviz, whose bundled Graphviz lays it
out (no ``dot`` executable needed). DOT text needs no layout at all and is byte-identical
across runs. Above m = 8 only examples 1, 2 and m are drawn, the rest as one ``⋯`` column.

The backward DOT keeps the forward's edges, parent -> child, drawn with ``dir=back``: the
same layout, the arrows reversed.

>>> from bngraph.engine.layers import LAYERS
>>> from bngraph.engine.graph import build_graph
>>> import pygraphviz
>>> g = build_graph(LAYERS["batchnorm"].trace(3), "named")
>>> dot = pygraphviz.AGraph(string=render_graph(g, format="dot", direction="backward"))
>>> edge = dot.get_edge("x_1", "mu")  # ∂μ/∂x₁: the gradient flows from μ back to x₁
>>> edge.attr["xlabel"], edge.attr["dir"]
('1/3', 'back')
"""
from __future__ import annotations

import math
from html import escape
from pathlib import Path

from bngraph.engine import progress
from bngraph.engine.derive import adjoint_name, derive
from bngraph.errors import BngraphError
from bngraph.closedform.evaluate import NotANumber, adjoint_values, forward_values, random_point
from bngraph.engine.graph import Graph
from bngraph.output.files import write_atomic
from bngraph.output.fonts import use_own_fonts_conf
from bngraph.output.picture import LEAVES, PictureBuilder

FORMATS = {".svg": "svg", ".png": "png", ".pdf": "pdf", ".dot": "dot", ".gv": "dot"}
DIRECTIONS = ("forward", "backward")
COLLAPSE_ABOVE = 8  # larger batches draw examples 1, 2 and m only, unless full=True
LONG_LAYOUT = 150  # nodes: Graphviz takes seconds past this many (progress shows it at once)


def render_graph(graph: Graph, path=None, *, direction="forward", derivation=None, values=None,
                 full=False, format=None, chain_rule=False, constants=False) -> bytes | str:
    """Draw ``graph`` to ``path`` (.svg .png .pdf .dot/.gv) and return the drawing.

    ``direction="backward"`` draws the same picture with the arrows reversed (the gradient
    flow), each edge labelled with its local partial ∂child/∂parent and each node with its
    adjoint ∂L/∂node (the whole chain-rule sum if ``chain_rule``); edges into constants
    only with ``constants``. ``values`` (floats for the inputs, parameters and constants,
    optionally ``dL_dy_k``, else 1) shows each node's value and gradient.
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
    builder = PictureBuilder(graph, direction, derivation, numbers, shown_examples(graph.m, full), chain_rule,
                             constants)
    picture = builder.build(f"{escape(graph.layer)}: {direction} graph, m = {graph.m}, {graph.view} view")
    use_own_fonts_conf()  # before Graphviz first asks for a font (see fonts.py)
    agraph = picture.to_agraph()
    if fmt == "dot":
        data = agraph.string()
    else:
        nodes = agraph.number_of_nodes()
        progress.step(f"laying out {nodes} nodes with Graphviz", long=nodes > LONG_LAYOUT)
        agraph.layout("dot")
        if not picture.in_order(agraph):  # Graphviz moved a box: hold each row in order without boxes
            agraph = picture.to_agraph(boxes=False)
            agraph.layout("dot")
        data = agraph.draw(format=fmt)
        data = data.decode("utf-8") if fmt == "svg" else data
    if path is not None:
        write_atomic(path, data)
    return data


def cli_render(args, graph: Graph, derivation=None) -> int:
    """``bngraph render``: draw ``graph`` (backward: with its derivation) to ``args.output``."""
    values = parse_values(args.values, graph) if args.values is not None else None
    render_graph(graph, args.output, direction=args.direction, derivation=derivation, full=args.full,
                 values=values, chain_rule=args.chain_rule, constants=args.constants)
    return 0


def parse_values(spec: str, graph: Graph) -> dict[str, float]:
    """``random`` (a seeded random point) or ``name=number,…`` pairs (read with float(), nothing else).

    >>> from bngraph.engine.layers import LAYERS
    >>> from bngraph.engine.graph import build_graph
    >>> parse_values("x_1=1, gamma=2.5", build_graph(LAYERS["batchnorm"].trace(1)))
    {'x_1': 1.0, 'gamma': 2.5}
    """
    if not spec.strip(", \t"):
        raise BngraphError("--values is empty: give 'random' or name=number pairs, e.g. x_1=1,x_2=2,gamma=1.5")
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


def shown_examples(m: int, full: bool) -> tuple[int, ...]:
    """The examples drawn: all of them, or for a large batch 1, 2 and m (the rest as one column)."""
    return tuple(range(1, m + 1)) if full or m <= COLLAPSE_ABOVE else (1, 2, m)


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
    if unknown:  # first: a misspelt name also leaves its leaf without a number
        raise BngraphError(f"values: {', '.join(unknown)}: not an input, parameter, constant or upstream "
                           f"gradient of this graph (it has {', '.join(leaves)})")
    if missing:
        raise BngraphError(f"values: no number for {', '.join(missing)}")
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
