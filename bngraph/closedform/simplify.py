"""Closed form for every m: reverse mode on the plate program, then simplification by identities.

1. The layer is lifted to a plate program (:mod:`bngraph.closedform.plates`): one rule per family
   of per-example values, sums over j = 1..m joining them to batch values.
2. Reverse mode at symbolic m, with two rules that replace differentiating a ``Sum``
   (which leaves ``KroneckerDelta`` and ``Piecewise``): the adjoint of a batch value sums
   its per-example uses over j; an example value x_i reaches a sum Σ_j f(x_j) only
   through its own term, d/dx_i Σ_j f(x_j) = f'(x_i).
3. Simplification on purpose, with identities the layer's own definitions imply: the
   normalised value solved for the input (x_j − μ = x̂_j √(σ² + ε)), then each batch
   definition read as an equation for the one new sum it contains (μ's definition gives
   Σ_j x̂_j = 0; σ²'s gives Σ_j x̂_j² = m σ²/(σ² + ε)); sums are split by linearity and the
   result collected on the batch sums Σ_j dL/dy_j, Σ_j dL/dy_j x̂_j.

Every step is a rule valid for every m ≥ 1; the only thing read off concrete traces is
the plate program itself, which ``lift`` checks on a third size.

>>> from bngraph.engine.layers import LAYERS
>>> cf = closed_form_of(LAYERS["batchnorm"].function, "batchnorm")
>>> cf.formulas["dL_dbeta"]
Sum(dL_dy[j], (j, 1, m))
>>> cf.formulas["dL_dx[i]"]
gamma*(m*dL_dy[i] - xhat[i]*Sum(dL_dy[j]*xhat[j], (j, 1, m)) - Sum(dL_dy[j], (j, 1, m)))/(m*sqrt(epsilon + sigma2))
"""
from __future__ import annotations

from types import MappingProxyType
from typing import Callable

import sympy as sp

from bngraph.engine.derive import Derivation
from bngraph.errors import BngraphError
from bngraph.engine.trace import trace
from bngraph.closedform.plates import SIZES, Plates, i, j, lift_traces, m
from bngraph.closedform.recognise import recognise
from bngraph.closedform.form import ClosedForm, Identity, Step, concrete  # noqa: F401 (concrete: re-exported)
from bngraph.closedform.cache import remembered

_k = sp.Dummy("k", integer=True)


def closed_form(derivation: Derivation) -> ClosedForm | None:
    """The closed form of the derivation's layer, or None where the engine cannot lift it."""
    trace = derivation.graph.trace
    if trace is None or trace.source is None:
        return None
    try:
        return closed_form_of(trace.source, derivation.graph.layer)
    except BngraphError:
        return None


def closed_form_of(func: Callable, layer: str) -> ClosedForm:
    """The closed form of ``func`` (lifted, its unnamed batch statistics recognised), from the
    cache where the same traced program was simplified before."""
    traces = [trace(func, size) for size in SIZES]
    return remembered(traces, layer, lambda: _closed_form_of(lift_traces(traces), layer))


def _closed_form_of(lifted: Plates, layer: str) -> ClosedForm:
    plates, recognised = recognise(lifted)
    adjoints, children = _reverse_mode(plates)
    inverse = _inverse_rule(plates)
    identities = [inverse[2]] if inverse else []
    for name in plates.kept:
        if name in plates.values and plates[name].kind == "batch":
            found = _identity_from_definition(name, plates.values[name], inverse, identities)
            if found is not None:
                identities.append(found)
    batch_definitions = [(n, plates.values[n]) for n in plates.kept
                         if n in plates.values and plates[n].kind == "batch"]
    formulas, steps, chain_rule, closed = {}, {}, {}, {}
    for name, chain in adjoints.items():  # children first: each uses its children's closed forms
        key = f"dL_d{_key(plates, name)}"
        chain_rule[key] = chain
        steps[key] = _simplify(chain, _substitute(plates, chain, closed), inverse, identities, batch_definitions)
        formulas[key] = closed[name] = steps[key][-1].expr
    definitions = {_key(plates, n): plates.values[n] for n in plates.kept if n in plates.values}
    partials = {_key(plates, c): MappingProxyType({_key(plates, p): d for p, d in ps.items()})
                for c, ps in _partials_by_child(plates, children).items()}
    chain_terms = {f"dL_d{_key(plates, n)}": tuple((_key(plates, c), plates[c].kind == "example"
                                                    and plates[n].kind == "batch") for c, _ in children[n])
                   for n in adjoints}
    provenance = (f"The plate program (one rule per family of per-example values, sums over j joining "
                  f"them) was read off traces at m = {', '.join(map(str, SIZES))}, each m-dependent constant "
                  f"fitted on two sizes and checked on the third; every later step is a rule valid for all m >= 1.")
    return ClosedForm(layer, MappingProxyType(formulas), MappingProxyType(definitions),
                      MappingProxyType(chain_rule), tuple(identities), MappingProxyType(steps), provenance,
                      MappingProxyType(partials), MappingProxyType(chain_terms), recognised)


def _partials_by_child(plates: Plates, children: dict) -> dict[str, dict[str, sp.Expr]]:
    """The local partials regrouped by child, children and parents in the plate program's order."""
    by_child: dict[str, dict[str, sp.Expr]] = {}
    for parent in plates.kept:
        for child, partial in children.get(parent, ()):
            by_child.setdefault(child, {})[parent] = partial
    return {c: by_child[c] for c in plates.kept if c in by_child}


def _key(plates: Plates, name: str) -> str:
    return f"{name}[i]" if plates[name].kind == "example" else name


def _adjoint(plates: Plates, name: str, index=i) -> sp.Expr:
    if plates[name].kind == "example":
        return sp.IndexedBase(f"dL_d{name}")[index]
    return sp.Symbol(f"dL_d{name}")


def _parents(plates: Plates, expr: sp.Expr) -> list[str]:
    names = {str(e.base) for e in expr.atoms(sp.Indexed)} | {str(s) for s in expr.free_symbols if isinstance(s, sp.Symbol)}
    return [n for n in plates.kept if n in names]


def _sum_partial(expr: sp.Expr, family: sp.IndexedBase) -> sp.Expr:
    """d expr / d family[i] where family appears only inside sums over j (the reduction rule)."""
    sums = sorted(expr.atoms(sp.Sum), key=sp.default_sort_key)
    stand_ins = [sp.Dummy() for _ in sums]
    flat = expr.xreplace(dict(zip(sums, stand_ins)))
    u = sp.Dummy("u")
    terms = []
    for s, d in zip(sums, stand_ins):
        inner = s.function.xreplace({family[j]: u}).diff(u).xreplace({u: family[j]})
        if inner != 0:
            terms.append(flat.diff(d).xreplace(dict(zip(stand_ins, sums))) * inner.xreplace({j: i}))
    return sp.Add(*terms)


def _reverse_mode(plates: Plates) -> tuple[dict[str, sp.Expr], dict[str, list]]:
    """Each kept node's adjoint at symbolic m, as a sum over its children (chain-rule form),
    and each node's children with the local partial ∂child/∂node."""
    children: dict[str, list[tuple[str, sp.Expr]]] = {n: [] for n in plates.kept}
    for child in plates.kept:
        expr = plates.values.get(child)
        if expr is None:
            continue
        c = plates[child]
        for parent in _parents(plates, expr):
            p = plates[parent]
            if c.kind == "example" and p.kind == "example":
                partial = expr.diff(sp.IndexedBase(parent)[i])
            elif p.kind == "batch":
                partial = expr.diff(sp.Symbol(parent))
            else:
                partial = _sum_partial(expr, sp.IndexedBase(parent))
            children[parent].append((child, partial))
    adjoints = {}
    for name in reversed(plates.kept):
        node = plates[name]
        if node.role in ("output", "constant"):
            continue
        terms = []
        for child, partial in children[name]:
            if plates[child].kind == "example" and node.kind == "batch":
                terms.append(sp.Sum((_adjoint(plates, child) * partial).xreplace({i: j}), (j, 1, m)))
            else:
                terms.append(_adjoint(plates, child) * partial)
        adjoints[name] = sp.Add(*terms)
    return adjoints, children


def _at(expr: sp.Expr, index) -> sp.Expr:
    """``expr`` (written at index i) at another index, its own sums' indices renamed first."""
    expr = expr.replace(lambda e: isinstance(e, sp.Sum), lambda s: s.xreplace({j: _k}))
    return expr.xreplace({i: index})


def _substitute(plates: Plates, chain: sp.Expr, closed: dict[str, sp.Expr]) -> sp.Expr:
    """The chain-rule form with each child's adjoint replaced by its closed form, sums split."""
    def of_known(e) -> bool:  # dL_d<family>[k] of a family whose closed form is known
        return isinstance(e, sp.Indexed) and str(e.base).startswith("dL_d") and str(e.base)[4:] in closed

    expr = chain.replace(of_known, lambda e: _at(closed[str(e.base)[4:]], e.indices[0]))
    expr = expr.xreplace({sp.Symbol(f"dL_d{n}"): closed[n] for n in closed if plates[n].kind == "batch"})
    return _linear_sums(expr)


def _expand(expr: sp.Expr) -> sp.Expr:
    """``sympy.expand``, but σ² + ε under a root or in a denominator stays whole."""
    held = {p.base: sp.Dummy(positive=True) for p in expr.atoms(sp.Pow)
            if p.base.is_Add and not (p.exp.is_Integer and p.exp > 0)}
    return sp.expand(expr.xreplace(held)).xreplace({v: k for k, v in held.items()})


def _linear_sums(expr: sp.Expr) -> sp.Expr:
    """Split every Σ_j by linearity: Σ (a + b) = Σ a + Σ b, Σ c f(j) = c Σ f(j), Σ c = m c."""
    def split(s: sp.Sum) -> sp.Expr:
        var = s.variables[0]
        body = _expand(_linear_sums(s.function))
        out = []
        for term in sp.Add.make_args(body):
            indep, dep = term.as_independent(var, as_Add=False)
            out.append(indep * m if dep == 1 else indep * sp.Sum(dep.xreplace({var: j}), (j, 1, m)))
        return sp.Add(*out)

    return expr.replace(lambda e: isinstance(e, sp.Sum), split)


def _inverse_rule(plates: Plates):
    """The first named per-example value solved for the input: x_i = μ + x̂_i √(σ² + ε)."""
    x = sp.IndexedBase("x")
    for name in plates.kept:
        node = plates[name]
        if node.kind != "example" or node.role != "intermediate" or not node.named:
            continue
        definition = plates.values[name]
        if not definition.has(x[i]):
            continue
        solved = sp.solve(sp.Eq(sp.IndexedBase(name)[i], definition), x[i], dict=True, check=False,
                            simplify=False)  # linear in x[i]: no check, no simplify (it imports sympy.physics.units)
        if len(solved) == 1:
            rhs = solved[0][x[i]]
            return x, rhs, Identity(x[i], rhs, f"the definition of {name} solved for x")
    return None


def _apply_inverse(expr: sp.Expr, inverse) -> sp.Expr:
    if inverse is None:
        return expr
    base, rhs, _ = inverse
    return expr.replace(lambda e: isinstance(e, sp.Indexed) and e.base == base,
                        lambda e: rhs.xreplace({i: e.indices[0]}))


def _apply_identities(expr: sp.Expr, identities) -> sp.Expr:
    table = {ident.lhs: ident.rhs for ident in identities if isinstance(ident.lhs, sp.Sum)}
    return expr.xreplace(table) if table else expr


def _identity_from_definition(name, definition, inverse, identities) -> Identity | None:
    """Read ``name = definition`` as an equation for the one new sum it contains."""
    rewritten = _apply_identities(_linear_sums(_expand(_apply_inverse(definition, inverse))), identities)
    new = [s for s in rewritten.atoms(sp.Sum) if not any(s == ident.lhs for ident in identities)]
    if len(new) != 1:
        return None
    stand_in = sp.Dummy()
    solved = sp.solve(sp.Eq(sp.Symbol(name), rewritten.xreplace({new[0]: stand_in})), stand_in,
                      check=False, simplify=False)  # linear in the sum: as above
    if len(solved) != 1:
        return None
    return Identity(new[0], sp.factor(solved[0]), f"from the definition of {name}")


def _simplify(chain, full, inverse, identities, definitions) -> tuple[Step, ...]:
    """The chain from the substituted adjoint to its closed form, one recorded step per rule."""
    steps = [Step("chain rule over the plate graph", chain), Step("the adjoints found above, substituted", full)]

    def step(description, expr):
        if expr != steps[-1].expr:
            steps.append(Step(description, expr))

    if inverse is not None:  # identities are numbered (1), (2) … in the order they are listed
        step("by (1)", _linear_sums(_apply_inverse(steps[-1].expr, inverse)))
    for name, definition in reversed(definitions):
        step(f"fold the definition of {name} back into {name}", _fold(steps[-1].expr, definition, sp.Symbol(name)))
    for number, ident in enumerate(identities, 1):
        if isinstance(ident.lhs, sp.Sum):
            step(f"by ({number})", steps[-1].expr.xreplace({ident.lhs: ident.rhs}))
    step("collect on the batch sums", _collect(steps[-1].expr))
    if len(steps) == 2:  # nothing to simplify: the substituted form is the closed form
        steps.append(Step("collect on the batch sums", _collect(full)))
    return tuple(steps)


def _fold(expr: sp.Expr, definition: sp.Expr, name: sp.Symbol) -> sp.Expr:
    """Write ``definition`` as ``name`` where it appears, also as a power: 1/√(…) -> 1/rms."""
    expr = expr.xreplace({definition: name})
    if isinstance(definition, sp.Pow) and definition.base.is_Add:
        base, e = definition.base, definition.exp
        expr = expr.replace(lambda p: isinstance(p, sp.Pow) and p.base == base, lambda p: name ** (p.exp / e))
    return expr


def _collect(expr: sp.Expr) -> sp.Expr:
    """Expand, then pull the common factor out of the terms, the batch sums kept whole."""
    sums = sorted(expr.atoms(sp.Sum), key=sp.default_sort_key)
    stand_ins = [sp.Dummy(f"S{k}") for k in range(len(sums))]
    flat = _expand(expr.xreplace(dict(zip(sums, stand_ins))))
    return sp.factor_terms(sp.together(flat)).xreplace(dict(zip(stand_ins, sums)))
