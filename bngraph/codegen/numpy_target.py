"""The NumPy target: ``forward(x, *params) -> (out, cache)`` and ``backward(dout, cache)``.

The backward works through the rows in blocks of about 1 MiB, so that a block of dy, its
scratch and the matching block of the cache stay in the processor's cache: the batch
sums are then one pass over the arrays, and dx one more (written in place, block by
block), instead of one pass per NumPy operation with a fresh (N, D) temporary each.
Sums are accumulated in float64 and every result is in the input's dtype.
"""
from __future__ import annotations

import sympy as sp

from bngraph.codegen.kernel import Kernel
from bngraph.codegen.printer import code
from bngraph.codegen.vectorised import uses_m

HELPERS = {
    0: '''
def _batch_sum(a):
    """Σ over the batch (axis 0), accumulated in float64, in a's dtype."""
    return a.sum(axis=0, dtype=np.float64).astype(a.dtype, copy=False)


def _batch_dot(a, b):
    """Σ over the batch of a·b, accumulated in float64, without a·b as a temporary."""
    return np.einsum("ij,ij->j", a, b, dtype=np.float64).astype(a.dtype, copy=False)
''',
    1: '''
def _batch_sum(a):
    """Σ along each row (axis 1), accumulated in float64, in a's dtype: one column."""
    return a.sum(axis=1, keepdims=True, dtype=np.float64).astype(a.dtype, copy=False)


def _batch_dot(a, b):
    """Σ along each row of a·b, accumulated in float64, without a·b as a temporary."""
    return np.einsum("ij,ij->i", a, b, dtype=np.float64)[:, None].astype(a.dtype, copy=False)


def _column_sum(a):
    """Σ over the rows (a parameter's gradient), in float64."""
    return a.sum(axis=0, dtype=np.float64)


def _column_dot(a, b):
    """Σ over the rows of a·b, in float64."""
    return np.einsum("ij,ij->j", a, b, dtype=np.float64)
''',
}

COMMON = '''
BLOCK_BYTES = 1 << 20  # about 1 MiB of each array per block: it stays in cache between the steps on it


def _rows_per_block(a):
    return max(1, BLOCK_BYTES // max(1, a[:1].nbytes))


def _row_blocks(a):
    """Slices of consecutive rows of about BLOCK_BYTES each."""
    step = _rows_per_block(a)
    return [slice(start, start + step) for start in range(0, a.shape[0], step)]


def _block_scratch(a):
    """An uninitialised block of rows like a's, for the terms of dx (no allocation per block)."""
    return np.empty_like(a[: _rows_per_block(a)])


def _as_float(x):
    x = np.asarray(x)
    if x.ndim != 2:
        raise ValueError(f"x must have shape (N, D), not {x.shape}")
    return x if np.issubdtype(x.dtype, np.floating) else x.astype(np.float64)
'''


def numpy_module(kernel: Kernel, header: str) -> str:
    """The module's source: header, imports, forward, backward, helpers."""
    parts = [header, "import numpy as np", "", "", _forward(kernel), "", "", _backward(kernel), "", COMMON.rstrip(),
             "", HELPERS[kernel.axis].rstrip(), ""]
    return "\n".join(parts)


def _np(expr: sp.Expr) -> str:
    return code(expr, "np")


def _forward(k: Kernel) -> str:
    args = ", ".join(("x",) + k.signature)
    axis_words = "down each column (axis 0)" if k.axis == 0 else "along each row (axis 1)"
    lines = [f"def forward({args}):",
             f'    """y = {k.function}(x), x of shape (N, D) normalised {axis_words}; returns (out, cache)."""',
             "    x = _as_float(x)"]
    for name in k.signature:
        if name in k.scalars:
            lines.append(f"    {name} = float({name})")
        else:
            lines.append(f"    {name} = np.asarray({name}, dtype=x.dtype)")
    if uses_m(k, "forward"):
        lines.append(f"    m = x.shape[{k.axis}]")
    lines += [f"    {s.name} = {_np(s.expr)}" for s in k.forward]
    lines.append(f"    cache = ({', '.join(k.cache)}{',' if len(k.cache) == 1 else ''})")
    lines.append("    return out, cache")
    return "\n".join(lines)


def _sliced(expr: sp.Expr, names) -> sp.Expr:
    """Row-wise arrays read one block at a time: xhat -> xhat[rows]."""
    return expr.xreplace({sp.Symbol(n): sp.Symbol(f"{n}[rows]") for n in names})


def _reduction(body: sp.Expr, total: str, dot: str) -> str:
    """Σ of a per-example body: a product of two arrays without its temporary, else summed."""
    factors = sp.Mul.make_args(body)
    if len(factors) == 2 and all(isinstance(f, sp.Symbol) for f in factors):
        return f"{dot}({_np(factors[0])}, {_np(factors[1])})"
    return f"{total}({_np(body)})"


def _dx_lines(k: Kernel, sliced, indent: str) -> list[str]:
    """dx for one block, in place: the first term written into it, each other one multiplied into
    a scratch block (allocated once, not per block) and added."""
    lines = [f"{indent}out, term = dx[rows], scratch[: dx[rows].shape[0]]"]
    for n, (coefficient, part) in enumerate(k.dx):
        array, factor = _np(_sliced(part, sliced)), _np(_sliced(coefficient, sliced))
        if part == 1:
            lines.append(f"{indent}out[...] = {factor}" if n == 0 else f"{indent}out += {factor}")
        elif n == 0:
            lines.append(f"{indent}np.multiply({array}, {factor}, out=out)")
        else:
            lines += [f"{indent}np.multiply({array}, {factor}, out=term)", f"{indent}out += term"]
    if not k.dx:
        lines.append(f"{indent}out[...] = 0")
    return lines


def _backward(k: Kernel) -> str:
    results = ", ".join(["dx"] + [g.name for g in k.gradients]) + ("," if not k.gradients else "")  # always a tuple
    lines = ["def backward(dout, cache):",
             f'    """({results}) of forward for the upstream gradient dout."""']
    lines.append(f"    {', '.join(k.cache)}{',' if len(k.cache) == 1 else ''} = cache" if k.cache else "    del cache")
    arrays = [n for n in k.cache if n not in k.scalars]
    lines.append(f"    dy = np.asarray(dout, dtype={arrays[0]}.dtype)" if arrays else "    dy = _as_float(dout)")
    if uses_m(k, "backward"):
        lines.append(f"    m = dy.shape[{k.axis}]")
    lines.append("    dx, scratch = np.empty_like(dy), _block_scratch(dy)")
    sliced = set(k.row_wise) | {"dy"}
    body = _backward_axis0(k, sliced) if k.axis == 0 else _backward_axis1(k, sliced)
    lines += body
    lines.append(f"    return {results}")
    return "\n".join(lines)


def _backward_axis0(k: Kernel, sliced) -> list[str]:
    lines = []
    if k.sums:
        lines.append("    # the batch sums, in one pass: each block of rows is read once, while in cache")
        lines.append(f"    {', '.join(s.name for s in k.sums)} = "
                     + ", ".join("np.zeros(dy.shape[1])" for _ in k.sums))
        lines.append("    for rows in _row_blocks(dy):")
        for s in k.sums:
            lines.append(f"        {s.name} += {_reduction(_sliced(s.expr.args[0], sliced), '_batch_sum', '_batch_dot')}")
        lines += [f"    {s.name} = {s.name}.astype(dy.dtype)" for s in k.sums]
    if k.factors:
        lines.append("    # per-feature factors, once")
        lines += [f"    {s.name} = {_np(s.expr)}" for s in k.factors]
    lines.append("    # dx = " + " + ".join(_np(c * p) for c, p in k.dx) + ", block by block, from the last block")
    lines.append("    for rows in reversed(_row_blocks(dy)):  # the blocks the sums read last are still in cache")
    lines += _dx_lines(k, sliced, "        ")
    for g, parameter in zip(k.gradients, k.learnable):
        value = _np(g.expr)
        if not g.expr.free_symbols:  # the same number for every feature
            value = f"np.zeros_like({parameter}) + {value}"
        lines.append(f"    {g.name} = {value}")
    return lines


def _backward_axis1(k: Kernel, sliced) -> list[str]:
    lines = [f"    {g.name} = np.zeros(dy.shape[1])" for g in k.gradients]
    lines.append("    for rows in _row_blocks(dy):  # each block of rows is read once, while in cache")
    indent = "        "
    lines.append(f"{indent}{k.head.name} = {_np(_sliced(k.head.expr, sliced))}")
    for s in k.sums:
        lines.append(f"{indent}{s.name} = {_reduction(_sliced(s.expr.args[0], sliced), '_batch_sum', '_batch_dot')}")
    lines += [f"{indent}{s.name} = {_np(_sliced(s.expr, sliced))}" for s in k.factors]
    lines += _dx_lines(k, sliced, indent)
    for g in k.gradients:
        lines.append(f"{indent}{g.name} += {_reduction(_sliced(g.expr, sliced), '_column_sum', '_column_dot')}")
    lines += [f"    {g.name} = {g.name}.astype(dy.dtype)" for g in k.gradients]
    return lines
