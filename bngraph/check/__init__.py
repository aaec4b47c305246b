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
- ``pytest_plugin``: the ``bngraph_check`` fixture (the ``pytest11`` entry point).
"""
from bngraph.check.backward import (BackwardReport, GradientCheck, assert_backward_matches, check_backward,
                                    cli_check_backward, load_function, one_pass_variance_precision)

__all__ = ["BackwardReport", "GradientCheck", "assert_backward_matches", "check_backward",
           "cli_check_backward", "load_function", "one_pass_variance_precision"]
