r"""A document's own letters for the layer's families, read as the contract's names.

- A capital written with an index is one element: ``X_i``, ``\hat{X}_{ij}``, ``Y_i``, ``\nabla_{X_i}`` are
  x_i, x̂_i, y_i, ∂L/∂x_i, where the document writes no lower-case x (x̂, y) of its own. Written bare
  (``\hat{X} = (X - \mu)/\sigma``), a capital stays the whole batch: matrix form, not checked.
- A letter the document defines by x̂'s formula (``n_i = (x_i - \mu)/\sqrt{\sigma^2 + \epsilon}``) is x̂, and one
  it defines by y's (``z_i = \gamma n_i + \beta``) is y, with its derivatives (``\frac{dJ}{dn_i}``), where the
  document does not write x̂ (y) itself; and the letter whose mean μ is (``\mu_B = \frac{1}{m}\sum_i h_i``) is x.
- A value at step t from its value at step t − 1 (``m_t = \alpha m_{t-1} + (1 - \alpha)\mu_t``,
  ``\mu_{mb} = \rho\,\mu_{mb-1} + (1 - \rho)\,\mu_{mb}``) is a running value's update: q_t and q_{t-1} are the
  running q, and the batch's statistics at step t (μ_t, or q_t itself on the right) are the batch's μ, σ².
"""
from __future__ import annotations

from dataclasses import replace

import sympy as sp

from bngraph.audit.batcheval import depends_on
from bngraph.tex.grammar import Equation
from bngraph.tex.names import PRIME_VARIABLE, canonical, canonical_bound, free_index_names, symbol

CAPITALS = {"X": "x", "Xhat": "xhat", "Y": "y"}
OWN_TARGETS = ("xhat", "y")  # in this order: z_i = γ n_i + β is y's formula once n is x̂
KNOWN = {"x", "xhat", "y", "delta", "gamma", "beta", "mu", "sigma", "sigma2"}


def _sides(eq: Equation) -> list[sp.Expr]:
    return [e for e in (eq.lhs, eq.rhs, *eq.chain) if e is not None]


def _families(equations: list[Equation | None]) -> set[str]:
    return {ix.base.label.name for eq in equations if eq is not None for e in _sides(eq)
            for ix in canonical(e).atoms(sp.Indexed)}


def _renamed(equations: list[Equation | None], names: dict[str, str]) -> list[Equation | None]:
    """Every indexed ``a[…]`` and ``dL_da[…]`` of ``names`` renamed (bare symbols keep their meaning)."""
    full = {**names, **{f"dL_d{a}": f"dL_d{b}" for a, b in names.items()}}

    def rename(e):
        if e is None:
            return None
        return canonical(e).replace(lambda a: isinstance(a, sp.Indexed) and a.base.label.name in full,
                                    lambda a: sp.IndexedBase(symbol(full[a.base.label.name]))[a.indices])

    return [None if eq is None else replace(eq, lhs=rename(eq.lhs), rhs=rename(eq.rhs),
                                            chain=tuple(rename(c) for c in eq.chain))
            for eq in equations]


def element_capitals(equations: list[Equation | None]) -> list[Equation | None]:
    """``X_i``, ``\\hat{X}_i``, ``Y_i`` read as x_i, x̂_i, y_i where the lower-case family is not written."""
    families = _families(equations)
    names = {cap: low for cap, low in CAPITALS.items() if cap in families and low not in families}
    return _renamed(equations, names) if names else equations


def own_letters(equations: list[Equation | None], refs) -> list[Equation | None]:
    r"""A letter defined by x̂'s (y's) formula read as x̂ (y) throughout, where x̂ (y) is not written; the
    letter μ is the mean of read as x (``\mu_B = \frac{1}{m}\sum_i h_i``), its hat as x̂."""
    families = _families(equations)
    if "x" not in families and "mu" in refs:
        letter = _mean_of(equations, refs["mu"][0])
        if letter is not None:
            names = {letter: "x"}
            if f"{letter}hat" in families and "xhat" not in families and not _scaled(equations, f"{letter}hat"):
                names[f"{letter}hat"] = "xhat"
            equations = _renamed(equations, names)
    pair = next((p for eq in equations if eq is not None and (p := _hat_pair(eq, refs)) is not None), None)
    if pair is not None and not {"x", "xhat"} & _families(equations):  # Î_ij = (I_ij − μ)/√(σ² + ε): I is x
        equations = _renamed(equations, {pair: "x", f"{pair}hat": "xhat"})
    for target in OWN_TARGETS:
        families = _families(equations)
        if target in families or target not in refs:
            continue
        formula, index = refs[target]
        letter = next((name for eq in equations if eq is not None and (name := _defines(eq, formula, index))
                       and name not in KNOWN and not name.startswith("dL_d")), None)
        if letter is not None:
            equations = _renamed(equations, {letter: target})
    return equations


def staged_ends(equations: list[Equation | None]) -> list[Equation | None]:
    r"""A forward pass written in stages with names of its own (``\mathtt{mean} = \frac{\sum input_i}{N}``, …,
    ``normed_i = centered_i\,gmul + beta``), where the document writes neither x nor y (nor defines μ, σ², x̂):
    the one family its formulas take without defining it, and sum over, is x; the one family they define that no
    other formula uses, following from x and from γ, is y."""
    if {"x", "y"} & _families(equations):
        return equations
    forward = {}
    for eq in equations:
        lhs = canonical(eq.lhs) if eq is not None and eq.lhs is not None and eq.kind == "definition" else None
        name = lhs.base.label.name if isinstance(lhs, sp.Indexed) else getattr(lhs, "name", None)
        if name and not name.startswith("dL_d") and not any(n.startswith("dL_d") for n in _names(canonical(eq.rhs))):
            forward.setdefault(name, (isinstance(lhs, sp.Indexed), canonical(eq.rhs)))
    taken = {ix.base.label.name for _, rhs in forward.values() for ix in rhs.atoms(sp.Indexed)} - set(forward)
    summed = {ix.base.label.name for _, rhs in forward.values() for total in rhs.atoms(sp.Sum)
              for ix in total.function.atoms(sp.Indexed)}
    if {"mu", "sigma2", "sigma", "xhat"} & set(forward):  # the layer's own names: not a pass of names of its own
        return equations
    inputs = (taken & summed) - KNOWN
    outputs = [name for name, (indexed, _) in forward.items() if indexed and not any(
        name in _names(rhs) for other, (_, rhs) in forward.items() if other != name)]
    if len(inputs) != 1 or len(outputs) != 1:
        return equations
    letter = next(iter(inputs))
    if not (_follows(forward, outputs[0], letter) and _follows(forward, outputs[0], "gamma")):
        return equations
    return _renamed(equations, {letter: "x", outputs[0]: "y"})


def _follows(forward: dict, name: str, source: str) -> bool:
    """Whether ``name``'s formula depends on ``source`` through the others."""
    return depends_on({at: formula[1] for at, formula in forward.items()}, name, source)


def accented_squares(equations: list[Equation | None]) -> list[Equation | None]:
    r"""``\bar{\sigma}^2`` where the document defines ``\bar{\sigma} = \sqrt{\sigma^2 + \epsilon}``: the square of its σ̄,
    not a variance of its own (the reader spells σ̂², σ̄² as one name, as it does σ²)."""
    defined = {target for eq in equations if eq is not None and eq.lhs is not None
               for target in [canonical(eq.lhs)] if isinstance(target, sp.Symbol)}
    names = {e.name for eq in equations if eq is not None for side in _sides(eq)
             for e in canonical(side).free_symbols}
    squares = {symbol(n): symbol("sigma" + n[len("sigma2"):]) ** 2 for n in names
               if n.startswith("sigma2") and len(n) > len("sigma2") and symbol("sigma" + n[len("sigma2"):]) in defined
               and symbol(n) not in defined}
    if not squares:
        return equations

    def square(e):
        return None if e is None else canonical(e).xreplace(squares)

    return [None if eq is None else replace(eq, lhs=square(eq.lhs), rhs=square(eq.rhs),
                                            chain=tuple(square(c) for c in eq.chain)) for eq in equations]


def primes(equations: list[Equation | None]) -> list[Equation | None]:
    r"""``\sigma'``, ``(x_i - \mu)'`` (Lagrange's notation) differentiate by the variable the text last differentiated
    by: ``\frac{dy_i}{dx_j} = \frac{(x_i-\mu)'\sigma - (x_i-\mu)\sigma'}{\sigma^2}`` is by x_j, and so are the primes of
    the rows after it. A prime before any derivative is left as it is (and cannot be evaluated)."""
    placeholder, by, out = symbol(PRIME_VARIABLE), None, []
    for eq in equations:
        sides = _sides(eq) if eq is not None else []
        if by is not None and any(canonical(e).has(placeholder) for e in sides):
            def put(e, by=by):
                e = canonical(e).xreplace({placeholder: by})
                return canonical_bound(e, free_index_names([e]))  # Σ_j of a prime by x_j: its j renamed
            eq = replace(eq, lhs=None if eq.lhs is None else put(eq.lhs), rhs=put(eq.rhs),
                         chain=tuple(put(c) for c in eq.chain))
        for e in sides:
            found = [v for d in canonical(e).atoms(sp.Derivative) for v in d.variables if v != placeholder]
            by = found[0] if found else by
        out.append(eq)
    return out


def zero_based(equations: list[Equation | None]) -> list[Equation | None]:
    r"""``\hat{X}_{1,0}``, ``\sigma_0^2``, ``\partial x_{0,0}``: a formula that counts from 0, as code does. Each number it
    indexes with is one more in the auditor's count (x_0 is the first example). Formula by formula: a text may count
    from 0 in its code-like part and from 1 in its maths (x_1, x_2 of a batch of two)."""
    def numbered(e):
        return [ix for ix in e.atoms(sp.Indexed) if any(k.is_Integer for k in ix.indices)]

    def shift(e):
        if e is None:
            return None
        return e.xreplace({ix: ix.base[tuple(k + 1 if k.is_Integer else k for k in ix.indices)] for ix in numbered(e)})
    out = []
    for eq in equations:
        if eq is not None and any(k == 0 for e in _sides(eq) for ix in numbered(canonical(e)) for k in ix.indices):
            eq = replace(eq, lhs=shift(eq.lhs), rhs=shift(eq.rhs), chain=tuple(map(shift, eq.chain)))
        out.append(eq)
    return out


def _scaled(equations: list[Equation | None], name: str) -> bool:
    r"""Does the document define ``name`` with γ or β (``\hat{z}_i = \gamma u_i + \beta``: its hat is the output)?"""
    return any(eq is not None and eq.lhs is not None and isinstance(canonical(eq.lhs), sp.Indexed)
               and canonical(eq.lhs).base.label.name == name and canonical(eq.rhs).has(symbol("gamma"), symbol("beta"))
               for eq in equations)


def _defines(eq: Equation, formula: sp.Expr, index: str | None) -> str | None:
    """The letter ``eq`` defines, if its right side is ``formula`` at the left side's index."""
    if eq.kind != "definition" or not isinstance(eq.lhs, sp.Indexed) or len(eq.lhs.indices) != 1 or index is None:
        return None
    at = eq.lhs.indices[0]
    if not at.is_Symbol:
        return None
    return eq.lhs.base.label.name if _same(canonical(eq.rhs), canonical(formula).xreplace({symbol(index): at})) else None


def _names(e: sp.Expr) -> set[str]:
    return {s.name for s in e.free_symbols} | {ix.base.label.name for ix in e.atoms(sp.Indexed)}


def _same(a: sp.Expr, b: sp.Expr) -> bool:
    """The same formula: the same names, and equal once expanded (bound indices named alike); cheap, as a
    document's every equation is asked."""
    if _names(a) != _names(b) or sp.count_ops(a) + sp.count_ops(b) > 120:
        return False
    a, b = canonical_bound(a, set()), canonical_bound(b, set())
    try:
        return a == b or sp.expand(a - b) == 0
    except (TypeError, ValueError, RecursionError):
        return False


def step_updates(equations: list[Equation | None]) -> list[Equation | None]:
    r"""``q_t = a\,q_{t-1} + b\,s_t`` read as the running q's update: ``q_run ← a q_run + b s``."""
    return [None if eq is None else _as_update(eq) for eq in equations]


def _as_update(eq: Equation) -> Equation:
    lhs = canonical(eq.lhs) if eq.lhs is not None else None
    if isinstance(lhs, sp.Pow) and lhs.exp.is_Symbol:  # \bar{\mu}_i^{(\tau)}: the step as a superscript
        return _superscript_update(eq, lhs)
    if not (isinstance(lhs, sp.Indexed) and len(lhs.indices) == 1 and lhs.indices[0].is_Symbol):
        return eq
    step, base = lhs.indices[0], lhs.base.label.name
    sides = [canonical(c) for c in eq.chain]
    previous = sp.IndexedBase(symbol(base))[step - 1]
    if not sides or not all(s.has(previous) for s in sides[:1]):
        return eq
    running = symbol(f"{base}_run")

    def at_step(e):  # q_{t-1} the running value; anything at step t (μ_t, q_t) the batch's own statistic
        e = e.xreplace({previous: running})
        return e.replace(lambda a: isinstance(a, sp.Indexed) and a.indices == (step,),
                         lambda a: symbol(a.base.label.name))

    return replace(eq, lhs=running, rhs=at_step(canonical(eq.rhs)), chain=tuple(at_step(c) for c in sides),
                   kind="update")


def _superscript_update(eq: Equation, lhs: sp.Pow) -> Equation:
    """``q^{(τ)} = α q^{(τ-1)} + (1 − α) s``: the running q's update, as :func:`_as_update` reads ``q_t``."""
    step, base = lhs.exp, lhs.base
    previous = base ** (step - 1)
    sides = [canonical(c) for c in eq.chain]
    name = base.base.label.name if isinstance(base, sp.Indexed) else getattr(base, "name", None)
    if name is None or not sides or not sides[0].has(previous):
        return eq
    running = symbol(f"{name}_run")
    return replace(eq, lhs=running, rhs=canonical(eq.rhs).xreplace({previous: running}),
                   chain=tuple(c.xreplace({previous: running}) for c in sides), kind="update")


def _mean_of(equations: list[Equation | None], mean: sp.Expr) -> str | None:
    r"""The letter h of ``\mu = \frac{1}{m}\sum_i h_i``, if the document defines μ so."""
    x = symbol("x")
    for eq in equations:
        if eq is None or eq.lhs is None or eq.kind != "definition" or canonical(eq.lhs) != symbol("mu"):
            continue
        rhs = canonical(eq.rhs)
        # the batch size as the document names it: \mu_B = \frac{1}{B}\sum_{i=1}^B z_i
        sizes = {s.limits[0][2] for s in rhs.atoms(sp.Sum) if s.limits[0][2].is_Symbol} or {symbol("m")}
        for base in {ix.base.label.name for ix in rhs.atoms(sp.Indexed)} - KNOWN:
            if any(_same(rhs, canonical(mean).xreplace({x: symbol(base), symbol("m"): size})) for size in sizes):
                return base
    return None


def _hat_pair(eq: Equation, refs) -> str | None:
    r"""The letter A of ``\hat{A}_i = (A_i − μ)/√(σ² + ε)``: the document's own letter for x, with its hat x̂."""
    lhs = canonical(eq.lhs) if eq.lhs is not None else None
    if "xhat" not in refs or not isinstance(lhs, sp.Indexed) or not lhs.base.label.name.endswith("hat"):
        return None
    letter = lhs.base.label.name[:-3]
    if not letter or letter in KNOWN:
        return None
    formula, index = refs["xhat"]
    renamed = Equation(sp.IndexedBase(symbol("xhat"))[lhs.indices], eq.rhs, eq.kind, eq.chain)
    swapped = _renamed([renamed], {letter: "x"})[0]
    return letter if _defines(replace(swapped, lhs=sp.IndexedBase(symbol("n"))[lhs.indices[0]]), formula, index) \
        else None
