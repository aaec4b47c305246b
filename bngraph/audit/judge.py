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

from dataclasses import dataclass, field, replace
from typing import Callable

import sympy as sp

from bngraph.audit.batcheval import SIZES, Batch, Evaluator, Helper, Unevaluable, _rename_bound, close
from bngraph.tex.names import Notation, free_index_names, symbol
from bngraph.tex.printer import to_latex

CORRECT, OTHER_FORM, WRONG = "correct", "correct-other-form", "wrong"
HELPER, NOT_ABOUT, CANNOT_READ = "helper", "not-about-this-layer", "cannot-read"
VERDICTS = (CORRECT, OTHER_FORM, WRONG, HELPER, NOT_ABOUT, CANNOT_READ)

LABELS = {"mu": "batch mean μ", "sigma2": "batch variance σ²", "sigma": "standard deviation σ",
          "xhat": "normalised input x̂_i", "y": "output y_i", "dL_dxhat": "adjoint ∂ℓ/∂x̂_i",
          "dL_dsigma2": "adjoint ∂ℓ/∂σ²", "dL_dmu": "adjoint ∂ℓ/∂μ", "dL_dx": "adjoint ∂ℓ/∂x_i",
          "dL_dgamma": "adjoint ∂ℓ/∂γ", "dL_dbeta": "adjoint ∂ℓ/∂β", "dL_dy": "upstream gradient ∂ℓ/∂y_i"}
GIVEN = {"x", "dL_dy", "gamma", "beta", "epsilon"}  # the data of a batch, never derived
SEEDS = (0, 1)


@dataclass(frozen=True)
class Counterexample:
    """A batch where the formula and the reference differ."""

    batch: Batch
    index: tuple[str, int] | None  # ("i", 2): the free index's value
    got: float
    want: float


@dataclass(frozen=True)
class Judgement:
    defines: str | None  # "mu", "xhat[i]", "update:mu_run", "helper:ivar", "identity" …
    label: str
    verdict: str
    reason: str = ""
    warnings: tuple[str, ...] = ()
    counterexample: Counterexample | None = None
    correction: str | None = None  # LaTeX, in the document's notation
    checked: str = ""


@dataclass
class Context:
    """What the whole document tells about each of its equations."""

    refs: dict[str, tuple[sp.Expr, str | None]]
    helpers: dict[str, Helper] = field(default_factory=dict)
    size_names: frozenset[str] = frozenset({"m"})
    doc_m: int | None = None
    notation: Notation = Notation()
    beta_is_shift: bool = False

    @property
    def layer_names(self) -> set[str]:
        return ({n for n in self.refs} | {"sigma", "gamma", "beta", "epsilon"}) - {"y", "dL_dx", "dL_dy"}

    def evaluator(self, batch: Batch, free: bool = False) -> Evaluator:
        return Evaluator(batch, self.refs, free=free, helpers=self.helpers, size_names=self.size_names)

    def label(self, name: str) -> str:
        return LABELS.get(name, name)


# -- names and shapes -----------------------------------------------------------------------
def names_in(expr: sp.Expr) -> set[str]:
    """Every name an expression uses: symbols and the bases of Indexed, indices excluded."""
    indexed = expr.atoms(sp.Indexed)
    indices = {s for e in indexed for k in e.indices for s in k.free_symbols}
    bound = {v for s in expr.atoms(sp.Sum) for v in s.variables}
    labels = {e.base.label for e in indexed}
    return {s.name for s in expr.atoms(sp.Symbol) - indices - bound - labels} | {label.name for label in labels}


def target_of(lhs: sp.Expr) -> tuple[str, sp.Expr | None] | None:
    """(name, index) when the left side is one named quantity, ``xhat[k]`` or ``mu``."""
    if isinstance(lhs, sp.Symbol):
        return lhs.name, None
    if isinstance(lhs, sp.Indexed) and len(lhs.indices) == 1:
        return lhs.base.label.name, lhs.indices[0]
    return None


def sizes_for(exprs, ctx: Context) -> tuple[int, ...]:
    """m = 2, 3, 5, 8; or the document's own m for an equation in x_1, x_2 … or Σ_{i=1}^{3}."""
    concrete = set()
    for e in exprs:
        concrete |= {int(k) for ix in e.atoms(sp.Indexed) for k in ix.indices if k.is_Integer}
        concrete |= {int(s.limits[0][2]) for s in e.atoms(sp.Sum) if s.limits[0][2].is_Integer}
    if not concrete:
        return SIZES
    if ctx.doc_m:
        return (max(ctx.doc_m, *concrete),)
    return tuple(m for m in SIZES if m >= max(concrete)) or (max(concrete),)


# -- comparing ----------------------------------------------------------------------------
def find_mismatch(ctx: Context, expected: sp.Expr, actual: sp.Expr, index: str | None,
                  sizes, *, free: bool = False, batches: Callable | None = None) -> Counterexample | None:
    """The first batch (and index value) where ``actual`` differs from ``expected``, or None."""
    batches = batches or (lambda m: [Batch.random(m, s) for s in SEEDS])
    for m in sizes:
        for batch in batches(m):
            ev = ctx.evaluator(batch, free)
            for k in (range(1, m + 1) if index else (None,)):
                env = {index: float(k)} if index else {}
                want, got = ev.value(expected, env), ev.value(actual, env)
                if not close(got, want):
                    return Counterexample(batch, (index, k) if index else None, got, want)
    return None


def _symbolically_equal(expected: sp.Expr, actual: sp.Expr) -> bool:
    if sp.count_ops(expected) + sp.count_ops(actual) > 300:
        return False
    try:
        return sp.expand(expected - actual) == 0
    except (TypeError, ValueError, RecursionError):
        return False


@dataclass(frozen=True)
class SideResult:
    verdict: str
    reason: str = ""
    counterexample: Counterexample | None = None
    repaired: sp.Expr | None = None
    checked: str = ""


def check_side(ctx: Context, expected: sp.Expr, actual: sp.Expr, index: str | None, sizes) -> SideResult:
    """Is ``actual`` (one right side) the ``expected`` reference?"""
    stray = free_index_names([actual]) - ({index} if index else set())
    if stray:
        return SideResult(WRONG, f"the index {', '.join(sorted(stray))} is free on the right side only (a missing sum?)")
    where = "numerically at m = " + ", ".join(map(str, sizes))
    if _symbolically_equal(expected, actual):
        return SideResult(CORRECT, checked="symbolically")
    try:
        mismatch = find_mismatch(ctx, expected, actual, index, sizes)
    except Unevaluable as exc:
        return SideResult(CANNOT_READ, f"cannot evaluate it: {exc}")
    if mismatch is None:
        try:
            same_form = find_mismatch(ctx, expected, actual, index, sizes, free=True) is None
        except Unevaluable:
            same_form = False
        if same_form:
            return SideResult(CORRECT, checked=where)
        return SideResult(OTHER_FORM, "equal once μ, σ² and x̂ are written out in x", checked=where)
    small = _small_counterexample(ctx, expected, actual, index, sizes) or mismatch
    reason, repaired = diagnose(ctx, expected, actual, index, sizes)
    return SideResult(WRONG, reason, small, repaired, where)


def _small_counterexample(ctx, expected, actual, index, sizes) -> Counterexample | None:
    try:
        return find_mismatch(ctx, expected, actual, index, sorted(sizes)[:2],
                             batches=lambda m: [Batch.small(m, v) for v in (0, 1)])
    except Unevaluable:
        return None


# -- explaining a wrong formula -----------------------------------------------------------
def _swap_base(old: str, new: str) -> Callable[[sp.Expr], sp.Expr]:
    def swap(e):
        return e.replace(lambda a: isinstance(a, sp.Indexed) and a.base.label.name == old,
                         lambda a: sp.IndexedBase(symbol(new))[a.indices])
    return swap


def repairs(size: sp.Symbol) -> list[tuple[str, Callable[[sp.Expr], sp.Expr]]]:
    """Small slips, each with the change that undoes it."""
    sigma, sigma2, eps = symbol("sigma"), symbol("sigma2"), symbol("epsilon")
    dy = sp.IndexedBase(symbol("dL_dy"))
    return [
        ("the factor 1/m is missing", lambda e: e / size),
        ("it has a factor 1/m too many", lambda e: e * size),
        ("it divides by m − 1 (the unbiased variance); batch norm uses the biased 1/m",
         lambda e: e * (size - 1) / size),
        ("σ (the standard deviation) is written where σ² (the variance) is meant",
         lambda e: e.xreplace({sigma: sigma2})),
        ("ε is missing: σ here must be √(σ² + ε)", lambda e: e.xreplace({sigma: sp.sqrt(sigma2 + eps)})),
        ("ε is missing next to σ²", lambda e: e.xreplace({sigma2: sigma2 + eps}) if not e.has(eps) else e),
        ("∂ℓ/∂x_i is written where ∂ℓ/∂x̂_i is meant", _swap_base("dL_dx", "dL_dxhat")),
        ("∂ℓ/∂x̂_i is written where ∂ℓ/∂x_i is meant", _swap_base("dL_dxhat", "dL_dx")),
        ("the factor γ is missing (∂ℓ/∂x̂_i = γ ∂ℓ/∂y_i)",
         lambda e: e.replace(lambda a: isinstance(a, sp.Indexed) and a.base == dy, lambda a: symbol("gamma") * a)),
        ("x_i is written where x̂_i is meant", _swap_base("x", "xhat")),
        ("x̂_i is written where x_i is meant", _swap_base("xhat", "x")),
        ("the sign is wrong", lambda e: -e),
    ]


def candidates(actual: sp.Expr, size: sp.Symbol, notation: Notation):
    """(slip, the formula with it undone) for each slip that could explain ``actual``."""
    for reason, repair in repairs(size):
        yield reason, repair(actual)
    for add in sorted(actual.atoms(sp.Add), key=sp.default_sort_key)[:8]:
        for term in add.args:
            yield (f"the sign of the term {to_latex(term, notation)} is wrong",
                   actual.xreplace({add: add - 2 * term}))


def diagnose(ctx: Context, expected, actual, index, sizes) -> tuple[str, sp.Expr | None]:
    """(why it is wrong, the author's formula repaired) — or a plain reason and None."""
    size = symbol(next(iter(sorted(ctx.size_names - {"m"})), "m"))
    for reason, candidate in candidates(actual, size, ctx.notation):
        try:
            if candidate != actual and find_mismatch(ctx, expected, candidate, index, sizes) is None:
                return reason, candidate
        except (Unevaluable, TypeError, ValueError):
            continue
    for name, (ref, ref_index) in ctx.refs.items():
        if (ref_index is None) != (index is None):
            continue
        other = ref if ref_index is None else _rename_bound(ref).xreplace({sp.Symbol(ref_index): sp.Symbol(index)})
        try:
            if other != expected and find_mismatch(ctx, other, actual, index, sizes) is None:
                return f"the right side is the {ctx.label(name)}", None
        except Unevaluable:
            continue
    return "it differs from the reference", None


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
    for verdict in (WRONG, OTHER_FORM, CORRECT, CANNOT_READ):
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
                if text not in found:
                    found.append(text)
    return tuple(found)


def scalarize(expr: sp.Expr, ctx: Context) -> sp.Expr:
    """γ_i, μ_i read as γ, μ (after the warning): the value they are meant to have."""
    return expr.replace(lambda e: isinstance(e, sp.Indexed) and (
        e.base.label.name in ("gamma", "beta") or (e.base.label.name in ctx.refs and ctx.refs[e.base.label.name][1] is None)),
        lambda e: symbol(e.base.label.name))


def with_warnings(j: Judgement, warnings: tuple[str, ...]) -> Judgement:
    return replace(j, warnings=tuple(dict.fromkeys(j.warnings + warnings)))


# -- judging one equation ------------------------------------------------------------------
def judge(lhs: sp.Expr, sides: tuple[sp.Expr, ...], notation: Notation, ctx: Context) -> Judgement:
    """The verdict on ``lhs = sides[0] = sides[1] …`` (canonical SymPy, contract names)."""
    from bngraph.audit.runningavg import is_update, judge_update  # it builds on this module's Judgement


    warnings = warnings_for((lhs, *sides), ctx)
    lhs, sides = scalarize(lhs, ctx), tuple(scalarize(s, ctx) for s in sides)
    notation = notation.merged(ctx.notation)
    target = target_of(lhs)
    if _off_topic(lhs, sides, ctx):
        name = target[0] if target else None
        return Judgement(None, ctx.label(name) if name else "", NOT_ABOUT,
                         "it uses none of the layer's quantities", warnings)
    if target is None:
        return with_warnings(judge_identity(lhs, sides, notation, ctx), warnings)
    name, index = target
    if is_update(name, sides, ctx):
        return with_warnings(judge_update(lhs, sides, ctx), warnings)
    if name in ctx.refs and (ctx.refs[name][1] is None) == (index is None):
        return with_warnings(judge_quantity(lhs, name, index, sides, notation, ctx), warnings)
    if name == "sigma" and index is None:
        return with_warnings(judge_sigma(lhs, sides, notation, ctx), warnings)
    if name in GIVEN or name in ctx.size_names:
        return with_warnings(judge_setting(name, sides, ctx), warnings)
    return with_warnings(judge_helper(name, sides, ctx), warnings)


def _off_topic(lhs, sides, ctx: Context) -> bool:
    """No layer quantity anywhere, and something foreign (max, exp, an unknown name)."""
    names = set().union(*(names_in(e) for e in (lhs, *sides)))
    if names & ctx.layer_names or names & set(ctx.helpers):
        return False
    known = set(ctx.refs) | GIVEN | ctx.size_names | {"sigma"}
    foreign = any(e.atoms(sp.Function, sp.Max, sp.Min) - e.atoms(sp.KroneckerDelta) for e in (lhs, *sides))
    return foreign or bool(names - known)


def judge_quantity(lhs, name, index, sides, notation, ctx: Context) -> Judgement:
    expected = expected_for(ctx, name, index)
    free = free_index_names([lhs])
    if len(free) > 1:
        return Judgement(name, ctx.label(name), CANNOT_READ, "more than one free index on the left side")
    index_name = next(iter(free), None)
    sizes = sizes_for((lhs, *sides), ctx)
    if isinstance(index, sp.Integer):
        sizes = tuple(m for m in sizes if m >= int(index)) or (int(index),)
    result = combine([check_side(ctx, expected, side, index_name, sizes) for side in sides])
    key = f"{name}[i]" if index is not None else name
    fix = None
    if result.verdict == WRONG:
        right = result.repaired if result.repaired is not None else expected
        if sizes != SIZES and len(sizes) == 1:  # a worked example at one m: say it at that m
            right = right.xreplace({symbol("m"): sp.Integer(sizes[0])})
        fix = correction(lhs, right, notation, free)
    return Judgement(key, ctx.label(name), result.verdict, result.reason, (), result.counterexample, fix,
                     result.checked)


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
            return Judgement("sigma", ctx.label("sigma"), WRONG,
                             "σ (the standard deviation) is written where σ² (the variance) is meant",
                             correction=fix, checked="numerically")
    except Unevaluable as exc:
        return Judgement("sigma", ctx.label("sigma"), CANNOT_READ, f"cannot evaluate it: {exc}")
    result = check_side(ctx, sp.sqrt(sigma2), sides[0], None, sizes)
    return Judgement("sigma", ctx.label("sigma"), result.verdict, result.reason, (), result.counterexample,
                     correction(lhs, sp.sqrt(sigma2), notation, set()), result.checked)


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
            return Judgement(f"helper:{name}", f"helper {name}", CANNOT_READ, f"cannot evaluate it: {exc}")
        return Judgement(None, name, NOT_ABOUT, "it uses none of the layer's quantities")
    return Judgement(f"helper:{name}", f"helper {name}", HELPER, "a name of the document's own")


def judge_identity(lhs, sides, notation, ctx: Context) -> Judgement:
    """A left side that is not one quantity: check that both sides agree."""
    label = "local partial" if isinstance(lhs, sp.Derivative) else "identity"
    free = free_index_names([lhs])
    if len(free) > 1:
        return Judgement("identity", label, CANNOT_READ, "more than one free index on the left side")
    sizes = sizes_for((lhs, *sides), ctx)
    result = combine([check_side(ctx, lhs, side, next(iter(free), None), sizes) for side in sides])
    verdict = CORRECT if result.verdict == OTHER_FORM else result.verdict
    fix = None
    if result.verdict == WRONG and result.repaired is not None:
        fix = correction(lhs, result.repaired, notation, free)
    return Judgement("identity", label, verdict, "" if verdict == CORRECT else result.reason, (),
                     result.counterexample, fix, result.checked)
