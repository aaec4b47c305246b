"""Recognise the batch statistics in a plate program, so the closed form speaks the textbook's names.

A forward that names nothing still computes the batch mean Σ_j x_j/m, a variance (two-pass,
one-pass E[x²] − μ², ``np.var``, ``np.std()**2`` …) and the normalised input. Every plate
value is *written out* in x[i], sums over j, the parameters and m, and compared with the
textbook's definitions in a *normal form* (sums split by linearity, each distinct sum a
symbol of its own, square roots' radicands and the whole brought over one denominator):

- ``mu`` = Σ_j x_j / m;  ``sigma2`` = Σ_j (x_j − μ)² / m;  ``sigma2_unbiased`` = the same over m − 1;
- ``xhat[i]`` = (x_i − μ)/√(v + c), v one of the variances and c free of x (ε, or 0);
- ``rms`` = √(Σ_j x_j²/m + c), the root mean square of RMSNorm.

When the function names nothing and its output is a function of x̂_i alone, the layer is
*rewritten* in the textbook's program (μ, the variance, x̂, y) — for a forward equal to the
built-in Batch Norm that is the built-in's program, so its closed form is the built-in's,
string for string; the rewrite is checked to equal the traced function for every m.
Otherwise the statistics the function did not name are only *renamed* where they stand.

>>> from bngraph.closedform.plates import lift
>>> def plain_bn(x, gamma, beta, eps):
...     mean = sum(x) / len(x)
...     var = sum(xk * xk for xk in x) / len(x) - mean * mean   # one pass
...     return [gamma * (xk - mean) / (var + eps) ** 0.5 + beta for xk in x]
>>> plates, note = recognise(lift(plain_bn))
>>> plates.kept
('x', 'gamma', 'beta', 'eps', 'mu', 'sigma2', 'xhat', 'y')
>>> plates.values["xhat"], plates.values["y"]
((-mu + x[i])/sqrt(eps + sigma2), beta + gamma*xhat[i])
"""
from __future__ import annotations

from functools import lru_cache
from types import MappingProxyType

import sympy as sp

from bngraph.closedform.plates import LEAVES, Plates, PlateNode, contract, i, j, m, node_value

x = sp.IndexedBase("x")
MU = sp.Sum(x[j], (j, 1, m)) / m
_DEVIATIONS = sp.Sum((x[j] - MU) ** 2, (j, 1, m))
MEAN_SQUARE = sp.Sum(x[j] ** 2, (j, 1, m)) / m
VARIANCES = {"sigma2": (_DEVIATIONS / m, m), "sigma2_unbiased": (_DEVIATIONS / (m - 1), m - 1)}  # name: (value, divisor)


# -- normal form --------------------------------------------------------------------------
def _split(expr: sp.Expr) -> sp.Expr:
    """Σ_j (a + b) = Σ a + Σ b, Σ c f(j) = c Σ f(j), Σ c = m c, innermost sums first."""
    def split(s: sp.Sum) -> sp.Expr:
        var = s.variables[0]
        terms = []
        for term in sp.Add.make_args(sp.expand(s.function)):
            factor, rest = term.as_independent(var, as_Add=False)
            terms.append(factor * m if rest == 1 else factor * sp.Sum(rest.xreplace({var: j}), (j, 1, m)))
        return sp.Add(*terms)

    return sp.expand(expr).replace(lambda e: isinstance(e, sp.Sum), split)


def sum_symbol(s: sp.Sum) -> sp.Symbol:
    """A sum as a symbol of its own, the same for the same sum (named after it)."""
    return sp.Symbol(f"Sum[{sp.sstr(s)}]")


def normal_form(expr: sp.Expr) -> sp.Expr:
    """``expr`` with sums split and each a symbol, radicands cancelled, over one denominator:
    two expressions are equal for every m (and every value) when their normal forms are.

    >>> s = sp.Sum(x[j], (j, 1, m))
    >>> normal_form(sp.Sum((x[j] - s/m)**2, (j, 1, m))/m - (sp.Sum(x[j]**2, (j, 1, m))/m - (s/m)**2))
    0
    """
    flat = _split(expr)
    flat = flat.xreplace({s: sum_symbol(s) for s in flat.atoms(sp.Sum)})
    flat = flat.replace(lambda e: e.is_Pow and not e.exp.is_Integer, lambda e: sp.Pow(sp.cancel(e.base), e.exp))
    return sp.cancel(flat)


def same(a: sp.Expr, b: sp.Expr) -> bool:
    """True when ``a`` and ``b`` are equal for every m (proved on the normal form)."""
    return normal_form(a - b) == 0


def _has_inputs(expr: sp.Expr) -> bool:
    """An input, or a sum (of anything made of the inputs), in a normal form."""
    return expr.has(x) or any(s.name.startswith("Sum[") for s in expr.free_symbols)


def written_out(plates: Plates) -> dict[str, sp.Expr]:
    """Every plate node's value in x[i], sums over j, the parameters and m (nothing inlined kept)."""
    value: dict[str, sp.Expr] = {}
    for n in plates.nodes:
        value[n.name] = node_value(n, value)
    return value


# -- what the statistics are ----------------------------------------------------------------
def _normalised(expr: sp.Expr):
    """(variance name, c) when ``expr`` = (x_i − μ)/√(v + c), else None."""
    if not expr.has(x[i]):
        return None
    ratio = normal_form(expr / (x[i] - MU))
    if ratio == 0 or ratio.has(x[i]):
        return None
    for name, (variance, _) in VARIANCES.items():
        c = normal_form(ratio ** -2 - variance)  # ε, or 0: free of the inputs and of m
        if not _has_inputs(c) and m not in c.free_symbols and normal_form(ratio - 1 / sp.sqrt(variance + c)) == 0:
            return name, c
    return None


@lru_cache(maxsize=1)
def _targets() -> dict[str, sp.Expr]:
    """The normal forms of the batch mean and of the variances (computed once)."""
    return {"mu": normal_form(MU), **{name: normal_form(variance) for name, (variance, _) in VARIANCES.items()}}


# Σ x_j and Σ x_j², as their normal forms name them: which a value holds says which targets it may be
TOTAL, SQUARES = sum_symbol(sp.Sum(x[j], (j, 1, m))), sum_symbol(sp.Sum(x[j] ** 2, (j, 1, m)))
HOLDS = {"mu": {TOTAL}, "sigma2": {TOTAL, SQUARES}, "sigma2_unbiased": {TOTAL, SQUARES}, "rms": {SQUARES}}


def _statistic(expr: sp.Expr, wanted: set) -> str | None:
    """The textbook name of a batch value, among ``wanted``: the batch mean, a variance, the rms."""
    if not expr.has(sp.Sum):
        return None
    form = normal_form(expr)
    holds = form.free_symbols & {TOTAL, SQUARES}
    found = next((name for name, target in _targets().items()
                  if name in wanted and holds == HOLDS[name] and sp.cancel(form - target) == 0), None)
    return found or ("rms" if "rms" in wanted and holds == HOLDS["rms"] and _is_rms(expr) else None)


def _is_rms(expr: sp.Expr) -> bool:
    """True when ``expr`` = √(Σ_j x_j²/m + c), c free of x and m."""
    c = normal_form(expr**2 - MEAN_SQUARE)
    return not _has_inputs(c) and m not in c.free_symbols and normal_form(expr - sp.sqrt(MEAN_SQUARE + c)) == 0


def recognise(plates: Plates) -> tuple[Plates, str]:
    """The plate program in the textbook's names where they apply, and a sentence saying what
    was recognised ("" when nothing was)."""
    value = written_out(plates)
    named = {n.name for n in plates.nodes if n.named and n.role == "intermediate"}
    taken = {n.name for n in plates.nodes if n.named or n.op in LEAVES}
    if not named:
        rewritten = _textbook(plates, value, taken)
        if rewritten is not None:
            return rewritten
    return _renamed(plates, value, taken)


def _scales(plates: Plates, value: dict):
    """(variance, c) for each batch value that is v + c, √(v + c) or 1/√(v + c), c free of x and
    m, in the order the function computes them (one at a time: the first that fits is used)."""
    found = []
    for n in plates.nodes:
        if n.kind != "batch" or n.op in LEAVES or not value[n.name].has(sp.Sum):
            continue
        b = normal_form(value[n.name])
        if not HOLDS["sigma2"] <= b.free_symbols:
            continue
        for name in VARIANCES:
            for candidate in (b, b**2, 1 / b**2):
                c = sp.cancel(candidate - _targets()[name])
                if not _has_inputs(c) and m not in c.free_symbols and (name, c) not in found:
                    found.append((name, c))
                    yield name, c


def _textbook(plates: Plates, value: dict, taken: set):
    """The layer as μ, a variance, x̂ and y = G(x̂_i, parameters), or None if it is not one."""
    outputs = [n for n in plates.nodes if n.role == "output"]
    if len(outputs) != 1 or outputs[0].kind != "example":
        return None
    xhat = sp.IndexedBase("xhat")[i]
    for variance_name, c in _scales(plates, value):  # the first (v, c) that leaves y a function of x̂_i
        scale = sp.sqrt(VARIANCES[variance_name][0] + c)
        y = normal_form(value[outputs[0].name].xreplace({x[i]: MU + xhat * scale}))
        if not _has_inputs(y):
            break
    else:
        return None
    if {"mu", variance_name, "xhat"} & taken:
        return None
    mu, variance = sp.Symbol("mu"), sp.Symbol(variance_name)
    y = sp.expand(y)
    definitions = {
        "mu": sp.Sum(x[j], (j, 1, m)) / m,
        variance_name: sp.Sum((x[j] - mu) ** 2, (j, 1, m)) / VARIANCES[variance_name][1],
        "xhat": (x[i] - mu) / sp.sqrt(variance + c),
        outputs[0].name: y,
    }
    back = y.xreplace({xhat: (x[i] - MU) / scale})
    if not same(back, value[outputs[0].name]):  # the rewrite must be the traced function, for every m
        return None
    leaves = [n for n in plates.nodes if n.op in LEAVES]
    kinds = {"mu": "batch", variance_name: "batch", "xhat": "example"}
    nodes = leaves + [PlateNode(name, kinds[name], "named", (), "intermediate", True) for name in kinds]
    nodes.append(outputs[0])
    plates = Plates(tuple(nodes), MappingProxyType(definitions), tuple(n.name for n in nodes))
    statistic = "biased" if variance_name == "sigma2" else "unbiased (1/(m - 1))"
    note = (f"The function names nothing; bngraph recognised its batch mean mu, its {statistic} variance "
            f"{variance_name} and its normalised input xhat, and wrote the layer in them (checked equal to the "
            f"traced function for every m).")
    return plates, note


def _renamed(plates: Plates, value: dict, taken: set) -> tuple[Plates, str]:
    """Unnamed batch means and variances (and normalised inputs) called by their names."""
    new_names: dict[str, str] = {}
    wanted = {"mu", "xhat", "rms"} - taken
    if not {"sigma2", "sigma2_unbiased"} & taken:  # a function that names its variance has named it
        wanted |= set(VARIANCES)
    if {"mu", "sigma2", "sigma2_unbiased"} & taken:  # a layer that centres has no root mean square to find
        wanted.discard("rms")
    for n in plates.nodes:
        if n.named or n.op in LEAVES or not wanted:
            continue
        if n.kind == "batch":
            label = _statistic(value[n.name], wanted)
        else:  # a normalised input divides by a variance the function computes: look once one is known
            has_variance = not wanted & set(VARIANCES)
            label = "xhat" if "xhat" in wanted and has_variance and _normalised(value[n.name]) else None
        if label:
            new_names[n.name] = label
            wanted.discard(label)
            if label in VARIANCES:
                wanted -= set(VARIANCES)
    if not new_names:
        return plates, ""

    def renamed(a):
        return (a[0], new_names.get(a[1], a[1])) if a[0] != "c" else a

    nodes = tuple(PlateNode(new_names.get(n.name, n.name), n.kind, n.op, tuple(renamed(a) for a in n.args),
                            n.role, n.named or n.name in new_names) for n in plates.nodes)
    labels = ", ".join(new_names.values())
    return contract(nodes), f"bngraph recognised what the function did not name: {labels}."


def in_inputs(expr: sp.Expr, definitions) -> sp.Expr:
    """``expr`` with every name of ``definitions`` (``mu``, ``xhat[i]`` …) replaced by its
    definition, in turn written out: an expression in x, sums, the parameters and m.

    >>> in_inputs(sp.Symbol("mu") * 2, {"mu": MU})
    2*Sum(x[j], (j, 1, m))/m
    """
    full: dict[str, sp.Expr] = {}
    for key, definition in definitions.items():
        full[key] = _substitute(definition, full)
    return _substitute(expr, full)


def _substitute(expr: sp.Expr, full: dict) -> sp.Expr:
    for key, value in full.items():
        if key.endswith("[i]"):
            base = sp.IndexedBase(key[:-3])
            expr = expr.replace(lambda e: isinstance(e, sp.Indexed) and e.base == base,
                                lambda e, value=value: value.xreplace({i: e.indices[0]}))
        else:
            expr = expr.xreplace({sp.Symbol(key): value})
    return expr
