"""Check a user's backward against the reference: ``bngraph check-backward FILE.py:BACKWARD``.

bngraph calls the user's FORWARD for ``(out, cache)`` and hands the cache to
``BACKWARD(dout, cache)``, which returns ``(dx, dgamma, dbeta)``; a backward
``(dout, x, gamma, beta, eps)`` needs no forward.  Each gradient is compared with the
reference (:mod:`bngraph.reference`) on several shapes, seeds and ε, by the relative
error of :func:`bngraph.numeric.relative_error`; it passes when the largest is at most
:data:`THRESHOLD`.  A wrong gradient is matched against common mistakes
(:mod:`bngraph.diagnose`) to say what to fix.
"""

import hashlib
import importlib.util
import inspect
import sys
import traceback
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bngraph.diagnose import CORRECT_DX, Case, diagnose
from bngraph.errors import BngraphError
from bngraph.numeric import max_relative_error
from bngraph.reference import LAYERS, one_pass_variance_precision, reference_backward, reference_forward

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
GRADIENTS = ("dx", "dgamma", "dbeta")


def _one_line(text):
    return " ".join(str(text).split())


def _import_file(path):
    """Import a Python file under a name of its own, its folder on sys.path while it runs."""
    digest = hashlib.sha1(str(path.resolve()).encode()).hexdigest()[:8]
    name = f"bngraph_user_{path.stem.replace('-', '_')}_{digest}"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    sys.path.insert(0, str(path.parent.resolve()))
    try:
        spec.loader.exec_module(module)
    except SyntaxError as error:
        raise BngraphError(f"cannot import {path}: SyntaxError: {error.msg} (line {error.lineno})") from None
    except (Exception, SystemExit) as error:
        raise BngraphError(f"cannot import {path}: {type(error).__name__}: {_one_line(error)}") from None
    finally:
        sys.path.remove(str(path.parent.resolve()))
    return module


def load_function(spec):
    """The function FUNC of ``"FILE.py:FUNC"``, importing FILE.py by its path.

    >>> load_function("no_such_file.py:f")
    Traceback (most recent call last):
    bngraph.errors.BngraphError: no such file: no_such_file.py
    """
    path_text, colon, name = str(spec).rpartition(":")
    if not colon or not path_text or not name:
        raise BngraphError(f"expected FILE.py:FUNC, got {spec!r}")
    path = Path(path_text)
    if not path.is_file():
        raise BngraphError(f"no such file: {path_text}")
    if path.suffix != ".py":
        raise BngraphError(f"not a Python file: {path_text}")
    module = _import_file(path)
    function = getattr(module, name, None)
    if function is None:
        known = sorted(k for k, v in vars(module).items() if inspect.isfunction(v) and not k.startswith("_"))
        raise BngraphError(f"{path_text} has no function {name!r} (it has: {', '.join(known) or 'none'})")
    if not callable(function):
        raise BngraphError(f"{path_text}:{name} is not a function")
    return function


def _name(function):
    code = getattr(function, "__code__", None)
    where = f"{Path(code.co_filename).name}:" if code else ""
    return where + getattr(function, "__name__", repr(function))


def _positional_count(function):
    """(required, most) positional parameters; most is None for *args or an uninspectable callable."""
    try:
        parameters = inspect.signature(function).parameters.values()
    except (TypeError, ValueError):
        return 0, None
    kinds = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    positional = [p for p in parameters if p.kind in kinds]
    required = sum(p.default is inspect.Parameter.empty for p in positional)
    has_varargs = any(p.kind == inspect.Parameter.VAR_POSITIONAL for p in parameters)
    return required, None if has_varargs else len(positional)


def _takes(function, count):
    required, most = _positional_count(function)
    return required <= count and (most is None or count <= most)


def _backward_style(backward, layer):
    """'cache' for BACKWARD(dout, cache), 'inputs' for (dout, x, gamma, beta, [running stats,] eps)."""
    inputs = 7 if layer == "batchnorm-eval" else 5
    if _takes(backward, 2):
        return "cache"
    if _takes(backward, inputs):
        return "inputs"
    expected = "(dout, x, gamma, beta, running_mean, running_var, eps)" if inputs == 7 else "(dout, x, gamma, beta, eps)"
    raise BngraphError(f"{_name(backward)} must take (dout, cache) or {expected}")


def _forward_styles(forward, layer):
    """How to pass ε (and running statistics) to FORWARD, most likely first."""
    if layer == "batchnorm-eval" and _takes(forward, 6):
        return ["running"]  # (x, gamma, beta, running_mean, running_var, eps)
    if not _takes(forward, 4):
        raise BngraphError(f"{_name(forward)} must take (x, gamma, beta, eps) or (x, gamma, beta, bn_param)")
    try:
        fourth = list(inspect.signature(forward).parameters)[3].lower()
    except (TypeError, ValueError, IndexError):
        fourth = ""
    if "param" in fourth:
        return ["param"]
    if fourth in ("eps", "epsilon"):
        return ["eps"]
    return ["eps", "param"]  # unknown name: try a number, then a dict


def _default_forward(backward):
    """FORWARD next to BACKWARD: ``backward`` → ``forward`` in the name (``bn_backward_alt`` → ``bn_forward``)."""
    name = getattr(backward, "__name__", "")
    namespace = getattr(backward, "__globals__", {})
    if "backward" not in name:
        raise BngraphError(f"{_name(backward)} takes (dout, cache); name its forward (--forward FILE.py:FUNC)")
    guess = name.replace("backward", "forward")
    for candidate in (guess, guess[: guess.find("forward") + len("forward")]):
        if "forward" in candidate and callable(namespace.get(candidate)):
            return namespace[candidate]
    raise BngraphError(f"{_name(backward)} takes (dout, cache) but there is no {guess} next to it; "
                       "name its forward (--forward FILE.py:FUNC)")


class _UserCodeFailed(Exception):
    """The user's forward or backward raised or returned something unusable: a verdict, not a crash."""


def _run(role, function, *args):
    try:
        with np.errstate(all="ignore"):
            return function(*args)
    except Exception as error:
        frames = traceback.extract_tb(error.__traceback__)
        code = getattr(function, "__code__", None)
        own = [f for f in frames if code and f.filename == code.co_filename] or frames[-1:]
        where = f" ({Path(own[-1].filename).name}, line {own[-1].lineno})" if own else ""
        message = _one_line(error)
        raise _UserCodeFailed(f"{role} raised {type(error).__name__}{': ' + message if message else ''}{where}")


def _call_forward(forward, styles, case):
    x, gamma, beta, eps = case.x.copy(), case.gamma.copy(), case.beta.copy(), case.eps
    first_failure = None
    for style in styles:
        if style == "running":
            args = (x, gamma, beta, case.running_mean.copy(), case.running_var.copy(), eps)
        elif style == "param":
            param = {"mode": "test" if case.layer == "batchnorm-eval" else "train", "eps": eps, "momentum": 0.9}
            if case.layer == "batchnorm-eval":
                param.update(running_mean=case.running_mean.copy(), running_var=case.running_var.copy())
            args = (x, gamma, beta, param)
        else:
            args = (x, gamma, beta, eps)
        try:
            result = _run("forward", forward, *args)
        except _UserCodeFailed as failure:
            first_failure = first_failure or failure
            continue
        styles[:] = [style]  # this convention works: keep it for the next cases
        if not isinstance(result, (tuple, list)) or len(result) != 2:
            raise _UserCodeFailed(f"forward returned {_describe(result)}; expected a pair (out, cache)")
        return result
    raise first_failure


def _describe(value):
    if isinstance(value, (tuple, list)):
        return f"a {type(value).__name__} of {len(value)} items"
    return "None" if value is None else f"a {type(value).__name__}"


def _as_array(role, name, value):
    try:
        if value is not None:
            return np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        pass
    raise _UserCodeFailed(f"{role} returned {_describe(value)} for {name}; expected an array")


def _as_arrays(result):
    if not isinstance(result, (tuple, list)) or len(result) != 3:
        raise _UserCodeFailed(f"backward returned {_describe(result)}; expected (dx, dgamma, dbeta)")
    return [_as_array("backward", name, value) for name, value in zip(GRADIENTS, result)]


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
        lines.append(f"  pass: max relative error ≤ {self.threshold:g}, |a−b|/max(|a|, |b|, 1e-6·max)")
        lines.append("")
        lines.append(f"  {'gradient':<9} {'max rel. error':<15} {'worst at':<40} result")
        for c in self.checks:
            error = "—" if np.isnan(c.max_relative_error) else f"{c.max_relative_error:.2e}"
            where = f"{c.worst_case} {list(c.worst_index)}" if c.worst_case else ""
            lines.append(f"  {c.name:<9} {error:<15} {where:<40} {'ok' if c.passed else 'WRONG'}")
        lines.append("")
        lines += [f"  {p}" for p in self.problems] or [f"  all gradients match the reference on {len(self.cases)} cases"]
        lines.append("OK" if self.ok else "FAIL")
        return "\n".join(lines)


class _Tally:
    """Worst error, bad shape and non-finite entries of one quantity across the cases."""

    def __init__(self, name):
        self.name, self.worst, self.given, self.faults = name, (np.nan, "", ()), [], []

    def add(self, case, given, expected):
        self.given.append(given)
        if given.shape != expected.shape:
            self.faults.append(f"{self.name} has shape {given.shape}; expected {expected.shape} ({case.label})")
        elif not np.all(np.isfinite(given)):
            index = tuple(int(i) for i in np.argwhere(~np.isfinite(given))[0])
            kind = "NaN" if np.isnan(given[index]) else "inf"
            self.faults.append(f"{self.name} contains {kind} at {list(index)} ({case.label})")
        else:
            error, index = max_relative_error(given, expected)
            if not error <= self.worst[0]:  # also replaces the initial nan
                self.worst = (error, case.label, index)

    def result(self, threshold):
        passed = not self.faults and self.worst[0] <= threshold
        return GradientCheck(self.name, self.worst[0], self.worst[1], self.worst[2], passed)


def _verdict(tally, cases, threshold, layer):
    """One line for a failed quantity: NaN first, then a named mistake, then shapes or the plain error."""
    if any("contains" in f for f in tally.faults):
        return next(f for f in tally.faults if "contains" in f)
    if tally.name == "out":
        error, where, _ = tally.worst
        return tally.faults[0] if tally.faults else (
            f"the forward's output differs from the reference (max relative error {error:.2g}, {where}); "
            "gradients are checked against the reference forward")
    mistake = diagnose(tally.name, cases[: len(tally.given)], tally.given)
    if mistake:
        return f"{tally.name} is wrong: {mistake}"
    if tally.faults:
        return tally.faults[0]
    error, where, index = tally.worst
    hint = f"; correct: {CORRECT_DX[layer]}" if tally.name == "dx" else ""
    return (f"{tally.name} is wrong (max relative error {error:.2g} at {list(index)}, {where}) "
            f"and matches none of the common mistakes bngraph knows{hint}")


def check_backward(backward, forward=None, layer="batchnorm", shapes=None, seeds=DEFAULT_SEEDS,
                   epsilons=DEFAULT_EPSILONS, threshold=THRESHOLD):
    """Compare a user's backward with the reference backward; see the module docstring.

    >>> from bngraph.reference import batchnorm_forward, batchnorm_backward_staged
    >>> report = check_backward(batchnorm_backward_staged, batchnorm_forward)
    >>> report.ok, report.exit_code, [c.name for c in report.checks]
    (True, 0, ['out', 'dx', 'dgamma', 'dbeta'])
    """
    if layer not in LAYERS:
        raise BngraphError(f"unknown layer {layer!r}; built-in layers: {', '.join(LAYERS)}")
    style = _backward_style(backward, layer)
    if forward is None and style == "cache":
        forward = _default_forward(backward)
    styles = _forward_styles(forward, layer) if forward is not None else []
    shapes = [tuple(shape) for shape in (shapes or DEFAULT_SHAPES[layer])]
    cases = [make_case(layer, shape, seed, eps) for shape in shapes for seed in seeds for eps in epsilons]
    coverage = (f"x {', '.join(map(str, shapes))} × seeds {', '.join(map(str, seeds))}"
                f" × ε {', '.join(f'{e:g}' for e in epsilons)}")
    tallies = {name: _Tally(name) for name in (("out",) if forward else ()) + GRADIENTS}
    problems = []
    for case in cases:
        extra = (case.running_mean, case.running_var) if layer == "batchnorm-eval" else ()
        try:
            if forward is not None:
                out, cache = _call_forward(forward, styles, case)
                expected_out = reference_forward(layer, case.x, case.gamma, case.beta, case.eps, *extra)
                tallies["out"].add(case, _as_array("forward", "out", out), expected_out)
            dout = case.dout.copy()
            if style == "cache":
                result = _run("backward", backward, dout, cache)
            else:
                result = _run("backward", backward, dout, case.x.copy(), case.gamma.copy(),
                              case.beta.copy(), *[a.copy() for a in extra], case.eps)
            given = _as_arrays(result)
        except _UserCodeFailed as failure:
            problems.append(f"{failure} ({case.label})")
            break
        expected = reference_backward(layer, case.dout, case.x, case.gamma, case.beta, case.eps, *extra)
        for name, g, e in zip(GRADIENTS, given, expected):
            tallies[name].add(case, g, np.asarray(e))
    checks = tuple(t.result(threshold) for t in tallies.values())
    problems += [_verdict(tallies[c.name], cases, threshold, layer)
                 for c in checks if not c.passed and tallies[c.name].given]
    return BackwardReport(
        backward=_name(backward),
        forward=_name(forward) if forward is not None else None,
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

    >>> from bngraph.reference import layernorm_forward, layernorm_backward
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
            raise BngraphError(f"{_name(backward).split(':')[0]} has no function {forward!r}")
        forward = backward.__globals__[forward]
    report = check_backward(backward, forward, layer=getattr(args, "layer", None) or "batchnorm")
    print(report.format())
    return report.exit_code
