"""The engine: trace a function, build its graph, derive every adjoint by reverse mode.

Takes a plain Python function (a built-in layer of :mod:`bngraph.engine.layers`, or a
user's ``FILE.py:FUNC`` loaded by :mod:`bngraph.engine.usercode`) and gives a
:class:`~bngraph.engine.derive.Derivation`, which every later stage reads.

- ``trace``: runs the function on traced scalars and records a :class:`Trace`.
- ``arrays``: arrays of traced scalars (``TracedArray``: a plain list until used as an array),
  and how a forward is called (``x`` of shape (m,) or (m, 1), a ``bn_param`` dict,
  ``(out, cache)`` results).
- ``numpy_ops``: NumPy's ufuncs and functions on traced arrays, element by element (the only
  engine module that imports NumPy; plain-Python forwards never load it).
- ``primitives``: the table of ops, each forward rule beside its local partials
  (the partial of ``sqrt`` lives there).
- ``graph``: the *staged* and *named* views of a trace, over networkx.
- ``derive``: reverse-mode chain rule over a graph, symbolically.
- ``replicas``: one example's symbolic work renamed for the others (``graph``, ``derive``
  and the printers reuse it), where that is exactly what SymPy would build.
- ``layers``: the built-in layers, written as plain functions.
"""
from bngraph.engine.derive import Adjoint, Derivation, derive
from bngraph.engine.graph import Graph, Node, build_graph
from bngraph.engine.layers import LAYERS, get_layer, load_function, trace_target
from bngraph.engine.trace import Trace, exp, log, name, sqrt, stage, trace

__all__ = ["Adjoint", "Derivation", "Graph", "LAYERS", "Node", "Trace", "build_graph", "derive", "exp",
           "get_layer", "load_function", "log", "name", "sqrt", "stage", "trace", "trace_target"]
