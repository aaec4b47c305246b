"""Check every derived formula against references that share no code with the engine.

For a built-in layer: the NumPy reference backward (:mod:`bngraph.check.reference`), central
finite differences of the NumPy forward, and HIPS autograd on a forward written again
in ``autograd.numpy`` (:mod:`bngraph.check.numeric`). For a user's function: finite differences
and autograd of that same function run on plain numbers, laid out as it was traced. The
engine's side is the named-view and staged-view adjoints and the closed form, evaluated
numerically (the closed form from the leaves alone, through its definitions; its forward
y[i] is checked against the traced forward too).

A function with no finite real value at a random point (the root of a negative number, a
division by zero there) cannot be checked there: that is one line naming the output and
the input, exit status 2 — not a mismatch of derivatives, which exit status 1 reports.

Thresholds (max relative error, :func:`bngraph.check.numeric.relative_error`):
exact-arithmetic comparisons 1e-9; finite differences (h = 1e-5, float64) 1e-6.
Central differences resolve an entry only to about 1e-10 of the size of its terms
(truncation h², rounding 1e-16/h), so against them an entry smaller than 1e-4 of that
size (dx at m = 2 is about ε/σ² of its terms) is measured absolutely, not relatively.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

from bngraph.check import numeric, reference
from bngraph.engine import progress
from bngraph.engine.derive import Derivation, derive
from bngraph.closedform.evaluate import NotANumber, closed_form_values, compiled_values, random_point
from bngraph.engine.graph import build_graph
from bngraph.engine.trace import Trace, run
from bngraph.engine.usercode import UserExit, function_name, running_user_code, where_in
from bngraph.errors import BngraphError, one_line
from bngraph.closedform.simplify import ClosedForm, closed_form

EXACT, FINITE_DIFFERENCES = 1e-9, 1e-6
FD_RESOLUTION = 1e-4  # entries below this fraction of their terms' size: compared absolutely
SEEDS = (0, 1, 2)
EPSILON = 1e-5


@dataclass(frozen=True)
class Check:
    """One row of the report: one gradient, one pair of methods, over all draws."""

    check: str
    gradient: str
    error: float
    threshold: float
    informational: bool = False  # shown for what it teaches; not a pass/fail

    @property
    def passed(self) -> bool:
        return self.informational or self.error <= self.threshold


@dataclass(frozen=True)
class VerifyReport:
    target: str
    m: int
    checks: tuple[Check, ...]
    notes: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return all(c.passed for c in self.checks)

    @property
    def exit_code(self) -> int:
        return 0 if self.ok else 1

    def format(self) -> str:
        head = f"bngraph verify: {self.target}, m = {self.m}, {len(SEEDS)} random draws, float64"
        width = max(len(c.check) for c in self.checks)
        lines = [head, "", f"{'check':<{width}}  {'gradient':<8}  {'max rel. error':>14}  {'threshold':>9}  result"]
        for c in self.checks:
            result = "info" if c.informational else ("pass" if c.passed else "FAIL")
            threshold = "-" if c.informational else f"{c.threshold:.0e}"
            lines.append(f"{c.check:<{width}}  {c.gradient:<8}  {c.error:>14.2e}  {threshold:>9}  {result}")
        lines += [""] + [f"note: {n}" for n in self.notes]
        failed = sum(not c.passed for c in self.checks)
        lines.append(f"{len(self.checks) - failed} passed, {failed} failed")
        return "\n".join(lines) + "\n"


def verify(derivation: Derivation, closed: ClosedForm | None = None, seeds=SEEDS,
           other_view: Derivation | None = None) -> VerifyReport:
    """Every check for the derivation's layer (or user function) at its m.

    Both views are checked; pass the other view's derivation if it is already made.
    """
    graph = derivation.graph
    views = {derivation.graph.view: derivation}
    if other_view is not None:
        views[other_view.graph.view] = other_view
    for view in ("named", "staged"):
        if view not in views:
            views[view] = derive(build_graph(graph.trace, view, graph.layer))
    named, staged = views["named"], views["staged"]
    builtin = graph.layer in reference.LAYERS
    wanted = ["x"] + [n.name for n in graph.with_role("parameter")]
    errors: dict[tuple[str, str], list] = {}
    notes = []
    progress.step("verify: compiling both views")
    compiled = {view: compiled_values(d) for view, d in views.items()}  # once, then every draw in float64
    for count, seed in enumerate(seeds, 1):
        progress.step(f"verify: random draw {count} of {len(seeds)}")
        leaves, upstream = random_point(named.graph, seed, EPSILON)
        try:
            traced, named_adjoints = compiled["named"](leaves, upstream)
            engine = {"adjoints (named view)": _gradients(named, named_adjoints, wanted),
                      "adjoints (staged view)": _gradients(staged, compiled["staged"](leaves, upstream)[1], wanted)}
            if closed is not None:
                engine["closed form"], y = _closed_gradients(closed, leaves, upstream, wanted, graph.m)
                if y is not None:
                    ys = np.array([traced[n.name] for n in named.graph.outputs])
                    err, _ = numeric.max_relative_error(y, ys)
                    errors.setdefault(("closed-form forward y[i] vs traced forward", "y"), [EXACT]).append(err)
        except NotANumber as failure:
            raise BngraphError(_not_a_number(graph.layer, failure, leaves, seed)) from None
        refs = _builtin_references(graph.layer, leaves, upstream) if builtin else \
            _function_references(graph.trace, named, leaves, upstream, wanted, notes)
        scale = _scale(engine["adjoints (named view)"]["x"], leaves, upstream)
        for ref_name, ref in refs.items():
            fd = "finite" in ref_name
            threshold = FINITE_DIFFERENCES if fd else EXACT
            # relative_error floors at 1e-6·scale; for finite differences the floor is their resolution
            dx_scale = scale * FD_RESOLUTION / numeric.FLOOR_FRACTION if fd else scale
            pairs = [(f"{e} vs {ref_name}", grads) for e, grads in engine.items()]
            if ref_name != "NumPy reference" and "NumPy reference" in refs:
                pairs.append((f"NumPy reference vs {ref_name}", refs["NumPy reference"]))
            for label, grads in pairs:
                for g in wanted:
                    if g in ref and g in grads:
                        err, _ = numeric.max_relative_error(grads[g], ref[g], dx_scale if g == "x" else None)
                        errors.setdefault((label, g), [threshold]).append(err)
    checks = [Check(label, g if g == "y" else "d" + g, max(errs[1:]), errs[0]) for (label, g), errs in errors.items()]
    if builtin and graph.layer != "batchnorm-eval":
        precision = reference.one_pass_variance_precision()
        checks.append(Check("float32 variance, one pass E[x²]−E[x]²", "sigma2", precision.one_pass_relative_error, 0, True))
        checks.append(Check("float32 variance, two pass E[(x−μ)²]", "sigma2", precision.two_pass_relative_error, 1e-6))
        notes.append(precision.format() + ": the one-pass formula loses its digits to cancellation "
                     "when the mean is large against the spread; bngraph's layers use the two-pass variance")
    return VerifyReport(graph.layer, graph.m, tuple(checks), tuple(dict.fromkeys(notes)))


def _gradients(d: Derivation, adj: dict[str, float], wanted) -> dict[str, np.ndarray]:
    m = d.graph.m
    out = {"x": np.array([adj[f"x_{k}"] for k in range(1, m + 1)])}
    out.update({g: np.array(adj[g]) for g in wanted[1:] if g in adj})
    return out


def _closed_gradients(closed: ClosedForm, leaves, upstream, wanted, m: int):
    """The closed form's gradients from the leaves alone, and its forward y[i] (None if it has none)."""
    got = closed_form_values(closed, leaves, upstream, m)
    out = {"x": np.array(got["dL_dx[i]"])}
    out.update({g: np.array(got[f"dL_d{g}"]) for g in wanted[1:] if f"dL_d{g}" in got})
    y = None
    if "y[i]" in closed.definitions:
        y = np.array(closed_form_values(_forward_only(closed), leaves, upstream, m)["y[i]"])
    return out, y


def _forward_only(closed: ClosedForm) -> ClosedForm:
    """The closed form with y[i] as its one formula (its definitions evaluated as they stand)."""
    import dataclasses

    return dataclasses.replace(closed, formulas={"y[i]": closed.definitions["y[i]"]})


def _not_a_number(target: str, failure: NotANumber, leaves: dict, seed: int) -> str:
    """One line: which value is not a finite real number, and at which input."""
    inputs = [k for k in leaves if k.startswith("x_")]
    index = failure.name.rpartition("_")[2]
    own = f"x_{index}" if f"x_{index}" in leaves else None
    shown = ([own] if own else []) + [k for k in inputs if k != own][: 4 if own else 5]
    point = ", ".join(f"{k} = {leaves[k]:.4g}" for k in shown) + (", …" if len(inputs) > len(shown) else "")
    params = ", ".join(f"{k} = {v:.4g}" for k, v in leaves.items() if not k.startswith("x_"))
    return (f"cannot verify {target}: {failure.name} is {failure.reason} at {point}"
            f"{' (' + params + ')' if params else ''}, random draw {seed}; the function has no real value there")


def _scale(dx: np.ndarray, leaves, upstream) -> float:
    """The size of dx's terms (dx itself can be small by cancellation: m = 2, or m = 1 where it is 0)."""
    dy = max(abs(v) for v in upstream.values())
    gamma = abs(leaves.get("gamma", 1.0))
    return max(float(np.abs(dx).max(initial=0.0)), gamma * dy / np.sqrt(EPSILON + 1.0))


def _builtin_references(layer: str, leaves, upstream) -> dict[str, dict[str, np.ndarray]]:
    m = len(upstream)
    x = np.array([leaves[f"x_{k}"] for k in range(1, m + 1)])
    dout = np.array([upstream[f"dL_dy_{k}"] for k in range(1, m + 1)])
    gamma, beta, eps = leaves["gamma"], leaves["beta"], leaves["epsilon"]
    extra = {}
    if layer == "batchnorm-eval":
        extra = {"running_mean": [leaves["running_mean"]], "running_var": [leaves["running_var"]]}
    if layer == "layernorm":  # one example of m entries, the shared γ, β spread over them
        args = (dout.reshape(1, m), x.reshape(1, m), np.full(m, gamma), np.full(m, beta), eps)
    else:  # one feature over a batch of m examples
        args = (dout.reshape(m, 1), x.reshape(m, 1), np.array([gamma]), np.array([beta]), eps)
    out = {}
    for name, backward in (("NumPy reference", reference.reference_backward),
                           ("finite differences", numeric.numeric_backward),
                           ("autograd", numeric.autograd_backward)):
        dx, dgamma, dbeta = backward(layer, *args, **extra)
        out[name] = {"x": np.ravel(dx), "gamma": np.sum(dgamma), "beta": np.sum(dbeta)}
    return out


def _function_references(t: Trace, named: Derivation, leaves, upstream, wanted, notes: list):
    """Finite differences and autograd of the user's own function, run on numbers."""
    params = [n.name for n in named.graph.with_role("parameter", "constant")]
    m = named.graph.m
    x0 = np.array([leaves[f"x_{k}"] for k in range(1, m + 1)])
    p0 = np.array([leaves[p] for p in params])
    dout = [upstream[f"dL_dy_{k}"] for k in range(1, m + 1)]
    constants = [k for k, p in enumerate(params) if p not in wanted]

    def loss(x, p, vector=np.atleast_1d):
        y = run(t, x, lambda name: p[params.index(name)], vector)
        return sum(dy * yk for dy, yk in zip(dout, y))

    def as_dict(dx, dp):
        out = {"x": np.asarray(dx, dtype=float)}
        out.update({params[k]: np.asarray(dp[k], dtype=float) for k in range(len(params)) if k not in constants})
        return out

    label = function_name(t.source)
    code = getattr(t.source, "__code__", None)
    filename = code.co_filename if code else None
    try:
        with np.errstate(all="ignore"), running_user_code(label, filename):
            refs = {"finite differences": as_dict(*numeric.central_difference(lambda x, p: float(loss(x, p)), [x0, p0]))}
    except (UserExit, Exception) as error:  # it traced, but fails on numbers: say so, in one line
        raise BngraphError(f"{label} failed when run on numbers for finite differences: "
                           f"{type(error).__name__}: {one_line(error)}{where_in(error, filename)}") from None
    try:
        import autograd.numpy as anp
        from autograd import grad

        def boxed(x, p):
            return loss(x, p, lambda v: anp.reshape(v, (1,)))

        gradients, independent = [], []
        for argnum, what in ((0, "x"), (1, "its parameters")):
            with running_user_code(label, filename), warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                gradients.append(grad(boxed, argnum)(x0, p0))
            if any("independent of input" in str(w.message) for w in caught):  # autograd's two-line warning
                independent.append(what)
        refs["autograd"] = as_dict(*gradients)
        if independent:
            notes.append(f"the outputs of {label} do not depend on {' or '.join(independent)}: "
                         "autograd's gradient there is zero")
    except Exception as error:  # noqa: BLE001 - the user's code may not run under autograd; say so
        notes.append(f"autograd could not run {label} ({type(error).__name__}: {one_line(error)}; NumPy called "
                     "directly cannot be differentiated by autograd): it is checked against finite differences")
    return refs


def cli_verify(args, derivation: Derivation) -> int:
    report = verify(derivation, closed_form(derivation))
    print(report.format(), end="")
    return report.exit_code
