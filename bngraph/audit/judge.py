r"""Judge one equation of a write-up against the layer's reference formulas.

What an equation defines is read off its left side: a layer quantity (μ, σ², x̂_i, y_i,
an adjoint ∂ℓ/∂·), the standard deviation σ, a running average (the left side appears on
the right), a helper of the document's own (``\text{ivar} = …``), a setting (``\epsilon =
10^{-5}``), or — for any other left side — an identity to check. A layer quantity's
right side is compared with the *reference* for it, which comes from the engine:

- equal with the intermediates (μ, σ², x̂) free, or symbolically: **correct**;
- equal only once μ, σ², x̂ are tied to x (the one-pass variance (1/m)Σx² − μ², a
  form in x − μ instead of x̂): **correct-other-form**;
- different at some batch: **wrong**, with the smallest counterexample found and, when one
  small repair (the factor 1/m, σ for σ², ∂ℓ/∂x for ∂ℓ/∂x̂ …) makes it right, that repair.

Adjoints on the right side (chain-rule form) stand for their references. Equality is
tested numerically at random batches for m = 2, 3, 5, 8 (the document's m when it writes
x_1, x_2 … concretely), at every index i, never at one m alone.

About ∂ℓ/∂μ: its σ² path, ∂ℓ/∂σ² · (−2/m) Σ(x_j − μ), is zero for the two-pass variance, so
a formula that drops it is still right (correct-other-form); dropping the x̂ path is wrong.
"""
from __future__ import annotations

from dataclasses import replace
from functools import lru_cache

import sympy as sp

from bngraph.audit.batcheval import SIZES, Batch, Unevaluable, _rename_bound, close
from bngraph.audit.compare import FAMILIES, PLAIN_OUTPUT, SideResult, outside_partials, as_vectors, check_side, find_mismatch
from bngraph.audit.verdicts import (AMBIGUOUS, CANNOT_EVALUATE, CANNOT_READ, CORRECT, GIVEN, HELPER, NOT_ABOUT,
                                    OTHER_FORM, VERDICTS, WRONG, Context, Counterexample, Judgement)
from bngraph.tex.names import MAX_INDEX, Notation, canonical_bound, free_index_names, symbol
from bngraph.tex.printer import to_latex

__all__ = ["VERDICTS", "Context", "Counterexample", "Judgement", "judge", "names_in", "target_of"]


# -- names and shapes -----------------------------------------------------------------------
@lru_cache(maxsize=8192)
def names_in(expr: sp.Expr) -> frozenset[str]:
    """Every name an expression uses: symbols and the bases of Indexed, indices excluded."""
    indexed = expr.atoms(sp.Indexed)
    indices = {s for e in indexed for k in e.indices for s in k.free_symbols}
    bound = {v for s in expr.atoms(sp.Sum) for v in s.variables}
    labels = {e.base.label for e in indexed}
    return frozenset({s.name for s in expr.atoms(sp.Symbol) - indices - bound - labels} | {label.name for label in labels})


def target_of(lhs: sp.Expr) -> tuple[str, sp.Expr | None] | None:
    """(name, index) when the left side is one named quantity, ``xhat[k]`` or ``mu``."""
    if isinstance(lhs, sp.Symbol):
        return lhs.name, None
    if isinstance(lhs, sp.Indexed) and len(lhs.indices) == 1:
        return lhs.base.label.name, lhs.indices[0]
    return None


def concrete_sizes(exprs, ctx: Context, seen: frozenset = frozenset()) -> set[int]:
    """The concrete indices and sum bounds (x_3, Σ_{i=1}^{3}) of the expressions and of the
    document's helpers they use: each says the batch has at least that many examples."""
    found = set()
    for e in exprs:
        found |= _concrete(e)
        used = names_in(e)
        for key in set(ctx.helpers) - seen:
            if key.split("[")[0] in used:
                found |= concrete_sizes([ctx.helpers[key].expr], ctx, seen | {key})
    return found


@lru_cache(maxsize=8192)
def _concrete(e: sp.Expr) -> frozenset[int]:
    return frozenset({int(k) for ix in e.atoms(sp.Indexed) for k in ix.indices if k.is_Integer}
                     | {int(s.limits[0][2]) for s in e.atoms(sp.Sum) if s.limits[0][2].is_Integer})


def sizes_for(exprs, ctx: Context) -> tuple[int, ...]:
    """m = 2, 3, 5, 8; or the document's own m for an equation in x_1, x_2 … or Σ_{i=1}^{3}."""
    concrete = concrete_sizes(exprs, ctx)
    if not concrete:
        return SIZES
    if ctx.doc_m:
        return (max(ctx.doc_m, *concrete),)
    return tuple(m for m in SIZES if m >= max(concrete)) or (max(concrete),)


# -- printing in the author's notation ----------------------------------------------------
def correction(lhs: sp.Expr, rhs: sp.Expr, notation: Notation, free: set[str]) -> str:
    """``lhs = rhs`` in the author's notation, sums over the author's letter when free."""
    letter = notation.get("sum_index")
    if letter and letter not in free:
        rhs = rhs.replace(lambda e: isinstance(e, sp.Sum) and e.variables[0].name != letter
                          and letter not in {s.name for s in e.free_symbols},
                          lambda s: s.xreplace({s.variables[0]: symbol(letter)}))
    return f"{to_latex(lhs, notation)} = {to_latex(rhs, notation)}"


def expected_for(ctx: Context, name: str, index: sp.Expr | None) -> sp.Expr:
    ref, ref_index = ctx.refs[name]
    if ref_index is None or index is None:
        return ref
    return _rename_bound(ref).xreplace({sp.Symbol(ref_index): index}).replace(
        lambda e: isinstance(e, sp.Dummy), lambda d: symbol(d.name))


def combine(results: list[SideResult]) -> SideResult:
    """One verdict for a chain a = b = c: the first wrong side, else the weakest."""
    for verdict in (WRONG, AMBIGUOUS, CANNOT_EVALUATE, OTHER_FORM, CORRECT, CANNOT_READ):
        for r in results:
            if r.verdict == verdict:
                return r
    return results[0]


def warnings_for(exprs, ctx: Context) -> tuple[str, ...]:
    found = []
    for e in exprs:
        for ix in sorted(e.atoms(sp.Indexed), key=str):
            name = ix.base.label.name
            if name in ("gamma", "beta") or (name in ctx.refs and ctx.refs[name][1] is None):
                letter = {"gamma": "γ", "beta": "β", "mu": "μ", "sigma2": "σ²"}.get(name, name)
                text = (f"{letter}_{ix.indices[0]}: {letter} is one number per feature, shared by the m "
                        f"examples of a batch; it takes no example index")
                if ctx.per_entry and name in ("gamma", "beta"):  # Layer Norm's own γ_i, one per entry
                    text = (f"{letter}_{ix.indices[0]}: one {letter} per entry, checked as if all were equal (a slip "
                            f"that shows only with different {letter}_{ix.indices[0]} is not seen)")
                elif ctx.per_entry and name in ("dL_dgamma", "dL_dbeta"):
                    letter = "∂ℓ/∂γ" if name == "dL_dgamma" else "∂ℓ/∂β"
                    text = (f"{letter}_{ix.indices[0]}: one per entry; checked against the gradient of one "
                            f"{letter[-1]} shared by the entries (the sum of these)")
                if text not in found:
                    found.append(text)
    return tuple(found)


def scalarize(expr: sp.Expr, ctx: Context) -> sp.Expr:
    """γ_i, μ_i read as γ, μ (after the warning): the value they are meant to have."""
    return expr.replace(lambda e: isinstance(e, sp.Indexed) and (
        e.base.label.name in ("gamma", "beta", "sigma") or (e.base.label.name in ctx.refs and ctx.refs[e.base.label.name][1] is None)),
        lambda e: symbol(e.base.label.name))


def kronecker(expr: sp.Expr) -> sp.Expr:
    """``\\delta_{ij}`` is Kronecker's delta: 1 where i = j, else 0."""
    return expr.replace(lambda a: isinstance(a, sp.Indexed) and a.base.label.name == "delta" and len(a.indices) == 2,
                        lambda a: sp.KroneckerDelta(*a.indices))


def with_warnings(j: Judgement, warnings: tuple[str, ...]) -> Judgement:
    return replace(j, warnings=tuple(dict.fromkeys(j.warnings + warnings)))


# -- judging one equation ------------------------------------------------------------------
def judge(lhs: sp.Expr, sides: tuple[sp.Expr, ...], notation: Notation, ctx: Context) -> Judgement:
    """The verdict on ``lhs = sides[0] = sides[1] …`` (canonical SymPy, contract names)."""
    from bngraph.audit.runningavg import is_update, judge_update  # it builds on this module's Judgement

    warnings = warnings_for((lhs, *sides), ctx)
    written = lhs  # before γ_i is read as γ
    lhs, sides = kronecker(scalarize(lhs, ctx)), tuple(kronecker(scalarize(s, ctx)) for s in sides)
    notation = notation.merged(ctx.notation)
    lhs, sides = elementwise_partial(lhs, sides)
    target = target_of(lhs)
    largest = max(concrete_sizes((lhs, *sides), ctx), default=0)
    if largest > MAX_INDEX:
        return Judgement(None, "", CANNOT_EVALUATE, f"it needs a batch of {largest} examples; "
                                                    f"formulas are checked at m <= {MAX_INDEX}", warnings)
    rule = calculus_rule(lhs, sides, ctx)
    if rule is not None:
        return with_warnings(rule, warnings)
    if _off_topic(lhs, sides, ctx):
        name = target[0] if target else None
        return Judgement(None, ctx.label(name) if name else "", NOT_ABOUT,
                         "it uses none of the layer's quantities", warnings)
    if target is None:
        if isinstance(lhs, sp.Derivative) and getattr(lhs.expr, "name", None) in FAMILIES:
            return with_warnings(_family_partial(lhs, sides, notation, ctx), warnings)
        return with_warnings(judge_identity(lhs, sides, notation, ctx), warnings)
    name, index = target
    if name in FAMILIES and index is None and any(_jacobian(s) for s in sides):  # ∂L/∂y ∂y/∂x̂ ∂x̂/∂x
        return Judgement(None, ctx.label(name), CANNOT_EVALUATE, "a Jacobian between two of the batch's vectors "
                         "(∂x̂/∂x): matrix form, not checked", warnings)
    if name in FAMILIES and index is None and name in ctx.refs:  # ∂L/∂x̂ = γ ∂L/∂y: elementwise, for each i
        index = symbol("i")
        lhs = sp.IndexedBase(symbol(name))[index]
        sides = tuple(as_vectors(s, "i") if as_vectors(s, "i") is not None else s for s in sides)
    if is_update(name, sides, ctx):
        return with_warnings(judge_update(lhs, sides, ctx), warnings)
    running = _running_statistics(lhs, sides, ctx)
    if running and name in ctx.refs and ctx.eval_refs and name in ctx.eval_refs:
        found = judge_in_eval_mode(lhs, name, index, sides, running, notation, ctx)
        if found is not None:
            return with_warnings(found, warnings)
    if running and name in ctx.refs:
        return Judgement(None, ctx.label(name), NOT_ABOUT, f"it uses {', '.join(running)}: running statistics, "
                         "so evaluation mode (audit it with --layer batchnorm-eval)", warnings)
    if name == "sigma2" and index is None and all(sp.expand(s - lhs) == symbol("epsilon") for s in sides):
        ctx.eps_in_sigma2 = True  # a binding, in force from here on
        return Judgement("helper:sigma2", "σ², with ε added", HELPER,
                         "σ² here is σ_B² + ε: later formulas without ε are read with it", warnings)
    if name in ("dL_dgamma", "dL_dbeta") and index is None and ctx.per_entry:
        found = judge_per_entry(name, written, sides, ctx)
        if found is not None:
            return with_warnings(found, warnings)
    if name in ctx.refs and (ctx.refs[name][1] is None) == (index is None):
        found = judge_quantity(lhs, name, index, sides, notation, ctx)
        # y's own definition without γ, β is what makes its y the normalised value: a naming, not a fact
        if (found.verdict == WRONG and name == "y" and "is the normalised input" in found.reason) or (
                name == "y" and PLAIN_OUTPUT in found.checked):
            return Judgement("y[i]", ctx.label(name), AMBIGUOUS, "wrong if y_i is the output γ x̂_i + β; right if "
                             "y_i names the normalised value x̂_i (no γ, β), as some write-ups do", warnings)
        if found.verdict == WRONG and (own := foreign_statistics(sides, ctx)):  # (evaluated for a wrong one only)
            return Judgement(None, ctx.label(name), NOT_ABOUT, f"it normalises with the document's own "
                             f"{', '.join(own)}, not the batch's μ and σ²: another layer", warnings)
        return with_warnings(found, warnings)
    if name == "sigma" and index is None:
        return with_warnings(judge_sigma(lhs, sides, notation, ctx), warnings)
    if name in GIVEN or name in ctx.size_names:
        return with_warnings(judge_setting(name, sides, ctx), warnings)
    from bngraph.audit.adjoints import judge_own_adjoint, own_node  # it builds on this module's judge_quantity
    if own_node(name, ctx):  # ∂L/∂c_i, c a name of the document's own
        return with_warnings(judge_own_adjoint(lhs, name, index, sides, notation, ctx), warnings)
    return with_warnings(judge_helper(name, sides, ctx), warnings)


def elementwise_partial(lhs, sides: tuple) -> tuple:
    """∂μ/∂x, ∂x̂/∂x, ∂y/∂x̂ with the family it differentiates by written bare (no index): the way write-ups
    name one entry's partial, ∂μ/∂x_i, ∂x̂_i/∂x_i, ∂y_i/∂x̂_i, for each example i (the right side's bare
    families then are the same example's); a partial by the bare vector itself is no number to check."""
    if not (isinstance(lhs, sp.Derivative) and len(lhs.variables) == 1):
        return lhs, sides
    var = lhs.variables[0]
    if not (isinstance(var, sp.Symbol) and var.name in FAMILIES) or free_index_names([lhs]):
        return lhs, sides
    used = {s.name for e in (lhs, *sides) for s in e.atoms(sp.Symbol)}
    k = next(n for n in ("i", "k", "n", "r", "t") if n not in used)
    bare = lambda e: e.xreplace({s: sp.IndexedBase(s)[symbol(k)] for s in e.atoms(sp.Symbol)  # noqa: E731
                                 if s.name in FAMILIES and s not in {ix.base.label for ix in e.atoms(sp.Indexed)}})
    return bare(lhs), tuple(bare(s) for s in sides)


def _family_partial(lhs, sides, notation, ctx: Context) -> Judgement:
    """∂x̂/∂σ² or ∂y/∂β with the family bare: the batch's vector, so either summed over the batch (as a right
    side that sums means it) or elementwise, ∂y_i/∂β for each i (as ``= 1`` means it). Wrong only when
    wrong both ways."""
    k, i, family = symbol("k"), symbol("i"), sp.IndexedBase(symbol(lhs.expr.name))
    summed = judge_identity(sp.Sum(sp.Derivative(family[k], *lhs.variables), (k, 1, symbol("m"))), sides,
                            notation, ctx)
    if summed.verdict != WRONG:
        return summed
    capitals = {symbol(c): sp.IndexedBase(symbol(c.lower()))[i] for c in ("X", "Xhat", "Y")}  # X̂: x̂_i here
    elementwise = tuple(as_vectors(s, "i") if as_vectors(s, "i") is not None else s for s in sides)
    each = judge_identity(sp.Derivative(family[i], *lhs.variables), tuple(s.xreplace(capitals) for s in elementwise),
                          notation, ctx)
    if each.verdict == WRONG:
        return summed
    return replace(each, checked=_join_checked(each.checked, "reading it elementwise (for each example i)"))


def calculus_rule(lhs, sides, ctx: Context) -> Judgement | None:
    """``\\frac{\\partial x^n}{\\partial x} = n x^{n-1}``: a rule of calculus in one plain variable (the
    "general formulas" a derivation lists first), not a statement about the batch's x. Correct when
    it holds as such; otherwise None, and the formula is judged as usual."""
    if not (isinstance(lhs, sp.Derivative) and len(lhs.variables) == 1 and isinstance(lhs.variables[0], sp.Symbol)):
        return None
    v, exprs = lhs.variables[0], (lhs.expr, *sides)
    if not lhs.expr.has(v) or any(e.atoms(sp.Indexed, sp.Sum, sp.Derivative) for e in sides):
        return None
    others = set().union(*(e.free_symbols for e in exprs)) - {v}
    if any(o.name in ctx.layer_names or o.name in ctx.helpers or o.name in FAMILIES for o in others):
        return None  # ∂(x − μ)/∂x: local (1) or total (1 − 1/m), the usual readings decide
    try:
        want = lhs.doit()
        for point in (0.7, 1.9):
            at = {v: sp.Float(point), **{o: sp.Integer(3 + k) for k, o in enumerate(sorted(others, key=str))}}
            values = [complex(e.xreplace(at).evalf()) for e in (want, *sides)]
            if not all(abs(got - values[0]) <= 1e-9 * max(1.0, abs(values[0])) for got in values[1:]):
                return None
    except (TypeError, ValueError, ZeroDivisionError, AttributeError):
        return None
    return Judgement("identity", "rule of calculus", CORRECT,
                     checked=f"numerically, as a rule of calculus in one variable ({v.name} a plain number here, "
                             "not the batch)")


def foreign_statistics(sides, ctx: Context) -> list[str]:
    """Helpers of the document that are statistics of x of its own (RMSNorm's ``rms``): built
    from x alone, never from μ, σ² or x̂, and equal to none of them."""
    found = []
    for name in sorted(set().union(*(names_in(s) for s in sides)) & set(ctx.helpers)):
        expanded, seen = ctx.helpers[name].expr, {name}
        for _ in range(5):
            # a scalar helper is put in by its name; an indexed one (z_i = γ n_i + β) is reached by its
            # label, which xreplace must not touch
            inner = {n for n in names_in(expanded) & set(ctx.helpers) - seen if ctx.helpers[n].index is None}
            if not inner:
                break
            members = {ix: sp.Dummy() for ix in expanded.atoms(sp.Indexed)}  # g beside g_j: the members stay
            expanded = expanded.xreplace(members).xreplace({symbol(n): ctx.helpers[n].expr for n in inner}).xreplace(
                {d: ix for ix, d in members.items()})
            seen |= inner
        names = names_in(expanded)
        # the layer's own statistics (μ and σ² for Batch Norm, rms for RMSNorm)
        statistics = sorted(q for q, (_, index) in ctx.refs.items() if index is None and not q.startswith("dL_d"))
        if "x" not in names or names & {"sigma", "xhat", *statistics}:
            continue
        if not any(_one_of_the_layers(expanded, statistics, ctx, batch)
                   for batch in (Batch.random(5, 0), replace(Batch.random(5, 0), epsilon=0.0))):  # s = √(‖x‖²/d): ε = 0
            found.append(name)
    return found


def _one_of_the_layers(expanded, statistics, ctx: Context, batch: Batch) -> bool:
    """Is the helper's value on ``batch`` one of the layer's statistics (or unknown there)?"""
    try:
        ev = ctx.evaluator(batch)
        value = float(ev.value(expanded))
        layer = [float(ev.value(symbol(q))) for q in statistics]
        # σ² also as √σ² and √(σ² + ε); each also as its reciprocal (rrms = 1/rms)
        layer += [v ** 0.5 for q, v in zip(statistics, layer) if q == "sigma2"]
        layer += [(v + ctx_eps(ev)) ** 0.5 for q, v in zip(statistics, layer) if q == "sigma2"]
        layer += [1 / v for v in layer if v]
    except Unevaluable:
        return True
    return any(close(value, v) for v in layer)


def ctx_eps(ev) -> float:
    return ev.batch.epsilon


RUNNING_WORDS = ("run", "running", "moving", "ema", "pop", "test", "inference", "avg")


def _running_statistics(lhs, sides, ctx: Context) -> list[str]:
    """Names of running averages (μ_run, running_var) in a training-mode layer's formula."""
    if "mu" not in ctx.refs:
        return []
    names = set().union(*(names_in(e) for e in (lhs, *sides))) - set(ctx.refs)
    # μ_avg = (1/m) Σ x_i: a name the document defines from the batch's x is the batch's, whatever its word says
    names -= {n for n in names & set(ctx.helpers) if "x" in names_in(ctx.helpers[n].expr)}
    return sorted(n for n in names if any(w in n.lower().split("_") or n.lower().startswith(w + "_") or
                                          (w in n.lower() and len(w) > 3) for w in RUNNING_WORDS))


def judge_in_eval_mode(lhs, name, index, sides, running, notation, ctx: Context) -> Judgement | None:
    """x̂_i = (x_i − running_mean)/√(running_var + ε) in a training write-up: judged as the evaluation-mode
    layer's formula, the document's running names read as the running mean and variance."""
    var, eps = symbol("running_var"), symbol("epsilon")
    swap, deviations = {}, []
    for n in running:
        low = n.lower()
        if "var" in low or low.startswith("sigma2"):
            swap[symbol(n)] = var
        elif "std" in low or low.startswith("sigma"):  # σ_run: the running standard deviation, √running_var
            swap[symbol(n)] = sp.sqrt(var)
            deviations.append(symbol(n))
        elif "mean" in low or low.startswith("mu"):
            swap[symbol(n)] = symbol("running_mean")
        else:
            return None
    if len(set(swap.values())) != len(swap):
        return None
    eval_ctx = replace(ctx, refs=ctx.eval_refs, helpers={}, definitions={}, shared={}, eval_refs=None)
    found = judge_quantity(lhs, name, index, tuple(s.xreplace(swap) for s in sides), notation, eval_ctx)
    if found.verdict == CANNOT_EVALUATE:
        return None
    if found.verdict == WRONG and deviations:  # (x − μ_run)/σ_run: ε folded into σ_run, as into σ (conventions)
        folded = {**swap, **{d: sp.sqrt(var + eps) for d in deviations}}
        again = judge_quantity(lhs, name, index, tuple(s.xreplace(folded) for s in sides), notation, eval_ctx)
        if again.verdict in (CORRECT, OTHER_FORM):
            return Judgement(found.defines, f"{found.label}, evaluation mode", AMBIGUOUS,
                             "wrong as written; right if the running standard deviation stands for "
                             "√(running variance + ε) (ε folded into it)", found.warnings, checked=again.checked)
    return replace(found, label=f"{found.label}, evaluation mode",
                   checked=_join_checked(found.checked, "with the running mean and variance"))


def _jacobian(expr: sp.Expr) -> bool:
    """∂x̂/∂x (or ∂y/∂x) with both written bare: in vector notation a full matrix (μ and σ² join every entry),
    not the diagonal ∂x̂_i/∂x_i; ∂y/∂x̂ is diagonal and stays elementwise."""
    x, families = symbol("x"), {symbol("xhat"), symbol("y")}
    return any(x in d.variables and (d.expr.has(x) or bool(d.expr.free_symbols & families))  # ∂(γx̂ + β)/∂x too
               for d in expr.atoms(sp.Derivative))


def _off_topic(lhs, sides, ctx: Context) -> bool:
    """No layer quantity anywhere, and something foreign (max, exp, an unknown name)."""
    names = set().union(*(names_in(e) for e in (lhs, *sides)))
    own = {key.split("[")[0] for key in ctx.helpers}
    if names & ctx.layer_names or names & (own | {f"dL_d{name}" for name in own}):  # ∂L/∂c, c the document's
        return False
    known = set(ctx.refs) | GIVEN | ctx.size_names | {"sigma"}
    foreign = any(e.atoms(sp.Function, sp.Max, sp.Min) - e.atoms(sp.KroneckerDelta) for e in (lhs, *sides))
    return foreign or bool(names - known)


def judge_quantity(lhs, name, index, sides, notation, ctx: Context) -> Judgement:
    expected = expected_for(ctx, name, index) if name in ctx.refs else lhs  # ∂L/∂c: the evaluator's own adjoint
    free = free_index_names([lhs])
    if len(free) > 1:
        return Judgement(name, ctx.label(name), CANNOT_READ, "more than one free index on the left side")
    index_name = next(iter(free), None)
    sizes = sizes_for((lhs, *sides), ctx)
    if isinstance(index, sp.Integer):
        sizes = tuple(m for m in sizes if m >= int(index)) or (int(index),)
    key = f"{name}[i]" if index is not None else name
    numbers, formulas = _numbers_apart(sides, ctx)
    if numbers and formulas:  # ∂L/∂γ = Σ_i ∂L/∂y_i x̂_i = (−2)(−1) + (2)(1) = 4: a worked example whose batch is not read
        slip = worked_example(key, ctx.label(name), numbers)
        if slip.verdict == WRONG:
            return slip
        sides = formulas
    result = combine([check_side(ctx, expected, side, index_name, sizes) for side in sides])
    result = at_documents_own(ctx, result, lambda sizes_: combine(
        [check_side(ctx, expected, side, index_name, sizes_) for side in sides]), sizes, sides)
    if numbers and formulas:
        result = replace(result, checked=_join_checked(result.checked, "the numbers after it as arithmetic only (a "
                                                                       "worked example whose batch is not read)"))
    if result.verdict == WRONG and all(not s.free_symbols for s in sides):
        if len(sides) > 1:  # μ = (1 + 2 + 3)/3 = 2: a worked example's chain of numbers
            return worked_example(key, ctx.label(name), sides)
        if index is not None:  # y = 0: one example's value set (a case, a setting); the output is no constant
            return Judgement(f"setting:{name}", f"setting {name}", HELPER,
                             f"sets {name} to the number {float(sides[0]):g} (a case or a setting of the document's "
                             "own), not a formula of the layer")
        if ctx.batch is None and not name.startswith("dL_d"):  # σ² = 0 "at batch size 1", μ = 3 of an example
            return _a_value(key, ctx.label(name), sides[0])
    fix = None
    if result.verdict == WRONG:
        right = result.repaired if result.repaired is not None else expected
        if sizes != SIZES and len(sizes) == 1:  # a worked example at one m: say it at that m
            right = right.xreplace({symbol("m"): sp.Integer(sizes[0])})
        fix = correction(lhs, right, notation, free)
    return Judgement(key, ctx.label(name), result.verdict, result.reason, (), result.counterexample, fix,
                     result.checked)


def judge_per_entry(name: str, written, sides, ctx: Context) -> Judgement | None:
    """∂ℓ/∂γ in a Layer Norm (RMSNorm) write-up whose γ is one per entry (it writes γ_j): the gradient is then a
    vector, (∂ℓ/∂γ)_j = ∂ℓ/∂y_j x̂_j, summed over the examples, never over the entries j the layer normalises.
    Written ∂ℓ/∂γ_j, a right side that is that entry's is correct; written ∂ℓ/∂γ, one number for them all
    (Σ_j ∂ℓ/∂y_j x̂_j, the gradient of one γ shared by the entries, which the document's γ_j is not) is wrong.
    Anything else is left to the usual reading (None)."""
    parameter = name[len("dL_d"):]
    reference = ctx.refs.get(name, (None, None))[0]
    if parameter not in ctx.indexed_parameters or not isinstance(reference, sp.Sum) or len(reference.limits) != 1:
        return None
    entry = written.indices[0] if isinstance(written, sp.Indexed) and written.indices[0].is_Symbol else symbol("j")
    expected = reference.function.xreplace({reference.limits[0][0]: entry})
    result = combine([check_side(ctx, expected, side, entry.name, sizes_for(sides, ctx)) for side in sides])
    if isinstance(written, sp.Indexed):
        return None if result.verdict not in (CORRECT, OTHER_FORM) else Judgement(
            f"{name}[i]", ctx.label(name), CORRECT, "", (), None, None, result.checked + ", one entry's")
    if result.verdict != WRONG:
        return None
    letter = "γ" if parameter == "gamma" else "β"
    return Judgement(name, ctx.label(name), WRONG, f"the document's {letter} is one per entry ({letter}_j), so ∂ℓ/∂{letter} "
                     f"is too, (∂ℓ/∂{letter})_j = {to_latex(expected, ctx.notation)}; this is one number for all "
                     f"the entries (the gradient of one shared {letter})", (), result.counterexample, None, result.checked)


def _numbers_apart(sides, ctx: Context, lhs=None) -> tuple[list, list]:
    """The members of a chain that are bare numbers, and the others, where the numbers are of an example the auditor
    does not see: the document's batch is not read, or the formula uses what its numbers do not give (∂ℓ/∂y, γ, β
    of the example). Nothing apart where the document's numbers are all the formula needs."""
    if ctx.batch is not None and not _uses(lhs, sides, ctx) & {"dL_dy", "gamma", "beta"}:
        return [], list(sides)
    return [s for s in sides if not s.free_symbols], [s for s in sides if s.free_symbols]


def _uses(lhs, sides, ctx: Context) -> set[str]:
    """The names a formula uses, through the document's own names (g_i = ∂L/∂y_i γ: Σ g_j = 0.8 uses ∂L/∂y and γ)."""
    used = set().union(*(names_in(e) for e in (lhs, *sides) if e is not None))
    for _ in range(3):
        used |= set().union(set(), *(names_in(ctx.helpers[n].expr) for n in used & set(ctx.helpers)))
    return used


def _a_value(key: str, label: str, number) -> Judgement:
    return Judgement(key, label, CANNOT_EVALUATE, f"a value ({float(number):g}) of an example or a case (such as m = 1) "
                                                  "whose batch is not read, not a formula of the layer")


def worked_example(key: str, label: str, sides) -> Judgement:
    """μ = (1 + 2 + 3)/3 = 2: a chain of numbers only, from a worked example whose batch (Z = [1, 2, 3]) is not
    read: not the general formula, so not checked against it; but every member of the chain must still be
    equal (0.1·(−1.2247) + 0.3·1.2247 = 0.12247 is an arithmetic slip)."""
    values = [float(s) for s in sides]
    slip = next((k for k in range(1, len(values))
                 if not _same_number(values[k - 1], values[k], _written_unit(sides[k - 1], sides[k]))), None)
    if slip is not None:
        return Judgement(key, label, WRONG, f"an arithmetic slip: {_short(values[slip - 1])} is written as "
                                            f"{_short(values[slip])}", (),
                         Counterexample(None, None, values[slip], values[slip - 1]),
                         checked="numerically, member by member")
    return Judgement(key, label, CANNOT_EVALUATE, "numbers only (a worked example whose batch is not read): not "
                                                  "checked against the general formula")


def _same_number(a: float, b: float, unit: float = 0.0) -> bool:
    """Equal to the digits a worked example writes (1.2247 for √1.5): a relative 10⁻³, or one unit of
    the last digit written (−0.93 for −25/27 = −0.9259…)."""
    return abs(a - b) <= max(1e-3 * max(abs(a), abs(b), 1e-9), unit)


def _written_unit(*numbers) -> float:
    """One unit of the last decimal digit of the coarser of ``numbers`` written as a decimal (−0.93: 0.01);
    0 when none is (14/3, 3: exact values)."""
    units = [10.0 ** -d for n in numbers if isinstance(n, sp.Rational) and not n.is_Integer
             for d in [next((d for d in range(1, 16) if (n * 10 ** d).is_Integer), None)] if d is not None]
    return max(units, default=0.0)


def _short(v: float) -> str:
    return f"{v:.6g}"


def at_documents_own(ctx: Context, result: SideResult, check, sizes, sides=()) -> SideResult:
    """A formula wrong in general but right at the document's own m (σ² = 0 at m = 1) or on
    its own numbers (μ = 3 for x = (1, 2, 6)) states a fact about them: right there. The document gives x
    alone: a chain with a number in it (∂ℓ/∂β = Σ ∂ℓ/∂y_i = 3) may take γ = 1, β = 0, ∂ℓ/∂y = 1 as its example
    does; a formula alone must hold whatever they are (with ∂ℓ/∂y all 1, Σ ∂ℓ/∂y_j x̂_j = 0 hides any slip in
    the x̂ term)."""
    if result.verdict != WRONG:
        return result
    own = ctx.batch
    if own is not None and not any(not s.free_symbols for s in sides):
        own = replace(own, dL_dy=Batch.small(own.m).dL_dy, gamma=2.0, beta=0.5)
    # a worked example's numbers mostly leave ε out (x̂_1 = (1 − 3)/√(14/3)): its own numbers with ε = 0 too
    on_own = None
    for batch in (() if own is None else (own, replace(own, epsilon=0.0))):
        saved, ctx.batch_only = ctx.batch_only, batch
        try:
            again = check((batch.m,))
        finally:
            ctx.batch_only = saved
        on_own = on_own or (again if again.verdict == WRONG and again.counterexample is not None else None)
        if again.verdict in (CORRECT, OTHER_FORM):
            numbers = ", ".join(f"{v:g}" for v in batch.x)
            return replace(again, checked=f"on the document's own numbers, x = ({numbers})"
                                          + (", with ε = 0" if batch is not ctx.batch else ""))
    if ctx.doc_m and ctx.doc_m not in sizes:
        again = check((ctx.doc_m,))
        if again.verdict in (CORRECT, OTHER_FORM):
            return replace(again, checked=f"at the document's m = {ctx.doc_m}")
    # μ = (x_1 + x_2)/2 in a text whose other example writes x_3: m = 3 was guessed from that x_3, not stated
    own_m = max(concrete_sizes(sides, ctx), default=0)
    if ctx.m_inferred and 1 < own_m < min(sizes):
        again = check((own_m,))
        if again.verdict in (CORRECT, OTHER_FORM):
            return SideResult(AMBIGUOUS, f"wrong at m = {min(sizes)}, the largest index the document writes; right at "
                                         f"m = {own_m}, the largest this formula writes (an example of its own?)",
                              checked=f"numerically at m = {min(sizes)} and {own_m}")
    if on_own is not None and any(not s.free_symbols for s in sides):  # ‖x‖² = 26 for x = (3, 0, 4): shown on them
        return replace(on_own, checked=f"on the document's own numbers, x = ({', '.join(f'{v:g}' for v in own.x)})")
    return result


def judge_sigma(lhs, sides, notation, ctx: Context) -> Judgement:
    """σ: the square root of σ² (correct), √(σ² + ε) (a helper that includes ε), or a slip."""
    sigma2, eps = symbol("sigma2"), symbol("epsilon")
    sizes = sizes_for((lhs, *sides), ctx)
    try:
        if all(find_mismatch(ctx, sp.sqrt(sigma2), s, None, sizes) is None for s in sides):
            return Judgement("sigma", ctx.label("sigma"), CORRECT, checked="numerically")
        if all(find_mismatch(ctx, sp.sqrt(sigma2 + eps), s, None, sizes) is None for s in sides):
            return Judgement("helper:sigma", "σ, with ε inside", HELPER, "σ here is √(σ² + ε), not √σ²")
        if all(find_mismatch(ctx, sigma2, s, None, sizes) is None for s in sides):
            fix = correction(symbol("sigma2"), sides[0], notation, set())
            small = find_mismatch(ctx, sp.sqrt(sigma2), sides[0], None, sizes[:2],
                                  batches=lambda m: [Batch.small(m, v) for v in (0, 1)]) \
                or find_mismatch(ctx, sp.sqrt(sigma2), sides[0], None, sizes)
            return Judgement("sigma", ctx.label("sigma"), WRONG,
                             "σ (the standard deviation) is written where σ² (the variance) is meant",
                             counterexample=small, correction=fix, checked="numerically")
    except Unevaluable as exc:
        return Judgement("sigma", ctx.label("sigma"), CANNOT_EVALUATE, f"cannot evaluate it: {exc}")
    def check(sizes_):  # every member of a chain σ = a = b, as for the layer's own quantities
        return combine([check_side(ctx, sp.sqrt(sigma2), s, None, sizes_) for s in sides])

    result = at_documents_own(ctx, check(sizes), check, sizes, sides)
    if result.verdict == WRONG and len(sides) > 1 and all(not s.free_symbols for s in sides):
        return worked_example("sigma", ctx.label("sigma"), sides)  # σ = √4.67 ≈ 2.16
    if result.verdict == WRONG and ctx.batch is None and len(sides) == 1 and not sides[0].free_symbols:
        return _a_value("sigma", ctx.label("sigma"), sides[0])  # σ_B = 0 "with batch size 1"
    fix = correction(lhs, sp.sqrt(sigma2), notation, set()) if result.verdict == WRONG else None
    return Judgement("sigma", ctx.label("sigma"), result.verdict, result.reason, (), result.counterexample, fix,
                     result.checked)


def judge_setting(name, sides, ctx: Context) -> Judgement:
    if all(s.is_Number for s in sides):
        return Judgement(f"setting:{name}", f"setting {name}", HELPER, f"sets {name} = {float(sides[0]):g}")
    return Judgement(name, ctx.label(name), NOT_ABOUT, f"gives {name}, which is data of the batch, a formula")


def judge_helper(name, sides, ctx: Context) -> Judgement:
    """A name of the document's own: nothing to check, but it must mean something here."""
    batch = Batch.random(3, 0)
    try:
        ctx.evaluator(batch).value(sides[0], {s: 1.0 for s in free_index_names([sides[0]])})
    except Unevaluable as exc:
        if names_in(sides[0]) & ctx.layer_names:
            return Judgement(f"helper:{name}", f"helper {name}", CANNOT_EVALUATE, f"cannot evaluate it: {exc}")
        return Judgement(None, name, NOT_ABOUT, "it uses none of the layer's quantities")
    return Judgement(f"helper:{name}", f"helper {name}", HELPER, "a name of the document's own")


def judge_identity(lhs, sides, notation, ctx: Context) -> Judgement:
    """A left side that is not one quantity: check that both sides agree."""
    label = "local partial" if isinstance(lhs, sp.Derivative) else "identity"
    free = _free_of_left(lhs)
    if len(free) == 2:  # ∂x̂_i/∂x_j = (δ_ij − …): the second index held at 1, then at 2
        return _pinned(lhs, sides, notation, ctx, label, sorted(free)[1])
    if len(free) > 1:
        return Judgement("identity", label, CANNOT_READ, "more than one free index on the left side")
    sizes = sizes_for((lhs, *sides), ctx)
    result = combine([check_side(ctx, lhs, side, next(iter(free), None), sizes) for side in sides])
    result = at_documents_own(ctx, result, lambda sizes_: combine(
        [check_side(ctx, lhs, side, next(iter(free), None), sizes_) for side in sides]), sizes, sides)
    if result.verdict == WRONG:
        result = _identity_conventions(lhs, sides, free, sizes, ctx) or result
    if result.verdict == WRONG and (typo := _index_typo_on_the_left(lhs, sides, free, notation, ctx)):
        return typo
    numbers, formulas = _numbers_apart(sides, ctx, lhs)
    # Σ_j ∂L/∂y_j = −2 + 2 = 0: a number of the example's upstream gradient (Σ x̂_i = 0 is a property, checked)
    if result.verdict == WRONG and numbers and not formulas and "dL_dy" in _uses(lhs, sides, ctx):
        return worked_example("identity", label, numbers)
    if result.verdict == WRONG and numbers and not formulas and ctx.batch is None and _varies(lhs, free, ctx):
        return _a_value("identity", label, numbers[-1])  # Σ_k G_{k1} = 2.0, ‖x‖² = 25: one example's value
    verdict = CORRECT if result.verdict == OTHER_FORM else result.verdict
    fix = None
    if result.verdict == WRONG and result.repaired is not None:
        fix = correction(lhs, result.repaired, notation, free)
    return Judgement("identity", label, verdict, "" if verdict == CORRECT else result.reason, (),
                     result.counterexample, fix, result.checked)


def _varies(expr: sp.Expr, free: set[str], ctx: Context) -> bool:
    """Does ``expr`` take different values on different batches? Then a number it is said to equal is one example's
    value (whose batch the auditor does not see), not a property of the layer (Σ_i x̂_i = 0 holds on every batch)."""
    env = {name: 1.0 for name in free}
    batches = [Batch.random(3, seed) for seed in (0, 1)]
    try:  # with ε = 0 too: (1/m) Σ x̂_i² = 1 holds on every batch there
        for pair in (batches, [replace(b, epsilon=0.0) for b in batches]):
            if close(*(float(ctx.evaluator(b).value(expr, env)) for b in pair)):
                return False
    except (Unevaluable, TypeError, ValueError, ZeroDivisionError, OverflowError):
        return False
    return True


def _index_typo_on_the_left(lhs, sides, free, notation, ctx: Context) -> Judgement | None:
    r"""``\partial \hat{x}_i / \partial x_i = … (x_j − μ)(x_i − μ) …`` under "for j ≠ i": the right side's one stray letter
    is the numerator's index the left side lost (∂x̂_j/∂x_i); right so, the row is a typo, "ambiguous"."""
    stray = free_index_names(sides) - free
    if not (isinstance(lhs, sp.Derivative) and len(stray) == 1 and len(free) == 1 and isinstance(lhs.expr, sp.Indexed)
            and len(lhs.expr.indices) == 1 and lhs.expr.indices[0] == symbol(next(iter(free)))):
        return None
    retyped = sp.Derivative(lhs.expr.base[symbol(next(iter(stray)))], *lhs.variables, evaluate=False)
    again = judge_identity(retyped, sides, notation, ctx)
    if again.verdict not in (CORRECT, AMBIGUOUS):
        return None
    where = again.reason.split("; right ", 1)[1] if again.verdict == AMBIGUOUS and "; right " in again.reason else ""
    return Judgement("identity", "local partial", AMBIGUOUS, f"wrong as written; right as {to_latex(retyped, notation)}"
                     f"{', ' + where if where else ''} (an index typo on the left side)", checked=again.checked)


def _free_of_left(lhs) -> set[str]:
    """The free indices of a left side, those of what a partial is by included (∂y_j/∂x_i: i and j)."""
    return free_index_names([lhs, *(v for d in lhs.atoms(sp.Derivative) for v in d.variables)])


def _identity_conventions(lhs, sides, free, sizes, ctx: Context) -> SideResult | None:
    """An identity between two of the author's own expressions, read with ε where write-ups put it, on both
    sides at once: σ² as σ·σ = σ_B² + ε where the document defines σ = √(σ_B² + ε) (then that is what it
    means: correct), else σ for √(σ² + ε) or σ² including ε ("ambiguous", naming the convention)."""
    sigma, sigma2, eps = symbol("sigma"), symbol("sigma2"), symbol("epsilon")
    defined = "sigma" in ctx.helpers
    changes = [("σ² read as σ·σ = σ_B² + ε, the document's σ being √(σ_B² + ε)" if defined
                else "if σ² includes ε (or ε is taken as 0)", {sigma2: sigma2 + eps}, defined),
               ("if σ stands for √(σ² + ε) (ε folded into σ)", {sigma: sp.sqrt(sigma2 + eps)}, False)]
    index = next(iter(free), None)
    for says, change, primary in changes:
        if not any(e.has(*change) for e in (lhs, *sides)):
            continue
        left, rights = outside_partials(lhs, change), [outside_partials(s, change) for s in sides]
        try:
            if all(find_mismatch(ctx, left, r, index, sizes) is None for r in rights):
                where = "numerically at m = " + ", ".join(map(str, sizes))
                if primary:
                    return SideResult(CORRECT, checked=f"{where}, reading it with {says}")
                return SideResult(AMBIGUOUS, f"wrong as written; right {says}", checked=where)
        except (Unevaluable, TypeError, ValueError):
            continue
    return None


def _pinned(lhs, sides, notation, ctx: Context, label: str, index: str) -> Judgement:
    """A two-index identity judged with ``index`` held at 1 and at 2: wrong at either is wrong."""
    k = symbol(index)
    found = [(v, judge_identity(_held(lhs, {k: v}), tuple(_held(s, {k: v}) for s in sides), notation, ctx))
             for v in (1, 2)]
    v, worst = next(((v, j) for v, j in found if j.verdict == WRONG), None) or next(
        ((v, j) for v, j in found if j.verdict != CORRECT), found[0])
    if worst.verdict == WRONG:  # ∂(x_i − μ)²/∂x_j = −2(x_i − μ)/m, stated "for i ≠ j": right off the diagonal only
        case = _one_case(lhs, sides, notation, ctx, index)
        if case is not None:
            return Judgement(worst.defines, label, AMBIGUOUS, f"wrong as written for every pair; right {case}")
    held = f"{index} held at 1 and at 2" if worst.verdict == CORRECT else f"{index} = {v}"
    return replace(worst, label=label, checked=_join_checked(worst.checked, held), correction=None)


def _held(expr: sp.Expr, pins: dict) -> sp.Expr:
    """``expr`` with the letters of ``pins`` held at their numbers; a sum that runs over one of them keeps it (a label
    there), renamed out of the way (Σ_{q} x_{iq}² folded to Σ_q x_q² beside a held q)."""
    if any(set(pins) & set(s.variables) for s in expr.atoms(sp.Sum)):
        expr = canonical_bound(expr, {p.name for p in pins})
    return expr.xreplace({p: sp.Integer(v) for p, v in pins.items()})


def _one_case(lhs, sides, notation, ctx: Context, index: str) -> str | None:
    """"for i ≠ j" or "for i = j" when the two-index identity holds in that case alone (the text may say so)."""
    other = next(iter(_free_of_left(lhs) - {index}), None)
    if other is None:
        return None
    k, o = symbol(index), symbol(other)

    def holds(at_other: int) -> bool:
        pin = {k: 1, o: at_other}
        # right in that case, if only with ε = 0 or another convention it names (then the whole stays ambiguous anyway)
        return judge_identity(_held(lhs, pin), tuple(_held(s, pin) for s in sides), notation, ctx).verdict in (
            CORRECT, AMBIGUOUS)

    diagonal, off = holds(1), holds(2)
    if diagonal != off:
        return f"for {other} = {index} only" if diagonal else f"for {other} ≠ {index} only (the case the text may state)"
    return None


def _join_checked(checked: str, held: str) -> str:
    return f"{checked}, {held}" if checked else held
