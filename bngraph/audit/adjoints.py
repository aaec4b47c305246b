r"""Adjoints of a document's own names: ∂L/∂c_i and ∂L/∂g where the document builds the layer in stages
(``c_i = x_i - \mu``, ``g = \gamma s``, ``y_i = c_i g + \beta``).

The reference is the total derivative of L = Σ_k ∂L/∂y_k · y_k with respect to that name through the
document's own formulas, the batch's inputs held (:func:`~bngraph.audit.batcheval.graph_adjoint`). A name
used by several formulas has one path through each; AD-style write-ups give one path's share per row
(``\bar{c}_i \leftarrow \bar{y}_i g``, then ``\bar{c}_i \leftarrow \frac{2 c_i}{N}\bar{v}``) and add the rows
up. So a formula that is not the whole adjoint but is the share through some of the paths is "ambiguous",
never "wrong"; "wrong" is wrong for the whole adjoint and for every share.
"""
from __future__ import annotations

from dataclasses import replace
from itertools import combinations

import sympy as sp

from bngraph.audit.batcheval import SHARE, consumers, document_graph
from bngraph.audit.compare import check_side
from bngraph.audit.judge import combine, judge_quantity, sizes_for
from bngraph.audit.verdicts import AMBIGUOUS, CORRECT, OTHER_FORM, WRONG, Context, Judgement
from bngraph.tex.names import free_index_names, symbol

SHARE_REASON = "right as its share through"
MAX_PATHS = 4  # the shares tried are the subsets of at most this many paths (15)


def own_node(name: str, ctx: Context) -> str | None:
    """The document's own name g of ``dL_dg``, if ``name`` is the adjoint of one (not a layer's adjoint)."""
    node = name[len("dL_d"):] if name.startswith("dL_d") and name not in ctx.refs else None
    return node if node and node in document_graph(ctx.helpers, ctx.definitions, node) else None


def judge_own_adjoint(lhs, name: str, index, sides, notation, ctx: Context) -> Judgement:
    """∂L/∂g = …, g a name of the document's own: the whole adjoint, or (ambiguous) one path's share."""
    node = own_node(name, ctx)
    found = replace(judge_quantity(lhs, name, index, sides, notation, ctx), label=f"adjoint ∂ℓ/∂{node}")
    if found.verdict != WRONG:
        return found
    return as_a_share(replace(found, correction=None), lhs, sides, ctx)  # "∂L/∂g = ∂L/∂g" would say nothing


def as_a_share(found: Judgement, lhs, sides, ctx: Context) -> Judgement:
    """A "wrong" adjoint ∂L/∂v that is the share of some of the paths out of v: ambiguous instead."""
    name = (lhs.base.label.name if isinstance(lhs, sp.Indexed) else getattr(lhs, "name", "")) or ""
    node = name[len("dL_d"):]
    if not name.startswith("dL_d") or found.verdict != WRONG:
        return found
    paths = consumers(document_graph(ctx.helpers, ctx.definitions, node), node)
    if not 1 < len(paths) <= MAX_PATHS:
        return found
    index = next(iter(free_index_names([lhs])), None)
    sizes = sizes_for((lhs, *sides), ctx)
    for size in range(1, len(paths)):
        for subset in combinations(paths, size):
            expected = _renamed(lhs, f"{name}{SHARE}{'+'.join(subset)}")
            if combine([check_side(ctx, expected, side, index, sizes) for side in sides]).verdict in (CORRECT, OTHER_FORM):
                share = " and ".join(subset)
                return replace(found, verdict=AMBIGUOUS, counterexample=None, correction=None,
                               reason=f"not the whole ∂ℓ/∂{node}; {SHARE_REASON} {share} (one path of "
                                      "several: right if the rows for it add up)")
    return found


def _renamed(lhs, name: str):
    if isinstance(lhs, sp.Indexed):
        return sp.IndexedBase(symbol(name))[lhs.indices]
    return symbol(name)
