"""The report's one page, ``index.html``: the derivation in the order it is learned, graphs and all.

Self-contained (its style, script, pictures and mathematics inline; nothing fetched, no framework)
and the same bytes on every run. The text and mathematics are the LaTeX document's own blocks
(:func:`bngraph.tex.export.document`) set as MathML (:mod:`bngraph.output.mathml`); the graphs are
the report's SVGs, inline, each node marked with the name the equations are about, so that a
click on a node shows its definition, local partials and adjoint, and each edge with the local
partial a hover shows.
"""
from __future__ import annotations

import ast
import html
import itertools
import re
from pathlib import Path

from bngraph.engine.derive import Derivation
from bngraph.output.mathml import equation, equations, plain, prose
from bngraph.tex.export import Block, Equation, document, partial_symbol, printer_for

HERE = Path(__file__).parent
_NODE = re.compile(r'<g id="([\w-]+)" class="node">\n<title>([^<]*)</title>')
_EDGE = re.compile(r'<g id="([\w-]+)" class="edge">\n<title>([^<]*)</title>')
GRAPHS = {  # where each graph goes: after the section whose heading starts so
    "forward-pass": ("forward-graph", "The forward graph",
                     "Every box is one scalar, every arrow an operand. Click a node to see its definition, its "
                     "local partial derivatives and its adjoint below; the staged view breaks the layer into "
                     "one node per operation."),
    "local-partial": ("backward-graph", "The backward graph",
                      "The same graph with the arrows reversed: the gradient flows from the outputs back to the "
                      "inputs. Each edge carries its local partial derivative (hover over it to see it typeset), "
                      "each node its adjoint."),
}


def node_family(name: str) -> str:
    """The name the equations for every m use for a graph node: ``xhat_2`` -> ``xhat``, ``mu`` -> ``mu``.

    >>> node_family("xhat_2"), node_family("sigma2")
    ('xhat', 'sigma2')
    """
    return re.sub(r"_\d+$", "", name)


def slug(text: str) -> str:
    """A heading as an id: ``Forward pass at $m = 3$`` -> ``forward-pass-at``."""
    return "-".join(re.findall(r"[a-z0-9]+", plain(text).lower()))


def function_source(spec: str) -> str:
    """The source of FUNC in ``FILE.py:FUNC``, read (not run) from the file; the whole file if it is not found."""
    path, _, name = spec.rpartition(":")
    text = Path(path).read_text(encoding="utf-8")
    for node in ast.parse(text).body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name == name:
            first = min([node.lineno] + [d.lineno for d in node.decorator_list])
            return "\n".join(text.splitlines()[first - 1:node.end_lineno]) + "\n"
    return text


class Page:
    """Builds the page: one instance per report, so that equation anchors are numbered across it."""

    def __init__(self, named: Derivation, staged: Derivation, closed, checks, svgs: dict[str, str],
                 source: str | None = None):
        self.named, self.staged, self.closed, self.checks = named, staged, closed, checks
        self.svgs, self.source = svgs, source
        self.printer = printer_for(named, closed)
        self.anchors = itertools.count(1)
        self.partials: list[str] = []  # the hidden MathML of each edge's local partial, for the hover

    def html(self) -> str:
        blocks = document(self.named, self.closed)
        title = f"bngraph: {self.named.graph.layer}, m = {self.named.graph.m}"
        body = [f"<header><h1>{prose(blocks[0].text)}</h1></header>"] if blocks[0].kind == "heading1" else []
        placed = set()
        for heading, content in _sections(blocks[1:] if body else blocks):
            name = slug(heading.text) if heading else "introduction"
            body.append(self._section(name, heading, content))
            for start, graph in GRAPHS.items():
                if name.startswith(start) and start not in placed:
                    placed.add(start)
                    body.append(self._graphs(*graph))
        body.append(self._verification())
        if self.source is not None:
            body.append(self._source())
        hidden = '<div id="partials" hidden>\n' + "\n".join(self.partials) + "\n</div>"
        style, script = (HERE / "page.css").read_text(), (HERE / "page.js").read_text()
        return (f'<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
                f'<meta name="viewport" content="width=device-width, initial-scale=1">\n'
                f"<title>{html.escape(title)}</title>\n<style>\n{style}</style>\n</head>\n<body>\n<main>\n"
                + "\n".join(body) + f'\n</main>\n<div id="tip" role="tooltip" hidden></div>\n{hidden}\n'
                f"<script>\n{script}</script>\n</body>\n</html>\n")

    # -- the derivation ---------------------------------------------------------------------
    def _section(self, name: str, heading: Block | None, blocks: list[Block]) -> str:
        out = [f'<section id="{name}">'] + ([f"<h2>{prose(heading.text)}</h2>"] if heading else [])
        for block in blocks:
            if block.kind == "heading3":
                out.append(f"<h3>{prose(block.text)}</h3>")
            elif block.kind == "text":
                out.append(f"<p>{prose(block.text)}</p>")
            elif block.equations:
                out.append(equations(self.printer, block.equations, self.anchors))
        return "\n".join(out + ["</section>"])

    # -- the graphs -------------------------------------------------------------------------
    def _graphs(self, name: str, title: str, text: str) -> str:
        direction = name.split("-")[0]
        buttons = ('<div class="views" role="group" aria-label="view">'
                   '<button type="button" data-view="named" aria-pressed="true">named nodes</button>'
                   '<button type="button" data-view="staged" aria-pressed="false">staged: one node per step'
                   "</button></div>")
        figures = []
        for derivation in (self.named, self.staged):
            view = derivation.graph.view
            svg = self._svg(self.svgs[f"{direction}_{view}.svg"], f"{direction}-{view}", derivation)
            hidden = " hidden" if view == "staged" else ""
            figures.append(f'<figure class="view" data-view="{view}"{hidden}>\n{svg}\n</figure>')
        return "\n".join([f'<section id="{name}" class="graph">', f"<h2>{title}</h2>", f"<p>{text}</p>",
                          buttons, *figures, "</section>"])

    def _svg(self, svg: str, prefix: str, derivation: Derivation) -> str:
        """Graphviz's SVG, inline: ids made unique on the page, nodes clickable, edges hoverable."""
        svg = svg[svg.index("<svg"):].replace(' id="', f' id="{prefix}-')
        svg = _NODE.sub(lambda m: self._node(m[1], html.unescape(m[2])), svg)
        return _EDGE.sub(lambda m: self._edge(m[1], html.unescape(m[2]), derivation), svg)

    @staticmethod
    def _node(ident: str, name: str) -> str:
        about = html.escape(" ".join(dict.fromkeys((node_family(name), name))))  # x_1: "x" for every m, "x_1" at m
        return (f'<g id="{ident}" class="node" data-node="{html.escape(name)}" data-about="{about}" tabindex="0">'
                f"\n<title>{html.escape(name)}: click to see its equations</title>")

    def _edge(self, ident: str, name: str, derivation: Derivation) -> str:
        parent, _, child = name.partition("->")
        graph = derivation.graph
        partial = derivation.local_partials_of(child).get(parent) if child in graph and parent in graph else None
        edge = f'<g id="{ident}" class="edge" data-edge="{html.escape(name)}"'
        if partial is None:  # an edge of the collapsed examples' column
            return edge + ">"
        anchor = f"partial-{len(self.partials) + 1}"
        eq = Equation(partial_symbol(child, parent), (partial,))
        printer = self.printer if derivation is self.named else printer_for(derivation)
        self.partials.append(f'<table class="align" id="{anchor}">{equation(printer, eq, anchor + "-eq")}</table>')
        return f'{edge} data-partial="{anchor}">'

    # -- the checks and the user's code -----------------------------------------------------
    def _verification(self) -> str:
        rows = []
        for c in self.checks.checks:
            result = "info" if c.informational else ("pass" if c.passed else "FAIL")
            threshold = "–" if c.informational else f"{c.threshold:.0e}"
            rows.append(f'<tr class="{result.lower()}"><td>{html.escape(c.check)}</td><td>{html.escape(c.gradient)}'
                        f"</td><td>{c.error:.2e}</td><td>{threshold}</td><td>{result}</td></tr>")
        failed = sum(not c.passed for c in self.checks.checks)
        notes = "".join(f"<p>{html.escape(n)}</p>" for n in self.checks.notes)
        return "\n".join([
            '<section id="verification">', "<h2>Verification</h2>",
            f"<p>Every gradient the engine derived, evaluated at random points ({self.checks.m} examples, "
            "float64), against references that share no code with it: finite differences, an independent "
            "automatic differentiation and, for a built-in layer, a NumPy backward written by hand. "
            f"{len(self.checks.checks) - failed} passed, {failed} failed.</p>",
            '<table class="checks"><thead><tr><th>check</th><th>gradient</th><th>max rel. error</th>'
            "<th>threshold</th><th>result</th></tr></thead><tbody>", *rows, "</tbody></table>", notes,
            "</section>"])

    def _source(self) -> str:
        out = ['<section id="source">', "<h2>The function traced</h2>",
               f'<pre><code>{html.escape(self.source, quote=False)}</code></pre>']
        recognised = getattr(self.closed, "recognised", "")
        if recognised:  # the names bngraph gave: defined in the forward pass (the first equations), not in the graph
            names = {node_family(n.name) for n in self.named.graph}
            forward = next(b for b in document(self.named, self.closed) if b.kind == "math")
            definitions = [eq for eq in forward.equations if eq.about and eq.about[0] not in names]
            out += ["<h3>The statistics bngraph recognised</h3>", f"<p>{html.escape(recognised)}</p>",
                    equations(self.printer, definitions, self.anchors)]
        return "\n".join(out + ["</section>"])


def _sections(blocks) -> list[tuple[Block | None, list[Block]]]:
    """The blocks cut at each second-level heading (the text before the first one has none)."""
    out: list[tuple[Block | None, list[Block]]] = [(None, [])]
    for block in blocks:
        if block.kind == "heading2":
            out.append((block, []))
        else:
            out[-1][1].append(block)
    return [(h, b) for h, b in out if h is not None or b]


def build_page(named: Derivation, staged: Derivation, closed, checks, svgs: dict[str, str],
               source: str | None = None) -> str:
    """``index.html``: ``svgs`` are the report's (``forward_named.svg`` …), ``source`` a user's function."""
    return Page(named, staged, closed, checks, svgs, source).html()
