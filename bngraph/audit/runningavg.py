r"""Running averages: ``\mu_{\text{run}} \gets (1 - \alpha)\,\mu_{\text{run}} + \alpha\,\mu_B``.

Both momentum conventions are right: running ← (1 − α)·running + α·batch (PyTorch's
``momentum``) and running ← α·running + (1 − α)·batch (Keras's). So is the unbiased
variance, m/(m − 1)·σ², that PyTorch averages. What is checked: the new value is a
weighted average of the old one and one batch statistic, the weights add up to 1, and the
statistic fits the name (a running mean averages μ). Warned about: averaging σ instead of
σ², and a momentum letter the layer already uses (β is the shift).

>>> from bngraph.tex.grammar import parse_equation
>>> from bngraph.audit.judge import Context
>>> eq = parse_equation(r"\mu_{\text{run}} \gets 0.9\,\mu_{\text{run}} + 0.1\,\mu_B")
>>> judge_update(eq.lhs, eq.chain, Context(refs={"mu": (eq.rhs, None)})).verdict
'correct'
"""
from __future__ import annotations

import sympy as sp

from bngraph.audit.judge import names_in, target_of
from bngraph.audit.verdicts import CANNOT_EVALUATE, CORRECT, NOT_ABOUT, WRONG, Context, Counterexample, Judgement
from bngraph.tex.names import symbol

STATISTICS = {"mu": "mean", "sigma2": "variance", "sigma": "standard deviation"}
GREEK = {"alpha": "α", "beta": "β", "gamma": "γ", "rho": "ρ", "lambda": "λ", "eta": "η", "tau": "τ",
         "epsilon": "ε", "mu": "μ", "delta": "δ", "kappa": "κ", "momentum": "momentum"}


def is_update(name: str, sides, ctx: Context) -> bool:
    """The left side's name is on the right too, and it is not one of the layer's quantities nor a gradient
    (∂L/∂I = ∂L/∂I · … is a slip of the letter, ∂L/∂X̂ = ∂L/∂X̂ = … a restatement)."""
    if name in ctx.refs or name == "sigma" or name.startswith("dL_d"):
        return False
    return any(name in names_in(s) for s in sides)


def _kind(name: str) -> str | None:
    low = name.lower()
    if low.startswith("sigma2") or "var" in low:
        return "variance"
    if low.startswith("sigma") or "std" in low:
        return "standard deviation"
    if low.startswith("mu") or "mean" in low:
        return "mean"
    return None


def judge_update(lhs: sp.Expr, sides, ctx: Context) -> Judgement:
    name = target_of(lhs)[0]
    key, label = f"update:{name}", f"running {_kind(name) or 'average'} update"

    def wrong(reason: str) -> Judgement:
        return Judgement(key, label, WRONG, reason)

    old = sp.Dummy("running")
    rhs = sides[0].xreplace({lhs: old})
    stats = sorted(names_in(rhs) & set(STATISTICS))
    kind = _kind(name)
    if not stats:
        if kind is None:
            return Judgement(None, "update", NOT_ABOUT, f"an update of {name} that uses no batch statistic "
                             "(an optimiser step?), not a running average of the layer")
        unknown = sorted(names_in(sides[0]) - set(ctx.refs) - {"m", name} - set(GREEK) - {"p", "alpha", "momentum"})
        if unknown:
            return Judgement(key, label, CANNOT_EVALUATE, f"{', '.join(unknown)} is not defined here: "
                             "which batch statistic does it average?")
    written_out = rhs.has(sp.Sum) or "x" in names_in(rhs)  # 0.1·(1/m)Σ(x_i − μ)²: the batch's σ² in x
    if written_out and kind is not None and (len(stats) != 1 or not _weighted(rhs, old, symbol(stats[0]))):
        return Judgement(key, label, CANNOT_EVALUATE, "the batch statistic is written out in x, not named (μ, σ²): "
                         "not checked")
    if len(stats) != 1:
        return wrong("it should average the running value with one batch statistic (μ or σ²)")
    stat = symbol(stats[0])
    if not _weighted(rhs, old, stat):
        if kind is None:  # v <- μ v + g: μ is a momentum coefficient here, not the batch mean
            return Judgement(None, "update", NOT_ABOUT, f"an update of {name} that is not a running average "
                             "(an optimiser step?)")
        return wrong("it is not a weighted average of the running value and the batch statistic")
    w_old, w_new = sp.expand(rhs).coeff(old), sp.expand(rhs).coeff(stat)
    m = symbol("m")
    notes, warnings = [], []
    total = sp.simplify(w_old + w_new)
    if total != 1:
        size = next((n for n in [m, *map(symbol, sorted(ctx.size_names))] if stats[0] == "sigma2"
                     and sp.simplify(w_old + w_new * (n - 1) / n) == 1), None)  # m/(m − 1), or B/(B − 1)
        if size is not None:
            w_new = sp.simplify(w_new * (size - 1) / size)
            notes.append(f"with the unbiased variance {size}/({size} − 1)·σ², as PyTorch keeps it")
        else:
            return _off_balance(key, label, total)
    if kind and kind != STATISTICS[stats[0]] and {kind, STATISTICS[stats[0]]} != {"variance", "standard deviation"}:
        return wrong(f"a running {kind} updated with the batch {STATISTICS[stats[0]]}")
    if stats[0] == "sigma":
        if kind == "variance":
            return wrong("a running variance updated with σ, the standard deviation: σ² is meant")
        warnings.append("it averages σ, the standard deviation; batch norm keeps a running average of σ², "
                        "and the average of σ is not the square root of the average of σ²")
    notes.insert(0, _convention(w_old, w_new))
    for p in sorted((w_old.free_symbols | w_new.free_symbols) - {m}, key=str):
        if p.name in ctx.layer_names:
            letter = GREEK.get(p.name, p.name)
            role = "the shift in y_i = γ x̂_i + β" if p.name == "beta" else f"the layer's {p.name}"
            warnings.append(f"{letter} is the momentum here but {letter} is also {role}"
                            + ("" if p.name != "beta" or ctx.beta_is_shift else " in batch norm"))
    return Judgement(key, label, CORRECT, "; ".join(notes), tuple(warnings), checked="symbolically")


def _weighted(rhs: sp.Expr, old: sp.Expr, stat: sp.Expr) -> bool:
    """``rhs`` is a·old + b·stat and nothing else (a ≠ 0; a, b free of both)."""
    expanded = sp.expand(rhs)
    w_old, w_new = expanded.coeff(old), expanded.coeff(stat)
    rest = sp.expand(expanded - w_old * old - w_new * stat)
    return rest == 0 and not (w_old.has(old, stat) or w_new.has(old, stat) or w_old == 0)


def _off_balance(key: str, label: str, total: sp.Expr) -> Judgement:
    """Weights that do not add up to 1: a running value already equal to a constant batch statistic (1, batch
    after batch) does not stay there, as any running average must; shown with the momentum at 0.9 (or 0.1)."""
    for p in (0.9, 0.1):
        got = float(total.xreplace({s: sp.Float(p) for s in total.free_symbols}))
        if abs(got - 1.0) > 1e-9:
            where = f" (with {', '.join(sorted(GREEK.get(s.name, s.name) for s in total.free_symbols))} = {p:g})" \
                if total.free_symbols else ""
            return Judgement(key, label, WRONG, f"the weights add up to {total}, not 1: a running value already at "
                             f"a constant batch statistic 1 moves to {got:g}{where}", (),
                             Counterexample(None, None, got, 1.0), checked="symbolically")
    return Judgement(key, label, WRONG, f"the weights add up to {total}, not 1")


def _convention(w_old: sp.Expr, w_new: sp.Expr) -> str:
    if isinstance(w_new, sp.Symbol):
        p = GREEK.get(w_new.name, w_new.name)
        return f"running ← (1 − {p})·running + {p}·batch ({p} the momentum, as in PyTorch)"
    if isinstance(w_old, sp.Symbol):
        p = GREEK.get(w_old.name, w_old.name)
        return f"running ← {p}·running + (1 − {p})·batch ({p} the decay, as in Keras)"
    def number(w):
        return f"{float(w):g}" if w.is_Number else str(w)

    return f"running ← {number(w_old)}·running + {number(w_new)}·batch"
