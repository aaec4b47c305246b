"""NumPy code on traced scalars: ``TracedArray``, and how a user's forward is called.

Forward passes are written on NumPy arrays (``x.mean(axis=0)``, ``np.var(x, axis=0)``,
``np.sqrt(var + eps)``, broadcasting). A ``TracedArray`` holds the tracer's scalars in a
NumPy object array; NumPy hands every ufunc (``+``, ``**``, ``np.sqrt`` …) and every array
function (``np.mean`` …) called on it back to it (NEP 13 and NEP 18), and each supported one
is applied element by element, so the trace records one node per scalar operation and stays
linear in m. Any other call (``np.abs``, ``np.maximum``, a comparison …) is refused in one
line that names the call and the user's file and line.

This module knows nothing of the tracer: its elements are anything with arithmetic and
``sqrt``/``exp``/``log`` methods (the tracer's ``Value``), or plain numbers:

>>> a = TracedArray(np.array([1.0, 2.0, 9.0], dtype=object))
>>> float(np.mean(a)), float(a.var()), round(float(np.std(a, ddof=1)) ** 2, 9)
(4.0, 12.666666666666666, 19.0)
>>> (2 - a).T.shape, float(np.sqrt(a.reshape(3, 1))[2, 0])
((3,), 3.0)
>>> np.abs(a)  # doctest: +ELLIPSIS
Traceback (most recent call last):
bngraph.errors.BngraphError: np.absolute (abs) is not supported in a traced function (...): ...
"""
from __future__ import annotations

import math
import numbers
import operator
from dataclasses import dataclass
from typing import Callable

import numpy as np

from bngraph.errors import BngraphError
from bngraph.engine.usercode import user_location

SUPPORTED = ("+ - * / ** (by a number), mean, sum, var, std (axis, keepdims, ddof), sqrt, exp, log, square, "
             "power, reshape, .T, transpose, np.newaxis, ones_like, zeros_like, .shape, len")


def _method(name: str, numeric: Callable):
    """An elementwise function: the element's own method (a traced value's), else math's."""
    def apply(a):
        return getattr(a, name)() if hasattr(a, name) else numeric(a)

    return apply


def _square(a):
    return a**2


def _reciprocal(a):
    return 1 / a


# Each supported ufunc, as a function of scalars (NumPy's object loops would call the
# element's methods too, but not on plain numbers, and np.square would record x*x).
UFUNCS: dict[np.ufunc, Callable] = {
    np.add: operator.add, np.subtract: operator.sub, np.multiply: operator.mul,
    np.true_divide: operator.truediv, np.power: operator.pow, np.float_power: operator.pow,
    np.negative: operator.neg, np.positive: operator.pos, np.square: _square, np.reciprocal: _reciprocal,
    np.sqrt: _method("sqrt", math.sqrt), np.exp: _method("exp", math.exp), np.log: _method("log", math.log),
}
_ELEMENTWISE = {ufunc: np.frompyfunc(f, ufunc.nin, 1) for ufunc, f in UFUNCS.items()}
_COMPARISONS = {"less": "<", "less_equal": "<=", "greater": ">", "greater_equal": ">=", "equal": "==",
                "not_equal": "!="}
_ALIASES = {"absolute": "abs", "matmul": "@", "floor_divide": "//", "remainder": "%"}


def unsupported(call: str) -> BngraphError:
    """The one-line error for a NumPy call the tracer cannot follow."""
    return BngraphError(f"{call} is not supported in a traced function ({user_location()}): "
                        f"bngraph traces smooth straight-line code: {SUPPORTED}")


def _scalar(value):
    """A NumPy scalar as the Python number it holds (so that it never re-enters NumPy)."""
    return value.item() if isinstance(value, np.generic) else value


def _data(value):
    """The object array behind a TracedArray; anything else as NumPy takes it."""
    if isinstance(value, TracedArray):
        return value.data
    if isinstance(value, (list, tuple)):
        return np.array([_data(v) for v in value], dtype=object) if value else np.array([], dtype=object)
    return _scalar(value)


def _wrap(result):
    """An object array as a TracedArray; a scalar (a full reduction) as itself."""
    if isinstance(result, np.ndarray):
        return TracedArray(result.astype(object, copy=False))
    return _scalar(result)


def _store(result, out):
    """Write ``result`` into the ``out=`` of an in-place operation (``a += b``)."""
    (target,) = out
    if isinstance(target, TracedArray):
        target.data[...] = result
        return target
    if isinstance(target, np.ndarray) and target.dtype == object:
        target[...] = result
        return target
    raise BngraphError(f"an in-place operation writes traced values into a {target.dtype} array "
                       f"({user_location()}); write `a = a + b` instead of `a += b`, or make the array "
                       "with dtype=x.dtype")


def apply_ufunc(ufunc: np.ufunc, method: str, inputs: tuple, kwargs: dict):
    """A ufunc called on traced values (``__array_ufunc__``): elementwise, or refused."""
    name = ufunc.__name__
    if name in _COMPARISONS:
        raise BngraphError(f"data-dependent control flow: a traced value was used in a comparison "
                           f"({_COMPARISONS[name]}) at {user_location()}; bngraph traces straight-line code only")
    if method == "reduce" and ufunc is np.add:
        out = kwargs.pop("out", None)
        out = out[0] if isinstance(out, tuple) else out
        return _sum(inputs[0], kwargs.pop("axis", 0), keepdims=kwargs.pop("keepdims", False), out=out)
    if method != "__call__" or ufunc not in _ELEMENTWISE:
        call = f"np.{name}" + (f" ({_ALIASES[name]})" if name in _ALIASES else "")
        raise unsupported(call if method == "__call__" else f"np.{name}.{method}")
    out = kwargs.pop("out", None)
    _no_options(f"np.{name}", kwargs)
    result = _ELEMENTWISE[ufunc](*(_operand(v) for v in inputs))
    return _store(result, out) if out else _wrap(result)


def _operand(value):
    """An input of an elementwise op: a traced scalar goes in a 0-d object array (given as
    itself, NumPy would hand the op back to it instead of applying it)."""
    value = _data(value)
    if isinstance(value, (np.ndarray, numbers.Number)):
        return value
    boxed = np.empty((), dtype=object)
    boxed[()] = value
    return boxed


def _no_options(call: str, kwargs: dict) -> None:
    for key, value in kwargs.items():
        if not (key in ("dtype", "casting", "order", "subok") or (key == "where" and value is True)):
            raise unsupported(f"{call}(..., {key}=...)")


# -- reductions and shapes (NumPy's functions and the same-named methods) ---------------------
def _reduced_count(data: np.ndarray, axis) -> int:
    if axis is None:
        return data.size
    axes = axis if isinstance(axis, tuple) else (axis,)
    return math.prod(data.shape[a] for a in axes)


def _sum(a, axis=None, dtype=None, out=None, keepdims=False, initial=None, where=True):
    data = np.asarray(_data(a), dtype=object)
    if initial is not None or where is not True:
        raise unsupported("np.sum(..., initial=/where=...)")
    # NumPy's own loop on an object array: one `+` of two elements after another
    # (the tracer folds the chain into one sum).
    total = np.sum(data, axis=axis, keepdims=keepdims)
    return _store(total, (out,)) if out is not None else _wrap(total)


def _mean(a, axis=None, dtype=None, out=None, keepdims=False, *, where=True):
    data = np.asarray(_data(a), dtype=object)
    total = np.sum(data, axis=axis, keepdims=keepdims)  # an axis it lacks raises NumPy's AxisError here
    result = total / _reduced_count(data, axis)
    return _store(result, (out,)) if out is not None else _wrap(result)


def _var(a, axis=None, dtype=None, out=None, ddof=0, keepdims=False, *, where=True, mean=None, correction=None):
    """Two-pass, as NumPy computes it: the mean of the squared deviations, over count − ddof."""
    if mean is not None or where is not True:
        raise unsupported("np.var(..., mean=/where=...)")
    ddof = correction if correction is not None else ddof
    data = np.asarray(_data(a), dtype=object)
    centred = data - np.sum(data, axis=axis, keepdims=True) / _reduced_count(data, axis)
    count = _reduced_count(data, axis) - ddof
    if count <= 0:
        raise BngraphError(f"a variance with ddof={ddof} over {count + ddof} value(s) divides by zero "
                           f"({user_location()})")
    result = np.sum(_ELEMENTWISE[np.square](_operand(centred)), axis=axis, keepdims=keepdims) / count
    return _store(result, (out,)) if out is not None else _wrap(result)


def _std(a, axis=None, dtype=None, out=None, ddof=0, keepdims=False, *, where=True, mean=None, correction=None):
    variance = _var(a, axis, ddof=ddof, keepdims=keepdims, where=where, mean=mean, correction=correction)
    return _store(_data(np.sqrt(variance)), (out,)) if out is not None else np.sqrt(variance)


def _reshaped(how: Callable):
    def apply(a, *args, **kwargs):
        return _wrap(how(np.asarray(_data(a), dtype=object), *args, **kwargs))

    return apply


def _filled(value):
    def like(a, dtype=None, order="K", subok=True, shape=None):
        return TracedArray(np.full(np.shape(_data(a)) if shape is None else shape, value, dtype=object))

    return like


FUNCTIONS: dict[Callable, Callable] = {
    np.sum: _sum, np.mean: _mean, np.var: _var, np.std: _std,
    np.reshape: _reshaped(np.reshape), np.transpose: _reshaped(np.transpose), np.ravel: _reshaped(np.ravel),
    np.squeeze: _reshaped(np.squeeze), np.expand_dims: _reshaped(np.expand_dims), np.copy: _reshaped(np.copy),
    np.atleast_1d: _reshaped(np.atleast_1d), np.atleast_2d: _reshaped(np.atleast_2d),
    np.ones_like: _filled(1), np.zeros_like: _filled(0),
    np.shape: lambda a: np.shape(_data(a)), np.ndim: lambda a: np.ndim(_data(a)), np.size: lambda a: np.size(_data(a)),
}


def apply_function(func: Callable, args: tuple, kwargs: dict):
    """A NumPy function called on traced values (``__array_function__``), or refused."""
    handler = FUNCTIONS.get(func)
    if handler is None:
        module = getattr(func, "__module__", None) or "numpy"
        raise unsupported(f"{module.replace('numpy', 'np', 1)}.{func.__name__}")
    if func in (np.atleast_1d, np.atleast_2d) and len(args) > 1:
        return [handler(a) for a in args]
    return handler(*args, **kwargs)


class TracedArray(np.lib.mixins.NDArrayOperatorsMixin):
    """An array of traced scalars (a NumPy object array inside); NumPy calls dispatch to it."""

    __slots__ = ("data",)

    def __init__(self, data: np.ndarray):
        self.data = data

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        return apply_ufunc(ufunc, method, inputs, kwargs)

    def __array_function__(self, func, types, args, kwargs):
        return apply_function(func, args, kwargs)

    def __array__(self, dtype=None, copy=None):
        # np.asarray(x) keeps the traced scalars (their own methods still trace); a float array cannot
        if dtype is not None and np.dtype(dtype) != object:
            raise BngraphError(f"traced values were converted to a {np.dtype(dtype)} array at {user_location()}; "
                               "bngraph traces the array as it is")
        return self.data.copy() if copy else self.data

    # -- the array's face ----------------------------------------------------------------
    shape = property(lambda self: self.data.shape)
    ndim = property(lambda self: self.data.ndim)
    size = property(lambda self: self.data.size)
    dtype = property(lambda self: self.data.dtype)  # object: np.zeros(D, dtype=x.dtype) holds traced values
    T = property(lambda self: TracedArray(self.data.T))

    def __len__(self):
        return len(self.data)

    def __iter__(self):
        return (_wrap(row) for row in self.data)

    def __getitem__(self, key):
        return _wrap(self.data[key])

    def __setitem__(self, key, value):
        self.data[key] = _data(value)

    def __bool__(self):
        raise BngraphError(f"data-dependent control flow: a traced array was used in an `if` or `bool()` "
                           f"at {user_location()}; bngraph traces straight-line code only")

    def __repr__(self):
        return f"TracedArray(shape={self.shape})"

    # -- methods of the same names as NumPy's functions -------------------------------------
    def sum(self, axis=None, dtype=None, out=None, keepdims=False, **kwargs):
        return _sum(self, axis, dtype, out, keepdims, **kwargs)

    def mean(self, axis=None, dtype=None, out=None, keepdims=False, **kwargs):
        return _mean(self, axis, dtype, out, keepdims, **kwargs)

    def var(self, axis=None, dtype=None, out=None, ddof=0, keepdims=False, **kwargs):
        return _var(self, axis, dtype, out, ddof, keepdims, **kwargs)

    def std(self, axis=None, dtype=None, out=None, ddof=0, keepdims=False, **kwargs):
        return _std(self, axis, dtype, out, ddof, keepdims, **kwargs)

    def reshape(self, *shape, **kwargs):
        return TracedArray(self.data.reshape(*shape, **kwargs))

    def transpose(self, *axes):
        return TracedArray(self.data.transpose(*axes))

    def ravel(self, order="C"):
        return TracedArray(self.data.ravel(order))

    flatten = ravel

    def squeeze(self, axis=None):
        return TracedArray(self.data.squeeze(axis))

    def copy(self, order="C"):
        return TracedArray(self.data.copy(order))

    def item(self, *args):
        return self.data.item(*args)

    def tolist(self):
        return self.data.tolist()

    def astype(self, dtype, **kwargs):
        """A cast to a float type (``x.astype(np.float32)`` for precision) changes nothing traced."""
        if np.dtype(dtype) != object and np.dtype(dtype).kind != "f":
            raise BngraphError(f"traced values were converted to {np.dtype(dtype)} at {user_location()}; "
                               "bngraph traces smooth functions of real numbers only")
        return self.copy()


def traced_array(items: list, shape: tuple) -> TracedArray:
    """``items`` (traced scalars) as a TracedArray of ``shape``."""
    data = np.empty(len(items), dtype=object)
    data[:] = items
    return TracedArray(data.reshape(shape))


# -- how a user's forward is called ------------------------------------------------------------
def is_hyperparameters(parameter: str) -> bool:
    """A parameter such as ``bn_param``: a dict of hyper-parameters, as in course assignments.

    >>> [is_hyperparameters(p) for p in ("bn_param", "ln_params", "param", "gamma", "eps")]
    [True, True, True, False, False]
    """
    return parameter in ("param", "params") or parameter.endswith(("_param", "_params"))


def hyperparameters(epsilon) -> dict:
    """What a ``bn_param`` holds when bngraph calls a forward: training mode, ε, a momentum."""
    return {"mode": "train", "eps": epsilon, "momentum": 0.9}


@dataclass(frozen=True)
class Convention:
    """How the inputs are laid out for a forward: ``x`` flat, of shape (m,), with scalar
    parameters; or *column*, the (N, D) layout of course code: ``x`` of shape (m, 1) (m
    examples of one feature), parameters of shape (1,). A ``bn_param`` gets a dict."""

    column: bool

    def x_shape(self, m: int) -> tuple:
        return (m, 1) if self.column else (m,)

    def arguments(self, parameters: list[str], x, leaf: Callable, vector: Callable) -> list:
        """The call's arguments: ``x`` (laid out already), then each parameter: ``leaf(name)``
        (``vector(leaf(name))`` in the column layout), a dict for a ``bn_param``."""
        args = [x]
        for p in parameters:
            if is_hyperparameters(p):
                args.append(hyperparameters(leaf("epsilon")))
            else:
                args.append(vector(leaf(p)) if self.column else leaf(p))
        return args


FLAT, COLUMN = Convention(False), Convention(True)


def conventions(parameters: list[str]) -> tuple[Convention, ...]:
    """The layouts to try, in order: course code (a ``bn_param``) is (N, D); anything else is
    tried flat, then as (N, D), since code like ``N, D = x.shape`` needs two axes."""
    return (COLUMN,) if any(is_hyperparameters(p) for p in parameters) else (FLAT, COLUMN)


def outputs_of(result) -> list | object:
    """The outputs in what a forward returned: ``out`` of an ``(out, cache)`` pair, flattened;
    a list of outputs as it is; anything else unchanged (the caller says what is wrong)."""
    if isinstance(result, tuple) and len(result) >= 2 and (isinstance(result[0], list) or _is_array(result[0])):
        result = result[0]  # (out, cache) or (out, running_mean, running_var): the rest is ignored
    if isinstance(result, (TracedArray, np.ndarray)):
        return list(np.asarray(_data(result), dtype=object).ravel())
    if _is_array(result):  # autograd's ArrayBox, when verify runs the function under autograd
        flat = result.reshape(-1)
        return [flat[k] for k in range(flat.shape[0])]
    if isinstance(result, (list, tuple)):
        return [_only(v) for v in result]
    return result


def _is_array(value) -> bool:
    """An array of one or more dimensions: NumPy's, ours, or one that stands in for them (autograd's)."""
    if isinstance(value, (TracedArray, np.ndarray)):
        return value.ndim > 0
    return hasattr(value, "reshape") and len(getattr(value, "shape", ())) > 0


def _only(value):
    """One output: a one-element array (a row of an (m, 1) result) as its element."""
    if isinstance(value, (TracedArray, np.ndarray)) and np.size(_data(value)) == 1:
        return np.asarray(_data(value), dtype=object).ravel()[0]
    if isinstance(value, list) and len(value) == 1:  # a row of an (m, 1) result's .tolist()
        return value[0]
    return value
