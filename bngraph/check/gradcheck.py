"""Check any layer's forward and backward on (N, D) arrays against central finite differences.

``check-backward`` knows three layers by heart; this check needs none. Give it a backward
(a generated module, or code written by hand) and, to compare with, the layer itself: a
built-in layer's name or the plain Python function bngraph traces (``FILE.py:FUNC``).
The function, run on plain numbers one group at a time, is the reference: the forward's
output is compared with it, and the backward with central differences of it, so nothing
of the code under test is trusted. Without a function, the finite differences run through
the given forward instead (the check then covers the backward only).

Conventions, as ``bngraph codegen`` writes them: ``forward(x, *params) -> (out, cache)``,
``backward(dout, cache) -> (dx, *one gradient per learnable parameter)``; a parameter named
eps/epsilon is a number, the others arrays of shape (D,). A function with
``__bngraph_axis__ = 1`` normalises along rows, its parameters one per entry.

>>> from bngraph.check.reference import layernorm_forward, layernorm_backward
>>> check_gradients(layernorm_backward, layernorm_forward, function="layernorm").ok
True
"""
from __future__ import annotations

import inspect
import types
from dataclasses import dataclass

import numpy as np

from bngraph.check.numeric import FLOOR_FRACTION, central_difference, max_relative_error
from bngraph.check.usercall import UserCodeFailed, call_user, default_forward
from bngraph.engine.layers import LAYERS
from bngraph.engine.trace import DEFAULT_CONSTANTS, trace
from bngraph.engine.usercode import function_name, load_function
from bngraph.errors import BngraphError

DEFAULT_SHAPES = ((1, 3), (2, 3), (5, 3))
OUTPUT_THRESHOLD, GRADIENT_THRESHOLD = 1e-9, 1e-6  # exact arithmetic; finite differences (h = 1e-5)
FD_RESOLUTION = 1e-4  # entries below this fraction of their terms' size: compared absolutely
EPSILON = 1e-5


@dataclass(frozen=True)
class GradientsReport:
    """Largest error of each compared quantity over all cases; ``problems`` has one line per failure."""

    backward: str
    reference: str
    cases: tuple[str, ...]
    errors: tuple[tuple[str, float, float], ...]  # (quantity, max error, threshold)
    problems: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return not self.problems

    def format(self) -> str:
        lines = [f"gradient check of {self.backward} against {self.reference}",
                 f"  cases: {', '.join(self.cases)}"]
        lines += [f"  {name:<10} max error {error:.2e} (threshold {threshold:.0e})"
                  f"{'' if error <= threshold else '  WRONG'}" for name, error, threshold in self.errors]
        lines += [f"  {p}" for p in self.problems]
        lines.append("OK" if self.ok else "FAIL")
        return "\n".join(lines)


@dataclass(frozen=True)
class _Layer:
    """What the check knows of the layer: its parameters and, if given, the function itself."""

    parameters: tuple[str, ...]  # the forward's, after x
    learnable: tuple[str, ...]
    scalars: tuple[str, ...]
    axis: int
    function: object | None
    order: tuple[str, ...] = ()  # the forward's parameters in the order the function takes them


def check_gradients(backward, forward=None, function=None, shapes=DEFAULT_SHAPES, seeds=(0, 1)) -> GradientsReport:
    """Compare ``backward`` with finite differences on every shape × seed (see the module docstring).

    ``backward``: a function, ``"FILE.py:BACKWARD"``, a generated ``"FILE.py"`` or a module (its
    ``forward`` and ``backward``). ``function``: a built-in layer's name, ``"FILE.py:FUNC"`` or a
    callable; the reference.
    """
    backward, forward = _functions(backward, forward)
    layer = _layer(forward, function)
    errors: dict[str, list[float]] = {}
    problems: list[str] = []
    labels = []
    for shape in shapes:
        for seed in seeds:
            label = f"x {tuple(shape)} seed {seed}"
            labels.append(label)
            try:
                _one_case(layer, forward, backward, tuple(shape), seed, errors)
            except UserCodeFailed as failure:
                problems.append(f"{failure}; case {label}")
                break
    thresholds = {"out": OUTPUT_THRESHOLD}
    rows = tuple((name, max(values), thresholds.get(name, GRADIENT_THRESHOLD)) for name, values in errors.items())
    problems += [f"{name} differs from the reference (max relative error {error:.2g})"
                 for name, error, threshold in rows if not error <= threshold]
    reference = (f"finite differences of {function_name(layer.function)}" if layer.function is not None
                 else f"finite differences of {function_name(forward)}")
    return GradientsReport(function_name(backward), reference, tuple(labels), rows, tuple(problems))


def assert_gradients_match(backward, forward=None, function=None, **options) -> GradientsReport:
    """Raise AssertionError with the report unless every gradient matches; else return the report."""
    __tracebackhide__ = True  # pytest: show the report, not this frame
    report = check_gradients(backward, forward, function, **options)
    if not report.ok:
        raise AssertionError(report.format())
    return report


def _functions(backward, forward):
    if isinstance(backward, str) and backward.endswith(".py"):  # a generated module: its backward and forward
        backward = f"{backward}:backward"
    if isinstance(backward, types.ModuleType):
        module = backward
        if not callable(getattr(module, "backward", None)) or not callable(getattr(module, "forward", None)):
            raise BngraphError(f"{module.__name__} has no forward and backward functions")
        return module.backward, forward if forward is not None else module.forward
    backward = load_function(backward) if isinstance(backward, str) else backward
    forward = load_function(forward) if isinstance(forward, str) else forward
    return backward, forward if forward is not None else default_forward(backward)


def _layer(forward, function) -> _Layer:
    parameters = tuple(list(inspect.signature(forward).parameters)[1:])
    if function is None:
        scalars = tuple(p for p in parameters if p in DEFAULT_CONSTANTS)
        return _Layer(parameters, tuple(p for p in parameters if p not in scalars), scalars, 0, None)
    if isinstance(function, str):
        function = LAYERS[function].function if function in LAYERS else load_function(function)
    traced = trace(function, 2)
    roles = {r.name: r.op for r in traced.records if r.op in ("parameter", "constant")}
    by_name = {_plain(p): p for p in roles}
    missing = [p for p in parameters if _plain(p) not in by_name]
    if missing or len(parameters) != len(roles):
        raise BngraphError(f"{function_name(forward)} takes (x, {', '.join(parameters)}) but "
                           f"{function_name(function)} takes (x, {', '.join(roles)})")
    learnable = tuple(p for p in parameters if roles[by_name[_plain(p)]] == "parameter")
    scalars = tuple(p for p in parameters if p in DEFAULT_CONSTANTS)
    order = tuple(p for name in roles for p in parameters if _plain(p) == _plain(name))
    return _Layer(parameters, learnable, scalars, getattr(function, "__bngraph_axis__", 0), function, order)


def _plain(name: str) -> str:
    return "epsilon" if name in DEFAULT_CONSTANTS else name


def _values(layer: _Layer, shape, seed):
    rng = np.random.default_rng(seed)
    x = rng.uniform(-2, 2) + rng.uniform(0.5, 2) * rng.standard_normal(shape)
    values = {}
    for p in layer.parameters:
        values[p] = EPSILON if p in layer.scalars else rng.uniform(0.5, 2, shape[1])
    return x, values, rng.standard_normal(shape)


def _call(layer: _Layer, group, values, d) -> list[float]:
    """The function on one group of plain numbers, with the parameters of feature d."""
    return [float(v) for v in layer.function([float(v) for v in group], *[_at(values[p], d) for p in layer.order])]


def _at(value, d) -> float:
    return float(value) if np.ndim(value) == 0 else float(value[d])


def _reference_out(layer: _Layer, x, values) -> np.ndarray:
    """The function on plain numbers, one group (a column; or a row, entry d seeing the d-th parameters)."""
    out = np.empty_like(x)
    for d in range(x.shape[1]):
        if layer.axis == 0:
            out[:, d] = _call(layer, x[:, d], values, d)
        else:
            out[:, d] = [_call(layer, row, values, d)[d] for row in x]
    return out


def _reference_gradients(layer: _Layer, x, values, dout, h=1e-5) -> list[np.ndarray]:
    """Central differences of L = Σ dout·y through the function, each perturbation re-running
    only the group it touches (a column; or a row)."""
    n, width = x.shape

    def group_loss(x, values, g):  # the part of L that group g (column, or row) contributes
        if layer.axis == 0:
            return float(np.dot(dout[:, g], _call(layer, x[:, g], values, g)))
        return sum(dout[g, d] * _call(layer, x[g], values, d)[d] for d in range(width))

    def difference(f, array, index):
        original = array[index]
        array[index] = original + h
        plus = f()
        array[index] = original - h
        minus = f()
        array[index] = original
        return (plus - minus) / (2 * h)

    x = x.copy()
    dx = np.zeros_like(x)
    for index in np.ndindex(x.shape):
        group = index[1] if layer.axis == 0 else index[0]
        dx[index] = difference(lambda: group_loss(x, values, group), x, index)
    grads = [dx]
    for p in layer.learnable:
        values = {**values, p: np.array(values[p], dtype=np.float64)}
        g = np.zeros_like(values[p])
        for d in range(width):
            if layer.axis == 0:
                g[d] = difference(lambda: group_loss(x, values, d), values[p], d)
            else:  # the d-th parameter reaches entry d of every row
                g[d] = difference(lambda: sum(dout[r, d] * _call(layer, x[r], values, d)[d] for r in range(n)),
                                  values[p], d)
        grads.append(g)
    return grads


def _one_case(layer: _Layer, forward, backward, shape, seed, errors) -> None:
    x, values, dout = _values(layer, shape, seed)
    args = [values[p] for p in layer.parameters]
    result = call_user("forward", forward, x.copy(), *[np.copy(a) for a in args])
    if not isinstance(result, (tuple, list)) or len(result) != 2:
        raise UserCodeFailed("forward must return (out, cache)")
    out, cache = result
    grads = call_user("backward", backward, dout.copy(), cache)
    if not isinstance(grads, (tuple, list)) or len(grads) != 1 + len(layer.learnable):
        raise UserCodeFailed(f"backward must return dx and one gradient per learnable parameter "
                             f"({', '.join(layer.learnable) or 'none'})")
    if layer.function is not None:
        errors.setdefault("out", []).append(_error(out, _reference_out(layer, x, values), None))
        expected = _reference_gradients(layer, x, values, dout)
    else:
        def loss(x, *learnable):
            merged = {**values, **dict(zip(layer.learnable, learnable))}
            return float((np.asarray(forward(x, *[merged[p] for p in layer.parameters])[0]) * dout).sum())

        expected = central_difference(loss, [x] + [values[p] for p in layer.learnable])
    terms = np.abs(dout).max() * max([1.0] + [float(np.abs(values[p]).max()) for p in layer.learnable])
    for name, given, reference in zip(["dx"] + [f"d{p}" for p in layer.learnable], grads, expected):
        errors.setdefault(name, []).append(_error(given, reference, terms))


def _error(given, expected, terms) -> float:
    """Relative error; against finite differences, entries under their resolution count absolutely."""
    given = np.asarray(given, dtype=np.float64)
    if given.shape != expected.shape:
        raise UserCodeFailed(f"a result has shape {given.shape}; expected {expected.shape}")
    if not np.all(np.isfinite(given)):
        raise UserCodeFailed("a result contains NaN or infinity")
    if terms is None:
        return max_relative_error(given, expected)[0]
    scale = max(float(np.abs(expected).max(initial=0.0)), terms) * FD_RESOLUTION / FLOOR_FRACTION
    return max_relative_error(given, expected, scale)[0]
