"""bngraph: see, derive and trust the backward pass of Batch Normalization.

Trace a plain Python function, derive every adjoint by the chain rule with SymPy,
simplify it into closed form for every batch size m, check it, draw it, typeset it.

>>> import bngraph
>>> d = bngraph.derive(bngraph.build_graph(bngraph.LAYERS["batchnorm"].trace(3)))
>>> d.adjoints["gamma"].expr
dL_dy_1*xhat_1 + dL_dy_2*xhat_2 + dL_dy_3*xhat_3
>>> bngraph.closed_form(d).formulas["dL_dbeta"]
Sum(dL_dy[j], (j, 1, m))

The packages, in pipeline order (each imports only those before it): ``engine``,
``closedform``, ``check``, ``tex``, ``audit``, ``codegen``, ``output``; ``cli`` is on top.
"""
from bngraph.engine import (LAYERS, Adjoint, Derivation, Graph, Node, build_graph, derive, exp, get_layer,
                            load_function, log, name, sqrt, stage, trace, trace_target)
from bngraph.errors import BngraphError

# Later stages load on first use, so that ``import bngraph`` stays as light as the engine.
_LATER = {
    "ClosedForm": "bngraph.closedform", "closed_form": "bngraph.closedform", "closed_form_of": "bngraph.closedform",
    "verify": "bngraph.check.verify", "check_backward": "bngraph.check", "assert_backward_matches": "bngraph.check",
}


def __getattr__(attribute):
    if attribute in _LATER:
        import importlib

        return getattr(importlib.import_module(_LATER[attribute]), attribute)
    raise AttributeError(f"module 'bngraph' has no attribute {attribute!r}")


__all__ = [
    "Adjoint", "BngraphError", "ClosedForm", "Derivation", "Graph", "LAYERS", "Node", "assert_backward_matches",
    "build_graph", "check_backward", "closed_form", "closed_form_of", "derive", "exp", "get_layer",
    "load_function", "log", "name", "sqrt", "stage", "trace", "trace_target", "verify",
]
__version__ = "0.1.0"
