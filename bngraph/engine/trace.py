"""The tracer: run a plain Python function on m traced scalars and record what it computes.

A ``Value`` is a traced scalar, in the spirit of micrograd's ``Value``: each operator
records one node (its op and arguments) and knows nothing about calculus. Code written on
NumPy arrays gets ``x`` as an array of Values (:mod:`bngraph.engine.arrays`).

>>> from bngraph.engine.trace import trace, sqrt, name
>>> def scaled(x, gamma):
...     mu = name(sum(x) / len(x), "mu")
...     return [gamma * (xk - mu) for xk in x]
>>> t = trace(scaled, 2)
>>> [r.name for r in t.records]
['x_1', 'x_2', 'gamma', 't1', 'mu', 't2', 'y_1', 't3', 'y_2']
"""
from __future__ import annotations

import contextlib
import inspect
import keyword
import math
import numbers
import sys
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Callable, Sequence

import sympy as sp

from bngraph.errors import BngraphError
from bngraph.engine.arrays import (FLAT, Convention, TracedArray, conventions, is_hyperparameters, is_ndarray,
                                   outputs_of, traced_array, unsupported)
from bngraph.engine.usercode import (UserExit, definition_location, function_name, running_user_code,
                                     traceback_location, user_frame, user_location)

# Parameters that are hyper-parameters, not learned: no adjoint is derived for them.
DEFAULT_CONSTANTS = frozenset({"eps", "epsilon", "ε"})
_RESERVED = {"L", "m", "i", "j"}


@dataclass(frozen=True)
class Record:
    """One traced node: ``args`` holds parent indices (int) or folded SymPy constants."""

    name: str
    op: str  # "input", "parameter", "constant" for leaves; a primitive's name otherwise
    args: tuple
    named: bool  # named by the user with ``name()`` (kept in the named view)
    generated: bool = False  # its name is a generated t1, t2 …


@dataclass(frozen=True)
class Trace:
    """What one call of the function computed, nodes in the order they were made."""

    function: str
    m: int
    records: tuple[Record, ...]
    outputs: tuple[str, ...]  # y_1 … y_m
    source: Callable | None = field(default=None, repr=False, compare=False)  # to trace again at other m
    convention: Convention = field(default=FLAT, repr=False, compare=False)  # how x and the parameters were laid out


class _Node:
    __slots__ = ("op", "args", "name", "staged_name")

    def __init__(self, op, args):
        self.op, self.args, self.name, self.staged_name = op, args, None, None


class _Recorder:
    def __init__(self):
        self.nodes: list[_Node] = []
        # (attribute, label) -> {node index: the call site of name()}, in the order named
        self.labels: dict[tuple[str, str], dict[int, tuple]] = {}

    def record(self, op: str, args: tuple) -> "Value":
        self.nodes.append(_Node(op, args))
        return Value(self, len(self.nodes) - 1)


def _caller() -> str:
    """file:line of the user's code that triggered an error (not NumPy's, not bngraph's)."""
    return user_location(sys._getframe(1))


def constant(c) -> sp.Expr:
    """A Python or NumPy number as an exact SymPy constant (0.1 -> 1/10, 1/3 as a float -> 1/3)."""
    np = sys.modules.get("numpy")  # (no NumPy scalar exists before NumPy is imported)
    boolean = isinstance(c, bool) or (np is not None and isinstance(c, np.bool_))
    if boolean or not isinstance(c, (numbers.Real, sp.Number)):
        raise BngraphError(f"cannot trace an operation with {type(c).__name__} {c!r} ({_caller()})")
    if np is not None and isinstance(c, np.generic):  # np.int64(3), np.float64(1e-5): the Python number
        c = c.item()
    if isinstance(c, float):
        if not math.isfinite(c):
            raise BngraphError(f"the traced function uses the constant {c!r} ({_caller()})")
        near = Fraction(c).limit_denominator(10**6)
        c = near if float(near) == c else Fraction(repr(c))
    return sp.nsimplify(c) if isinstance(c, sp.Float) else sp.Rational(c)


def _is_array(other) -> bool:
    """An array operand (ours or NumPy's), which handles the operation itself; a traced value is none."""
    return type(other) is not Value and is_ndarray(other)


class Value:
    """A traced scalar. Arithmetic records nodes; Python control flow on it is an error."""

    __slots__ = ("_recorder", "_index")

    def __init__(self, recorder: _Recorder, index: int):
        self._recorder, self._index = recorder, index

    # -- recording -------------------------------------------------------------------
    def _arg(self, other):
        if isinstance(other, Value):
            if other._recorder is not self._recorder:
                raise BngraphError("a traced value from another trace was used")
            return other._index
        return constant(other)

    def _op(self, op, *args):
        return self._recorder.record(op, tuple(self._arg(a) for a in args))

    # An array operand (value * x) is the array's to handle: it applies the op per element.
    def __add__(self, other):
        if _is_array(other):
            return NotImplemented
        if not isinstance(other, Value) and other == 0:  # so that builtin sum() starts cleanly
            return self
        return self._op("add", self, other)

    def __radd__(self, other):
        if _is_array(other):
            return NotImplemented
        return self.__add__(other) if (not isinstance(other, Value) and other == 0) else self._op("add", other, self)

    def __sub__(self, other):
        return NotImplemented if _is_array(other) else self._op("sub", self, other)

    def __rsub__(self, other):
        return NotImplemented if _is_array(other) else self._op("sub", other, self)

    def __mul__(self, other):
        return NotImplemented if _is_array(other) else self._op("mul", self, other)

    def __rmul__(self, other):
        return NotImplemented if _is_array(other) else self._op("mul", other, self)

    def __truediv__(self, other):
        if _is_array(other):
            return NotImplemented
        if not isinstance(other, Value) and other == 0:
            raise BngraphError(f"division by zero at {_caller()}: a traced value is divided by the constant 0")
        return self._op("div", self, other)

    def __rtruediv__(self, other):
        return NotImplemented if _is_array(other) else self._op("div", other, self)

    def __pow__(self, exponent):
        if _is_array(exponent):
            return NotImplemented
        if isinstance(exponent, Value):
            raise BngraphError(f"'** traced value' is not supported: use exp(y * log(x)) ({_caller()})")
        return self._op("pow", self, exponent)

    def __rpow__(self, base):
        raise BngraphError(f"'number ** traced value' is not supported: use exp(y * log(b)) ({_caller()})")

    def __neg__(self):
        return self._op("neg", self)

    def __pos__(self):
        return self

    # NumPy's ufuncs call these methods on object arrays, so np.sqrt(value) traces too.
    def sqrt(self):
        return self._op("sqrt", self)

    def exp(self):
        return self._op("exp", self)

    def log(self):
        return self._op("log", self)

    def conjugate(self):  # a real value: NumPy's var on a list of Values asks for it
        return self

    @property
    def real(self):
        return self

    def __abs__(self):
        raise unsupported("abs()")

    # NumPy's functions on a Value (np.sqrt(v), np.float64(2) * v, np.mean(v)) treat it as a 0-d array.
    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        from bngraph.engine.numpy_ops import apply_ufunc  # NumPy is calling: it is imported

        return apply_ufunc(ufunc, method, inputs, kwargs)

    def __array_function__(self, func, types, args, kwargs):
        from bngraph.engine.numpy_ops import apply_function

        return apply_function(func, args, kwargs)

    # -- what tracing cannot follow --------------------------------------------------
    def _data_dependent(self, what):
        raise BngraphError(
            f"data-dependent control flow: a traced value was used in {what} at {_caller()}; "
            "bngraph traces straight-line code only"
        )

    def __bool__(self):
        self._data_dependent("an `if`, `while` or `bool()`")

    def __lt__(self, other):
        self._data_dependent("a comparison (<)")

    def __le__(self, other):
        self._data_dependent("a comparison (<=)")

    def __gt__(self, other):
        self._data_dependent("a comparison (>)")

    def __ge__(self, other):
        self._data_dependent("a comparison (>=)")

    def __eq__(self, other):
        self._data_dependent("a comparison (==)")

    def __ne__(self, other):
        self._data_dependent("a comparison (!=)")

    __hash__ = object.__hash__

    def __float__(self):
        raise BngraphError(
            f"a traced value was turned into a Python number at {_caller()}; "
            "use bngraph.sqrt/exp/log instead of math.*"
        )

    __int__ = __index__ = __complex__ = __float__

    def __repr__(self):
        node = self._recorder.nodes[self._index]
        return f"<traced {node.name or node.staged_name or '#%d' % self._index}: {node.op}>"


# -- functions the traced code may call ---------------------------------------------
def _unary(op: str, numeric: Callable[[float], float]):
    def apply(a):
        if isinstance(a, Value):
            return a._op(op, a)
        if isinstance(a, (int, float)):
            return numeric(a)
        # anything else (a NumPy array, an autograd box) takes autograd.numpy's function,
        # so a user's function also runs under an independent AD for `bngraph verify`
        import autograd.numpy as anp

        return getattr(anp, op)(a)

    apply.__name__ = op
    apply.__doc__ = f"{op} of a traced value (or of a plain number)."
    return apply


sqrt = _unary("sqrt", math.sqrt)
exp = _unary("exp", math.exp)
log = _unary("log", math.log)


def _check_name(label: str) -> None:
    if not (isinstance(label, str) and label.isidentifier()) or keyword.iskeyword(label):
        raise BngraphError(f"{label!r} is not a valid name for a traced value")
    if label in _RESERVED or label.startswith(("dL_d", "x_", "y_")):
        raise BngraphError(f"the name {label!r} is reserved by bngraph's notation")


def _set_name(value, label: str, attribute: str, alone: bool = True):
    if isinstance(value, (list, tuple)):
        return type(value)(_set_name(v, f"{label}_{k}", attribute, False) for k, v in enumerate(value, 1))
    if isinstance(value, TracedArray):  # an array: each element, in order, as a list would be
        for k, v in enumerate(value.data.ravel(), 1):
            _set_name(v, f"{label}_{k}", attribute, False)
        return value
    _check_name(label)
    if not isinstance(value, Value):  # a plain number: the function is being run, not traced
        return value
    node = value._recorder.nodes[value._index]
    if node.op in ("input", "parameter", "constant"):
        raise BngraphError(f"cannot name {label!r}: it is the input or parameter itself ({_caller()})")
    if getattr(node, attribute) not in (None, label):
        raise BngraphError(f"a traced value is named twice: {getattr(node, attribute)!r} and {label!r}")
    setattr(node, attribute, label)
    if alone:  # where name(v, label) was called: one call site naming m values is a loop naming a family
        frame = user_frame(sys._getframe(1))
        site = (frame.f_code, frame.f_lasti) if frame is not None else None
        value._recorder.labels.setdefault((attribute, label), {}).setdefault(value._index, site)
    return value


def name(value, label: str):
    """Name an intermediate; named values form the *named* view (``mu``, ``sigma2`` ...).

    A list (or array) gets ``label_1 … label_m``; so do the m values one ``name(v, label)``
    call names in a loop or comprehension. Returns ``value`` so it can wrap an expression.
    On plain numbers it does nothing, so the same function also runs on numbers.
    """
    return _set_name(value, label, "name")


def stage(value, label: str):
    """Name a step of the *staged* view only (``xmu``, ``ivar`` ...), like ``name``."""
    return _set_name(value, label, "staged_name")


# -- running a function -------------------------------------------------------------
def _signature(func: Callable) -> list[str]:
    """The names of the positional parameters (x first), or a one-line error at the ``def``."""
    try:
        params = list(inspect.signature(func).parameters.values())
    except (TypeError, ValueError):
        raise BngraphError(f"cannot read the parameters of {func!r}") from None
    title = getattr(func, "__name__", repr(func))
    where = definition_location(func)
    for p in params:
        if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            star = "*" if p.kind == p.VAR_POSITIONAL else "**"
            raise BngraphError(f"{title} takes {star}{p.name}: bngraph calls {title}(x, p1, p2, ...) and needs "
                               f"named parameters, no *args or **kwargs ({where})")
        if p.kind == p.KEYWORD_ONLY and p.default is p.empty:
            raise BngraphError(f"{title} takes {p.name!r} as a keyword-only parameter (after *): bngraph passes "
                               f"x, p1, p2, ... by position; remove the * ({where})")
    positional = [p.name for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    if not positional:
        raise BngraphError(f"{title} takes no parameters: bngraph calls {title}(x, p1, p2, ...) with the "
                           f"m inputs x first ({where})")
    for p in positional[1:]:
        _check_name(p)
    return positional


def trace(func: Callable, m: int, constants: Sequence[str] | None = None) -> Trace:
    """Call ``func(x, p1, p2, ...)`` on m traced inputs ``x_1 … x_m`` and record it."""
    if isinstance(m, bool) or not isinstance(m, int):
        raise BngraphError(f"m must be a whole number, got {m!r}")
    if m < 1:
        raise BngraphError(f"m must be at least 1, got {m}")
    params = _signature(func)
    constants = set(DEFAULT_CONSTANTS if constants is None else constants)
    constants |= set(getattr(func, "__bngraph_constants__", ()))
    failures = []
    code = getattr(func, "__code__", None)
    for convention in conventions(params[1:]):
        rec = _Recorder()
        x = [rec.record("input", ()) for _ in range(m)]
        for k, v in enumerate(x, 1):
            rec.nodes[v._index].name = f"x_{k}"
        leaves = {}
        for p in params[1:]:
            label = "epsilon" if is_hyperparameters(p) else p  # bn_param holds ε, the constant epsilon
            if label not in leaves:
                leaves[label] = rec.record("constant" if label in constants else "parameter", ())
                rec.nodes[leaves[label]._index].name = label
        args = convention.arguments(params[1:], traced_array(x, convention.x_shape(m)), leaves.__getitem__,
                                    lambda v: traced_array([v], (1,)))
        try:
            with _numpy_quiet(), running_user_code(function_name(func), code.co_filename if code else None):
                out = func(*args)
        except BngraphError:
            raise
        except RecursionError:
            raise BngraphError(f"{func.__name__} recursed too deeply while being traced") from None
        except UserExit as exc:
            raise BngraphError(f"{func.__name__} {exc} while being traced") from None
        except Exception as exc:  # noqa: BLE001 - the user's code failed; another layout may suit it
            failures.append((len(rec.nodes), exc))
            continue
        return _finish(func, m, rec, out, convention)
    _, exc = max(failures, key=lambda failure: failure[0])  # the layout the code got furthest with
    raise BngraphError(f"{func.__name__} failed while being traced: {type(exc).__name__}: {exc} "
                       f"({traceback_location(exc.__traceback__)})") from None


def _numpy_quiet():
    """NumPy's floating-point warnings off while the user's code runs (nothing to silence
    where NumPy is not imported: plain-Python code does not import it)."""
    np = sys.modules.get("numpy")
    return np.errstate(all="ignore") if np is not None else contextlib.nullcontext()


def run(t: Trace, x, leaf: Callable[[str], object], vector: Callable | None = None) -> list:
    """Call the traced function again on numbers (or autograd's boxes), laid out as when it was
    traced: ``x`` an array of m values, ``leaf(name)`` each parameter's value. Its m outputs."""
    if vector is None:
        import numpy as np

        vector = np.atleast_1d
    params = _signature(t.source)[1:]
    x = x.reshape(t.convention.x_shape(t.m))
    return outputs_of(t.source(*t.convention.arguments(params, x, leaf, vector)))


def _finish(func: Callable, m: int, rec: _Recorder, out, convention: Convention = FLAT) -> Trace:
    function = func.__name__
    out = outputs_of(out)
    if not isinstance(out, list) or len(out) != m:
        got = f"{len(out)} outputs" if isinstance(out, list) else f"a {type(out).__name__}"
        raise BngraphError(f"{function} returned {got} for m = {m} inputs; it must return a list of m outputs")
    nodes = rec.nodes
    outputs, seen = [], set()  # the set: a list's `in` would make this m²
    for k, v in enumerate(out, 1):
        if not isinstance(v, Value) or v._recorder is not rec:
            raise BngraphError(f"output y_{k} of {function} is a constant, not computed from the traced inputs")
        node = nodes[v._index]
        if node.op in ("input", "parameter", "constant") or v._index in seen:
            v = rec.record("id", (v._index,))  # y_k must be a node of its own
            node = nodes[v._index]
        node.name = f"y_{k}"
        outputs.append(v._index)
        seen.add(v._index)
    live = _live(nodes, outputs)
    _name_families(rec, m, live, seen)
    fused = _fuse_sums(nodes, outputs, live)
    ys = tuple(f"y_{k}" for k in range(1, m + 1))
    return Trace(function, m, _name_records(nodes, fused, seen), ys, func, convention)


def _live(nodes: list[_Node], outputs: list[int]) -> list[bool]:
    """The nodes the outputs depend on, and every leaf: a running-average update written into
    ``bn_param`` (or any value the outputs do not use) is left out of the graph."""
    live = [node.op in ("input", "parameter", "constant") for node in nodes]
    for o in outputs:
        live[o] = True
    for index in range(len(nodes) - 1, -1, -1):
        if live[index]:
            for a in nodes[index].args:
                if isinstance(a, int):
                    live[a] = True
    return live


def _name_families(rec: _Recorder, m: int, live: list[bool], outputs: set[int]) -> None:
    """A label one call site gave to m different values (``name(v, "xhat")`` in a loop)
    becomes the family ``xhat_1 … xhat_m``, in the order they were named (outputs stay y_k)."""
    for (attribute, label), sites in rec.labels.items():
        named = [index for index in sites if live[index] and index not in outputs]
        if len(named) > 1 and len(named) == m and len({sites[index] for index in named}) == 1:
            for k, index in enumerate(named, 1):
                setattr(rec.nodes[index], attribute, f"{label}_{k}")


def _fuse_sums(nodes: list[_Node], outputs: list[int], live: list[bool]) -> dict[int, tuple]:
    """Fold chains of binary ``add`` (what builtin ``sum`` makes) into one n-ary ``add``.

    An unnamed add whose only use is another add disappears into it.
    Returns the kept (live) nodes' (possibly widened) args.
    """
    uses = [0] * len(nodes)
    for index, node in enumerate(nodes):
        if live[index]:
            for a in node.args:
                if isinstance(a, int):
                    uses[a] += 1
    for o in outputs:
        uses[o] += 1
    args: dict[int, tuple | list] = {}
    for index, node in enumerate(nodes):
        if not live[index]:
            continue
        if node.op != "add":
            args[index] = node.args
            continue
        wide = None
        for a in node.args:
            inner = nodes[a] if isinstance(a, int) else None
            if inner is not None and inner.op == "add" and uses[a] == 1 and not (inner.name or inner.staged_name):
                # the absorbed add's own list, taken over when it comes first (as in sum()'s
                # chain): copying it at every add would make a sum of m terms cost m²
                inner_args = args.pop(a)  # an add's: a list of its own
                if wide is None:
                    wide = inner_args
                else:
                    wide.extend(inner_args)
            else:
                if wide is None:
                    wide = []
                wide.append(a)
        args[index] = wide
    return {i: tuple(a) for i, a in args.items()}


def _name_records(nodes: list[_Node], args: dict[int, tuple], outputs: set[int]) -> tuple[Record, ...]:
    """Give every kept node its name: the user's, the stage's, or a short generated t1, t2 …"""
    taken: dict[str, int] = {}
    for index in args:
        for label in (nodes[index].name, nodes[index].staged_name):
            if label and taken.setdefault(label, index) != index:
                raise BngraphError(f"the name {label!r} is given to two different traced values")
    names, counter = {}, 0
    for index in args:
        node = nodes[index]
        label = node.name or node.staged_name
        if not label:
            counter += 1
            while f"t{counter}" in taken:
                counter += 1
            label = f"t{counter}"
        names[index] = label
    records = []
    for index, a in args.items():
        node = nodes[index]
        parents = tuple(names[p] if isinstance(p, int) else p for p in a)
        named = node.name is not None and node.op not in ("input", "parameter", "constant")
        generated = not (node.name or node.staged_name)
        records.append(Record(names[index], node.op, parents, named or index in outputs, generated))
    return tuple(records)
