"""The body of a forward and a backward as whole-array statements, for PyTorch and JAX.

Those frameworks fuse or thread their own kernels, so the steps are printed as they are:
each batch sum one reduction (a helper ``_batch_sum`` of the module), the per-group
factors once, dx as the sum of its per-example terms.

>>> from bngraph.engine.layers import LAYERS
>>> from bngraph.engine.graph import build_graph
>>> from bngraph.engine.derive import derive
>>> from bngraph.closedform.simplify import closed_form
>>> from bngraph.codegen.kernel import build_kernel
>>> d = derive(build_graph(LAYERS["batchnorm"].trace(3)))
>>> print("\\n".join(backward_lines(build_kernel(d, closed_form(d)), "torch", "    ")[-3:]))
    dx = dy*gamma_inv_std + coef_xhat*xhat + offset
    dgamma = sum_dy_xhat
    dbeta = sum_dy
"""
from __future__ import annotations

from bngraph.codegen.kernel import Kernel
from bngraph.codegen.printer import code


def uses_m(kernel: Kernel, side: str) -> bool:
    """Does the forward (or the backward) use the batch size m?"""
    m = {"m"}
    if side == "forward":
        return any(m & {str(s) for s in step.expr.free_symbols} for step in kernel.forward)
    exprs = [s.expr for s in kernel.factors + kernel.sums + kernel.gradients] + [c * p for c, p in kernel.dx]
    exprs += [kernel.head.expr] if kernel.head else []
    return any(m & {str(s) for s in e.free_symbols} for e in exprs)


def forward_lines(kernel: Kernel, module: str, indent: str) -> list[str]:
    """m (if used) and every forward step; the caller returns ``out`` and the cache."""
    lines = [f"{indent}m = x.shape[{kernel.axis}]"] if uses_m(kernel, "forward") else []
    return lines + [f"{indent}{s.name} = {code(s.expr, module)}" for s in kernel.forward]


def dx_expression(kernel: Kernel, module: str) -> str:
    """Σ coefficient·term in the kernel's order: the upstream term first, the offset last."""
    return " + ".join(code(c * p, module) for c, p in kernel.dx) if kernel.dx else "0*dy"


def backward_lines(kernel: Kernel, module: str, indent: str) -> list[str]:
    """From dy and the unpacked cache to dx and the parameters' gradients (d<name>)."""
    lines = [f"{indent}m = dy.shape[{kernel.axis}]"] if uses_m(kernel, "backward") else []
    if kernel.head is not None:
        lines.append(f"{indent}{kernel.head.name} = {code(kernel.head.expr, module)}")
    lines += [f"{indent}{s.name} = _batch_sum({code(s.expr.args[0], module)})" for s in kernel.sums]
    lines += [f"{indent}{s.name} = {code(s.expr, module)}" for s in kernel.factors]
    lines.append(f"{indent}dx = {dx_expression(kernel, module)}")
    for g, parameter in zip(kernel.gradients, kernel.learnable):
        value = code(g.expr, module)
        if kernel.axis == 1:
            value = f"_column_sum({value})"
        elif not g.expr.free_symbols:  # the same number for every feature
            value = f"{module}.zeros_like({parameter}) + {value}"
        lines.append(f"{indent}{g.name} = {value}")
    return lines


def camel(name: str) -> str:
    """``batchnorm_eval`` -> ``BatchnormEval``.

    >>> camel("batchnorm_eval")
    'BatchnormEval'
    """
    return "".join(part[:1].upper() + part[1:] for part in name.split("_") if part) or "Layer"
