"""Forward code on NumPy arrays: every operator in both operand orders, every supported NumPy
call, against finite differences of the same code run on plain numbers; what is refused,
in one line at the user's line; the trace stays linear in m."""
from __future__ import annotations

import re

import numpy as np
import pytest
import sympy as sp

from bngraph import BngraphError
from bngraph.cli import main
from bngraph.closedform.evaluate import adjoint_values, forward_values
from bngraph.closedform.simplify import closed_form_of
from bngraph.engine.derive import derive
from bngraph.engine.graph import build_graph
from bngraph.engine.trace import name, trace
from bngraph.engine.usercode import load_function

X = np.array([0.7, 1.3, 2.1])  # positive: x ** 0.5 and log are defined
DY = np.array([1.0, -2.0, 0.5])
C = 2.5
ROW = np.array([2.5, -1.0, 4.0])  # a constant array: a different number per example


def engine(func, x=X, dy=DY, params=None):
    """Forward values and dL/dx by the engine (trace, derive, walk the graph)."""
    t = trace(func, len(x))
    d = derive(build_graph(t, "named"))
    leaves = {f"x_{k}": v for k, v in enumerate(x, 1)} | (params or {})
    values = forward_values(d.graph, leaves)
    grads = adjoint_values(d, values, {f"dL_dy_{k}": v for k, v in enumerate(dy, 1)})
    m = len(x)
    return (np.array([values[f"y_{k}"] for k in range(1, m + 1)]),
            np.array([grads[f"x_{k}"] for k in range(1, m + 1)]))


def numbers(func, x, params=None):
    """The same function on plain numbers, its outputs flattened (no bngraph involved)."""
    out = func(np.array(x, dtype=float), *(params or {}).values())
    out = out[0] if isinstance(out, tuple) else out
    return np.ravel(np.array(out, dtype=float))


def finite_differences(func, x=X, dy=DY, params=None, h=1e-6):
    grad = np.zeros(len(x))
    for k in range(len(x)):
        up, down = x.copy(), x.copy()
        up[k] += h
        down[k] -= h
        grad[k] = (dy @ numbers(func, up, params) - dy @ numbers(func, down, params)) / (2 * h)
    return grad


# -- every operator, both operand orders, four ways of writing it ---------------------------
SCALAR_OPS = {
    "c + x": lambda v: C + v, "x + c": lambda v: v + C,
    "c - x": lambda v: C - v, "x - c": lambda v: v - C,
    "c * x": lambda v: C * v, "x * c": lambda v: v * C,
    "c / x": lambda v: C / v, "x / c": lambda v: v / C,
    "x ** c": lambda v: v**C, "x ** 3": lambda v: v**3, "x ** 0.5": lambda v: v**0.5,
    "-x": lambda v: -v, "+x": lambda v: +v, "x * x - x / x": lambda v: v * v - v / v,
}
NUMPY_SCALAR_OPS = {  # a NumPy scalar on the left hands the op to the traced value's __array_ufunc__
    "np.float64(c) - x": lambda v: np.float64(C) - v, "np.float64(c) / x": lambda v: np.float64(C) / v,
    "np.int64(3) - x": lambda v: np.int64(3) - v, "np.float32(0.5) * x": lambda v: np.float32(0.5) * v,
    "x - np.float64(c)": lambda v: v - np.float64(C), "np.pi ** 0 + np.e * x": lambda v: np.pi**0 + np.e * v,
}
ARRAY_OPS = {  # reflected array operations: the constant array on either side
    "row - x": lambda x: ROW - x, "x - row": lambda x: x - ROW, "row / x": lambda x: ROW / x,
    "x / row": lambda x: x / ROW, "row * x + row": lambda x: ROW * x + ROW, "row ** 0 * x ** row": lambda x: x**ROW,
}


@pytest.mark.parametrize("op", list(SCALAR_OPS) + list(NUMPY_SCALAR_OPS))
def test_each_operator_on_traced_scalars_matches_finite_differences(op):
    f = {**SCALAR_OPS, **NUMPY_SCALAR_OPS}[op]

    def per_example(x):  # plain Python on the list x: one traced scalar at a time
        return [f(xk) for xk in x]

    y, dx = engine(per_example)
    assert np.allclose(y, [f(v) for v in X], rtol=1e-12)
    assert np.allclose(dx, finite_differences(per_example), rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("op", list(SCALAR_OPS) + list(ARRAY_OPS))
def test_each_operator_on_traced_arrays_matches_finite_differences(op):
    f = SCALAR_OPS.get(op) or ARRAY_OPS[op]
    y, dx = engine(f)  # the function gets x as an array: the op applies to the whole of it
    assert np.allclose(y, numbers(f, X), rtol=1e-12)
    assert np.allclose(dx, finite_differences(f), rtol=1e-6, atol=1e-8)


def test_number_minus_traced_is_recorded_in_that_order():
    t = trace(lambda x: [C - xk for xk in x], 1)
    assert [(r.op, r.args) for r in t.records[1:]] == [("sub", (sp.Rational(5, 2), "x_1"))]


# -- every supported NumPy call ---------------------------------------------------------
CALLS = {
    "np.mean": lambda x, g: g * (x - np.mean(x)),
    "x.mean(axis=0, keepdims)": lambda x, g: g * (x - x.mean(axis=0, keepdims=True)),
    "np.sum / x.sum": lambda x, g: x * np.sum(x) + g * x.sum(axis=0),
    "np.add.reduce": lambda x, g: x * np.add.reduce(x) * g,
    "np.var": lambda x, g: x / np.var(x) * g,
    "x.var(ddof=1)": lambda x, g: x / x.var(ddof=1) * g,
    "np.std(axis, keepdims, ddof)": lambda x, g: x * np.std(x, axis=0, keepdims=True, ddof=1) + g,
    "x.std()": lambda x, g: x * x.std() + g,
    "np.sqrt / np.exp / np.log": lambda x, g: np.sqrt(x * x + 1) + np.exp(x / 4) * np.log(x + 2) * g,
    "np.square / np.power / **": lambda x, g: np.square(x) + np.power(x, 3) * g + x**2,
    "np.reciprocal": lambda x, g: np.reciprocal(x + g),
    "reshape / .T / transpose": lambda x, g: (x.reshape(-1, 1).T * g).transpose().reshape(len(x)),
    "np.newaxis / squeeze / ravel": lambda x, g: np.squeeze(x[:, np.newaxis] * g).ravel(),
    "np.reshape / np.transpose / expand_dims": lambda x, g: np.transpose(np.reshape(np.expand_dims(x, 0) * g, (1, -1))),
    "ones_like / zeros_like": lambda x, g: np.ones_like(x) * x.mean() + np.zeros_like(x) + x * g,
    "x.shape / len / size / ndim": lambda x, g: x * (x.shape[0] + len(x) + x.size + x.ndim + np.size(x)) * g,
    "indexing and slices": lambda x, g: x * x[0] * g + x[-1] + x[:1].sum(),
    "in-place": lambda x, g: _in_place(x, g),
    "mean of a Value / np.sqrt of a Value": lambda x, g: x * np.sqrt(np.mean(x[0] * g)),
}


def _in_place(x, g):
    y = x.copy()
    y -= x.mean()
    y *= g
    y += 1.5
    y /= 2
    return y


@pytest.mark.parametrize("call", list(CALLS))
@pytest.mark.parametrize("m", [1, 3])
def test_each_supported_numpy_call_traces_as_numpy_computes_it(call, m):
    f = CALLS[call]
    if m == 1 and call in ("x.var(ddof=1)", "np.std(axis, keepdims, ddof)", "np.var", "x.std()"):
        return  # undefined at m = 1 (dividing by a variance of one value, 0; the root of 0; or over m - 1 = 0)
    x, dy, params = X[:m], DY[:m], {"g": 1.7}
    y, dx = engine(f, x, dy, params)
    assert np.allclose(y, numbers(f, x, params), rtol=1e-12)
    assert np.allclose(dx, finite_differences(f, x, dy, params), rtol=1e-6, atol=1e-7)


def test_the_course_layout_gets_an_m_by_1_array_and_a_bn_param_dict():
    seen = {}

    def course(x, gamma, beta, bn_param):
        seen.update(shape=x.shape, gamma=gamma.shape, keys=sorted(bn_param), mode=bn_param["mode"])
        return gamma * x + beta + bn_param["eps"], {"cache": x}

    t = trace(course, 4)
    assert seen == {"shape": (4, 1), "gamma": (1,), "keys": ["eps", "mode", "momentum"], "mode": "train"}
    assert [(r.name, r.op) for r in t.records if not r.args][-3:] == [
        ("gamma", "parameter"), ("beta", "parameter"), ("epsilon", "constant")]


def test_code_that_needs_two_axes_is_traced_as_m_examples_of_one_feature():
    def two_axes(x, gamma, beta, eps):
        N, D = x.shape
        return gamma * (x - x.sum(axis=0) / N) + beta, (N, D)

    y, dx = engine(two_axes, params={"gamma": 2.0, "beta": 0.5, "eps": 1e-5})
    assert np.allclose(y, 2.0 * (X - X.mean()) + 0.5)
    assert np.allclose(dx, 2.0 * (DY - DY.mean()))


def test_running_average_updates_are_left_out_of_the_graph():
    def with_update(x, gamma, beta, bn_param):
        mu = x.mean(axis=0)
        bn_param["running_mean"] = 0.9 * bn_param.get("running_mean", np.zeros(1, dtype=x.dtype)) + 0.1 * mu
        return gamma * (x - mu) + beta, None

    without = trace(lambda x, gamma, beta, bn_param: (gamma * (x - x.mean(axis=0)) + beta, None), 3)
    assert len(trace(with_update, 3).records) == len(without.records)


@pytest.mark.parametrize("func", ["cs231n_np_var", "kratzert_nine_steps", "unbiased_ddof1", "rmsnorm_square",
                                  "transposed"])
def test_the_trace_grows_linearly_with_m(func):
    forward = load_function(f"tests/data/numpy_forwards.py:{func}")
    sizes = [len(trace(forward, m).records) for m in (8, 16, 32, 64)]
    steps = np.diff(sizes)
    assert steps[1] == 2 * steps[0] and steps[2] == 2 * steps[1], sizes  # a·m + b nodes


# -- what is refused: one line, exit 2, at the user's line ----------------------------------
REFUSED = '''
import numpy as np
from bngraph import name

def uses_abs(x, gamma):
    return np.abs(x) * gamma  # <abs>

def uses_builtin_abs(x, gamma):
    return [abs(xk) * gamma for xk in x]  # <builtin abs>

def uses_maximum(x, gamma):
    return np.maximum(x - x.mean(), 0) * gamma  # <maximum>

def compares(x, gamma):
    return (x > x.mean()) * gamma  # <comparison>

def branches(x, gamma):
    if x.mean() > 0:  # <branch>
        return x * gamma
    return -x * gamma

def uses_where(x, gamma):
    return np.where(x, x, 0) * gamma  # <where>

def uses_norm(x, gamma):
    return x / np.linalg.norm(x) * gamma  # <norm>

def to_float(x, gamma):
    return np.asarray(x, dtype=float) * gamma  # <float>

def divides_by_zero(x):
    return [xk / 0 for xk in x]  # <zero>

def divides_array_by_zero(x):
    return x / 0.0  # <array zero>

def bad_axis(x):
    return x - np.mean(x, axis=2)  # <axis>

def keyword_only(x, *, gamma):  # <keyword>
    return [xk * gamma for xk in x]

def no_parameters():  # <none>
    return []
'''
CASES = {
    "uses_abs": ("abs", "np.absolute (abs) is not supported"),
    "uses_builtin_abs": ("builtin abs", "abs() is not supported"),
    "uses_maximum": ("maximum", "np.maximum is not supported"),
    "compares": ("comparison", "comparison (>)"),
    "branches": ("branch", "data-dependent control flow"),
    "uses_where": ("where", "np.where is not supported"),
    "uses_norm": ("norm", "np.linalg.norm is not supported"),
    "to_float": ("float", "converted to a float64 array"),
    "divides_by_zero": ("zero", "division by zero"),
    "divides_array_by_zero": ("array zero", "division by zero"),
    "bad_axis": ("axis", "AxisError"),
    "keyword_only": ("keyword", "'gamma' as a keyword-only parameter"),
    "no_parameters": ("none", "takes no parameters"),
}


@pytest.fixture(scope="module")
def refused_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("refused") / "refused.py"
    path.write_text(REFUSED)
    return path


@pytest.mark.parametrize("func", list(CASES))
def test_what_cannot_be_traced_is_one_line_at_the_users_line(func, refused_file, capsys):
    marker, message = CASES[func]
    line = next(k for k, text in enumerate(REFUSED.splitlines(), 1) if f"# <{marker}>" in text)
    assert main(["derive", "--function", f"{refused_file}:{func}"]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err.count("\n") == 1, captured.err
    assert message in captured.err
    assert f"{refused_file}:{line}" in captured.err  # the user's file and line ...
    assert not re.search(r"(numpy|bngraph)/\w+", captured.err.replace(str(refused_file), ""))  # ... not ours


def test_a_star_args_function_is_refused_at_its_def():
    with pytest.raises(BngraphError, match=r"takes \*params.*no \*args.*test_arrays\.py:\d+"):
        trace(lambda x, *params: list(x), 2)


# -- name() inside a loop names a family ----------------------------------------------------
def test_name_called_on_each_element_in_a_loop_names_the_family():
    def looped(x, gamma):
        mu = sum(x) / len(x)
        xhat = [name(xk - mu, "xhat") for xk in x]
        out = []
        for h in xhat:
            out.append(name(gamma * h, "scaled"))
        return out

    names = [r.name for r in trace(looped, 3).records]
    assert {"xhat_1", "xhat_2", "xhat_3"} <= set(names) and "xhat" not in names
    assert names[-3:] == ["y_1", "y_2", "y_3"]  # the outputs keep their names; scaled_k are the outputs
    cf = closed_form_of(looped, "looped")
    assert "xhat[i]" in cf.definitions and str(cf.formulas["dL_dxhat[i]"]) == "gamma*dL_dy[i]"


def test_name_on_an_array_names_each_element():
    def on_array(x, gamma):
        xhat = name(x - x.mean(), "xhat")
        return gamma * xhat

    names = [r.name for r in trace(on_array, 2).records]
    assert "xhat_1" in names and "xhat_2" in names


# -- the corpus of real styles, at a concrete m ------------------------------------------------
CORPUS_NAMES = list(load_function("tests/data/numpy_forwards.py:cs231n_np_var").__globals__["REFERENCE"])


@pytest.mark.parametrize("func", CORPUS_NAMES)
def test_every_corpus_forward_derives_and_its_gradients_match_finite_differences(func):
    from bngraph.engine.trace import run

    forward = load_function(f"tests/data/numpy_forwards.py:{func}")
    t = trace(forward, 4)
    d = derive(build_graph(t, "named"))
    leaves = [n.name for n in d.graph.with_role("parameter", "constant")]
    point = dict(zip(leaves, [1.3, -0.4, 0.01]))  # by position: scale, shift (or ε), ε
    x, dy = np.array([0.3, -1.1, 2.0, 0.8]), np.array([1.0, -0.5, 2.0, 0.3])
    values = forward_values(d.graph, {f"x_{k}": x[k - 1] for k in range(1, 5)} | point)
    grads = adjoint_values(d, values, {f"dL_dy_{k}": dy[k - 1] for k in range(1, 5)})

    def loss(v):  # the user's own code on numbers, laid out as it was traced
        return dy @ np.array(run(t, v, point.__getitem__), dtype=float)

    h, fd = 1e-6, []
    for k in range(4):
        e = np.zeros(4)
        e[k] = h
        fd.append((loss(x + e) - loss(x - e)) / (2 * h))
    assert np.allclose([values[f"y_{k}"] for k in range(1, 5)], np.array(run(t, x, point.__getitem__), dtype=float))
    assert np.allclose([grads[f"x_{k}"] for k in range(1, 5)], fd, rtol=1e-6, atol=1e-8)


# -- NumPy only when an array is used as one ---------------------------------------------------
def test_plain_python_forwards_never_import_numpy(tmp_path):
    import subprocess
    import sys
    from pathlib import Path

    user = Path(__file__).parent / "data" / "user_layers.py"
    script = ("import sys; from bngraph.cli import main\n"
              "for args in (['derive', '--no-cache'], ['derive'], ['derive', '--view', 'staged', '--format', 'json'],\n"
              f"             ['derive', '--function', {str(user) + ':my_batchnorm'!r}, '--no-cache']):\n"
              "    assert main(args) == 0\n"
              "print('numpy' in sys.modules, file=sys.stderr)")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300,
                          env={**__import__("os").environ, "BNGRAPH_CACHE_DIR": str(tmp_path)})
    assert done.returncode == 0 and done.stderr.strip() == "False", done.stderr[-2000:]


def test_a_traced_array_has_numpys_operators():
    from bngraph.engine.arrays import OPERATORS, TracedArray

    mixin = {k for k in vars(np.lib.mixins.NDArrayOperatorsMixin) if k.startswith("__") and k != "__hash__"}
    assert mixin - {"__module__", "__doc__", "__slots__", "__dict__", "__weakref__", "__qualname__",
                    "__firstlineno__", "__static_attributes__"} <= set(OPERATORS)
    assert all(callable(getattr(TracedArray, k)) for k in OPERATORS) and TracedArray.__hash__ is None


def test_x_as_a_list_and_as_an_array_trace_alike():
    from bngraph.engine.layers import LAYERS

    def as_list(x, gamma, beta, eps):
        return LAYERS["layernorm"].function(x, gamma, beta, eps)

    def as_array(x, gamma, beta, eps):
        assert x.dtype == object  # made a NumPy array before the layer runs
        return LAYERS["layernorm"].function(x, gamma, beta, eps)

    assert trace(as_list, 5).records == trace(as_array, 5).records


def running_sum_written_into_x(x, gamma):
    """Writes into x while iterating over it: NumPy's iteration sees each write."""
    out = []
    for k, xk in enumerate(x):
        if k + 1 < len(x):
            x[k + 1] = x[k + 1] + xk
        out.append(gamma * xk)
    return out


def test_writes_into_x_while_iterating_are_seen_as_numpy_sees_them():
    y, dx = engine(running_sum_written_into_x, params={"gamma": C})
    assert np.allclose(y, numbers(running_sum_written_into_x, X, {"gamma": C}), rtol=1e-12)
    assert np.allclose(dx, finite_differences(running_sum_written_into_x, params={"gamma": C}), rtol=1e-6)


def test_numpy_scalars_are_constants_of_their_python_value():
    from bngraph.engine.trace import constant

    assert constant(np.float32(0.1)) == sp.Rational(repr(float(np.float32(0.1))))  # the float32 it is, exactly
    assert constant(np.int64(3)) == 3 and constant(np.float64(0.25)) == sp.Rational(1, 4)
    with pytest.raises(BngraphError, match="cannot trace an operation with bool"):
        constant(np.True_)


def scalar_times_constant_array(x):
    """A traced scalar times a NumPy array: the array applies the product per element."""
    mu = x.mean()
    return x - mu * ROW


def test_a_traced_scalar_leaves_a_numpy_array_operand_to_the_array():
    y, dx = engine(scalar_times_constant_array)
    assert np.allclose(y, numbers(scalar_times_constant_array, X), rtol=1e-12)
    assert np.allclose(dx, finite_differences(scalar_times_constant_array), rtol=1e-6)
