"""Check a user's backward against the reference: ``bngraph check-backward FILE.py:BACKWARD``.

bngraph calls the user's FORWARD for ``(out, cache)`` and hands the cache to
``BACKWARD(dout, cache)``, which returns ``(dx, dgamma, dbeta)``; a backward
``(dout, x, gamma, beta, eps)`` needs no forward.  Each gradient is compared with the
reference (:mod:`bngraph.check.reference`) on several shapes, seeds and ε, by the relative
error of :func:`bngraph.check.numeric.relative_error`; it passes when the largest is at most
:data:`THRESHOLD`.  A wrong gradient is matched against common mistakes
(:mod:`bngraph.check.diagnose`) to say what to fix.
"""

from dataclasses import dataclass

import numpy as np

from bngraph.check.diagnose import CORRECT_DX, Case, diagnose, dx_scale
from bngraph.errors import BngraphError
from bngraph.check.numeric import max_relative_error
from bngraph.check.reference import LAYERS, one_pass_variance_precision, reference_backward, reference_forward, validate_inputs
from bngraph.check.usercall import (GRADIENTS, UserCodeFailed, as_array, backward_style, call_forward, call_user,
                                    default_forward, forward_styles, gradients_from)
from bngraph.engine.usercode import function_name, load_function, printed_lines

__all__ = ["BackwardReport", "GradientCheck", "assert_backward_matches", "check_backward",
           "cli_check_backward", "load_function", "one_pass_variance_precision"]

THRESHOLD = 1e-6  # analytic float64 gradients agree to ~1e-12; a forgotten ε at ε = 0.01 is ~1e-3
DEFAULT_SHAPES = {
    "batchnorm": ((2, 3), (4, 3), (16, 5)),
    "batchnorm-eval": ((2, 3), (4, 3), (16, 5)),
    "layernorm": ((3, 2), (4, 3), (5, 16)),
}
DEFAULT_SEEDS = (0, 1)
DEFAULT_EPSILONS = (1e-5, 1e-2)  # the larger ε makes a forgotten ε visible


def make_case(layer, shape, seed, eps):
    """Random inputs for one check: x, γ, β, dout (and running statistics), reproducible by seed.

    >>> make_case("batchnorm", (4, 3), seed=0, eps=1e-5).gamma.shape
    (3,)
    """
    rng = np.random.default_rng(seed)
    params = (shape[1],)
    x = rng.uniform(-2, 2) + rng.uniform(0.5, 2) * rng.standard_normal(shape)
    return Case(layer, x, gamma=rng.uniform(0.5, 2, params), beta=rng.standard_normal(params),
                dout=rng.standard_normal(shape), eps=eps, seed=seed,
                running_mean=rng.standard_normal(params), running_var=rng.uniform(0.5, 2, params))


@dataclass(frozen=True)
class GradientCheck:
    """One compared quantity (``out``, ``dx``, ``dgamma``, ``dbeta``) over all cases."""

    name: str
    max_relative_error: float  # nan when never comparable
    worst_case: str
    worst_index: tuple
    passed: bool
    cases_run: int  # cases in which the user's code returned this quantity


@dataclass(frozen=True)
class BackwardReport:
    """The result of :func:`check_backward`; ``problems`` holds one verdict line per fault."""

    backward: str
    forward: str | None
    layer: str
    threshold: float
    cases: tuple
    coverage: str  # e.g. "x (2, 3), (4, 3) × seeds 0, 1 × ε 1e-05, 0.01"
    checks: tuple
    problems: tuple

    @property
    def ok(self):
        return not self.problems

    @property
    def exit_code(self):
        return 0 if self.ok else 1

    def format(self):
        lines = [f"check-backward {self.backward}  (layer {self.layer})"]
        if self.forward:
            lines.append(f"  forward: {self.forward}")
        lines.append(f"  {len(self.cases)} cases: {self.coverage}")
        lines.append(f"  pass: max relative error ≤ {self.threshold:g}, |a−b| / max(|a|, |b|, 1e-6·scale)")
        lines.append("")
        lines.append(f"  {'gradient':<9} {'max rel. error':<15} {'worst at':<40} result")
        for c in self.checks:
            compared = not np.isnan(c.max_relative_error)
            error = f"{c.max_relative_error:.2e}" if compared else "—"
            where = f"{c.worst_case} {list(c.worst_index)}" if compared else ""
            result = "ok" if c.passed else "WRONG" if c.cases_run else "not run"
            lines.append(f"  {c.name:<9} {error:<15} {where:<40} {result}")
        lines.append("")
        lines += [f"  {p}" for p in self.problems] or [f"  all gradients match the reference on {len(self.cases)} cases"]
        lines.append("OK" if self.ok else "FAIL")
        return "\n".join(lines)


class _Tally:
    """Worst error, bad shape and non-finite entries of one quantity across the cases."""

    def __init__(self, name):
        self.name, self.worst, self.given, self.faults = name, (np.nan, "", ()), [], []

    def add(self, case, given, expected, scale=None):
        self.given.append(given)
        if given.shape != expected.shape:
            self.faults.append(f"{self.name} has shape {given.shape}; expected {expected.shape} ({case.label})")
        elif not np.all(np.isfinite(given)):
            index = tuple(int(i) for i in np.argwhere(~np.isfinite(given))[0])
            kind = "NaN" if np.isnan(given[index]) else "inf"
            self.faults.append(f"{self.name} contains {kind} at {list(index)} ({case.label})")
        else:
            error, index = max_relative_error(given, expected, scale)
            if not error <= self.worst[0]:  # also replaces the initial nan
                self.worst = (error, case.label, index)

    def result(self, threshold):
        passed = not self.faults and self.worst[0] <= threshold
        return GradientCheck(self.name, *self.worst, passed, len(self.given))


def _verdict(tally, cases, layer):
    """One line for a failed quantity: NaN first, then a named mistake, then shapes or the plain error."""
    non_finite = [f for f in tally.faults if " contains " in f]
    if non_finite:
        return non_finite[0]
    mistake = diagnose(tally.name, cases[: len(tally.given)], tally.given)
    error, where, index = tally.worst
    if tally.name == "out":
        if mistake:
            problem = f"the forward's output is wrong: {mistake}"
        else:
            problem = tally.faults[0] if tally.faults else (
                f"the forward's output differs from the reference (max relative error {error:.2g}, {where})")
        return problem + "; gradients are checked against the reference forward"
    if mistake:
        return f"{tally.name} is wrong: {mistake}"
    if tally.faults:
        return tally.faults[0]
    hint = f"; correct: {CORRECT_DX[layer]}" if tally.name == "dx" else ""
    return (f"{tally.name} is wrong (max relative error {error:.2g} at {list(index)}, {where}) "
            f"and matches none of the common mistakes bngraph knows{hint}")


def check_backward(backward, forward=None, layer="batchnorm", shapes=None, seeds=DEFAULT_SEEDS,
                   epsilons=DEFAULT_EPSILONS, threshold=THRESHOLD):
    """Compare a user's backward with the reference backward on every case; a :class:`BackwardReport`.

    ``backward`` takes ``(dout, cache)`` (then ``forward``, default: found by name, supplies
    the cache) or ``(dout, x, gamma, beta, eps)``.  ``layer`` is one of :data:`LAYERS`;
    cases are ``shapes`` (default :data:`DEFAULT_SHAPES`) × ``seeds`` × ``epsilons``.
    Faults of the user's code become ``problems``; bad usage raises BngraphError.

    >>> from bngraph.check.reference import batchnorm_forward, batchnorm_backward_staged
    >>> report = check_backward(batchnorm_backward_staged, batchnorm_forward)
    >>> report.ok, report.exit_code, [c.name for c in report.checks]
    (True, 0, ['out', 'dx', 'dgamma', 'dbeta'])
    """
    if layer not in LAYERS:
        raise BngraphError(f"unknown layer {layer!r}; built-in layers: {', '.join(LAYERS)}")
    style = backward_style(backward, layer)
    if forward is None and style == "cache":
        forward = default_forward(backward)
    styles = forward_styles(forward, layer) if forward is not None else []
    shapes = [tuple(shape) for shape in (shapes or DEFAULT_SHAPES[layer])]
    for eps in epsilons:
        validate_inputs(0.0, eps)
    cases = [make_case(layer, shape, seed, eps) for shape in shapes for seed in seeds for eps in epsilons]
    coverage = (f"x {', '.join(map(str, shapes))} × seeds {', '.join(map(str, seeds))}"
                f" × ε {', '.join(f'{e:g}' for e in epsilons)}")
    tallies = {name: _Tally(name) for name in (("out",) if forward else ()) + GRADIENTS}
    problems = []
    roles = {"forward": forward, "backward": backward} if forward is not None else {"backward": backward}
    printed_before = {role: printed_lines(function_name(f)) for role, f in roles.items()}
    for case in cases:
        extra = (case.running_mean, case.running_var) if layer == "batchnorm-eval" else ()
        try:
            if forward is not None:
                out, cache, style_used = call_forward(forward, styles, case)
                styles = [style_used]  # this convention works: keep it for the next cases
                expected_out = reference_forward(layer, case.x, case.gamma, case.beta, case.eps, *extra)
                tallies["out"].add(case, as_array("forward", "out", out), expected_out)
            dout = case.dout.copy()
            if style == "cache":
                result = call_user("backward", backward, dout, cache)
            else:
                inputs = [a.copy() for a in (case.x, case.gamma, case.beta, *extra)]
                result = call_user("backward", backward, dout, *inputs, case.eps)
            given = gradients_from(result)
        except UserCodeFailed as failure:
            problems.append(f"{failure}; case {case.label}")
            break
        expected = reference_backward(layer, case.dout, case.x, case.gamma, case.beta, case.eps, *extra)
        for name, g, e in zip(GRADIENTS, given, expected):
            tallies[name].add(case, g, np.asarray(e), dx_scale(case) if name == "dx" else None)
    checks = tuple(t.result(threshold) for t in tallies.values())
    problems += [_verdict(tallies[c.name], cases, layer) for c in checks if not c.passed and c.cases_run]
    for role, f in roles.items():  # printed text could pass for a verdict: only silent code passes
        printed = printed_lines(function_name(f)) - printed_before[role]
        if printed:
            problems.append(f"{role} printed {printed} line{'s' * (printed > 1)} to standard output (shown on "
                            "stderr); check-backward passes only code that prints nothing")
    return BackwardReport(
        backward=function_name(backward),
        forward=function_name(forward) if forward is not None else None,
        layer=layer,
        threshold=threshold,
        cases=tuple(c.label for c in cases),
        coverage=coverage,
        checks=checks,
        problems=tuple(problems),
    )


def assert_backward_matches(backward, layer="batchnorm", forward=None, **options):
    """Raise AssertionError with the report's text unless the backward matches; else return the report.

    ``backward`` (and ``forward``) may be functions or ``"FILE.py:FUNC"`` strings.

    >>> from bngraph.check.reference import layernorm_forward, layernorm_backward
    >>> assert_backward_matches(layernorm_backward, "layernorm", layernorm_forward).ok
    True
    """
    __tracebackhide__ = True  # pytest: show the report, not this frame
    if isinstance(backward, str):
        backward = load_function(backward)
    if isinstance(forward, str):
        forward = load_function(forward)
    report = check_backward(backward, forward, layer=layer, **options)
    if not report.ok:
        raise AssertionError(report.format())
    return report


def cli_check_backward(args):
    """``bngraph check-backward``: print the report, return the exit code (0 pass, 1 mismatch).

    ``args.target`` is "FILE.py:BACKWARD"; ``args.forward`` (optional) "FILE.py:FORWARD" or a
    function name in the same file; ``args.layer`` defaults to batchnorm.  Bad input raises
    BngraphError, which the command line prints as one line with exit status 2.

    >>> import argparse
    >>> cli_check_backward(argparse.Namespace(target="missing.py:f", forward=None, layer=None))
    Traceback (most recent call last):
    bngraph.errors.BngraphError: no such file: missing.py
    """
    backward = load_function(args.target)
    forward = getattr(args, "forward", None)
    if forward and ".py:" in forward:
        forward = load_function(forward)
    elif forward:
        if not callable(backward.__globals__.get(forward)):
            raise BngraphError(f"{function_name(backward).split(':')[0]} has no function {forward!r}")
        forward = backward.__globals__[forward]
    report = check_backward(backward, forward, layer=getattr(args, "layer", None) or "batchnorm")
    print(report.format())
    return report.exit_code
