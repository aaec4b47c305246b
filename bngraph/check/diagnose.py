"""Name the mistake in a wrong backward by recomputing the backward of common mistakes.

A gradient that differs from the reference is compared, in every test case, with what
the backward gives after each known slip (missing 1/N, a flipped sign, the unbiased
variance, a forgotten ε, a sum over the wrong axis, ...), computed from the same inputs.
A match to :data:`MATCH_TOLERANCE` in every case names the slip.  Failing that, a
wrong dx is fitted by least squares on the three terms of the closed form

    dx = (1/(n√(σ²+ε))) · (n·g − Σ_j g_j − x̂·Σ_j g_j x̂_j),    g = γ·dout  (the adjoint of x̂)

which names wrong coefficients, several slips at once included.  n is the number of
values a statistic runs over: N (N·H·W) for batch norm, D for layer norm.
"""

from dataclasses import dataclass
from typing import Callable

import numpy as np

from bngraph.check.numeric import max_relative_error, param_broadcast_shape, stats_axes

MATCH_TOLERANCE = 1e-6

CORRECT_DX = {
    "batchnorm": "dx = γ/(N·√(σ²+ε)) · (N·dout − Σ_j dout_j − x̂·Σ_j dout_j·x̂_j)",
    "layernorm": "dx = 1/(D·√(σ²+ε)) · (D·g − Σ_j g_j − x̂·Σ_j g_j·x̂_j), g = γ·dout, sums over a row",
    "batchnorm-eval": "dx = γ·dout/√(running_var + ε)",
}


@dataclass(frozen=True)
class Case:
    """One set of inputs a backward is checked on, with the upstream gradient dout."""

    layer: str
    x: np.ndarray
    gamma: np.ndarray
    beta: np.ndarray
    dout: np.ndarray
    eps: float
    seed: int = 0
    running_mean: np.ndarray | None = None
    running_var: np.ndarray | None = None

    @property
    def label(self):
        return f"x {tuple(self.x.shape)}, seed {self.seed}, ε {self.eps:g}"


class Pieces:
    """The reference quantities of one case on x's own layout, from which mistakes are built."""

    def __init__(self, case):
        layer, x = case.layer, case.x
        self.axes = stats_axes(layer, x.ndim)
        self.param_axes = (0,) if layer == "layernorm" else self.axes
        self.wrong_axes = tuple(a for a in range(x.ndim) if a not in self.param_axes)
        self.n = int(np.prod([x.shape[a] for a in self.axes]))
        shape = param_broadcast_shape(layer, x.ndim)
        self.x, self.dout, self.eps = x, case.dout, case.eps
        self.gamma, self.beta = np.reshape(case.gamma, shape), np.reshape(case.beta, shape)
        self.g = case.dout * self.gamma
        self.xmu = x - x.mean(axis=self.axes, keepdims=True)
        self.var = self.total(self.xmu**2) / self.n
        self.var_unbiased = self.var * self.n / (self.n - 1) if self.n > 1 else self.var * np.nan
        if layer == "batchnorm-eval":
            self.running_var = np.reshape(case.running_var, shape)
            self.xhat = (x - np.reshape(case.running_mean, shape)) / np.sqrt(self.running_var + self.eps)
            self.scale = np.abs(self.g / np.sqrt(self.running_var + self.eps)).max()
        else:
            self.xhat = self.xhat_with()
            self.scale = np.abs(self.g / np.sqrt(self.var + self.eps)).max()  # size of dx's terms

    def xhat_with(self, var=None, eps=None):
        """x̂ from the batch statistics, with the variance or ε swapped if given."""
        return self.xmu / np.sqrt((self.var if var is None else var) + (self.eps if eps is None else eps))

    def total(self, a):
        return a.sum(axis=self.axes, keepdims=True)

    def dx(self, g=None, var=None, eps=None, n_mu=None, n_var=None, sign=-1.0, mean_path=1.0):
        """The closed form, with any of its pieces swapped for a wrong one."""
        g = self.g if g is None else g
        var = self.var if var is None else var
        eps = self.eps if eps is None else eps
        xhat = self.xhat_with(var, eps)
        n_mu = self.n if n_mu is None else n_mu
        n_var = self.n if n_var is None else n_var
        mean_term = mean_path * self.total(g) / n_mu
        var_term = sign * xhat * self.total(g * xhat) / n_var
        return (g - mean_term + var_term) / np.sqrt(var + eps)

    def param_sum(self, a, axes=None):
        return a.sum(axis=self.param_axes if axes is None else axes)


@dataclass(frozen=True)
class Mistake:
    """A slip, the gradient it spoils, and what to tell the student."""

    gradient: str
    layers: tuple
    verdict: str  # may use {n}: N or D; {g}: dout or g; {formula}; {over}, {wrong}: axes
    compute: Callable[[Pieces], np.ndarray]


TRAIN = ("batchnorm", "layernorm")
ALL = ("batchnorm", "layernorm", "batchnorm-eval")
MISTAKES = (
    Mistake("dx", TRAIN, "it matches the correct formula without the 1/{n} factor in front; correct: {formula}",
            lambda p: p.n * p.dx()),
    Mistake("dx", TRAIN, "it matches the correct formula with the x̂·Σ({g}·x̂) term's sign flipped; "
            "the correct term is −x̂_i Σ_j {g}_j x̂_j", lambda p: p.dx(sign=+1.0)),
    Mistake("dx", TRAIN, "it matches the correct formula without the −x̂·Σ({g}·x̂) term, the path "
            "through σ²; correct: {formula}", lambda p: p.dx(sign=0.0)),
    Mistake("dx", TRAIN, "it matches the correct formula without the −Σ {g} term, the path through μ; "
            "correct: {formula}", lambda p: p.dx(mean_path=0.0)),
    Mistake("dx", TRAIN, "it matches {g}/√(σ²+ε), as if μ and σ² were constants; both depend on every "
            "x_j; correct: {formula}", lambda p: p.g / np.sqrt(p.var + p.eps)),
    Mistake("dx", TRAIN, "it matches the correct formula without the factor γ (the adjoint of x̂ is "
            "γ·dout); correct: {formula}", lambda p: p.dx(g=p.dout)),
    Mistake("dx", TRAIN, "it matches the correct formula with 1/({n}−1) instead of 1/{n} in the "
            "derivative of σ²; σ² = (1/{n}) Σ (x−μ)² is biased, so ∂σ²/∂x_i = 2(x_i−μ)/{n}",
            lambda p: p.dx(n_var=p.n - 1)),
    Mistake("dx", TRAIN, "it matches the gradient of a forward that normalises with the unbiased "
            "variance (1/({n}−1)); use the biased σ² = (1/{n}) Σ (x−μ)²",
            lambda p: p.dx(var=p.var_unbiased, n_var=p.n - 1)),
    Mistake("dx", TRAIN, "it matches the correct formula evaluated with the unbiased variance "
            "(1/({n}−1)) in x̂ and √(σ²+ε); use the biased σ² = (1/{n}) Σ (x−μ)²",
            lambda p: p.dx(var=p.var_unbiased)),
    Mistake("dx", TRAIN, "it matches the gradient with ε left out (σ² instead of σ² + ε in x̂ and "
            "1/√(σ²+ε)); keep ε everywhere; correct: {formula}", lambda p: p.dx(eps=0.0)),
    Mistake("dx", TRAIN, "it matches the correct formula with 1/√σ² instead of 1/√(σ²+ε) in front; "
            "keep ε; correct: {formula}", lambda p: p.dx() * np.sqrt((p.var + p.eps) / p.var)),
    Mistake("dx", ("batchnorm-eval",), "it matches the training-mode gradient; in eval mode μ and σ² "
            "are the running statistics, constants, so {formula}", lambda p: p.dx()),
    Mistake("dx", ("batchnorm-eval",), "it matches γ·dout/√running_var: ε is missing; correct: {formula}",
            lambda p: p.g / np.sqrt(p.running_var)),
    Mistake("dx", ("batchnorm-eval",), "it matches dout/√(running_var + ε): the factor γ is missing",
            lambda p: p.dout / np.sqrt(p.running_var + p.eps)),
    Mistake("dx", ("batchnorm-eval",), "it matches γ·dout/(running_var + ε): the square root is missing",
            lambda p: p.g / (p.running_var + p.eps)),
    Mistake("dgamma", ALL, "it is not summed: it matches dout·x̂ entry by entry; dγ = Σ dout·x̂ over {over}",
            lambda p: p.dout * p.xhat),
    Mistake("dgamma", ALL, "it is summed over the wrong axis: it matches Σ dout·x̂ over {wrong}; "
            "sum over {over} instead", lambda p: p.param_sum(p.dout * p.xhat, p.wrong_axes)),
    Mistake("dgamma", ALL, "it matches Σ dout·x, with x in place of x̂; dγ = Σ dout·x̂ over {over}",
            lambda p: p.param_sum(p.dout * p.x)),
    Mistake("dgamma", ALL, "it matches Σ dout, which is dβ: are dgamma and dbeta swapped?",
            lambda p: p.param_sum(p.dout)),
    Mistake("dgamma", TRAIN, "it matches Σ dout·x̂ with x̂ from the unbiased variance (1/({n}−1)); "
            "use the biased σ² = (1/{n}) Σ (x−μ)²", lambda p: p.param_sum(p.dout * p.xhat_with(p.var_unbiased))),
    Mistake("dgamma", TRAIN, "it matches Σ dout·x̂ with ε left out of x̂ = (x−μ)/√(σ²+ε)",
            lambda p: p.param_sum(p.dout * p.xhat_with(eps=0.0))),
    Mistake("out", TRAIN, "it matches γ·x̂ + β with ε left out of x̂ = (x−μ)/√(σ²+ε)",
            lambda p: p.gamma * p.xhat_with(eps=0.0) + p.beta),
    Mistake("out", TRAIN, "it matches γ·x̂ + β with x̂ from the unbiased variance (1/({n}−1)); "
            "normalise with the biased σ² = (1/{n}) Σ (x−μ)²",
            lambda p: p.gamma * p.xhat_with(p.var_unbiased) + p.beta),
    Mistake("out", ("batchnorm-eval",), "it matches the training-mode output, normalised with the "
            "batch's own μ and σ²; in eval mode use the running statistics",
            lambda p: p.gamma * p.xhat_with() + p.beta),
    Mistake("dbeta", ALL, "it is not summed: it matches dout entry by entry; dβ = Σ dout over {over}",
            lambda p: p.dout),
    Mistake("dbeta", ALL, "it is summed over the wrong axis: it matches Σ dout over {wrong}; sum over "
            "{over} instead", lambda p: p.param_sum(p.dout, p.wrong_axes)),
    Mistake("dbeta", ALL, "it matches Σ dout·x̂, which is dγ: are dgamma and dbeta swapped?",
            lambda p: p.param_sum(p.dout * p.xhat)),
)


def _axes_text(axes):
    return f"axis {axes[0]}" if len(axes) == 1 else f"axes {', '.join(map(str, axes))}"


def _fill(verdict, layer, pieces):
    return verdict.format(
        n="D" if layer == "layernorm" else "N",
        g="g" if layer == "layernorm" else "dout",
        formula=CORRECT_DX[layer],
        over=_axes_text(pieces.param_axes),
        wrong=_axes_text(pieces.wrong_axes),
    )


def _matches(candidate, given, scale=None):
    if given is None or np.shape(candidate) != np.shape(given):
        return False
    with np.errstate(all="ignore"):
        return max_relative_error(given, candidate, scale)[0] <= MATCH_TOLERANCE


def dx_scale(case):
    """The size of dx's terms (max |γ·dout/√(σ²+ε)|): the scale to measure dx's errors against."""
    return float(Pieces(case).scale)


def diagnose(gradient, cases, given):
    """Say which known mistake ``given`` (the student's gradient, one array per case) matches.

    ``gradient`` is "dx", "dgamma", "dbeta", or "out" for the forward's output.  Returns a
    sentence, or None when no mistake bngraph knows fits in every case.

    >>> rng = np.random.default_rng(0)
    >>> case = Case("batchnorm", rng.normal(size=(4, 3)), np.ones(3), np.zeros(3), rng.normal(size=(4, 3)), 1e-5)
    >>> diagnose("dbeta", [case], [case.dout])
    'it is not summed: it matches dout entry by entry; dβ = Σ dout over axis 0'
    """
    pieces = [Pieces(case) for case in cases]
    layer = cases[0].layer
    for mistake in MISTAKES:
        if mistake.gradient == gradient and layer in mistake.layers:
            with np.errstate(all="ignore"):
                candidates = [mistake.compute(p) for p in pieces]
            scales = [p.scale if gradient == "dx" else None for p in pieces]
            if all(_matches(c, g, s) for c, g, s in zip(candidates, given, scales)):
                return _fill(mistake.verdict, layer, pieces[0])
    if gradient == "dx" and layer in TRAIN:
        return _fit_terms(layer, pieces, given)
    return None


TERMS = ("the {g} term", "the Σ {g} term", "the x̂·Σ({g}·x̂) term")


def _coefficient_label(ratio, n):
    """How a term's coefficient relates to the correct one, in words (None when right)."""
    labels = ((1.0, None), (0.0, "is missing"), (-1.0, "has the wrong sign"),
              (n, "lacks the 1/{n} factor"), (-n, "has the wrong sign and lacks the 1/{n} factor"),
              (n / (n - 1), "has 1/({n}−1) where 1/{n} belongs"))
    for value, label in labels:
        if abs(ratio - value) <= 1e-6 * max(1.0, abs(value)):
            return label
    return f"is {ratio:.3g} times what it should be"


def _fit_terms(layer, pieces, given):
    """Fit dx = a·T1 + b·T2 + c·T3 on the closed form's terms; name the coefficients that are off."""
    labels = None
    for p, dx in zip(pieces, given):
        if dx is None or np.shape(dx) != p.g.shape or not np.all(np.isfinite(dx)):
            return None
        ivar = 1.0 / np.sqrt(p.var + p.eps)
        terms = [ivar * p.g, ivar * p.total(p.g) / p.n, ivar * p.xhat * p.total(p.g * p.xhat) / p.n]
        basis = np.stack([np.broadcast_to(t, p.g.shape).ravel() for t in terms], axis=1)
        coefficients, _, rank, _ = np.linalg.lstsq(basis, np.ravel(dx), rcond=None)
        if rank < 3:  # e.g. N = 2, where x̂·Σ(g·x̂) is a multiple of g − mean(g): no unique fit
            continue
        if np.linalg.norm(basis @ coefficients - np.ravel(dx)) > MATCH_TOLERANCE * np.linalg.norm(dx):
            return None
        ratios = coefficients / np.array([1.0, -1.0, -1.0])
        case_labels = [_coefficient_label(r, p.n) for r in ratios]
        if labels is not None and case_labels != labels:
            return None
        labels = case_labels
    if labels is None or all(label is None for label in labels):
        return None
    n, g = ("D", "g") if layer == "layernorm" else ("N", "dout")
    wrong = [f"{term} {label}" for term, label in zip(TERMS, labels) if label is not None]
    text = "it has the closed form's terms with wrong coefficients: " + "; ".join(wrong)
    return (text + "; correct: {formula}").format(n=n, g=g, formula=CORRECT_DX[layer])
