"""Checking: the engine's results and a user's backward code, against independent references.

Takes a :class:`~bngraph.engine.derive.Derivation` and its
:class:`~bngraph.closedform.simplify.ClosedForm` (``verify``), or a user's forward and
backward functions (``check_backward``), and gives a report with a verdict and an exit status.

- ``reference``: NumPy forward and backward passes written from the math, apart from the engine.
- ``numeric``: finite differences, HIPS autograd, and the one relative-error measure.
- ``verify``: the engine's adjoints and closed form against those references.
- ``backward``: ``check-backward``, a user's backward against the references;
  ``diagnose`` names the slip in a wrong one; ``usercall`` calls the user's code.
- ``compare``: ``derive --compare``, a user's forward against a built-in layer (same function
  for every m? same backward? a small counterexample where not).
- ``gradcheck``: any layer's forward and backward on (N, D) arrays (a generated module, or
  code by hand) against central finite differences of the layer's plain function.
- ``pytest_plugin``: the ``bngraph_check`` and ``bngraph_gradcheck`` fixtures (``pytest11``).
"""
from importlib import import_module

_WHERE = {"BackwardReport": "backward", "GradientCheck": "backward", "assert_backward_matches": "backward",
          "check_backward": "backward", "cli_check_backward": "backward", "load_function": "backward",
          "one_pass_variance_precision": "backward", "GradientsReport": "gradcheck",
          "assert_gradients_match": "gradcheck", "check_gradients": "gradcheck"}
__all__ = sorted(_WHERE)


def __getattr__(name: str):
    """The names above, imported on first use: ``verify`` needs none of check-backward's modules."""
    if name not in _WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(f"bngraph.check.{_WHERE[name]}"), name)
