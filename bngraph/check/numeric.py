"""Numerical gradients that share no code with the references: finite differences and HIPS autograd.

Also the one error measure every check in bngraph uses, :func:`relative_error`:

    err_k = |a_k − b_k| / max(|a_k|, |b_k|, floor),   floor = max(1e-6 · scale, 1e-12)

relative to the larger of the two entries, but never to less than a millionth of
``scale``, by default the largest entry of either array: an entry that is 0 in exact
arithmetic and 1e-17 after rounding is not a mismatch.  The measure is symmetric in a
and b and lies in [0, 2].  When a whole array is small by cancellation (batch norm's dx
for N = 2 is ~ε/σ² times its terms), pass the size of its terms as ``scale``.
"""

import autograd.numpy as anp
import numpy as np
from autograd import grad

from bngraph.errors import BngraphError
from bngraph.check.reference import LAYERS, reference_forward

FLOOR_FRACTION = 1e-6
TINY = 1e-12


def relative_error(actual, expected, scale=None):
    """Entrywise relative error of two arrays of the same shape (see the module docstring).

    >>> relative_error([1.0, 2.0, 0.0], [1.0, 1.0, 1e-20]).tolist()   # 1e-20 / (1e-6 · 2)
    [0.0, 0.5, 5e-15]
    """
    a = np.asarray(actual, dtype=np.float64)
    b = np.asarray(expected, dtype=np.float64)
    if a.shape != b.shape:
        raise BngraphError(f"cannot compare arrays of shapes {a.shape} and {b.shape}")
    if scale is None:
        scale = max(np.abs(a).max(initial=0.0), np.abs(b).max(initial=0.0))
    floor = max(FLOOR_FRACTION * scale, TINY)
    return np.abs(a - b) / np.maximum(np.maximum(np.abs(a), np.abs(b)), floor)


def max_relative_error(actual, expected, scale=None):
    """Largest :func:`relative_error` and the index where it occurs: ``(error, index)``.

    >>> max_relative_error([[1.0, 2.0], [3.0, 4.0]], [[1.0, 2.0], [3.0, 5.0]])
    (0.2, (1, 1))
    """
    errors = relative_error(actual, expected, scale)
    if errors.size == 0:
        return 0.0, ()
    index = np.unravel_index(np.argmax(errors), errors.shape)
    return float(errors[index]), tuple(int(i) for i in index)


def central_difference(f, arrays, h=1e-5):
    """Gradient of a scalar function ``f(*arrays)`` by central differences in float64.

    One gradient array per input, each entry (f(a + h) − f(a − h)) / 2h.

    >>> [g.round(6).tolist() for g in central_difference(lambda a, b: (a**2).sum() * b, [[1.0, 2.0], 3.0])]
    [[6.0, 12.0], 5.0]
    """
    arrays = [np.array(a, dtype=np.float64) for a in arrays]
    gradients = []
    for a in arrays:
        gradient = np.zeros_like(a)
        for index in np.ndindex(a.shape):
            original = a[index]
            a[index] = original + h
            f_plus = f(*arrays)
            a[index] = original - h
            f_minus = f(*arrays)
            a[index] = original
            gradient[index] = (f_plus - f_minus) / (2 * h)
        gradients.append(gradient)
    return gradients


def numeric_backward(layer, dout, x, gamma, beta, eps=1e-5, running_mean=None, running_var=None, h=1e-5):
    """``(dx, dgamma, dbeta)`` by central differences of L = Σ y·dout through the reference forward.

    >>> dx, dgamma, dbeta = numeric_backward("batchnorm-eval", [[1.0]], [[3.0]], [2.0], [1.0], 1e-12, [1.0], [4.0])
    >>> [round(float(g[0]), 6) for g in (dx.ravel(), dgamma, dbeta)]
    [1.0, 1.0, 1.0]
    """
    dout = np.asarray(dout, dtype=np.float64)

    def loss(x, gamma, beta):
        return float((reference_forward(layer, x, gamma, beta, eps, running_mean, running_var) * dout).sum())

    return tuple(central_difference(loss, [x, gamma, beta], h))


def param_broadcast_shape(layer, ndim):
    """Shape that lays γ, β out against x: per channel (axis 1) for batch norm, per column for layer norm.

    >>> param_broadcast_shape("batchnorm", 4), param_broadcast_shape("layernorm", 2)
    ((1, -1, 1, 1), (-1,))
    """
    if layer == "layernorm" or ndim == 1:
        return (-1,)
    return (1, -1) + (1,) * (ndim - 2)


def stats_axes(layer, ndim):
    """Axes the mean and variance run over: all but the channel axis, or the last for layer norm.

    >>> stats_axes("batchnorm", 4), stats_axes("batchnorm", 2), stats_axes("layernorm", 2)
    ((0, 2, 3), (0,), (1,))
    """
    if layer == "layernorm":
        return (ndim - 1,)
    return (0,) + tuple(range(2, ndim))


def autograd_forward(layer, x, gamma, beta, eps=1e-5, running_mean=None, running_var=None):
    """The layer's output written again in ``autograd.numpy``, on x's own layout (keepdims means).

    >>> autograd_forward("layernorm", np.array([[1.0, 3.0]]), np.ones(2), np.zeros(2), 0.0).tolist()
    [[-1.0, 1.0]]
    """
    if layer not in LAYERS:
        raise BngraphError(f"unknown layer {layer!r}; built-in layers: {', '.join(LAYERS)}")
    shape = param_broadcast_shape(layer, np.ndim(x))
    if layer == "batchnorm-eval":
        mean = anp.reshape(anp.array(running_mean, dtype=float), shape)
        var = anp.reshape(anp.array(running_var, dtype=float), shape)
    else:
        axes = stats_axes(layer, np.ndim(x))
        mean = anp.mean(x, axis=axes, keepdims=True)
        var = anp.mean((x - mean) ** 2, axis=axes, keepdims=True)
    xhat = (x - mean) / anp.sqrt(var + eps)
    return anp.reshape(gamma, shape) * xhat + anp.reshape(beta, shape)


def autograd_backward(layer, dout, x, gamma, beta, eps=1e-5, running_mean=None, running_var=None):
    """``(dx, dgamma, dbeta)`` by reverse-mode AD (HIPS autograd) of L = Σ y·dout.

    >>> dx, dgamma, dbeta = autograd_backward("batchnorm", [[1.0], [0.0]], [[0.0], [2.0]], [1.0], [0.0], 0.0)
    >>> dgamma.tolist(), dbeta.tolist()
    ([-1.0], [1.0])
    """
    dout = np.asarray(dout, dtype=np.float64)
    arrays = [np.asarray(a, dtype=np.float64) for a in (x, gamma, beta)]

    def loss(x, gamma, beta):
        return anp.sum(autograd_forward(layer, x, gamma, beta, eps, running_mean, running_var) * dout)

    return tuple(grad(loss, argnum)(*arrays) for argnum in range(3))


def torch_batchnorm(x, gamma, beta, dout, eps=1e-5, momentum=0.1, running_mean=None, running_var=None):
    """PyTorch's ``F.batch_norm`` in float64, training mode, if torch is installed.

    Returns ``(out, dx, dgamma, dbeta, new_running_mean, new_running_var)`` as NumPy arrays;
    running statistics start at zeros and ones unless given.  Raises ImportError without torch.

    >>> out, dx, dgamma, dbeta, mean, var = torch_batchnorm(np.eye(3), np.ones(3), np.zeros(3), np.eye(3))  # doctest: +SKIP
    """
    import torch  # optional: only this comparison needs it
    import torch.nn.functional as F

    def tensor(a, grad=False):
        return torch.tensor(np.asarray(a, dtype=np.float64), requires_grad=grad)

    xt, gt, bt = tensor(x, True), tensor(gamma, True), tensor(beta, True)
    channels = xt.shape[1]
    rm = tensor(np.zeros(channels) if running_mean is None else running_mean)
    rv = tensor(np.ones(channels) if running_var is None else running_var)
    out = F.batch_norm(xt, rm, rv, gt, bt, training=True, momentum=momentum, eps=eps)
    out.backward(tensor(dout))  # F.batch_norm updated rm, rv in place
    arrays = (out.detach(), xt.grad, gt.grad, bt.grad, rm, rv)
    return tuple(a.numpy() for a in arrays)
