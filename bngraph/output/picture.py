"""What a diagram shows, before Graphviz lays it out: nodes, labels, edges, example boxes.

The backward picture is the forward picture's mirror: the same nodes, added in the same
order, and the same edges parent → child, drawn with ``dir=back``, so that Graphviz places
every node where the forward diagram has it and only the arrows turn round (the gradient
flows from each child back to its parents). Each example's nodes sit in a box of their
own, and the boxes are chained left to right on the inputs' rank: 1, 2, …, m, with the
hidden examples of a large batch as one column of ``⋯`` nodes between 2 and m.

Labels are typeset mathematics (:mod:`bngraph.output.mathlabel`). A local partial too long
for an edge is named on the edge (∂x̂₁/∂σ²) and written out in the table under the graph.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

import networkx as nx
import sympy as sp

from bngraph.closedform.batchsum import batch_sum
from bngraph.output.mathlabel import MINUS, expr_html, name_html, partial_html, visible

LEAVES = ("input", "parameter", "constant")
EDGE_CHARS = 16  # visible characters of a partial written on its edge; longer ones go to the table
BACKWARD_COLOR, FORWARD_COLOR, STEP_COLOR = "#b91c1c", "#374151", "#6b7280"
ROLE_STYLE = {  # each role its own shape and colour, so the picture reads without the legend too
    "input": {"shape": "ellipse", "fillcolor": "#dbeafe"},
    "parameter": {"shape": "hexagon", "fillcolor": "#dcfce7"},
    "constant": {"shape": "diamond", "fillcolor": "#e5e7eb"},
    "intermediate": {"shape": "box", "fillcolor": "#fef9c3"},
    "output": {"shape": "box", "style": "rounded,filled", "peripheries": "2", "fillcolor": "#fee2e2"},
}
MORE = "more:"  # the hidden examples' column: "more:0", "more:1" … (never a valid symbol name)
INFIX = {"sub": f" {MINUS} ", "mul": " · ", "div": "/"}


@dataclass
class Picture:
    """The nx.DiGraph to draw, and the boxes of examples, left to right."""

    digraph: nx.DiGraph
    boxes: list[tuple[str, str, list[str]]] = field(default_factory=list)  # (name, label, nodes), left to right

    def to_agraph(self, boxes: bool = True):
        """The picture for pygraphviz. Graphviz orders clusters as it likes when it minimises edge
        crossings, so with ``boxes`` the nodes keep the order in which they were added (which
        puts the examples in order); without, invisible edges hold the inputs in order on their rank.
        """
        agraph = nx.nx_agraph.to_agraph(self.digraph)
        if boxes:
            agraph.graph_attr["mclimit"] = "0.01"  # keep the order of the input: no crossing minimisation
            for name, label, nodes in self.boxes:
                agraph.add_subgraph(nodes, name=name, label=label, style="rounded,dashed", color="#9ca3af",
                                    fontsize="10", fontname="Helvetica")
            return agraph
        columns = [nodes for _, _, nodes in self.boxes]
        for position in range(max(map(len, columns), default=0)):  # k-th node of every example: one row
            row = [nodes[position] for nodes in columns if position < len(nodes)]
            if len(row) > 1:
                same = agraph.add_subgraph(row, name=f"examples_in_order_{position}", rank="same")
                for left, right in zip(row, row[1:]):
                    same.add_edge(left, right, style="invis")
        return agraph

    def in_order(self, agraph) -> bool:
        """After the layout: do the examples' first nodes stand left to right, 1, 2, ⋯, m?"""
        xs = [float(agraph.get_node(nodes[0]).attr["pos"].split(",")[0]) for _, _, nodes in self.boxes]
        return xs == sorted(xs)


def examples(graph) -> dict[str, int | None]:
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


def steps(graph) -> dict[str, int]:
    """The step number of every computed node: one step per name the function gave (the nine of
    Batch Norm: μ, x − μ, its square, σ², √(σ² + ε), its inverse, x̂, γx̂, y), an unnamed
    value in the step of the first named value that uses it.

    >>> from bngraph.engine.layers import LAYERS
    >>> from bngraph.engine.graph import build_graph
    >>> s = steps(build_graph(LAYERS["batchnorm"].trace(2), "staged"))
    >>> s["t1"], s["mu"], s["xmu_2"], s["ivar"], s["y_1"]
    (1, 1, 2, 6, 9)
    """
    generated = {r.name for r in graph.trace.records if r.generated} if graph.trace else set()
    family = {}
    for node in graph:
        if node.role not in LEAVES and node.name not in generated:
            family[node.name] = re.sub(r"_\d+$", "", node.name)
    numbers: dict[str, int] = {}
    for name in family.values():
        numbers.setdefault(name, len(numbers) + 1)
    found = {n: numbers[f] for n, f in family.items()}
    for node in reversed(graph.nodes):
        if node.role not in LEAVES and node.name not in found:
            users = [found[c] for c in graph.children(node.name) if c in found]
            found[node.name] = min(users) if users else len(numbers) + 1
    return {n.name: found[n.name] for n in graph if n.name in found}


def formula(node) -> str:
    """A staged node's one op, typeset: ``xmu_1`` → x₁ − μ (a long sum keeps its ends)."""
    args = [name_html(a) if isinstance(a, str) else expr_html(a) for a in node.args]
    if node.op == "add":
        return " + ".join(args if len(args) <= 4 else [*args[:2], "⋯", args[-1]])
    if node.op in INFIX:
        return INFIX[node.op].join(args)
    if node.op == "pow":
        return f"{args[0]}<SUP>{args[1]}</SUP>"
    if node.op == "neg":
        return f"{MINUS}{args[0]}"
    if node.op == "sqrt":
        return f"√{args[0]}"
    return args[0] if node.op == "id" else f"{node.op}({', '.join(args)})"


class PictureBuilder:
    """Builds the :class:`Picture` of one graph in one direction."""

    def __init__(self, graph, direction, derivation, numbers, shown, chain_rule=False, constants=False):
        self.graph, self.derivation, self.numbers = graph, derivation, numbers
        self.backward, self.chain_rule, self.constants = direction == "backward", chain_rule, constants
        self.example, self.shown = examples(graph), tuple(shown)
        self.hidden = [k for k in range(1, graph.m + 1) if k not in set(shown)]
        self.steps = steps(graph) if graph.view == "staged" else {}
        self.table: dict[str, str] = {}  # partials written out under the graph
        self.ghosts = self._ghosts()

    # -- which node stands where -----------------------------------------------------
    def _ghosts(self) -> dict[str, str]:
        """Every hidden example's node -> its place in the ``⋯`` column (its position in its example)."""
        ghosts, position = {}, {}
        for node in self.graph:
            k = self.example[node.name]
            if k in self.hidden:
                position[k] = position.get(k, -1) + 1
                ghosts[node.name] = f"{MORE}{position[k]}"
        return ghosts

    def place(self, name: str) -> str:
        return self.ghosts.get(name, name)

    # -- the picture -------------------------------------------------------------------
    def build(self, title: str) -> Picture:
        pic = nx.DiGraph(name=f"{self.graph.layer}_{'backward' if self.backward else 'forward'}")
        color = BACKWARD_COLOR if self.backward else FORWARD_COLOR
        pic.graph["graph"] = {"fontname": "Helvetica", "rankdir": "TB", "nodesep": "0.45", "ranksep": "0.75", "forcelabels": "true",
                              "newrank": "true", "labelloc": "b", "labeljust": "c"}
        pic.graph["node"] = {"fontname": "Helvetica", "fontsize": "12", "style": "filled", "margin": "0.06,0.03"}
        pic.graph["edge"] = {"fontname": "Helvetica", "fontsize": "10", "arrowsize": "0.7", "color": color,
                             "fontcolor": color}
        ghost_members = self._add_nodes(pic)
        self._add_edges(pic)
        pic.graph["graph"]["label"] = self._caption(title)
        return Picture(pic, self._boxes(ghost_members))

    def _add_nodes(self, pic) -> dict[str, list[str]]:
        members: dict[str, list[str]] = {}  # ghost -> the hidden nodes it stands for (first, last example)
        for node in self.graph:
            ghost = self.ghosts.get(node.name)
            if ghost is None:
                style = dict(ROLE_STYLE[node.role])
                if node.role == "constant" and self.backward and not self.constants:
                    style.update(fillcolor="#f3f4f6", color="#9ca3af", fontcolor="#6b7280")
                pic.add_node(node.name, label=self._label(node), **style)
            else:  # added where its first node stands, so that Graphviz meets it before example m
                members.setdefault(ghost, []).append(node.name)
                pic.add_node(ghost, shape="box", style="dashed,rounded", color="#9ca3af", fontsize="11")
        first, last = self.hidden[:1], self.hidden[-1:]
        for ghost, names in members.items():
            ends = [n for n in names if self.example[n] in (*first, *last)]
            text = f" {'⋯'} ".join(name_html(n) for n in (ends[0], ends[-1])) if len(ends) > 1 else "⋯"
            pic.nodes[ghost]["label"] = f"<{text}>"
        return members

    def _boxes(self, ghost_members) -> list:
        """One box per drawn example, left to right: 1, 2, ⋯ (the hidden ones), m."""
        boxes = []
        by_example: dict[int, list[str]] = {k: [] for k in self.shown}
        for node in self.graph:
            if self.example[node.name] in by_example:
                by_example[self.example[node.name]].append(node.name)
        order = list(self.shown)
        if self.hidden:  # the column of hidden examples stands between 2 and m
            order.insert(len(order) - 1, None)
        for k in order:
            if k is None:
                nodes = list(ghost_members)
                label = f"examples {self.hidden[0]} ⋯ {self.hidden[-1]} ({len(self.hidden)} more)"
                name = "cluster_example_more"
            else:
                nodes, label, name = by_example[k], f"example {k}", f"cluster_example_{k}"
            if nodes:
                boxes.append((name, label, nodes))
        return boxes

    def _add_edges(self, pic) -> None:
        for node in self.graph:
            child = self.place(node.name)
            for parent in node.parents:
                tail = self.place(parent)
                if pic.has_edge(tail, child):
                    continue
                attributes = {}
                if self.backward:
                    attributes["dir"] = "back"
                    if self.graph[parent].role == "constant":  # no adjoint flows into a constant
                        if not self.constants:
                            attributes["style"] = "invis"
                        else:
                            attributes["style"] = "dashed"
                    if MORE not in tail + child and attributes.get("style") != "invis":
                        attributes["xlabel"] = self._edge_label(parent, node.name)
                pic.add_edge(tail, child, **attributes)

    # -- labels --------------------------------------------------------------------------
    def partial(self, parent: str, child: str) -> str:
        """∂child/∂parent typeset; a sum over the batch as c Σ_j (x_j − μ), with its value 0 when it is."""
        expr = self.derivation.partials[parent, child]
        found = batch_sum(expr, self.graph)
        if found is None:
            return expr_html(expr)
        c = found.per_m
        sign, c = (MINUS, -c) if c.could_extract_minus_sign() else ("", c)
        coefficient = "1/m" if c == 1 else f"({expr_html(c)}/m)"
        text = f"{sign}{coefficient} Σ<SUB>j</SUB> ({name_html(found.family + '_j')} {MINUS} {name_html(found.shared)})"
        return text + (f" = 0 since {name_html(found.shared)} is the mean" if found.vanishes else "")

    def _edge_label(self, parent: str, child: str) -> str:
        """The partial on its edge, or its name there and the formula in the table under the graph
        (once for a whole family: ∂x̂ₖ/∂σ² stands for every example k)."""
        text = self.partial(parent, child)
        if len(visible(text)) <= EDGE_CHARS:
            return f"<{text}>"
        generic = self._generic(parent, child)
        if generic is None:
            self.table.setdefault(partial_html(child, parent), text)
        else:
            self.table.setdefault(partial_html(generic[child], generic.get(parent, parent)),
                                  expr_html(self.derivation.partials[parent, child].xreplace(generic.symbols)))
        return f"<{partial_html(child, parent)}>"

    def _generic(self, parent: str, child: str):
        """Every name of the child's example k written with the index k (x_1 -> x_k), or None."""
        k = self.example.get(child)
        expr = self.derivation.partials[parent, child]
        names = {s.name for s in expr.free_symbols} | {parent, child}
        mine = [n for n in names if self.example.get(n) is not None]
        if k is None or any(self.example[n] != k or not re.fullmatch(rf".+_{k}", n) for n in mine):
            return None
        renamed = {n: re.sub(r"_\d+$", "_k", n) for n in mine}
        return _Generic(renamed, {sp.Symbol(n): sp.Symbol(r) for n, r in renamed.items()})

    def _label(self, node) -> str:
        rows = []
        if node.name in self.steps:
            rows.append(f'<FONT POINT-SIZE="9" COLOR="{STEP_COLOR}">step {self.steps[node.name]}</FONT>')
        head = name_html(node.name)
        if self.graph.view == "staged" and node.role not in LEAVES:
            head += f" = {formula(node)}"
        rows.append(head)
        if self.numbers is not None:  # the forward value, then the gradient: micrograd's "data" and "grad"
            value, grad = self.numbers
            rows.append(f'<FONT POINT-SIZE="10">value {_number(value[node.name])}</FONT>')
            if node.name in grad and not self.backward:
                rows.append(f'<FONT POINT-SIZE="10" COLOR="{BACKWARD_COLOR}">grad {_number(grad[node.name])}</FONT>')
        if self.backward:
            rows += self._adjoint_rows(node)
        return _rows(rows)

    def _adjoint_rows(self, node) -> list[str]:
        """∂L/∂node (with its number when values are given, and its chain-rule sum if asked)."""
        adjoint = name_html("dL_d" + node.name)
        grad = self.numbers[1] if self.numbers is not None else {}
        if node.name in grad:
            adjoint += f" = {_number(grad[node.name])}"
        if node.role == "output":
            return [f'<FONT COLOR="{BACKWARD_COLOR}">{adjoint} (given)</FONT>']
        if node.name not in self.derivation.adjoints:
            return []
        rows = [f'<FONT COLOR="{BACKWARD_COLOR}">{adjoint}{" =" if self.chain_rule else ""}</FONT>']
        if self.chain_rule:
            terms = self.derivation.adjoints[node.name].terms
            drawn = [c for c, _ in terms if c not in self.ghosts]
            for c in drawn:
                text = self.partial(node.name, c)
                if len(visible(text)) > EDGE_CHARS:
                    text = partial_html(c, node.name)
                sign, text = (MINUS, text[1:]) if text.startswith(MINUS) and "=" not in text else ("+", text)
                rows.append(f'<FONT POINT-SIZE="10">{sign} {name_html("dL_d" + c)} · {text}</FONT>')
            if len(drawn) < len(terms):
                rows.append(f'<FONT POINT-SIZE="10">+ {len(terms) - len(drawn)} more terms, one per hidden example</FONT>')
        return rows

    def _caption(self, title: str) -> str:
        """Under the graph: the caption, the partials written out, and the legend."""
        roles = [r for r in ROLE_STYLE if self.graph.with_role(r)]
        cells = [f'<TR><TD><FONT POINT-SIZE="13">{title}</FONT></TD></TR>']
        for name, text in self.table.items():
            cells.append(f'<TR><TD ALIGN="LEFT"><FONT COLOR="{BACKWARD_COLOR}">{name} = {text}</FONT></TD></TR>')
        quiet = self.backward and not self.constants  # constants drawn without their (unasked) adjoint edges
        legend = "".join(f'<TD BGCOLOR="{ROLE_STYLE[r]["fillcolor"]}" BORDER="1"><FONT POINT-SIZE="10">'
                         f'{r}{" (no gradient)" if r == "constant" and quiet else ""}</FONT></TD>' for r in roles)
        cells.append(f'<TR><TD><TABLE BORDER="0" CELLSPACING="4" CELLPADDING="3"><TR>{legend}</TR></TABLE></TD></TR>')
        return '<<TABLE BORDER="0" CELLSPACING="4" CELLPADDING="3">' + "".join(cells) + "</TABLE>>"


@dataclass(frozen=True)
class _Generic:
    names: dict  # node name -> its name at example k
    symbols: dict  # the same, as SymPy symbols

    def __getitem__(self, name):
        return self.names[name]

    def get(self, name, default):
        return self.names.get(name, default)


def _rows(rows: list[str]) -> str:
    """Lines of a node, as table rows: a subscript then keeps clear of the line below."""
    if len(rows) == 1:
        return f"<{rows[0]}>"
    cells = "".join(f"<TR><TD>{row}</TD></TR>" for row in rows)
    return f'<<TABLE BORDER="0" CELLSPACING="0" CELLPADDING="1">{cells}</TABLE>>'


def _number(x: float) -> str:
    return f"{x:.4g}".replace("-", MINUS)
