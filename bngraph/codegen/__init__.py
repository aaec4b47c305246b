"""Code generation: the derived backward as a drop-in NumPy, PyTorch or JAX function.

Takes a :class:`~bngraph.closedform.simplify.ClosedForm` (its definitions and formulas for
every m) and the :class:`~bngraph.engine.derive.Derivation` it came from (the layer's name,
its parameters and constants, their order) and gives the source text of a Python module:
``forward(x, *params) -> (out, cache)`` and ``backward(dout, cache)`` on (N, D) arrays,
a ``torch.autograd.Function``, or a ``jax.custom_vjp`` function.

- ``kernel``: the target-independent steps, read off the closed form (sums, per-feature
  factors, dx as a sum of per-example terms, the cache).
- ``rows``: the layout along rows (layer norm): dx in a normalised value's adjoint.
- ``names``: readable names for intermediates, from what they are (``sum_dy``, ``inv_std``).
- ``printer``: one expression as array code (SymPy's NumPy printer under np, torch, jnp).
- ``numpy_target``, ``torch_target``, ``jax_target``: the module text of each target.
- ``module``: the header and :func:`generate`.
"""
from bngraph.codegen.kernel import Kernel, build_kernel
from bngraph.codegen.module import TARGETS, generate, generate_for

__all__ = ["Kernel", "TARGETS", "build_kernel", "generate", "generate_for"]
