"""The closed form: the adjoints for a symbolic batch size m, and their numeric evaluation.

Takes the engine's result (a traced function, or a :class:`~bngraph.engine.derive.Derivation`)
and gives a :class:`~bngraph.closedform.simplify.ClosedForm`, which the checks, the TeX
export, the auditor and the outputs read.

- ``plates``: lifts a function traced at m = 4, 5, 6 to a plate program for every m.
- ``recognise``: finds the batch mean, variance, normalised input (and rms) a function did
  not name, and writes the plate program in those names.
- ``simplify``: reverse mode at symbolic m, then simplification by the layer's own identities.
- ``form``: the :class:`ClosedForm` it gives, and ``concrete`` (a formula at a given m).
- ``cache``: the closed form kept between runs in the user's cache directory (``--no-cache``
  skips it), keyed on the traced program; ``serialise``: it as JSON data, rebuilt from a
  whitelist of SymPy classes (never ``eval``, ``sympify`` or ``pickle``).
- ``evaluate``: numbers for a graph's nodes, its adjoints and the closed form at one point.
"""
from bngraph.closedform.simplify import ClosedForm, closed_form, closed_form_of, concrete

__all__ = ["ClosedForm", "closed_form", "closed_form_of", "concrete"]
