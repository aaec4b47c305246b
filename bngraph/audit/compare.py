r"""Compare one right side with the quantity it should equal, at random batches, under every
plausible reading of what it names; and explain a wrong one by the small slip that undoes it.

Readings: a partial ∂a/∂b that a formula names is read as the author most likely means it —
holding fixed the quantities whose paths the formula spells out elsewhere — and also as a
local and as a total derivative; an index free on the right side only is also read as summed;
a family written without an index (``\hat{x}``) as the batch's vector. "wrong" needs every
reading wrong; right under another reading only is "ambiguous".
"""
from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from typing import Callable

import sympy as sp

from bngraph.audit.batcheval import Batch, Unevaluable, _names, _rename_bound, close
from bngraph.audit.verdicts import (AMBIGUOUS, CANNOT_EVALUATE, CORRECT, OTHER_FORM, WRONG, Context,
                                    Counterexample)
from bngraph.tex.names import FAMILIES, Notation, free_index_names, symbol
from bngraph.tex.printer import to_latex

SEEDS = (0, 1)


# -- comparing ----------------------------------------------------------------------------
@dataclass(frozen=True)
class Split:
    r"""Partials read one way on the left side and another on the right: ``\frac{du_i}{dz_i}`` the total
    derivative, ``= \frac{\partial u_i}{\partial z_i} + \frac{\partial u_i}{\partial \mu}\frac{d\mu}{dz_i} + …`` a chain
    rule of local partials."""

    left: object
    right: object


def find_mismatch(ctx: Context, expected: sp.Expr, actual: sp.Expr, index: str | None,
                  sizes, *, free: bool = False, batches: Callable | None = None,
                  reading="local") -> Counterexample | None:
    """The first batch (and index value) where ``actual`` differs from ``expected``, or None. A
    :class:`Split` reading reads the partials of the two sides apart."""
    if batches is None:
        batches = (lambda m: [ctx.batch_only]) if ctx.batch_only else (lambda m: [Batch.random(m, s) for s in SEEDS])
    left, right = (reading.left, reading.right) if isinstance(reading, Split) else (reading, reading)
    for m in sizes:
        for batch in batches(m):
            ev = ctx.evaluator(batch, free, right)
            ev_left = ev if left == right else ctx.evaluator(batch, free, left)
            for k in (range(1, m + 1) if index else (None,)):
                env = {index: float(k)} if index else {}
                want, got = float(ev_left.value(expected, env)), float(ev.value(actual, env))
                if not (close(got, want) or abs(got - want) <= ctx.tolerance):
                    return Counterexample(batch, (index, k) if index else None, got, want)
    return None


def _symbolically_equal(ctx: Context, expected: sp.Expr, actual: sp.Expr, index: str | None, sizes) -> bool:
    if expected.has(sp.Derivative) or actual.has(sp.Derivative):
        return False
    try:  # expanding is costly: one point where they differ, μ, σ², x̂ free, already says it would fail
        if find_mismatch(ctx, expected, actual, index, tuple(sizes)[:1], free=True) is not None:
            return False
    except Unevaluable:
        pass
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


@dataclass(frozen=True)
class Reading:
    """One way to read a right side: the formula to check, and how its partials are meant."""

    says: str  # "" for the formula as written
    actual: sp.Expr
    partials: object = "local"  # the evaluator's reading of a named ∂a/∂b
    primary: bool = True  # what the author most likely means; a secondary one can only make it "ambiguous"
    guess: bool = False  # a meaning for a name the document never defines: "ambiguous" at most, never "wrong"




def spelled_out(expr: sp.Expr, ctx: Context) -> frozenset[str]:
    """The quantities a formula names (∂ℓ/∂μ names μ): their paths are spelled out, so a partial
    elsewhere in the formula holds them fixed."""
    from bngraph.audit.judge import names_in
    names = {n[4:] if n.startswith("dL_d") else n for n in names_in(expr)}
    for d in expr.atoms(sp.Derivative):
        names |= {n[4:] if n.startswith("dL_d") else n for n in names_in(d.expr)}
    return frozenset(names & (set(ctx.refs) | set(ctx.helpers) | {"sigma"}))


def as_vectors(actual: sp.Expr, index: str | None) -> sp.Expr | None:
    """``\\hat{x}`` with no index read as the batch's vector: elementwise at i, or a dot
    product (summed over the batch) when the left side is one number."""
    original = actual
    by_sums = _by_the_sums_index(actual)
    actual = by_sums
    # N dy − Σ_j dy_j: dy stands bare beside its members, so the members are set aside while the bare ones are found
    members = {ix: sp.Dummy() for ix in actual.atoms(sp.Indexed)}
    masked = actual.xreplace(members)
    bare = [s for s in masked.atoms(sp.Symbol) if s.name in FAMILIES]
    if not bare:
        return None if by_sums == original else by_sums
    k = symbol(index) if index else sp.Dummy("k")
    filled = masked.xreplace({s: sp.IndexedBase(symbol(s.name))[k] for s in bare}).xreplace(
        {d: ix for ix, d in members.items()})
    if index:
        return filled
    terms = sp.Add.make_args(sp.expand(filled)) if filled.is_Add else (filled,)
    return sp.Add(*(sp.Sum(t, (k, 1, symbol("m"))) if t.has(k) else t for t in terms))


def _by_the_sums_index(expr: sp.Expr) -> sp.Expr:
    """``Σ_{i=1}^N dy·(x − μ)/σ``: a sum whose index its body never uses runs over the bare families in it
    (dy_i (x_i − μ)/σ), as the author means; read as a sum of one term N times, it is no one's formula."""
    def fill(s: sp.Sum) -> sp.Expr:
        var = s.limits[0][0]
        bare = [a for a in s.function.atoms(sp.Symbol) if a.name in FAMILIES]
        if len(s.limits) != 1 or s.function.has(var) or not bare or s.function.atoms(sp.Indexed):
            return s
        return sp.Sum(s.function.xreplace({a: sp.IndexedBase(a)[var] for a in bare}), *s.limits)
    return expr.replace(lambda e: isinstance(e, sp.Sum), fill)


def operator_over_product(expr: sp.Expr) -> sp.Expr:
    r"""``\frac{\partial}{\partial w_i} \frac{x_i}{r} \cdot w_i``: a derivative by the scale or shift (γ, β: nothing else
    depends on them but y) applies to the rest of the product when what it meets first is free of it (a derivative of
    that alone would be 0, which no author writes)."""
    def by_a_parameter(d) -> bool:
        v = d.variables[0] if len(d.variables) == 1 else None
        name = v.base.label.name if isinstance(v, sp.Indexed) else getattr(v, "name", None)
        return name in ("gamma", "beta") and not d.expr.has(symbol(name)) and not any(
            n in ("y", "dL_dy") or n == name for n in _names(d.expr))

    def apply(m: sp.Mul) -> sp.Expr:
        for d in m.args:
            if isinstance(d, sp.Derivative) and by_a_parameter(d):
                rest = [f for f in m.args if f is not d]
                if any(f.has(d.variables[0]) for f in rest):
                    return sp.Derivative(d.expr * sp.Mul(*rest), d.variables[0], evaluate=False)
        return m
    return expr.replace(lambda e: isinstance(e, sp.Mul) and e.has(sp.Derivative), apply)


def readings(ctx: Context, expected: sp.Expr, actual: sp.Expr, index: str | None) -> list[Reading]:
    actual = operator_over_product(actual)
    forms = [Reading("", actual)]
    vector = as_vectors(actual, index)
    if vector is not None:
        forms = [Reading("with the family written without an index read as the batch's vector", vector)]
    stray = free_index_names([forms[0].actual]) - ({index} if index else set())
    if stray:
        summed = forms[0].actual
        for s in sorted(stray):
            summed = sp.Sum(summed, (symbol(s), 1, symbol("m")))
        forms = [Reading(f"if {', '.join(sorted(stray))} is summed over the batch (an implicit sum)", summed,
                         primary=False)]
        if index:  # x_i² w_i = x_i x_j w_j "for i = j": the case the text names
            same = actual.xreplace({symbol(s): symbol(index) for s in stray})
            forms.append(Reading(f"if {', '.join(sorted(stray))} = {index} (the case the text may name)", same,
                                 primary=False))
    forms += conventions(ctx, forms[0])
    forms += _scale_as_upstream(expected, forms[0], index)
    forms += _undefined_as_upstream(ctx, expected, forms[0])
    if not (expected.has(sp.Derivative) or forms[0].actual.has(sp.Derivative)):
        return forms
    out = []
    for form in forms:
        if isinstance(expected, sp.Derivative):  # a partial on the left: local or total, both are usual
            out += [Reading(_join(form.says, "as a local partial (the other quantities held fixed)"),
                            form.actual, "local", form.primary),
                    Reading(_join(form.says, "as a total derivative (μ, σ² and x̂ following)"),
                            form.actual, "total", form.primary)]
            if form.actual.has(sp.Derivative):  # du/dz = ∂u/∂z + ∂u/∂μ dμ/dz + …: the chain rule of a total derivative
                out.append(Reading(_join(form.says, "as a total derivative, by the chain rule of the partials on the right"),
                                   form.actual, Split("total", "local"), form.primary))
            continue
        out += [Reading(form.says, form.actual, spelled_out(form.actual, ctx), form.primary),
                Reading(_join(form.says, "with every partial read as local"), form.actual, "local", False),
                Reading(_join(form.says, "with every partial read as total"), form.actual, "total", False)]
    return out


def _scale_as_upstream(expected: sp.Expr, form: Reading, index: str | None) -> list[Reading]:
    """A gradient with no upstream gradient in it (∂L/∂x_i = g_i/r − x_i/(C r³) Σ_j g_j x_j) is no gradient: the
    letter read as the scale (g, the RMSNorm write-ups' gain) may be the upstream gradient itself, as g often is."""
    gamma = symbol("gamma")
    if (index is None or "dL_dy" not in _names(expected) or not form.actual.has(gamma)
            or any(n.startswith("dL_d") for n in _names(form.actual))):
        return []

    def filled(e, k, member):  # γ_j read as γ: its entry is the sum's index inside a sum, else the left side's
        if isinstance(e, sp.Sum) and len(e.limits) == 1:
            return sp.Sum(filled(e.function, e.limits[0][0], member), *e.limits)
        if e == gamma:
            return member(k)
        return e.func(*(filled(a, k, member) for a in e.args)) if e.args else e
    out = []
    upstream = sp.IndexedBase(symbol("dL_dy"))
    for member, says in ((lambda k: gamma * upstream[k], "γ ∂L/∂y, the gradient after the scale"),
                         (lambda k: upstream[k], "∂L/∂y")):
        swapped = filled(form.actual, symbol(index), member)
        out.append(Reading(_join(form.says, f"if the letter read as the scale γ is the upstream gradient {says}"),
                           swapped, primary=False))
    return out


def _undefined_as_upstream(ctx: Context, expected: sp.Expr, form: Reading) -> list[Reading]:
    """``Σ_i δ_i x̂_i`` for ∂L/∂γ with δ never defined: the one family a formula names and the document does not
    define may be the upstream gradient, as δ often is; a guess (the document does not say so)."""
    known = set(ctx.refs) | set(ctx.helpers) | set(FAMILIES) | {"gamma", "beta", "x"}
    unknown = {a.base.label.name for a in form.actual.atoms(sp.Indexed) if len(a.indices) == 1} - known
    if len(unknown) != 1 or "dL_dy" not in _names(expected) or any(n.startswith("dL_d") for n in _names(form.actual)):
        return []
    name = next(iter(unknown))
    upstream, gamma = sp.IndexedBase(symbol("dL_dy")), symbol("gamma")
    out = []
    for member, says in ((lambda k: upstream[k], "∂L/∂y"),
                         (lambda k: gamma * upstream[k], "γ ∂L/∂y (∂L/∂x̂)")):
        swapped = form.actual.replace(lambda a: isinstance(a, sp.Indexed) and a.base.label.name == name,
                                      lambda a: member(a.indices[0]))
        says = f"if {sp.pretty(symbol(name))} (never defined) is the upstream gradient {says}"
        out.append(Reading(_join(form.says, says), swapped, primary=False, guess=True))
    return out


def conventions(ctx: Context, form: Reading) -> list[Reading]:
    """ε where write-ups put it by convention: folded into σ (x̂ = (x − μ)/σ), added to σ²
    (σ² := σ_B² + ε, or ε taken as 0 in the backward pass), or outside the root (√σ² + ε, as
    some implementations do). A formula right only so is "ambiguous", naming the convention —
    unless the document itself said σ² includes ε (then that is what it means)."""
    sigma, sigma2, eps = symbol("sigma"), symbol("sigma2"), symbol("epsilon")
    inside = sp.sqrt(sigma2 + eps)
    actual, out = form.actual, []
    if actual.has(sigma):
        out.append(Reading(_join(form.says, "if σ stands for √(σ² + ε) (ε folded into σ)"),
                           outside_partials(actual, {sigma: inside}), primary=False))
    if actual.has(sigma2) and not actual.has(eps):
        said = ctx.eps_in_sigma2
        out.append(Reading(_join(form.says, "with σ² = σ_B² + ε, as the document defines it" if said
                                 else "if σ² includes ε (or ε is taken as 0)"),
                           outside_partials(actual, {sigma2: sigma2 + eps}), primary=form.primary and said))
    outside = actual.replace(lambda a: a.is_Add and eps in a.args and any(t in (sigma, sp.sqrt(sigma2)) for t in a.args),
                             lambda a: a - eps - (sigma if sigma in a.args else sp.sqrt(sigma2)) + inside)
    if outside != actual:
        out.append(Reading(_join(form.says, "with ε under the root (it is written outside, √σ² + ε: a convention "
                                            "of some implementations)"), outside, primary=False))
    return out


def outside_partials(expr: sp.Expr, change: dict) -> sp.Expr:
    """``change`` made everywhere but inside a partial (∂ℓ/∂σ² stays a partial by σ²)."""
    partials = {d: sp.Dummy() for d in expr.atoms(sp.Derivative)}
    return expr.xreplace(partials).xreplace(change).xreplace({v: d for d, v in partials.items()})


def _join(*parts: str) -> str:
    return ", ".join(p for p in parts if p)


def check_side(ctx: Context, expected: sp.Expr, actual: sp.Expr, index: str | None, sizes) -> SideResult:
    """Is ``actual`` (one right side) the ``expected`` reference, under some reading?"""
    where = "numerically at m = " + ", ".join(map(str, sizes))
    if not free_index_names([actual]) - ({index} if index else set()) and _symbolically_equal(ctx, expected, actual, index, sizes):
        return SideResult(CORRECT, checked="symbolically")
    found, unevaluable = [], []
    for reading in readings(ctx, expected, actual, index):
        try:
            found.append((reading, find_mismatch(ctx, expected, reading.actual, index, sizes, reading=reading.partials)))
        except Unevaluable as exc:
            unevaluable.append(str(exc))
            continue
        except (TypeError, ValueError):  # a secondary reading SymPy cannot work with
            if reading.primary:
                raise
            continue
        if reading.primary and found[-1][1] is None:
            break  # the first primary reading that holds decides; the later ones cannot change it
    right = [r for r, mismatch in found if mismatch is None]
    if any(r.primary for r in right):
        reading = next(r for r in right if r.primary)
        checked = where + (f", reading it {reading.says}" if reading.says else "")
        return _same_form(ctx, expected, reading, index, sizes, checked)
    if right:
        wrong_as_written = "wrong as written" if any(r.primary for r, _ in found) else "not right as written"
        return SideResult(AMBIGUOUS, f"{wrong_as_written}; right {right[0].says}", checked=where)
    if not found or all(r.guess for r, _ in found):  # a guessed meaning alone never makes a formula wrong
        return SideResult(CANNOT_EVALUATE, f"cannot evaluate it: {unevaluable[0]}")
    reading, mismatch = next(((r, m) for r, m in found if r.primary), found[0])
    for says, changes in _document_settings(ctx, actual):
        if any(_right_with(ctx, expected, r, index, sizes, changes) for r, _ in found):
            if ("epsilon" in changes and EPS_SET not in says) or "x" in changes:  # a reading, or a case
                return SideResult(AMBIGUOUS, f"wrong as written; right {says}", checked=where)
            return SideResult(CORRECT, checked=f"{where}, reading it {says}")
    stray = free_index_names([actual]) - ({index} if index else set())
    if stray:
        return SideResult(WRONG, f"the index {', '.join(sorted(stray))} is free on the right side only, "
                                 f"and summing over it does not make it right either", mismatch, None, where)
    # on the document's own numbers, the counterexample is theirs
    small = (None if ctx.batch_only else _small_counterexample(ctx, expected, reading, index, sizes)) or mismatch
    reason, repaired = diagnose(ctx, expected, reading.actual, index, sizes, reading.partials)
    if reading.says:
        reason += f" (reading it {reading.says})"
    return SideResult(WRONG, reason, small, repaired if reading.actual == actual else None, where)


EPS_SET = "with ε = 0, as the document sets it"


def _standardised(b: Batch) -> tuple:
    """x centred and scaled so that σ² + ε = 1: x̂ = x."""
    mean = sum(b.x) / len(b.x)
    var = sum((v - mean) ** 2 for v in b.x) / len(b.x)
    scale = ((1 - b.epsilon) / var) ** 0.5 if var > 0 and b.epsilon < 1 else 1.0
    return tuple((v - mean) * scale for v in b.x)


SPECIAL_BATCHES = {"sorted": lambda b: tuple(sorted(b.x)),
                   "centred": lambda b: tuple(v - sum(b.x) / len(b.x) for v in b.x),
                   "standardised": _standardised,
                   "equal": lambda b: (b.x[0],) * len(b.x)}
SPECIAL_CASES = (("if the batch's mean is 0", "centred"), ("if the batch's mean is 0 and σ² + ε = 1", "standardised"),
                 ("if the inputs are all equal (σ² = 0)", "equal"))
# the case a setting states (μ ≈ 0, x̂_i = 0, σ² = 1): the batches of that kind
CASE_OF_SETTING = {("mu", 0.0): "centred", ("xhat", 0.0): "equal", ("sigma2", 0.0): "equal", ("sigma", 0.0): "equal",
                   ("sigma2", 1.0): "standardised", ("sigma", 1.0): "standardised"}
PLAIN_OUTPUT = "y being the normalised value as the document defines it"


def _document_settings(ctx: Context, actual: sp.Expr) -> list[tuple[str, dict]]:
    """Values of γ, β, ε a document may mean a formula at: γ = 1 and β = 0 where it defines y without them
    (the normalised value alone), ε = 0 where it writes no ε (anywhere, or in this formula and the names of
    its own the formula uses: "ignoring ε")."""
    if ctx.batch_only:
        return []
    plain = {"gamma": 1.0, "beta": 0.0} if ctx.plain_output else None
    no_eps = None
    if ctx.eps_zero:
        no_eps = EPS_SET
    elif ctx.eps_free:
        no_eps = "with ε = 0, as the document writes no ε"
    elif not _writes_epsilon(ctx, actual):
        no_eps = "with ε = 0, as the formula writes no ε"
    out = [(f"with γ = 1 and β = 0, {PLAIN_OUTPUT}", plain)] if plain else []
    if no_eps:
        out.append((no_eps, {"epsilon": 0.0}))
    if plain and no_eps:
        out.append((f"{no_eps} and γ = 1, β = 0, {PLAIN_OUTPUT}", {**plain, "epsilon": 0.0}))
    # then an order or a case the text may state in words, only where nothing above makes the formula right:
    # (x_2 − x_1)/2 for σ "for x_1 < x_2"; the case the line states just before (μ ≈ 0 ⟹ …, x̂_i = 0: y_i = β), or
    # any, for an approximation between formulas (x̂_i ≈ x_i "for mean 0 and variance 1")
    if any(k.is_Integer for ix in actual.atoms(sp.Indexed) for k in ix.indices):
        out += [(f"for x_1 < x_2 < … (in that order){', ' + s if s else ''}", {**c, "x": "sorted"})
                for s, c in [("", {}), *((s, c) for s, c in [(no_eps, {"epsilon": 0.0})] if s)]]
    cases = [c for c in SPECIAL_CASES if c[1] == ctx.case or ctx.approximate and c[1] != "equal"]
    if actual.free_symbols:  # (μ = 3 alone is one example's value, not a case)
        out += [(f"only {says} ({'the case the line states' if case == ctx.case else 'a case the text may state'})",
                 {"x": case}) for says, case in cases]
    return out


def _writes_epsilon(ctx: Context, expr: sp.Expr, depth: int = 4) -> bool:
    """ε in the formula or in a definition of a name of the document's own that it uses."""
    if expr.has(symbol("epsilon")):
        return True
    return depth > 0 and any(_writes_epsilon(ctx, ctx.helpers[n].expr, depth - 1)
                             for n in _names(expr) & set(ctx.helpers))


def _right_with(ctx, expected, reading: Reading, index, sizes, changes: dict) -> bool:
    """Does the reading hold with the batch's γ, β, ε set as ``changes`` says (every batch, every size)?"""
    case = changes.get("x")  # "for x_1 < x_2", "when the mean is 0": batches of that kind
    changes = {k: v for k, v in changes.items() if k != "x"}

    def batch(m, seed):
        b = dataclasses.replace(Batch.random(m, seed), **changes)
        return dataclasses.replace(b, x=SPECIAL_BATCHES[case](b)) if case else b
    try:
        return find_mismatch(ctx, expected, reading.actual, index, sizes, reading=reading.partials,
                             batches=lambda m: [batch(m, s) for s in SEEDS]) is None
    except (Unevaluable, TypeError, ValueError):
        return False


def _same_form(ctx, expected, reading: Reading, index, sizes, checked: str) -> SideResult:
    try:
        same = find_mismatch(ctx, expected, reading.actual, index, sizes, free=True, reading=reading.partials) is None
    except Unevaluable:
        same = False
    if same or reading.actual.has(sp.Derivative):
        return SideResult(CORRECT, checked=checked)
    written = "μ, σ² and x̂" if "mu" in ctx.refs else "the layer's statistics"  # RMSNorm has rms, no μ
    return SideResult(OTHER_FORM, f"equal once {written} are written out in x", checked=checked)


def _small_counterexample(ctx, expected, reading: Reading, index, sizes) -> Counterexample | None:
    try:
        return find_mismatch(ctx, expected, reading.actual, index, sorted(sizes)[:2],
                             batches=lambda m: [Batch.small(m, v) for v in (0, 1)], reading=reading.partials)
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
         lambda e: outside_partials(e, {sigma: sigma2})),  # a partial by σ² stays one (SymPy cannot take it by σ² + ε)
        ("ε is missing: σ here must be √(σ² + ε)", lambda e: outside_partials(e, {sigma: sp.sqrt(sigma2 + eps)})),
        ("ε is missing next to σ²", lambda e: outside_partials(e, {sigma2: sigma2 + eps}) if not e.has(eps) else e),
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


def diagnose(ctx: Context, expected, actual, index, sizes, partials="local") -> tuple[str, sp.Expr | None]:
    """(why it is wrong, the author's formula repaired) — or a plain reason and None."""
    size = symbol(ctx.notation.get("m") or "m")
    for reason, candidate in candidates(actual, size, ctx.notation):
        try:
            if candidate != actual and find_mismatch(ctx, expected, candidate, index, sizes, reading=partials) is None:
                return reason, candidate
        except (Unevaluable, TypeError, ValueError):
            continue
    for name, (ref, ref_index) in ctx.refs.items():
        if (ref_index is None) != (index is None):
            continue
        other = ref if ref_index is None else _rename_bound(ref).xreplace({sp.Symbol(ref_index): sp.Symbol(index)})
        try:
            if other != expected and find_mismatch(ctx, other, actual, index, sizes, reading=partials) is None:
                return f"the right side is the {ctx.label(name)}", None
        except Unevaluable:
            continue
    return "it differs from the reference", None




# -- the scope of a sum whose index the left side also has ------------------------------------------
MAX_SCOPES = 12


def sum_scopes(lhs: sp.Expr, sides: tuple, tex: str) -> list[tuple]:
    r"""``\frac{\partial L}{\partial x_i} = \sum_{i=1}^m (a_i)\, b\, (x_i - \mu)``: the sum reuses the left side's
    index i (read, its letter becomes another), so the (x_i − μ) after it may be the free i, the sum covering only
    what comes before it. The other readings of the chain: a sum with some of its factors in its index taken out
    of it, the index of those factors the left side's again."""
    free = sorted({str(k) for ix in (lhs.atoms(sp.Indexed) if lhs is not None else ()) for k in ix.indices
                   if k.is_Symbol})
    reused = [i for i in free if re.search(rf"\\sum\s*(?:\\limits\s*)?_\s*\{{?\s*{i}(?![A-Za-z])", tex)]
    if len(reused) != 1:
        return []
    letter, readings = symbol(reused[0]), []
    for k, side in enumerate(sides):
        for s in side.atoms(sp.Sum):
            var = s.variables[0]
            if len(s.limits) != 1 or not s.function.is_Mul:
                continue
            factors = [b for f in s.function.args for b in _repeated(f)]  # (x_i − μ)(x_i − μ) is one square
            movable = sorted({n for n, f in enumerate(factors) if f.has(var)})
            for size in range(1, len(movable)):
                for out in _subsets(movable, size):
                    inside = sp.Mul(*[f for n, f in enumerate(factors) if n not in out])
                    taken = sp.Mul(*[factors[n] for n in out]).xreplace({var: letter})
                    readings.append(sides[:k] + (side.xreplace({s: sp.Sum(inside, *s.limits) * taken}),) + sides[k + 1:])
                    if len(readings) >= MAX_SCOPES:
                        return readings
    return readings


def _repeated(factor: sp.Expr) -> list:
    if factor.is_Pow and factor.exp.is_Integer and 2 <= factor.exp <= 4:
        return [factor.base] * int(factor.exp)
    return [factor]


def _subsets(items: list, size: int):
    if size == 0:
        yield []
        return
    for k in range(len(items) - size + 1):
        for rest in _subsets(items[k + 1:], size - 1):
            yield [items[k], *rest]
