"""bngraph: see, derive and trust the backward pass of Batch Normalization.

Trace a plain Python function, derive every adjoint by the chain rule with SymPy,
simplify it into closed form for every batch size m, check it, draw it, typeset it.

>>> import bngraph
>>> d = bngraph.derive(bngraph.build_graph(bngraph.LAYERS["batchnorm"].trace(3)))
>>> d.adjoints["gamma"].expr
dL_dy_1*xhat_1 + dL_dy_2*xhat_2 + dL_dy_3*xhat_3
"""
from .derive import Adjoint, Derivation, derive
from .errors import BngraphError
from .graph import Graph, Node, build_graph
from .layers import LAYERS, get_layer, load_function, trace_target
from .trace import exp, log, name, sqrt, stage, trace

__all__ = [
    "Adjoint", "BngraphError", "Derivation", "Graph", "LAYERS", "Node", "build_graph", "derive",
    "exp", "get_layer", "load_function", "log", "name", "sqrt", "stage", "trace", "trace_target",
]
__version__ = "0.1.0"
