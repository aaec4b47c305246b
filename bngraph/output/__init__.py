"""Outputs: the results drawn, printed and gathered for people and programs.

Takes a :class:`~bngraph.engine.graph.Graph`, a :class:`~bngraph.engine.derive.Derivation`,
its :class:`~bngraph.closedform.simplify.ClosedForm` and the checks' report, and gives
files: SVG, PNG, PDF and DOT diagrams, text and JSON, and the report folder with its one HTML page.

- ``render``: Graphviz diagrams through ``nx.nx_agraph`` and pygraphviz.
- ``export``: text and the contract's JSON.
- ``report``: ``bngraph report``, everything in one folder.
- ``page``: the report's ``index.html``; ``mathml``: the LaTeX document's blocks as MathML for it.
- ``files``: writing all-or-nothing.

Nothing is imported here: each command loads only the printers it uses.
"""
