"""The tracer: run a plain Python function on m traced scalars and record what it computes.

A ``Value`` is a traced scalar, in the spirit of micrograd's ``Value``: each operator
records one node (its op and arguments) and knows nothing about calculus.

>>> from bngraph.engine.trace import trace, sqrt, name
>>> def scaled(x, gamma):
...     mu = name(sum(x) / len(x), "mu")
...     return [gamma * (xk - mu) for xk in x]
>>> t = trace(scaled, 2)
>>> [r.name for r in t.records]
['x_1', 'x_2', 'gamma', 't1', 'mu', 't2', 'y_1', 't3', 'y_2']
"""
from __future__ import annotations

import inspect
import keyword
import math
import sys
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Callable, Sequence

import sympy as sp

from bngraph.engine.usercode import UserExit, function_name, running_user_code
from bngraph.errors import BngraphError

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


class _Node:
    __slots__ = ("op", "args", "name", "staged_name")

    def __init__(self, op, args):
        self.op, self.args, self.name, self.staged_name = op, args, None, None


class _Recorder:
    def __init__(self):
        self.nodes: list[_Node] = []

    def record(self, op: str, args: tuple) -> "Value":
        self.nodes.append(_Node(op, args))
        return Value(self, len(self.nodes) - 1)


def _caller() -> str:
    """file:line of the traced function's code that triggered an error."""
    frame = sys._getframe(2)
    here = __file__
    while frame is not None and frame.f_code.co_filename == here:
        frame = frame.f_back
    return f"{frame.f_code.co_filename}:{frame.f_lineno}" if frame else "?"


def constant(c) -> sp.Expr:
    """A Python number as an exact SymPy constant (0.1 -> 1/10, 1/3 as a float -> 1/3)."""
    if isinstance(c, bool) or not isinstance(c, (int, float, Fraction, sp.Number)):
        raise BngraphError(f"cannot trace an operation with {type(c).__name__} {c!r} ({_caller()})")
    if isinstance(c, float):
        if not math.isfinite(c):
            raise BngraphError(f"the traced function uses the constant {c!r} ({_caller()})")
        near = Fraction(c).limit_denominator(10**6)
        c = near if float(near) == c else Fraction(repr(c))
    return sp.nsimplify(c) if isinstance(c, sp.Float) else sp.Rational(c)


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

    def __add__(self, other):
        if not isinstance(other, Value) and other == 0:  # so that builtin sum() starts cleanly
            return self
        return self._op("add", self, other)

    def __radd__(self, other):
        return self.__add__(other) if (not isinstance(other, Value) and other == 0) else self._op("add", other, self)

    def __sub__(self, other):
        return self._op("sub", self, other)

    def __rsub__(self, other):
        return self._op("sub", other, self)

    def __mul__(self, other):
        return self._op("mul", self, other)

    def __rmul__(self, other):
        return self._op("mul", other, self)

    def __truediv__(self, other):
        return self._op("div", self, other)

    def __rtruediv__(self, other):
        return self._op("div", other, self)

    def __pow__(self, exponent):
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


def _set_name(value, label: str, attribute: str):
    if isinstance(value, (list, tuple)):
        return type(value)(_set_name(v, f"{label}_{k}", attribute) for k, v in enumerate(value, 1))
    _check_name(label)
    if not isinstance(value, Value):  # a plain number: the function is being run, not traced
        return value
    node = value._recorder.nodes[value._index]
    if node.op in ("input", "parameter", "constant"):
        raise BngraphError(f"cannot name {label!r}: it is the input or parameter itself ({_caller()})")
    if getattr(node, attribute) not in (None, label):
        raise BngraphError(f"a traced value is named twice: {getattr(node, attribute)!r} and {label!r}")
    setattr(node, attribute, label)
    return value


def name(value, label: str):
    """Name an intermediate; named values form the *named* view (``mu``, ``sigma2`` ...).

    A list gets ``label_1 … label_m``. Returns ``value`` so it can wrap an expression.
    On plain numbers it does nothing, so the same function also runs on numbers.
    """
    return _set_name(value, label, "name")


def stage(value, label: str):
    """Name a step of the *staged* view only (``xmu``, ``ivar`` ...), like ``name``."""
    return _set_name(value, label, "staged_name")


# -- running a function -------------------------------------------------------------
def _signature(func: Callable) -> list[str]:
    try:
        params = list(inspect.signature(func).parameters.values())
    except (TypeError, ValueError):
        raise BngraphError(f"cannot read the parameters of {func!r}") from None
    if not params or any(p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD) for p in params):
        raise BngraphError(f"{func.__name__} must take (x, p1, p2, ...) with named parameters, no *args")
    for p in params[1:]:
        _check_name(p.name)
    return [p.name for p in params]


def trace(func: Callable, m: int, constants: Sequence[str] | None = None) -> Trace:
    """Call ``func(x, p1, p2, ...)`` on m traced inputs ``x_1 … x_m`` and record it."""
    if isinstance(m, bool) or not isinstance(m, int):
        raise BngraphError(f"m must be a whole number, got {m!r}")
    if m < 1:
        raise BngraphError(f"m must be at least 1, got {m}")
    params = _signature(func)
    constants = set(DEFAULT_CONSTANTS if constants is None else constants)
    constants |= set(getattr(func, "__bngraph_constants__", ()))
    rec = _Recorder()
    x = [rec.record("input", ()) for _ in range(m)]
    for k, v in enumerate(x, 1):
        rec.nodes[v._index].name = f"x_{k}"
    args = []
    for p in params[1:]:
        v = rec.record("constant" if p in constants else "parameter", ())
        rec.nodes[v._index].name = p
        args.append(v)
    code = getattr(func, "__code__", None)
    try:
        with running_user_code(function_name(func), code.co_filename if code else None):
            out = func(list(x), *args)
    except BngraphError:
        raise
    except RecursionError:
        raise BngraphError(f"{func.__name__} recursed too deeply while being traced") from None
    except UserExit as exc:
        raise BngraphError(f"{func.__name__} {exc} while being traced") from None
    except Exception as exc:  # the user's code failed: say where, in one line
        tb = exc.__traceback__
        while tb.tb_next is not None:
            tb = tb.tb_next
        where = f"{tb.tb_frame.f_code.co_filename}:{tb.tb_lineno}"
        raise BngraphError(f"{func.__name__} failed while being traced: {type(exc).__name__}: {exc} ({where})") from None
    return _finish(func, m, rec, out)


def _finish(func: Callable, m: int, rec: _Recorder, out) -> Trace:
    function = func.__name__
    if not isinstance(out, (list, tuple)) or len(out) != m:
        got = f"{len(out)} outputs" if isinstance(out, (list, tuple)) else f"a {type(out).__name__}"
        raise BngraphError(f"{function} returned {got} for m = {m} inputs; it must return a list of m outputs")
    nodes = rec.nodes
    outputs = []
    for k, v in enumerate(out, 1):
        if not isinstance(v, Value) or v._recorder is not rec:
            raise BngraphError(f"output y_{k} of {function} is a constant, not computed from the traced inputs")
        node = nodes[v._index]
        if node.op in ("input", "parameter", "constant") or v._index in outputs:
            v = rec.record("id", (v._index,))  # y_k must be a node of its own
            node = nodes[v._index]
        node.name = f"y_{k}"
        outputs.append(v._index)
    fused = _fuse_sums(nodes, outputs)
    ys = tuple(f"y_{k}" for k in range(1, m + 1))
    return Trace(function, m, _name_records(nodes, fused, outputs), ys, func)


def _fuse_sums(nodes: list[_Node], outputs: list[int]) -> dict[int, tuple]:
    """Fold chains of binary ``add`` (what builtin ``sum`` makes) into one n-ary ``add``.

    An unnamed add whose only use is another add disappears into it.
    Returns the kept nodes' (possibly widened) args.
    """
    uses = [0] * len(nodes)
    for node in nodes:
        for a in node.args:
            if isinstance(a, int):
                uses[a] += 1
    for o in outputs:
        uses[o] += 1
    args: dict[int, tuple] = {}
    absorbed: set[int] = set()
    for index, node in enumerate(nodes):
        if node.op != "add":
            args[index] = node.args
            continue
        wide = []
        for a in node.args:
            inner = nodes[a] if isinstance(a, int) else None
            if inner is not None and inner.op == "add" and uses[a] == 1 and not (inner.name or inner.staged_name):
                wide.extend(args[a])
                absorbed.add(a)
            else:
                wide.append(a)
        args[index] = tuple(wide)
    return {i: a for i, a in args.items() if i not in absorbed}


def _name_records(nodes: list[_Node], args: dict[int, tuple], outputs: list[int]) -> tuple[Record, ...]:
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
