"""The JAX target: a function with a ``jax.custom_vjp`` whose backward rule is the derived one.

Constants passed as numbers (ε) are ``nondiff_argnums``; array constants (running
statistics) are ordinary arguments whose cotangent is zero, as under ``lax.stop_gradient``:
bngraph derives no gradient for a constant.
"""
from __future__ import annotations

from bngraph.codegen.kernel import Kernel
from bngraph.codegen.vectorised import backward_lines, forward_lines

HELPERS = {
    0: '''
def _batch_sum(a):
    """Σ over the batch (axis 0)."""
    return jnp.sum(a, axis=0)
''',
    1: '''
def _batch_sum(a):
    """Σ along each row (axis 1), kept as a column."""
    return jnp.sum(a, axis=1, keepdims=True)


def _column_sum(a):
    """Σ over the rows: a parameter's gradient."""
    return jnp.sum(a, axis=0)
''',
}


def jax_module(kernel: Kernel, header: str) -> str:
    name = kernel.function
    args = ("x",) + kernel.signature
    static = [k for k, a in enumerate(args) if a in kernel.scalars]
    array_args = [a for a in kernel.signature if a not in kernel.scalars]
    cotangents = ["dx"] + [f"d{a}" if a in kernel.learnable else f"jnp.zeros_like({a})" for a in array_args]
    saved = [n for n in kernel.cache if n not in kernel.scalars]  # the numbers come as nondiff arguments
    saved += [a for a in array_args if a not in kernel.learnable and a not in saved]  # for their zero cotangents
    cache = ", ".join(saved) + ("," if len(saved) == 1 else "")
    decorator = (f"@functools.partial(jax.custom_vjp, nondiff_argnums={tuple(static)})" if static
                 else "@jax.custom_vjp")
    lines = [header, "import functools", "", "import jax", "import jax.numpy as jnp", "", "",
             decorator, f"def {name}({', '.join(args)}):",
             f'    """{name}(x), x of shape (N, D); jax.grad uses the derived backward."""',
             f"    return _forward({', '.join(args)})[0]", "", "",
             f"def _forward({', '.join(args)}):",
             '    """(out, cache): the forward pass and what the backward rule reads."""']
    lines += forward_lines(kernel, "jnp", "    ")
    lines += [f"    return out, ({cache})", "", ""]
    nondiff = [args[k] for k in static]
    lines.append(f"def _backward({', '.join(nondiff + ['cache', 'dout'])}):")
    lines.append('    """The derived backward: one cotangent per array argument."""')
    if saved:
        lines.append(f"    {cache} = cache")
    else:
        lines.append("    del cache")
    lines.append("    dy = dout")
    lines += backward_lines(kernel, "jnp", "    ")
    lines.append(f"    return {', '.join(cotangents)}{',' if len(cotangents) == 1 else ''}")
    lines += ["", "", f"{name}.defvjp(_forward, _backward)", "", HELPERS[kernel.axis].rstrip(), ""]
    return "\n".join(lines)
