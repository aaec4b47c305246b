"""Arrays of traced scalars (``TracedArray``), and how a user's forward is called.

Forward passes are written on plain lists or on NumPy arrays (``x.mean(axis=0)``,
``np.var(x, axis=0)``, ``np.sqrt(var + eps)``, broadcasting). The tracer hands ``x`` to every
forward as a ``TracedArray``. Until the forward uses it as an array, it is the m traced inputs
in a list, and NumPy is not imported at all: ``len(x)``, ``for xk in x`` and ``x[k]`` are all
that plain-Python code asks of it. Anything else (an operator, a method, a NumPy function)
turns it into a NumPy object array for good, and :mod:`bngraph.engine.numpy_ops` applies
NumPy's calls to it element by element.

>>> a = traced_array([1.0, 2.0, 9.0], (3,))
>>> len(a), a[2], [v for v in a], a.shape
(3, 9.0, [1.0, 2.0, 9.0], (3,))
>>> float(a.mean()), (2 * a).shape
(4.0, (3,))
"""
from __future__ import annotations

import math
import sys
from dataclasses import dataclass
from typing import Callable

from bngraph.errors import BngraphError
from bngraph.engine.usercode import user_location

SUPPORTED = ("+ - * / ** (by a number), mean, sum, var, std (axis, keepdims, ddof), sqrt, exp, log, square, "
             "power, reshape, .T, transpose, np.newaxis, ones_like, zeros_like, .shape, len")


def unsupported(call: str) -> BngraphError:
    """The one-line error for a NumPy call the tracer cannot follow."""
    return BngraphError(f"{call} is not supported in a traced function ({user_location()}): "
                        f"bngraph traces smooth straight-line code: {SUPPORTED}")



def _numpy_ops():
    """The NumPy half of traced arrays, imported when first needed (it imports NumPy)."""
    from bngraph.engine import numpy_ops

    return numpy_ops


def is_ndarray(value) -> bool:
    """A TracedArray or a NumPy array (there is none of those while NumPy is not imported)."""
    if isinstance(value, TracedArray):
        return True
    np = sys.modules.get("numpy")
    return np is not None and isinstance(value, np.ndarray)


# The operators of numpy.lib.mixins.NDArrayOperatorsMixin (each applies the matching ufunc),
# taken from NumPy when first used, so that a TracedArray needs no NumPy until it is used as one.
OPERATORS = tuple(f"__{op}__" for op in ("lt", "le", "eq", "ne", "gt", "ge", "neg", "pos", "abs", "invert")) + tuple(
    f"__{kind}{op}__" for op in ("add", "sub", "mul", "matmul", "truediv", "floordiv", "mod", "pow", "lshift",
                                 "rshift", "and", "xor", "or") for kind in ("", "r", "i")) + ("__divmod__", "__rdivmod__")


def _operator(name: str):
    def apply(self, *other):
        method = getattr(_numpy_ops().np.lib.mixins.NDArrayOperatorsMixin, name, None)
        return NotImplemented if method is None else method(self, *other)  # (a NumPy without it: as without the mixin's)

    apply.__name__ = name
    return apply


class TracedArray:
    """An array of traced scalars (a NumPy object array inside, once it is needed); NumPy calls
    dispatch to it, its operators are NumPy's ``NDArrayOperatorsMixin``'s."""

    __slots__ = ("_data", "_items", "_shape")
    __hash__ = None  # it compares elementwise, as NumPy's arrays do

    def __init__(self, data):
        self._data, self._items, self._shape = data, None, None

    @property
    def data(self):
        """The NumPy object array (made from the list of inputs the first time it is asked for)."""
        if self._data is None:
            self._data = _numpy_ops().materialised(self._items, self._shape)
            self._items = None
        return self._data

    def _flat(self) -> bool:
        """Still the plain list of a one-dimensional array (no NumPy needed)."""
        return self._data is None and len(self._shape) == 1

    def _element(self, k: int):
        return self._items[k] if self._data is None else _numpy_ops().wrap(self._data[k])

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        return _numpy_ops().apply_ufunc(ufunc, method, inputs, kwargs)

    def __array_function__(self, func, types, args, kwargs):
        return _numpy_ops().apply_function(func, args, kwargs)

    def __array__(self, dtype=None, copy=None):
        # np.asarray(x) keeps the traced scalars (their own methods still trace); a float array cannot
        np = _numpy_ops().np
        if dtype is not None and np.dtype(dtype) != object:
            raise BngraphError(f"traced values were converted to a {np.dtype(dtype)} array at {user_location()}; "
                               "bngraph traces the array as it is")
        return self.data.copy() if copy else self.data

    # -- the array's face ----------------------------------------------------------------
    shape = property(lambda self: self.data.shape if self._data is not None else self._shape)
    ndim = property(lambda self: len(self.shape))
    size = property(lambda self: math.prod(self.shape))
    dtype = property(lambda self: self.data.dtype)  # object: np.zeros(D, dtype=x.dtype) holds traced values
    T = property(lambda self: TracedArray(self.data.T))

    def __len__(self):
        return self._shape[0] if self._data is None else len(self._data)

    def __iter__(self):
        if self._flat():  # element by element, so that a write into x on the way is seen, as NumPy's would be
            return (self._element(k) for k in range(self._shape[0]))
        return (_numpy_ops().wrap(row) for row in self.data)

    def __getitem__(self, key):
        if self._flat() and type(key) is int and -self._shape[0] <= key < self._shape[0]:
            return self._items[key]
        return _numpy_ops().wrap(self.data[key])

    def __setitem__(self, key, value):
        self.data[key] = _numpy_ops().data_of(value)

    def __bool__(self):
        raise BngraphError(f"data-dependent control flow: a traced array was used in an `if` or `bool()` "
                           f"at {user_location()}; bngraph traces straight-line code only")

    def __repr__(self):
        return f"TracedArray(shape={self.shape})"

    # -- methods of the same names as NumPy's functions -------------------------------------
    def sum(self, axis=None, dtype=None, out=None, keepdims=False, **kwargs):
        return _numpy_ops().reduce_sum(self, axis, dtype, out, keepdims, **kwargs)

    def mean(self, axis=None, dtype=None, out=None, keepdims=False, **kwargs):
        return _numpy_ops().reduce_mean(self, axis, dtype, out, keepdims, **kwargs)

    def var(self, axis=None, dtype=None, out=None, ddof=0, keepdims=False, **kwargs):
        return _numpy_ops().reduce_var(self, axis, dtype, out, ddof, keepdims, **kwargs)

    def std(self, axis=None, dtype=None, out=None, ddof=0, keepdims=False, **kwargs):
        return _numpy_ops().reduce_std(self, axis, dtype, out, ddof, keepdims, **kwargs)

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
        np = _numpy_ops().np
        if np.dtype(dtype) != object and np.dtype(dtype).kind != "f":
            raise BngraphError(f"traced values were converted to {np.dtype(dtype)} at {user_location()}; "
                               "bngraph traces smooth functions of real numbers only")
        return self.copy()


for _name in OPERATORS:
    setattr(TracedArray, _name, _operator(_name))


def traced_array(items: list, shape: tuple) -> TracedArray:
    """``items`` (traced scalars) as a TracedArray of ``shape`` (a list until it is used as an array)."""
    array = TracedArray(None)
    array._items, array._shape = list(items), tuple(shape)
    return array


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
    if is_ndarray(result):
        np = _numpy_ops().np
        return list(np.asarray(_numpy_ops().data_of(result), dtype=object).ravel())
    if _is_array(result):  # autograd's ArrayBox, when verify runs the function under autograd
        flat = result.reshape(-1)
        return [flat[k] for k in range(flat.shape[0])]
    if isinstance(result, (list, tuple)):
        return [_only(v) for v in result]
    return result


def _is_array(value) -> bool:
    """An array of one or more dimensions: NumPy's, ours, or one that stands in for them (autograd's)."""
    if is_ndarray(value):
        return value.ndim > 0
    return hasattr(value, "reshape") and len(getattr(value, "shape", ())) > 0


def _only(value):
    """One output: a one-element array (a row of an (m, 1) result) as its element."""
    if is_ndarray(value) and value.size == 1:
        np = _numpy_ops().np
        return np.asarray(_numpy_ops().data_of(value), dtype=object).ravel()[0]
    if isinstance(value, list) and len(value) == 1:  # a row of an (m, 1) result's .tolist()
        return value[0]
    return value
