"""Layout along rows (axis 1): parameters one per entry, so dL/dx is written in a normalised value's adjoint.

The closed form treats γ and β as one number for the whole group of m values. Along the rows
of an (N, D) array (layer norm), they are one per entry instead. dL/dx then cannot be read
off the closed form as it stands (γ was pulled out of its sums); it is rewritten in the
adjoint g of a per-example value h that separates the parameters from the statistics
(dL/dh_i = c_i·dL/dy_i, elementwise): with dL/dy_k = g_k / c_k substituted, no parameter may
remain. Each parameter's gradient is its chain-rule summand, summed over the rows.

>>> from bngraph.engine.layers import LAYERS
>>> from bngraph.closedform.simplify import closed_form_of
>>> cf = closed_form_of(LAYERS["layernorm"].function, "layernorm")
>>> family, adjoint, dx = in_head_adjoint(cf, ["gamma", "beta"])
>>> family, adjoint
('xhat', gamma*dL_dy[i])
>>> dx
(m*dL_dxhat[i] - xhat[i]*Sum(dL_dxhat[j]*xhat[j], (j, 1, m)) - Sum(dL_dxhat[j], (j, 1, m)))/(m*sqrt(epsilon + sigma2))
>>> row_summand(cf, "gamma")
dL_dy[i]*xhat[i]
"""
from __future__ import annotations

import sympy as sp

from bngraph.closedform.plates import i, j
from bngraph.closedform.simplify import ClosedForm
from bngraph.errors import BngraphError

WHY = "cannot generate a layout along rows (axis 1)"


def in_head_adjoint(closed: ClosedForm, learnable) -> tuple[str, sp.Expr, sp.Expr]:
    """(h, dL/dh_i in dL/dy, dL/dx_i in dL/dh): the first named per-example value that works."""
    dy = sp.IndexedBase("dL_dy")
    params = {sp.Symbol(p) for p in learnable}
    dx = closed.formulas["dL_dx[i]"]
    for key in closed.definitions:
        if not key.endswith("[i]") or f"dL_d{key}" not in closed.formulas:
            continue
        adjoint = closed.formulas[f"dL_d{key}"]
        gain = sp.cancel(adjoint / dy[i])
        if adjoint.has(sp.Sum) or gain.has(dy) or gain == 0:
            continue
        g = sp.IndexedBase(f"dL_d{key[:-3]}")
        rewritten = dx.replace(lambda e: isinstance(e, sp.Indexed) and e.base == dy,
                               lambda e: g[e.indices[0]] / gain.xreplace({i: e.indices[0]}))
        rewritten = _cancel_around_sums(rewritten)
        if not rewritten.free_symbols & params:
            return key[:-3], adjoint, rewritten
    raise BngraphError(f"{WHY}: no named per-example value separates the parameters from the statistics; name the "
                       'normalised value (xhat = name([...], "xhat")) so that dx can be written in its adjoint')


def row_summand(closed: ClosedForm, parameter: str) -> sp.Expr:
    """The per-example summand of dL/dp: the chain rule's Σ over the group, taken per entry instead."""
    terms = []
    for term in sp.Add.make_args(closed.chain_rule[f"dL_d{parameter}"]):
        if not isinstance(term, sp.Sum):
            raise BngraphError(f"{WHY}: {parameter} enters a batch statistic, so it cannot be one per entry")
        terms.append(term.function.xreplace({j: i}))
    summand = sp.Add(*terms)
    for adjoint in sorted(summand.atoms(sp.Indexed), key=sp.default_sort_key):
        base = str(adjoint.base)
        if base.startswith("dL_d") and base != "dL_dy":
            value = closed.formulas[f"{base}[i]"]
            if value.has(sp.Sum):
                raise BngraphError(f"{WHY}: {parameter} reaches the output through a batch statistic")
            summand = summand.xreplace({adjoint: value})
    return summand


def _cancel_around_sums(expr: sp.Expr) -> sp.Expr:
    """Pull the factors that do not depend on j out of each Σ_j, then cancel: Σ c·f(j) = c·Σ f(j)."""
    def pull(s):
        constant, body = s.function.as_independent(j, as_Add=False)
        return constant * sp.Sum(body, *s.limits)

    expr = expr.replace(lambda e: isinstance(e, sp.Sum), pull)
    sums = sorted(expr.atoms(sp.Sum), key=sp.default_sort_key)
    stand_ins = [sp.Dummy() for _ in sums]
    flat = sp.cancel(sp.together(expr.xreplace(dict(zip(sums, stand_ins)))))
    return sp.factor_terms(flat).xreplace(dict(zip(stand_ins, sums)))
