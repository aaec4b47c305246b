r"""Names in Batch-Norm notation: how ``\mu_\mathcal{B}``, ``\sigma_B^2``, ``\hat{x}_i`` or
``\mu_{\text{run}}`` become the contract's SymPy names, and how a document writes them.

A :class:`Name` is a letter, Greek letter or word with its decorations (accent, font,
subscript, superscript) as written; :func:`resolve_name` decides what it denotes.
:class:`Notation` remembers the surface form of each name, so a correction can be
printed back the way its author writes (``\mu_B`` vs ``\mu_{\mathcal{B}}``, ``\ell`` vs ``L``).

>>> resolve_name(Name("sigma", sub=Name("B"), sup=sp.Integer(2)), {})
sigma2
>>> resolve_name(Name("x", accent="hat", sub=Name("i")), {})
xhat[i]
>>> resolve_name(Name("mu", sub=Name("run", font="text")), {})
mu_run
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Mapping

import sympy as sp

from bngraph.errors import BngraphError

GREEK = ("alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu nu xi pi rho sigma tau "
         "upsilon phi chi psi omega Gamma Delta Theta Lambda Xi Pi Sigma Upsilon Phi Psi Omega").split()
KNOWN_COMMANDS = {g: g for g in GREEK}
KNOWN_COMMANDS.update(varepsilon="epsilon", eps="epsilon", vartheta="theta", varphi="phi", varrho="rho",
                      varsigma="sigma", ell="ell", B="B", cB="B", calB="B", imath="i", jmath="j")
# The per-example families: written without an index (x, \nabla y), they stand for the batch's vector.
FAMILIES = ("x", "xhat", "y", "dL_dx", "dL_dxhat", "dL_dy")
LOSS_NAMES = {"L", "l", "ell", "J", "f", "E", "O"}  # ∂f/∂y_i: f the loss (O, the objective), as write-ups name it
BATCH_MARKERS = {"B", "b", "mb"}  # μ_B, μ_𝓑, μ_b, μ_{mb}: "of the mini-batch"; dropped from the name
# The contract's assumptions: m is a positive integer; every other name (indices too) is plain,
# as ``parse_expr`` reads the engine's JSON back.
ASSUMPTIONS: Mapping[str, dict] = {"m": {"integer": True, "positive": True}}


class TexSyntaxError(BngraphError):
    """The text is not an equation the grammar reads; the message says why, in one line."""


class TooLarge(TexSyntaxError):
    """The formula reads, but holds a number, index or power too large to check in floating point."""


class NotChecked(TexSyntaxError):
    """The formula reads, but states something the auditor does not check (matrix form, one path's share)."""


MAX_MAGNITUDE = 10 ** 12  # a constant beyond this cannot be compared in float64 with the layer's values
MAX_INDEX = 64  # a concrete index (x_{64}) or sum bound: the largest batch a formula is checked at


# what a prime differentiates by (σ', (x_i − μ)'): the variable the text differentiates by where it stands, which
# the reader of the whole document puts in (bngraph.audit)
PRIME_VARIABLE = "prime_by"


def symbol(name: str) -> sp.Symbol:
    """The Symbol for ``name`` with the contract's assumptions (``m`` a positive integer,
    everything else plain).

    >>> symbol("m").is_positive, symbol("mu").is_positive
    (True, None)
    """
    return sp.Symbol(name, **ASSUMPTIONS.get(name, {}))


def canonical(expr: sp.Expr) -> sp.Expr:
    """``expr`` with every Symbol (IndexedBase labels too) replaced by :func:`symbol` of its
    name: expressions from elsewhere (the engine, a test) then compare with parsed ones.

    >>> canonical(sp.Symbol("m") + sp.Symbol("mu")) == symbol("m") + symbol("mu")
    True
    """
    if isinstance(expr, int):
        return sp.Integer(expr)
    if not isinstance(expr, sp.Basic):
        raise BngraphError(f"not a SymPy expression: {expr!r}")
    return _canonical(expr)


@lru_cache(maxsize=8192)
def _canonical(expr: sp.Basic) -> sp.Basic:  # the auditor asks again for every reading of an equation
    return expr.xreplace({s: symbol(s.name) for s in expr.atoms(sp.Symbol)})


def index_symbol(letter: str) -> sp.Symbol:
    """An index (``i`` in ``x_i``, ``j`` in ``\\sum_j``): a plain Symbol, like the contract's."""
    return symbol(letter)


@dataclass(frozen=True)
class Name:
    """A name as written: base (``x``, ``mu``, ``B``, ``running_mean``) and decorations."""

    base: str
    accent: str | None = None  # "hat", "bar", "tilde" …
    font: str | None = None  # "mathcal", "mathbf", "text", "mathrm" …
    sub: object = None
    sup: object = None
    tex: str = ""
    accent_tex: str = ""
    inner_sub: bool = False  # \hat{x_i} rather than \hat{x}_i

    def is_plain(self) -> bool:
        return self.accent is None and self.sub is None and self.sup is None

    def is_plain_letter(self) -> bool:
        return self.is_plain() and len(self.base) == 1 and self.base.isalpha() and self.font in (None, "mathit")


@dataclass(frozen=True)
class ParenIndex:
    """``(i)`` in ``x^{(i)}``: a superscript index, as in ``\\hat{x}^{(i)}``."""

    value: object


@dataclass(frozen=True)
class Partial:
    """``\\partial q`` (target None for a bare ``\\partial``), waiting for its fraction."""

    target: object


@dataclass(frozen=True)
class DiffOp:
    """``\\frac{\\partial}{\\partial q}``: the operator, applied to the next factor; ``a \\frac{\\partial}{\\partial q} b``
    carries a as its coefficient until it meets b."""

    wrt: object
    coefficient: object = 1


@dataclass(frozen=True)
class Items:
    """``a, b`` inside brackets or braces: arguments of max/min, or a multi-index."""

    items: tuple


@dataclass(frozen=True)
class Relation:
    """``i = 1`` or ``i \\in \\mathcal{B}`` inside braces: a sum's range."""

    lhs: object
    op: str
    rhs: object


def value(obj, notes: dict | None = None) -> sp.Expr:
    """The SymPy value of what the transformer passes up, or a clear error if it has none."""
    if isinstance(obj, Name):
        return resolve_name(obj, {} if notes is None else notes)
    if isinstance(obj, ParenIndex):
        return value(obj.value, notes)
    if isinstance(obj, (Partial, DiffOp)):
        fail("cannot read a \\partial outside a derivative")
    if isinstance(obj, (Items, tuple)):
        fail("cannot read a comma-separated list here")
    if isinstance(obj, Relation):
        fail(f"cannot read the relation {obj.op} inside braces")
    if obj is None:
        fail("empty braces {} where a value is needed")
    return obj


@dataclass(frozen=True)
class Notation:
    """How one document writes things: ``get("mu")`` -> ``\\mu_{\\mathcal{B}}``.

    Keys: the scalars (``mu``, ``sigma2``, ``sigma``, ``epsilon``, ``gamma``, ``beta``),
    templates for families (``xhat[]`` -> ``\\hat{x}_{%s}``), ``loss`` (``\\ell``),
    ``derivative`` (frac, pdv, slash, d, sub), ``frac`` (``\\dfrac``), ``sum_style``
    (full, index, bare), ``sum_index``, ``m`` (the batch-size letter).
    """

    entries: tuple[tuple[str, str], ...] = ()

    @classmethod
    def of(cls, notes: Mapping[str, str]) -> "Notation":
        return cls(tuple(sorted(notes.items())))

    def get(self, key: str, default: str | None = None) -> str | None:
        return dict(self.entries).get(key, default)

    def merged(self, other: "Notation") -> "Notation":
        """This notation, with what it lacks taken from ``other``."""
        return Notation.of({**dict(other.entries), **dict(self.entries)})


def fail(message: str):
    """Stop reading: the text is not an equation the grammar reads (one line says why)."""
    raise TexSyntaxError(message)


def _sub_kind(sub) -> tuple[str, object]:
    """("batch", tex) | ("index", (i,)) | ("word", "run") for a subscript."""
    if isinstance(sub, Name):
        if sub.is_plain() and sub.base in BATCH_MARKERS:
            return "batch", sub.tex or sub.base
        if sub.is_plain_letter() and sub.base.islower() and sub.base != "o":  # y_o: "out", a label
            return "index", (index_symbol(sub.base),)
        if sub.is_plain() and sub.base.replace("_", "").isalnum():
            return "word", sub.base
        fail(f"cannot read the subscript {sub.tex or sub.base}")
    if isinstance(sub, ParenIndex):
        return _sub_kind(sub.value)
    if isinstance(sub, sp.Integer) and sub >= 0:  # x_0: a text that counts from 0 (the auditor shifts it)
        if sub > MAX_INDEX:
            raise TooLarge(f"the index {sub} is beyond the batches checked (m <= {MAX_INDEX})")
        return "index", (sub,)
    if isinstance(sub, sp.Expr) and _is_index_expr(sub):
        return "index", (sub,)
    if isinstance(sub, Items):
        kinds = [_sub_kind(item) for item in sub.items]
        if all(k == "index" for k, _ in kinds):
            return "index", tuple(v[0] for _, v in kinds)
        return "word", "_".join(str(v[0]) if k == "index" else str(v) for k, v in kinds)
    if isinstance(sub, Relation):
        fail("cannot read a relation in a subscript")
    fail(f"cannot read the subscript {sub}")


def _is_index_expr(expr: sp.Expr) -> bool:
    """i, j + 1, t - 1: an index symbol plus an integer."""
    symbols = expr.free_symbols
    return (len(symbols) == 1 and all(len(s.name) == 1 for s in symbols)
            and expr.is_polynomial() and sp.Poly(expr, *symbols).degree() == 1
            and all(c.is_Integer for c in sp.Poly(expr, *symbols).coeffs()))


def resolve_name(n: Name, notes: dict) -> sp.Expr:
    """What the written name denotes, in the contract's names; records its notation."""
    base = "L" if n.base == "ell" else n.base
    if n.accent:
        base += n.accent
    sup = n.sup
    if base.startswith("sigma") and sup is not None and value(sup) == 2:
        base, sup = base.replace("sigma", "sigma2", 1), None
    indices = ()
    if n.sub is not None:
        kind, found = _sub_kind(n.sub)
        if kind == "index":
            indices = found
        elif kind == "word":
            base = f"{base}_{found}"
        else:
            notes.setdefault("batch", found)
    if isinstance(sup, ParenIndex) and not indices:
        indices, sup = _sub_kind(sup)[1], None
        notes.setdefault(f"{base}_style", "paren")
    if indices:
        expr = sp.IndexedBase(symbol(base))[indices]
        if not base.startswith("dL_d"):
            notes.setdefault(f"{base}[]", _template(n, sup_index=notes.get(f"{base}_style") == "paren"))
    else:
        expr = symbol(base)
        if sup is None and n.tex and n.tex != base and base not in LOSS_NAMES:
            notes.setdefault(base, n.tex)
    if sup is not None:
        expr = sp.Pow(expr, value(sup))
    return expr


def _template(n: Name, sup_index: bool) -> str:
    r"""How a family member is written, with %s for the index: ``\hat{x}_{%s}``."""
    letter = n.base if len(n.base) == 1 else (("\\" + n.base) if n.base in KNOWN_COMMANDS else rf"\mathrm{{{n.base}}}")
    if n.font and n.font not in ("text", "mathrm", "mathit"):
        letter = rf"\{n.font}{{{letter}}}"
    script = "^{(%s)}" if sup_index else "_{%s}"
    if n.accent:
        accent = n.accent_tex or "\\" + n.accent
        letter += "}" * accent.count("{")  # \bar{\hat{x}}: the accents nest
        return rf"{accent}{{{letter}{script}}}" if n.inner_sub else rf"{accent}{{{letter}}}{script}"
    return letter + script


# -- indices --------------------------------------------------------------------------------
BOUND_NAMES = "jklnpqrstuvw"  # a sum's bound index is renamed to the first one that is free


def index_symbols(expr) -> set[sp.Symbol]:
    """Index symbols free in ``expr``: those in Indexed subscripts, not bound by a Sum."""
    found = set()
    for indexed in expr.atoms(sp.Indexed):
        for index in indexed.indices:
            found |= index.free_symbols
    return (found & expr.free_symbols) | _partial_by(expr, frozenset())


def _partial_by(expr, bound: frozenset) -> set:
    """The indices of what partials are by (∂(Σ_i (x_i − μ)²)/∂x_j: j), not bound by a sum around them: SymPy
    leaves them out of a Derivative's free symbols."""
    if isinstance(expr, sp.Derivative):
        found = {s for v in expr.variables if isinstance(v, sp.Indexed) for k in v.indices for s in k.free_symbols}
        return (found - bound) | _partial_by(expr.expr, bound)
    if isinstance(expr, sp.Sum):
        return _partial_by(expr.function, bound | set(expr.variables))
    if not isinstance(expr, sp.Basic) or not expr.has(sp.Derivative):
        return set()
    return set().union(*(_partial_by(a, bound) for a in expr.args))


def canonical_bound(expr, avoid: set[str]):
    """Rename each Sum's bound index to j, k, l … (not one in ``avoid`` or free inside)."""
    if not isinstance(expr, sp.Basic) or not expr.args:
        return expr
    if isinstance(expr, sp.Sum) and len(expr.limits) == 1:
        (var, start, stop), body = expr.limits[0], expr.function
        taken = avoid | {s.name for s in (body.free_symbols - {var}) | start.free_symbols | stop.free_symbols}
        new = next(index_symbol(n) for n in BOUND_NAMES if n not in taken)
        body = body.xreplace({var: new}) if new != var else body
        return sp.Sum(canonical_bound(body, avoid | {new.name}), (new, start, stop))
    return expr.func(*(canonical_bound(a, avoid) for a in expr.args))


def free_index_names(exprs) -> set[str]:
    names = set()
    for e in exprs:
        if e is not None:
            names |= {s.name for s in index_symbols(e)}
    return names


def concrete_names(expr: sp.Expr) -> sp.Expr:
    """The engine's concrete-m names: ``x[2]`` -> ``x_2``, ``dL_dxhat[1]`` -> ``dL_dxhat_1``,
    ∂σ²/∂μ -> ``dsigma2_dmu``.

    >>> concrete_names(sp.IndexedBase("xhat")[2] + sp.Derivative(symbol("sigma2"), symbol("mu"), evaluate=False))
    dsigma2_dmu + xhat_2
    """
    def name(e):
        if isinstance(e, sp.Indexed):
            return f"{e.base.label.name}_{'_'.join(str(k) for k in e.indices)}"
        return e.name

    expr = expr.replace(lambda e: isinstance(e, sp.Derivative) and len(e.variables) == 1,
                        lambda e: sp.Symbol(f"d{name(e.expr)}_d{name(e.variables[0])}"))
    return expr.replace(lambda e: isinstance(e, sp.Indexed) and all(k.is_Integer for k in e.indices),
                        lambda e: sp.Symbol(name(e)))
