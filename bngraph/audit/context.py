r"""What a document tells about each of its equations: its notation, the batch size it binds
and where, the names it defines for itself, and which index of ``x_{i,j}`` runs over the batch.

- A binding of the batch size (``m = 3``, ``N = 5``) holds from where the text makes it, until a
  later one overrides it: ``$n = 5$ runs per cell`` late in a text does not change the
  equations before it.
- A name the document defines (``\text{ivar} = 1/\sqrt{\sigma^2 + \epsilon}``, ``t_1 = x_1 + x_2``,
  ``\mathrm{xmu}_{2} = x_2 - \mu``) is a helper that later formulas may use.
- A scale named otherwise (``y_i = \hat{x}_i \odot w + \beta``, with no γ anywhere): that name is γ.
- Per-feature write-ups index twice (``x_{i,j}``, ``\mu_j``, ``\sigma^2_j``): the index that a
  sum over the batch runs over (``\mu_j = \frac1N\sum_i x_{i,j}``) is the example's; the other,
  the one that ``\mu``, ``\gamma`` … carry, is the feature's, held fixed and dropped.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import replace

import sympy as sp

from bngraph.audit.batcheval import Batch, Helper, Unevaluable, close
from bngraph.audit.judge import names_in, target_of
from bngraph.audit.verdicts import GIVEN, Context
from bngraph.tex.grammar import Equation
from bngraph.tex.names import FAMILIES, Notation, canonical, symbol

SIZE_LETTERS = frozenset({"m", "N", "n", "B", "M"})  # the batch size, as write-ups name it
PER_FEATURE = {"mu", "sigma2", "sigma", "gamma", "beta", "dL_dmu", "dL_dsigma2", "dL_dgamma", "dL_dbeta"}


def build_context(equations: list[Equation | None], refs) -> tuple[Context, list[int | None]]:
    """The document's context, and the batch size in force at each equation (None: not bound)."""
    sides_of = [(canonical(eq.lhs), tuple(canonical(s) for s in eq.chain)) if eq is not None and eq.lhs is not None
                else None for eq in equations]
    notation = Notation()
    for eq in equations:
        if eq is not None:
            notation = notation.merged(eq.notation)
    ctx = Context(refs, notation=notation)
    # a size letter the document writes with an index (n_i = (x_i - μ)/σ) names a family, not the batch size
    indexed = {ix.base.label.name for pair in sides_of if pair is not None for e in (pair[0], *pair[1])
               for ix in e.atoms(sp.Indexed)}
    size_names = (set(SIZE_LETTERS) - indexed) | {notation.get("m")} - {None}
    ctx.indexed_parameters = frozenset(indexed & {"gamma", "beta"})  # γ_j: one γ per entry where the layer allows it
    concrete, bound_at, m_now, plain = [], [], None, []
    for pair in sides_of:
        if pair is not None:
            lhs, sides = pair
            target = target_of(lhs)
            if target and target[0] in size_names and target[1] is None and sides[0].is_Integer and sides[0] > 0:
                m_now = int(sides[0])
            for e in (lhs, *sides):
                concrete += [int(k) for ix in e.atoms(sp.Indexed) for k in ix.indices if k.is_Integer]
                concrete += [int(s.limits[0][2]) for s in e.atoms(sp.Sum) if s.limits[0][2].is_Integer]
                size_names |= {s.limits[0][2].name for s in e.atoms(sp.Sum) if s.limits[0][2].is_Symbol}
            if target:  # \mu = \frac{1}{d}\sum_i x_i, s = \sqrt{\frac{1}{d}\|x\|^2 + \epsilon}: d is the size
                size_names |= _divisor_of_a_sum(sides[0])
            if target and target[0] == "epsilon" and sides[0] == 0:
                ctx.eps_zero = True
            if target and target[0] == "y" and "beta" in names_in(sides[0]):
                ctx.beta_is_shift = True
            # (y = 0, y_i = γ z_i + β use no x: a setting, or another letter's; no definition of the output)
            if target and target[0] == "y" and any(n in names_in(s) for s in sides for n in ("x", "xhat")):
                plain.append(not names_in(sides[0]) & {"gamma", "beta"})
        bound_at.append(m_now)
    ctx.size_names = frozenset(size_names)
    ctx.plain_output = bool(plain) and all(plain)  # y_i = x_i/RMS(x) "without scale and shift": γ = 1, β = 0 there
    eps = symbol("epsilon")
    ctx.eps_free = not any(e.has(eps) for pair in sides_of if pair is not None for e in (pair[0], *pair[1])) and any(
        pair is not None and (target_of(pair[0]) or ("",))[0] in ("sigma", "xhat") for pair in sides_of)
    if m_now is None and concrete and 1 < max(concrete) <= 64:  # a worked example: x_1, x_2, x_3 make m = 3
        bound_at = [max(concrete)] * len(bound_at)
        ctx.m_inferred = True
    for pair in sides_of:
        if pair is not None:
            register_helper(*pair, ctx)
            _named_on_the_right(*pair, ctx)
    ctx.shared.clear()  # worked out while the helpers were still being registered
    return ctx, bound_at


def _divisor_of_a_sum(e: sp.Expr) -> set[str]:
    """The letter a mean of the batch divides its sum by: ``Sum(…)/d``, the sum written without limits (so over the
    batch) and of the batch's x."""
    found = set()
    for product in e.atoms(sp.Mul):
        sums = [f for f in product.args if isinstance(f, sp.Sum) and f.limits[0][2] == symbol("m")
                and any(ix.base.label.name == "x" for ix in f.function.atoms(sp.Indexed))]
        if sums:
            found |= {f.base.name for f in product.args if f.is_Pow and f.exp == -1 and f.base.is_Symbol}
    return found


def _named_on_the_right(lhs, sides, ctx: Context) -> None:
    r"""``\sigma_k^2 + \epsilon = \tilde{\sigma}_k^2``: a name given on the right of a formula in the layer's quantities
    (a definition written the other way round) is that formula."""
    last = sides[-1]
    target = target_of(last)
    if (target is None or target_of(lhs) is not None or target[0] in ctx.refs or target[0] in GIVEN
            or target[0] in ctx.helpers or target[0] in ctx.size_names or target[0].startswith("dL_d")
            or not names_in(lhs) & (set(ctx.refs) | {"x", "epsilon"})):
        return
    register_helper(last, (lhs,), ctx)


def register_helper(lhs, sides, ctx: Context) -> None:
    """A name the document defines for itself becomes usable by the other equations."""
    target = target_of(lhs)
    if target is None:
        return
    middle = target_of(sides[0]) if len(sides) > 1 else None
    if middle is not None and middle[0] not in ctx.refs and middle[0] not in GIVEN:  # r = RMS(x) = √(…): RMS too
        register_helper(sides[0], sides[1:], ctx)
    name, index = target
    if name in ctx.refs and not any(name in names_in(s) for s in sides):
        key = f"{name}[{int(index)}]" if index is not None and index.is_Integer else name
        ctx.definitions.setdefault(key, []).append(Helper(sides[0], index.name if isinstance(index, sp.Symbol) else None))
    # δ = dJ/dZ (the whole batch's), then δ_i = dJ/dz_i: the element's definition is the one formulas use
    taken = name in ctx.helpers and not (ctx.helpers[name].index is None and isinstance(index, sp.Symbol))
    if taken and not any(name in names_in(s) for s in sides):  # x̂_i = x_i/r after x̂_i = x_i/RMS(x)
        ctx.definitions.setdefault(name, []).append(Helper(sides[0], index.name if isinstance(index, sp.Symbol) else None))
    if (name in ctx.refs or name in GIVEN or name in ctx.size_names or taken
            or any(name in names_in(s) for s in sides) or name.startswith("dL_d")):
        return
    if name == "sigma":  # σ defined with ε inside, √(σ² + ε): later formulas mean that σ
        try:
            ev = ctx.evaluator(Batch.random(3, 0))
            if not close(float(ev.value(sides[0])), float(ev.value(sp.sqrt(symbol("sigma2") + symbol("epsilon"))))):
                return
        except Unevaluable:
            return
    if index is None or isinstance(index, sp.Symbol):
        ctx.helpers[name] = Helper(sides[0], index.name if index is not None else None)
    elif index.is_Integer:  # one member of a family the document writes out: xmu_2 = x_2 - μ
        ctx.helpers.setdefault(f"{name}[{int(index)}]", Helper(sides[0]))


def name_the_scale(equations: list[Equation | None]) -> list[Equation | None]:
    r"""``y_i = \hat{x}_i w + \beta`` in a document that never writes γ: w is the scale γ; and in
    ``y = \hat{x} * w + b``, a document that writes neither γ nor β, b is the shift β."""
    exprs = [e for eq in equations if eq is not None for e in (eq.lhs, eq.rhs, *eq.chain) if e is not None]
    gamma, beta = symbol("gamma"), symbol("beta")
    if any(e.has(gamma) for e in exprs):
        return equations
    no_shift = not any(e.has(beta) for e in exprs)
    scales, shifts = set(), set()
    taken = GIVEN | {"m", "mu", "sigma", "sigma2"}
    defined = {_name_of(canonical(eq.lhs)) for eq in equations if eq is not None and eq.lhs is not None} - {None}
    for eq in equations:
        target = target_of(canonical(eq.lhs)) if eq is not None and eq.lhs is not None else None
        if target is None or target[0] != "y":
            continue
        xhat = symbol("xhat") if target[1] is None else sp.IndexedBase(symbol("xhat"))[target[1]]
        rhs = sp.expand(canonical(eq.rhs))
        shift = [t for t in sp.Add.make_args(rhs) if t.is_Symbol and t.name not in taken]
        if no_shift and len(shift) == 1:
            shifts.add(shift[0])
        rest = sp.expand(rhs - (shift[0] if no_shift and len(shift) == 1 else beta if rhs.has(beta) else 0))
        if rest.is_Mul and xhat in rest.args:
            other = rest / xhat
            if other.is_Symbol and other.name not in taken:
                scales.add(other)
        elif rest.is_Mul:  # y_i = \frac{x_i}{\mathrm{rms}(x)} w_i: the one plain factor beside x is the scale
            plain = [f for f in rest.args if _name_of(f) is not None and _name_of(f) not in taken | {"x", "xhat"} | defined]
            if len(plain) == 1 and (rest / plain[0]).has(*[a for a in rest.atoms(sp.Indexed) if _name_of(a) == "x"],
                                                        symbol("x")):
                scales.add(symbol(_name_of(plain[0])))
    if len(scales) != 1:
        return equations
    swap = {scales.pop(): gamma}
    if len(shifts) == 1 and shifts != set(swap):
        swap[shifts.pop()] = beta
    swap.update({symbol(f"dL_d{a.name}"): symbol(f"dL_d{b.name}") for a, b in list(swap.items())})  # ∂L/∂w: ∂L/∂γ
    return [None if eq is None else replace(eq, lhs=None if eq.lhs is None else canonical(eq.lhs).xreplace(swap),
                                            rhs=canonical(eq.rhs).xreplace(swap),
                                            chain=tuple(canonical(c).xreplace(swap) for c in eq.chain))
            for eq in equations]


def _name_of(e) -> str | None:
    """The name of a plain symbol or of a one-index family member (w, w_i): what :func:`target_of` names."""
    target = target_of(e)
    return target[0] if target else None


# -- two indices ----------------------------------------------------------------------------
def fold_feature_index(equations: list[Equation | None]) -> list[Equation | None]:
    """Per-feature notation made one-feature: ``x_{i,j}`` -> ``x_i`` and ``\\mu_j`` -> ``\\mu``,
    where j is the feature (the index μ, γ … carry, or the one no batch sum runs over)."""
    exprs = [e for eq in equations if eq is not None for e in (eq.lhs, *eq.chain) if e is not None]
    if not any(len(ix.indices) > 1 for e in exprs for ix in e.atoms(sp.Indexed)):
        return equations
    features = Counter(str(ix.indices[0]) for e in exprs for ix in e.atoms(sp.Indexed)
                       if ix.base.label.name in PER_FEATURE and len(ix.indices) == 1 and ix.indices[0].is_Symbol)
    # the letters μ and σ carry: a feature's in any layer (γ_i may be one per entry of a Layer Norm)
    statistics = {str(ix.indices[0]) for e in exprs for ix in e.atoms(sp.Indexed) if ix.base.label.name in
                  ("mu", "sigma", "sigma2") and len(ix.indices) == 1 and ix.indices[0].is_Symbol}
    positions = Counter()
    for e in exprs:
        for s in e.atoms(sp.Sum):
            for var in s.variables:  # \sum_{kl}: k runs over the batch, l (γ_l's) over the features
                if str(var) not in features:
                    positions.update(ix.indices.index(var) for ix in s.function.atoms(sp.Indexed)
                                     if len(ix.indices) == 2 and var in ix.indices)
    # the most sums' position; a tie goes to the first (x_{i,j}: the i-th example's j-th feature, as most write it),
    # never to the order a set happens to give
    batch_position = max(sorted(positions), key=lambda p: positions[p]) if positions else None

    def fold(e, dropped: set):
        if e is None:
            return None

        def one(ix):
            if len(ix.indices) == 1 and (
                    ix.base.label.name in PER_FEATURE and str(ix.indices[0]) in features
                    or str(ix.indices[0]) in statistics and ix.base.label.name not in FAMILIES
                    and not ix.base.label.name.startswith("dL_d") and ix.base.label.name != "delta"):
                return symbol(ix.base.label.name)  # μ_k, and a name of the document's own per feature (σ̃_k²)
            if len(ix.indices) != 2 or ix.base.label.name == "delta":  # δ_ij keeps both
                return ix
            # the letter μ_j, σ_j carry is the feature wherever it stands (x_{i,j} or x_{j,i}); only when
            # neither or both are such letters does the position the batch sums run over decide
            feature = [k for k, index in enumerate(ix.indices) if str(index) in features]
            keep = 1 - feature[0] if len(feature) == 1 else batch_position
            if keep is not None and ix.indices[1 - keep].is_Symbol:
                dropped.add(str(ix.indices[1 - keep]))
            return ix if keep is None else ix.base[ix.indices[keep]]

        folded = e.replace(lambda a: isinstance(a, sp.Indexed), one)
        # \sum_{kl} ∂O/∂y_{kl} …: the sum over the feature l, once y_{kl} is y_k, picks the one feature
        return _drop_feature_sums(folded, features)

    def folded(eq: Equation) -> Equation:
        dropped: set[str] = set()
        sides = dict(lhs=fold(eq.lhs, dropped), rhs=fold(eq.rhs, dropped), chain=tuple(fold(c, dropped) for c in eq.chain))

        def held(e):  # r_i beside x_{ij} -> x_j: the document's own r_i is the held row's (feature's) one value
            return None if e is None else e.replace(
                lambda a: isinstance(a, sp.Indexed) and len(a.indices) == 1 and str(a.indices[0]) in dropped
                and a.base.label.name not in FAMILIES and not a.base.label.name.startswith("dL_d"),
                lambda a: symbol(a.base.label.name))

        sides = {k: (tuple(held(c) for c in v) if k == "chain" else held(v)) for k, v in sides.items()}
        return replace(eq, **sides, fixed=frozenset(dropped))

    return [None if eq is None else folded(eq) for eq in equations]



def _drop_feature_sums(e: sp.Expr, features) -> sp.Expr:
    """Each limit over a feature index that the summand no longer carries dropped."""
    def is_feature(lim, body):  # only where a partial by one feature's entry makes the other features' terms 0
        return str(lim[0]) in features and not body.has(lim[0]) and body.has(sp.Derivative)

    def deltas(lim, body):  # \sum_{kl} … x_{kl} δ_{lj}: δ picks the one feature l = j
        found = {d: sp.Integer(1) for d in body.atoms(sp.Indexed) if d.base.label.name == "delta"
                 and len(d.indices) == 2 and lim[0] in d.indices}  # δ_i alone is a name of the document's own
        return found if found and str(lim[0]) in features and not body.xreplace(found).has(lim[0]) else {}

    def drop(s: sp.Sum):
        body, limits = s.function, []
        for lim in s.limits:
            picked = deltas(lim, body)
            body = body.xreplace(picked)
            if not (picked or is_feature(lim, body)):
                limits.append(lim)
        return sp.Sum(body, *limits) if limits else body

    return e.replace(lambda a: isinstance(a, sp.Sum) and any(is_feature(lim, a.function) or deltas(lim, a.function)
                                                             for lim in a.limits), drop)
