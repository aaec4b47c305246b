"""The kernel: what a generated forward and backward compute, in steps, before any target's syntax.

Everything is read off the derivation. The forward is the closed form's ``definitions``
in order (μ, σ², x̂, y for batch norm; whatever a user's function names); the backward is
its ``formulas`` for dL/dx and the learnable parameters, taken apart the way a kernel
writer does:

1. every batch sum Σ_j f(j) becomes one reduction, named after what it sums (``sum_dy``);
2. dL/dx[i] is expanded into per-example terms with per-feature coefficients,
   dx = a·dy + b·x̂ + c, so that the coefficients are computed once per feature and the
   big arrays are touched by one multiply-add each;
3. common subexpressions are pulled out of the forward and the backward together
   (``sympy.cse``, as ``ClosedForm.compact_backward`` does) and named after what they are
   (``inv_std``): the forward computes the ones it needs, the backward reuses them from the
   cache and computes the rest.

Two layouts over an (N, D) array: ``axis = 0`` (default) takes x_1 … x_m down each column,
one set of scalar parameters per column (batch norm); ``axis = 1`` takes them along each row,
with the parameters one per entry and shared by the rows (layer norm). A function declares
the second with ``func.__bngraph_axis__ = 1``; then dL/dx is first rewritten in the adjoint
of the last normalised value (dL/dx̂ = γ·dL/dy elementwise), which must leave no parameter
in it, and each parameter's gradient is its chain-rule summand summed over the rows.

>>> from bngraph.engine.layers import LAYERS
>>> from bngraph.engine.graph import build_graph
>>> from bngraph.engine.derive import derive
>>> from bngraph.closedform.simplify import closed_form
>>> d = derive(build_graph(LAYERS["batchnorm"].trace(3)))
>>> k = build_kernel(d, closed_form(d))
>>> [s.name for s in k.sums], k.cache
(['sum_dy', 'sum_dy_xhat'], ('xhat', 'inv_std', 'gamma'))
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

import sympy as sp

from bngraph.closedform.plates import m as M
from bngraph.closedform.simplify import ClosedForm
from bngraph.codegen.names import Namer, unique, variances
from bngraph.codegen.printer import BatchSum
from bngraph.codegen.rows import in_head_adjoint, row_summand
from bngraph.engine.derive import Derivation
from bngraph.engine.layers import LAYERS
from bngraph.engine.trace import DEFAULT_CONSTANTS
from bngraph.errors import BngraphError

# Names the generated modules use themselves; a user's name among them gets a trailing _.
RESERVED = {"np", "torch", "jax", "jnp", "x", "dout", "dy", "dx", "cache", "ctx", "m", "rows", "out", "block",
            "dtype", "width", "functools", "partial", "forward", "backward", "term", "scratch"}


@dataclass(frozen=True)
class Step:
    """``name = expr``; ``kind`` is "example" (an (N, D) array) or "batch" (one value per group)."""

    name: str
    expr: sp.Expr
    kind: str


@dataclass(frozen=True)
class Kernel:
    """A layer's forward and backward as named steps in code symbols (one target prints them)."""

    layer: str  # "batchnorm", or "FILE.py:FUNC"
    function: str  # a Python name for the generated function
    axis: int  # 0: x_1 … x_m down each column; 1: along each row
    signature: tuple[str, ...]  # after x, in order
    learnable: tuple[str, ...]  # the parameters that get a gradient, in signature order
    scalars: tuple[str, ...]  # constants passed as plain numbers (ε)
    forward: tuple[Step, ...]  # the last one is ``out``
    cache: tuple[str, ...]  # what the forward hands the backward
    row_wise: frozenset[str]  # cached names with a row axis (sliced by blocks of rows)
    head: Step | None  # axis 1: the adjoint of the normalised value, from dy
    sums: tuple[Step, ...]  # the backward's batch sums: name = Σ over the group of expr
    factors: tuple[Step, ...]  # one value per group, from the sums and the cache
    dx: tuple[tuple[sp.Expr, sp.Expr], ...]  # (coefficient, per-example term): dx = Σ coefficient·term
    gradients: tuple[Step, ...]  # dL/dp per learnable p (axis 1: a per-example summand, summed over rows)
    formulas: Mapping[str, str]  # the closed form implemented, for the header


def build_kernel(derivation: Derivation, closed: ClosedForm, axis: int | None = None) -> Kernel:
    """The kernel of the derivation's layer, from its closed form; the m values run along ``axis``
    of (N, D) arrays (default: the function's ``__bngraph_axis__``, else 0)."""
    graph = derivation.graph
    source = graph.trace.source if graph.trace is not None else None
    if axis is None:
        axis = getattr(source, "__bngraph_axis__", 0)
    if axis not in (0, 1):
        raise BngraphError(f"the axis of the m values must be 0 or 1, not {axis!r}")
    leaves = [n for n in graph if n.role in ("parameter", "constant")]
    learnable = [n.name for n in leaves if n.role == "parameter"]
    epsilons = [n.name for n in leaves if n.role == "constant" and n.name in DEFAULT_CONSTANTS]
    order = [n.name for n in leaves]
    builtin = graph.layer in LAYERS
    if builtin:  # the check-backward convention: (x, gamma, beta, [running statistics,] eps)
        order = learnable + [n for n in order if n not in learnable and n not in epsilons] + epsilons
    names = _code_names(closed, order, {e: "eps" for e in epsilons} if builtin else {})
    # a constant named as a variance (running_var) is one: √(running_var + ε) is running_std
    said_variances = [n for n in order if n not in learnable and "var" in n]
    return _Builder(closed, names, axis, learnable, epsilons, said_variances).kernel(
        graph.layer, _function_name(graph.layer), tuple(names[n] for n in order))


def _function_name(layer: str) -> str:
    """A Python name for the layer: ``batchnorm-eval`` -> ``batchnorm_eval``, ``f.py:ln`` -> ``ln``."""
    name = layer.rpartition(":")[2].replace("-", "_")
    return name if name.isidentifier() else "layer"


def _code_names(closed: ClosedForm, order: list[str], renamed: dict[str, str]) -> dict[str, str]:
    """Closed-form names -> code names: dL_dy -> dy, dL_dxhat -> dxhat, y -> out, clashes avoided."""
    taken: set[str] = set(RESERVED)
    names = {"x": "x", "dL_dy": "dy", "y": "out"}
    families = [key.removesuffix("[i]") for key in closed.definitions] + order
    for name in families:
        if name not in names:
            names[name] = unique(renamed.get(name, name), taken)
    for key in closed.formulas:
        base = key.removesuffix("[i]")
        if base not in names:
            names[base] = unique("d" + base[4:], taken)
    return names


class _Builder:
    """Builds one kernel; holds the name tables while it does."""

    def __init__(self, closed: ClosedForm, names: dict[str, str], axis: int, learnable, epsilons, said_variances):
        self.closed, self.names, self.axis = closed, names, axis
        self.learnable = [names[p] for p in learnable]
        self.raw_learnable = learnable
        self.epsilons = [sp.Symbol(names[e]) for e in epsilons]
        self.taken = set(names.values()) | RESERVED
        self.kinds: dict[sp.Symbol, str] = {sp.Symbol("x"): "example", sp.Symbol("dy"): "example"}
        for key in closed.definitions:
            name = key.removesuffix("[i]")
            self.kinds[sp.Symbol(names[name])] = "example" if key.endswith("[i]") else "batch"
        found = variances(closed.definitions) | {sp.Symbol(n) for n in said_variances}
        self.namer = Namer({}, {self.code(v) for v in found}, self.epsilons)
        self.head_family: str | None = None  # axis 1: the normalised value whose adjoint dx is written in

    # -- expressions in code symbols ----------------------------------------------------
    def code(self, expr: sp.Expr) -> sp.Expr:
        """``expr`` with x[i] -> x, dL_dy[j] -> dy, Σ_j f(j) -> BatchSum(f), names renamed."""
        if isinstance(expr, sp.Sum):
            return BatchSum(self.code(expr.function))
        if isinstance(expr, sp.Indexed):
            return sp.Symbol(self.names.get(str(expr.base), str(expr.base)))
        if isinstance(expr, sp.Symbol):
            return sp.Symbol(self.names.get(str(expr), str(expr))) if str(expr) != "m" else expr
        if not expr.args:
            return expr
        return expr.func(*(self.code(a) for a in expr.args))

    def is_example(self, expr: sp.Expr) -> bool:
        """Does ``expr`` vary from example to example (outside its batch sums)?"""
        flat = expr.replace(lambda e: isinstance(e, BatchSum), lambda e: sp.Dummy())
        return any(self.kinds.get(s) == "example" for s in flat.free_symbols)

    # -- the kernel -----------------------------------------------------------------------
    def kernel(self, layer: str, function: str, signature: tuple[str, ...]) -> Kernel:
        dx_formula = self.closed.formulas["dL_dx[i]"]
        head = None
        if self.axis == 1:
            self.head_family, adjoint, dx_formula = in_head_adjoint(self.closed, self.raw_learnable)
            name = self.names[f"dL_d{self.head_family}"]
            self.kinds[sp.Symbol(name)] = "example"
            head = Step(name, self.code(adjoint), "example")
            gradients = [row_summand(self.closed, p) for p in self.raw_learnable]
        else:
            gradients = [self.closed.formulas[f"dL_d{p}"] for p in self.raw_learnable]
        sums: dict[sp.Expr, sp.Symbol] = {}
        dx_terms = self._linear_terms(self._held_sums(self.code(dx_formula), sums))
        if self.axis == 0:
            gradients = [self._held_sums(self.code(g), sums) for g in gradients]
        else:
            gradients = [self.code(g) for g in gradients]
        forward = [(key.removesuffix("[i]"), self.code(e)) for key, e in self.closed.definitions.items()]
        batch_level = [c for c, _ in dx_terms] + (gradients if self.axis == 0 else [])
        steps, reduced_forward, reduced_backward = self._common(forward, batch_level)
        coefficients = [(c, part) for (_, part), c in zip(dx_terms, reduced_backward)]
        if self.axis == 0:
            gradients = reduced_backward[len(dx_terms):]
        forward_steps, backward_steps = self._place(steps, reduced_forward, coefficients, gradients)
        forward_steps += [Step(self.names[n], e, self._kind(e)) for (n, _), e in zip(forward, reduced_forward)]
        forward_steps = self._ordered(forward_steps)
        cache = self._cache(forward_steps, backward_steps, coefficients, gradients, sums, head, signature)
        row_wise = {n for n in cache if self.kinds.get(sp.Symbol(n)) == "example"
                    or (self.axis == 1 and self.kinds.get(sp.Symbol(n)) == "batch")}
        formulas = {k: sp.sstr(v) for k, v in self.closed.formulas.items()
                    if k == "dL_dx[i]" or k[4:] in self.raw_learnable}
        return Kernel(layer, function, self.axis, signature, tuple(self.learnable),
                      tuple(str(e) for e in self.epsilons), tuple(forward_steps), cache, frozenset(row_wise),
                      head, tuple(Step(s.name, b, "batch") for b, s in sums.items()), tuple(backward_steps),
                      tuple(coefficients), tuple(Step("d" + p, g, "batch") for p, g in zip(self.learnable, gradients)),
                      formulas)

    def _kind(self, expr: sp.Expr) -> str:
        return "example" if self.is_example(expr) else "batch"

    def _held_sums(self, expr: sp.Expr, sums: dict) -> sp.Expr:
        """Each batch sum replaced by a symbol named after what it sums (sum_dy, sum_dy_xhat)."""
        def hold(s):
            if s not in sums:
                name = unique(self.namer.describe(s) or "batch_sum", self.taken)
                sums[s] = sp.Symbol(name)
                self.kinds[sums[s]] = "batch"
            return sums[s]

        return expr.replace(lambda e: isinstance(e, BatchSum), hold)

    def _linear_terms(self, expr: sp.Expr) -> list[tuple[sp.Expr, sp.Expr]]:
        """dx as Σ coefficient·term: terms vary per example, coefficients once per group."""
        examples = [s for s, k in self.kinds.items() if k == "example"]
        groups: dict[sp.Expr, sp.Expr] = {}
        for term in sp.Add.make_args(_expand(expr)):
            coefficient, part = term.as_independent(*examples, as_Add=False)
            groups[part] = groups.get(part, sp.S.Zero) + coefficient
        upstream = sp.Symbol(self.names["dL_d" + self.head_family]) if self.axis == 1 else sp.Symbol("dy")
        order = sorted(groups, key=lambda p: (p != upstream, p == 1, sp.default_sort_key(p)))
        return [(sp.factor_terms(sp.together(groups[p])), p) for p in order if groups[p] != 0]

    # -- common subexpressions, named -------------------------------------------------------
    def _common(self, forward, batch_level):
        exprs = [e for _, e in forward] + batch_level
        replacements, reduced = sp.cse(exprs, symbols=sp.numbered_symbols("_common"), order="none")
        steps, renamed = [], {}
        for symbol, expr in replacements:
            expr = expr.xreplace(renamed)
            if expr.free_symbols <= {M}:  # 1/m: both sides know m, nothing to share or cache
                renamed[symbol] = expr
                continue
            kind = self._kind(expr)
            fallback = "value" if kind == "example" else "factor"  # no short name says what it is
            name = unique(self.namer.describe(expr) or fallback, self.taken)
            renamed[symbol] = sp.Symbol(name)
            self.namer.values[renamed[symbol]] = expr
            self.kinds[renamed[symbol]] = kind
            steps.append(Step(name, expr, kind))
        reduced = [e.xreplace(renamed) for e in reduced]
        return steps, reduced[: len(forward)], reduced[len(forward):]

    def _place(self, steps, reduced_forward, coefficients, gradients):
        """Which shared steps the forward computes (those it needs), which the backward does."""
        by_name = {sp.Symbol(s.name): s for s in steps}
        needed_forward = _closure(reduced_forward, by_name)
        backward_uses = [c for c, _ in coefficients] + (list(gradients) if self.axis == 0 else [])
        needed_backward = _closure(backward_uses, by_name) - needed_forward
        forward_steps = [s for s in steps if sp.Symbol(s.name) in needed_forward]
        backward_steps = [s for s in steps if sp.Symbol(s.name) in needed_backward]
        # a coefficient that is more than a name is computed once, before the per-example pass
        for k, (coefficient, part) in enumerate(coefficients):
            if not isinstance(coefficient, sp.Symbol):
                described = self.namer.describe(part)
                name = unique(f"coef_{described}" if part != 1 and described else
                              "offset" if part == 1 else "coef", self.taken)
                backward_steps.append(Step(name, coefficient, "batch"))
                self.kinds[sp.Symbol(name)] = "batch"
                coefficients[k] = (sp.Symbol(name), part)
        return forward_steps, backward_steps

    def _ordered(self, steps: list[Step]) -> list[Step]:
        """Steps in an order where each comes after the steps it uses."""
        pending, done, out = list(steps), set(), []
        defined = {sp.Symbol(s.name) for s in steps}
        while pending:
            for s in pending:
                if not (s.expr.free_symbols & defined) - done:
                    out.append(s)
                    done.add(sp.Symbol(s.name))
                    pending.remove(s)
                    break
            else:
                raise BngraphError("internal: the forward steps depend on each other in a cycle")
        return out

    def _cache(self, forward_steps, backward_steps, coefficients, gradients, sums, head, signature):
        """What the backward reads that the forward made or was given, in the forward's order."""
        used = set()
        for s in backward_steps:
            used |= s.expr.free_symbols
        for coefficient, part in coefficients:
            used |= coefficient.free_symbols | part.free_symbols
        for body in sums:
            used |= body.args[0].free_symbols
        for g in gradients:
            used |= g.free_symbols
        if head is not None:
            used |= head.expr.free_symbols
        made_in_backward = {sp.Symbol(s.name) for s in backward_steps} | set(sums.values())
        made_in_backward |= {sp.Symbol("dy"), M} | ({sp.Symbol(head.name)} if head else set())
        order = ["x"] + [s.name for s in forward_steps] + list(signature)
        names = [n for n in dict.fromkeys(order) if sp.Symbol(n) in used - made_in_backward]
        rank = {"example": 0, "batch": 1}  # arrays first, then per-group values, then parameters
        return tuple(sorted(names, key=lambda n: rank.get(self.kinds.get(sp.Symbol(n)), 2)))


def _closure(exprs, steps: dict) -> set:
    """The shared steps that ``exprs`` use, directly or through other steps."""
    seen, stack = set(), [s for e in exprs for s in e.free_symbols]
    while stack:
        s = stack.pop()
        if s in steps and s not in seen:
            seen.add(s)
            stack.extend(steps[s].expr.free_symbols)
    return seen


def _expand(expr: sp.Expr) -> sp.Expr:
    """``sympy.expand``, but a sum under a root or in a denominator (σ² + ε) stays whole."""
    held = {p.base: sp.Dummy(positive=True) for p in expr.atoms(sp.Pow)
            if p.base.is_Add and not (p.exp.is_Integer and p.exp > 0)}
    return sp.expand(expr.xreplace(held)).xreplace({v: k for k, v in held.items()})
