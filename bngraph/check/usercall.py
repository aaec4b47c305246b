"""Calling a user's forward and backward: find out how to call them, turn their faults into verdicts.

Conventions (see CONTRACT.md, ``check-backward``): ``FORWARD(x, gamma, beta, eps)`` or
``FORWARD(x, gamma, beta, bn_param)`` returns ``(out, cache)``; ``BACKWARD(dout, cache)``
or, without a cache, ``BACKWARD(dout, x, gamma, beta, eps)`` returns ``(dx, dgamma, dbeta)``.
For batchnorm-eval a forward may also be ``(x, gamma, beta, running_mean, running_var, eps)``
(or take ``bn_param`` with mode "test" and the running statistics), and a cache-free
backward ``(dout, x, gamma, beta, running_mean, running_var, eps)``.
"""

import inspect

import numpy as np

from bngraph.engine.usercode import UserExit, function_name, running_user_code, where_in
from bngraph.errors import BngraphError, one_line

GRADIENTS = ("dx", "dgamma", "dbeta")


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


def backward_style(backward, layer):
    """'cache' for BACKWARD(dout, cache), 'inputs' for (dout, x, gamma, beta, [running stats,] eps).

    >>> backward_style(lambda dout, x, gamma, beta, eps: None, "batchnorm")
    'inputs'
    """
    inputs = 7 if layer == "batchnorm-eval" else 5
    if _takes(backward, 2):
        return "cache"
    if _takes(backward, inputs):
        return "inputs"
    expected = "(dout, x, gamma, beta, running_mean, running_var, eps)" if inputs == 7 else "(dout, x, gamma, beta, eps)"
    raise BngraphError(f"{function_name(backward)} must take (dout, cache) or {expected}")


def forward_styles(forward, layer):
    """How to pass ε (and running statistics) to FORWARD, most likely first.

    "eps": a number; "param": a dict ``{"mode": "train", "eps": ...}``; "running": the
    running statistics, then ε.  The fourth parameter's name decides; if it says
    nothing, a number is tried first, then a dict.

    >>> forward_styles(lambda x, gamma, beta, bn_param: None, "batchnorm")
    ['param']
    """
    if layer == "batchnorm-eval" and _takes(forward, 6):
        return ["running"]  # (x, gamma, beta, running_mean, running_var, eps)
    if not _takes(forward, 4):
        raise BngraphError(f"{function_name(forward)} must take (x, gamma, beta, eps) or (x, gamma, beta, bn_param)")
    try:
        fourth = list(inspect.signature(forward).parameters)[3].lower()
    except (TypeError, ValueError, IndexError):
        fourth = ""
    if "param" in fourth:
        return ["param"]
    if fourth in ("eps", "epsilon"):
        return ["eps"]
    return ["eps", "param"]  # unknown name: try a number, then a dict


def default_forward(backward):
    """FORWARD next to BACKWARD: ``backward`` → ``forward`` in its name, in the same file.

    Failing that, the name is cut after "forward": ``batchnorm_backward_alt`` → ``batchnorm_forward``.

    >>> from bngraph.check.reference import batchnorm_backward_compact
    >>> default_forward(batchnorm_backward_compact).__name__
    'batchnorm_forward'
    """
    name = getattr(backward, "__name__", "")
    namespace = getattr(backward, "__globals__", {})
    if "backward" not in name:
        raise BngraphError(f"{function_name(backward)} takes (dout, cache); name its forward (--forward FILE.py:FUNC)")
    guess = name.replace("backward", "forward")
    for candidate in (guess, guess[: guess.find("forward") + len("forward")]):
        if "forward" in candidate and callable(namespace.get(candidate)):
            return namespace[candidate]
    raise BngraphError(f"{function_name(backward)} takes (dout, cache) but there is no {guess} next to it; "
                       "name its forward (--forward FILE.py:FUNC)")


class UserCodeFailed(Exception):
    """The user's forward or backward raised or returned something unusable: a verdict, not a crash."""


def call_user(role, function, *args):
    """``function(*args)``; whatever it raises, or a ``sys.exit()``, becomes a one-line UserCodeFailed naming its line.

    What it prints goes to stderr, marked as its own (:func:`~bngraph.engine.usercode.running_user_code`).

    >>> call_user("backward", lambda dout, cache: 1 / 0, 1.0, None)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    bngraph.check.usercall.UserCodeFailed: backward raised ZeroDivisionError: division by zero (..., line 1)
    """
    code = getattr(function, "__code__", None)
    filename = code.co_filename if code else None
    try:
        with np.errstate(all="ignore"), running_user_code(function_name(function), filename):
            return function(*args)
    except UserExit as exit_:  # sys.exit(0) is not a pass: the check never saw a gradient
        raise UserCodeFailed(f"{role} {exit_}") from None
    except Exception as error:
        message = one_line(error)
        raise UserCodeFailed(f"{role} raised {type(error).__name__}{': ' + message if message else ''}"
                             f"{where_in(error, filename)}") from None


def call_forward(forward, styles, case):
    """``(out, cache, style)`` from FORWARD on a case's inputs, trying each style of ``styles`` in turn.

    >>> from bngraph.check.reference import batchnorm_forward
    >>> from bngraph.check.backward import make_case
    >>> out, cache, style = call_forward(batchnorm_forward, ["eps"], make_case("batchnorm", (4, 3), 0, 1e-5))
    >>> out.shape, style
    ((4, 3), 'eps')
    """
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
            result = call_user("forward", forward, *args)
        except UserCodeFailed as failure:
            first_failure = first_failure or failure
            continue
        if not isinstance(result, (tuple, list)) or len(result) != 2:
            raise UserCodeFailed(f"forward returned {_describe(result)}; expected a pair (out, cache)")
        return result[0], result[1], style
    raise first_failure


def _describe(value):
    if isinstance(value, (tuple, list)):
        return f"a {type(value).__name__} of {len(value)} items"
    return "None" if value is None else f"a {type(value).__name__}"


def as_array(role, name, value):
    """``value`` as a float64 array, or UserCodeFailed saying what ``role`` returned instead.

    >>> as_array("backward", "dgamma", None)
    Traceback (most recent call last):
    bngraph.check.usercall.UserCodeFailed: backward returned None for dgamma; expected an array
    """
    try:
        if value is not None:
            return np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        pass
    raise UserCodeFailed(f"{role} returned {_describe(value)} for {name}; expected an array")


def gradients_from(result):
    """The arrays ``[dx, dgamma, dbeta]`` of what a backward returned, checked for count and type.

    >>> gradients_from((1.0, 2.0))
    Traceback (most recent call last):
    bngraph.check.usercall.UserCodeFailed: backward returned a tuple of 2 items; expected (dx, dgamma, dbeta)
    """
    if not isinstance(result, (tuple, list)) or len(result) != 3:
        raise UserCodeFailed(f"backward returned {_describe(result)}; expected (dx, dgamma, dbeta)")
    return [as_array("backward", name, value) for name, value in zip(GRADIENTS, result)]
