"""What a verdict is: the verdicts, a judgement on one equation, a counterexample, and what
the whole document tells about each of its equations (its :class:`Context`)."""
from __future__ import annotations

from dataclasses import dataclass, field

import sympy as sp

from bngraph.audit.batcheval import Batch, Evaluator, Helper
from bngraph.tex.names import Notation

CORRECT, OTHER_FORM, WRONG, AMBIGUOUS = "correct", "correct-other-form", "wrong", "ambiguous"
HELPER, NOT_ABOUT, CANNOT_READ, CANNOT_EVALUATE = "helper", "not-about-this-layer", "cannot-read", "cannot-evaluate"
VERDICTS = (CORRECT, OTHER_FORM, WRONG, AMBIGUOUS, HELPER, NOT_ABOUT, CANNOT_READ, CANNOT_EVALUATE)

LABELS = {"mu": "batch mean μ", "sigma2": "batch variance σ²", "sigma": "standard deviation σ",
          "xhat": "normalised input x̂_i", "y": "output y_i", "dL_dxhat": "adjoint ∂ℓ/∂x̂_i",
          "dL_dsigma2": "adjoint ∂ℓ/∂σ²", "dL_dmu": "adjoint ∂ℓ/∂μ", "dL_dx": "adjoint ∂ℓ/∂x_i",
          "dL_dgamma": "adjoint ∂ℓ/∂γ", "dL_dbeta": "adjoint ∂ℓ/∂β", "dL_dy": "upstream gradient ∂ℓ/∂y_i"}
GIVEN = {"x", "dL_dy", "gamma", "beta", "epsilon"}  # the data of a batch, never derived


@dataclass(frozen=True)
class Counterexample:
    """A batch where the formula and the reference differ."""

    batch: Batch | None  # None: numbers only (an arithmetic slip), no batch to show
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
    m_inferred: bool = False  # doc_m read off the largest index the document writes (x_3: m = 3), not stated
    notation: Notation = Notation()
    beta_is_shift: bool = False
    eps_in_sigma2: bool = False  # the document said σ² := σ_B² + ε: later formulas without ε mean that
    eval_refs: dict | None = None  # the evaluation-mode layer's formulas, for a formula with running statistics
    indexed_parameters: frozenset[str] = frozenset()  # γ, β the document writes with an index (γ_j)
    per_entry: bool = False  # a layer over one example's entries (Layer Norm, RMSNorm): γ_i, β_i are per entry
    plain_output: bool = False  # every definition of y the document gives has no γ, β: its y is x̂ (RMSNorm's x/rms)
    eps_free: bool = False  # the document writes no ε and defines σ (or x̂) without it: ε is 0 there
    case: str | None = None  # the case the line states before this formula (μ ≈ 0 ⟹ …): a key of SPECIAL_BATCHES
    approximate: bool = False  # the formula says ≈ between formulas: it may hold in a case only
    eps_zero: bool = False  # the document sets ε = 0 ("with $\epsilon = 0$", a worked example's setting)
    definitions: dict[str, list[Helper]] = field(default_factory=dict)
    batch: Batch | None = None  # the document's own numbers (x = (1, 2, 6)), where they are in force
    batch_only: Batch | None = None  # while a formula is checked on those numbers alone
    tolerance: float = 0.0  # an approximation (≈ 4.67) is right to its last written digit
    shared: dict = field(default_factory=dict)  # the evaluators' work that no batch changes (see Evaluator)

    @property
    def layer_names(self) -> set[str]:
        return ({n for n in self.refs} | {"sigma", "gamma", "beta", "epsilon"}) - {"y", "dL_dx", "dL_dy"}

    def evaluator(self, batch: Batch, free: bool = False, reading="local") -> Evaluator:
        return Evaluator(batch, self.refs, free=free, helpers=self.helpers, size_names=self.size_names,
                         reading=reading, definitions=self.definitions, shared=self.shared)

    def label(self, name: str) -> str:
        return LABELS.get(name, name)


