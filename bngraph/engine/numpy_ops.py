"""NumPy's calls on traced arrays: each supported ufunc and function, applied element by element.

NumPy hands every ufunc (``+``, ``**``, ``np.sqrt`` …) and every array function (``np.mean`` …)
called on a :class:`~bngraph.engine.arrays.TracedArray` (or on a traced scalar) back to it
(NEP 13 and NEP 18), and each supported one is applied element by element, so the trace
records one node per scalar operation and stays linear in m. Any other call (``np.abs``,
``np.maximum``, a comparison …) is refused in one line that names the call and the user's
file and line. This module is imported only when a traced function uses NumPy.

Its elements are anything with arithmetic and ``sqrt``/``exp``/``log`` methods (the tracer's
``Value``), or plain numbers:

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
from typing import Callable

import numpy as np

from bngraph.errors import BngraphError
from bngraph.engine.arrays import TracedArray, unsupported
from bngraph.engine.usercode import user_location


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


def _scalar(value):
    """A NumPy scalar as the Python number it holds (so that it never re-enters NumPy)."""
    return value.item() if isinstance(value, np.generic) else value


def data_of(value):
    """The object array behind a TracedArray; anything else as NumPy takes it."""
    if isinstance(value, TracedArray):
        return value.data
    if isinstance(value, (list, tuple)):
        return np.array([data_of(v) for v in value], dtype=object) if value else np.array([], dtype=object)
    return _scalar(value)


def wrap(result):
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
        return reduce_sum(inputs[0], kwargs.pop("axis", 0), keepdims=kwargs.pop("keepdims", False), out=out)
    if method != "__call__" or ufunc not in _ELEMENTWISE:
        call = f"np.{name}" + (f" ({_ALIASES[name]})" if name in _ALIASES else "")
        raise unsupported(call if method == "__call__" else f"np.{name}.{method}")
    out = kwargs.pop("out", None)
    _no_options(f"np.{name}", kwargs)
    result = _ELEMENTWISE[ufunc](*(_operand(v) for v in inputs))
    return _store(result, out) if out else wrap(result)


def _operand(value):
    """An input of an elementwise op: a traced scalar goes in a 0-d object array (given as
    itself, NumPy would hand the op back to it instead of applying it)."""
    value = data_of(value)
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


def reduce_sum(a, axis=None, dtype=None, out=None, keepdims=False, initial=None, where=True):
    data = np.asarray(data_of(a), dtype=object)
    if initial is not None or where is not True:
        raise unsupported("np.sum(..., initial=/where=...)")
    # NumPy's own loop on an object array: one `+` of two elements after another
    # (the tracer folds the chain into one sum).
    total = np.sum(data, axis=axis, keepdims=keepdims)
    return _store(total, (out,)) if out is not None else wrap(total)


def reduce_mean(a, axis=None, dtype=None, out=None, keepdims=False, *, where=True):
    data = np.asarray(data_of(a), dtype=object)
    total = np.sum(data, axis=axis, keepdims=keepdims)  # an axis it lacks raises NumPy's AxisError here
    result = total / _reduced_count(data, axis)
    return _store(result, (out,)) if out is not None else wrap(result)


def reduce_var(a, axis=None, dtype=None, out=None, ddof=0, keepdims=False, *, where=True, mean=None, correction=None):
    """Two-pass, as NumPy computes it: the mean of the squared deviations, over count − ddof."""
    if mean is not None or where is not True:
        raise unsupported("np.var(..., mean=/where=...)")
    ddof = correction if correction is not None else ddof
    data = np.asarray(data_of(a), dtype=object)
    centred = data - np.sum(data, axis=axis, keepdims=True) / _reduced_count(data, axis)
    count = _reduced_count(data, axis) - ddof
    if count <= 0:
        raise BngraphError(f"a variance with ddof={ddof} over {count + ddof} value(s) divides by zero "
                           f"({user_location()})")
    result = np.sum(_ELEMENTWISE[np.square](_operand(centred)), axis=axis, keepdims=keepdims) / count
    return _store(result, (out,)) if out is not None else wrap(result)


def reduce_std(a, axis=None, dtype=None, out=None, ddof=0, keepdims=False, *, where=True, mean=None, correction=None):
    variance = reduce_var(a, axis, ddof=ddof, keepdims=keepdims, where=where, mean=mean, correction=correction)
    return _store(data_of(np.sqrt(variance)), (out,)) if out is not None else np.sqrt(variance)


def _reshaped(how: Callable):
    def apply(a, *args, **kwargs):
        return wrap(how(np.asarray(data_of(a), dtype=object), *args, **kwargs))

    return apply


def _filled(value):
    def like(a, dtype=None, order="K", subok=True, shape=None):
        return TracedArray(np.full(np.shape(data_of(a)) if shape is None else shape, value, dtype=object))

    return like


FUNCTIONS: dict[Callable, Callable] = {
    np.sum: reduce_sum, np.mean: reduce_mean, np.var: reduce_var, np.std: reduce_std,
    np.reshape: _reshaped(np.reshape), np.transpose: _reshaped(np.transpose), np.ravel: _reshaped(np.ravel),
    np.squeeze: _reshaped(np.squeeze), np.expand_dims: _reshaped(np.expand_dims), np.copy: _reshaped(np.copy),
    np.atleast_1d: _reshaped(np.atleast_1d), np.atleast_2d: _reshaped(np.atleast_2d),
    np.ones_like: _filled(1), np.zeros_like: _filled(0),
    np.shape: lambda a: np.shape(data_of(a)), np.ndim: lambda a: np.ndim(data_of(a)), np.size: lambda a: np.size(data_of(a)),
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


def materialised(items: list, shape: tuple) -> np.ndarray:
    """``items`` (traced scalars) as a NumPy object array of ``shape``."""
    data = np.empty(len(items), dtype=object)
    data[:] = items
    return data.reshape(shape)
