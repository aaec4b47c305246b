"""The PyTorch target: a ``torch.autograd.Function`` whose backward is the derived one, and a wrapper.

Tensors the backward needs are saved with ``ctx.save_for_backward``; constants passed as
numbers (ε) ride on ``ctx``. The backward returns one gradient per input of ``forward``:
dx, the learnable parameters' gradients, ``None`` for constants (no gradient is derived).
"""
from __future__ import annotations

from bngraph.codegen.kernel import Kernel
from bngraph.codegen.vectorised import backward_lines, camel, forward_lines

HELPERS = {
    0: '''
def _batch_sum(a):
    """Σ over the batch (dim 0)."""
    return a.sum(dim=0)
''',
    1: '''
def _batch_sum(a):
    """Σ along each row (dim 1), kept as a column."""
    return a.sum(dim=1, keepdim=True)


def _column_sum(a):
    """Σ over the rows: a parameter's gradient."""
    return a.sum(dim=0)
''',
}


def torch_module(kernel: Kernel, header: str) -> str:
    name, cls = kernel.function, f"{camel(kernel.function)}Function"
    args = ", ".join(("x",) + kernel.signature)
    tensors = [n for n in kernel.cache if n not in kernel.scalars]
    numbers = [n for n in kernel.cache if n in kernel.scalars]
    grads = ["dx"] + [f"d{p}" if p in kernel.learnable else "None" for p in kernel.signature]
    lines = [header, "import torch", "", "",
             f"class {cls}(torch.autograd.Function):",
             f'    """{name} with the backward derived by bngraph (not recorded by autograd)."""', "",
             "    @staticmethod",
             f"    def forward(ctx, {args}):"]
    lines += forward_lines(kernel, "torch", "        ")
    if tensors:
        lines.append(f"        ctx.save_for_backward({', '.join(tensors)})")
    lines += [f"        ctx.{n} = {n}" for n in numbers]
    lines += ["        return out", "", "    @staticmethod", "    def backward(ctx, dout):"]
    if tensors:
        lines.append(f"        {', '.join(tensors)}{',' if len(tensors) == 1 else ''} = ctx.saved_tensors")
    lines += [f"        {n} = ctx.{n}" for n in numbers]
    lines.append("        dy = dout")
    lines += backward_lines(kernel, "torch", "        ")
    lines.append(f"        return {', '.join(grads)}")
    lines += ["", "", f"def {name}({args}):",
              f'    """{name}(x) with the derived backward: ``{cls}.apply``; x of shape (N, D)."""',
              f"    return {cls}.apply({args})", "", HELPERS[kernel.axis].rstrip(), ""]
    return "\n".join(lines)
