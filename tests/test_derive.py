"""Reverse-mode derivation: the adjoints in the JSON, evaluated by walking the graph, equal
a NumPy backward written by hand and central finite differences of a NumPy forward."""
import numpy as np
import pytest
import sympy as sp

from bngraph import build_graph, derive
from bngraph.engine.layers import LAYERS, trace_target
from numpy_layers import REFERENCES, batchnorm_statistics_adjoints, finite_differences
from walk_json import JsonGraph, derive_json, rel_error, target_spec

BUILT_IN = ["batchnorm", "batchnorm-eval", "layernorm"]
USER = ["my_batchnorm", "batchnorm_one_pass", "rmsnorm", "log_softmax"]


def random_point(target, m, seed):
    """x, the layer's parameters, and an upstream gradient dL_dy, all random."""
    rng = np.random.default_rng([seed, m, len(target)])
    return rng.normal(0.5, 1.5, m), REFERENCES[target].sample_params(rng), rng.normal(size=m)


def trainable(params):
    return tuple(p for p in ("gamma", "beta") if p in params)


def check_gradients(target, m, view, seeds=(0, 1)):
    """dL/dx_k, dL/dgamma, dL/dbeta from the JSON against the NumPy backward and finite differences."""
    doc = JsonGraph(derive_json(target, m, view))
    reference = REFERENCES[target]
    for seed in seeds:
        x, params, dy = random_point(target, m, seed)
        wrt = trainable(params)
        derived = doc.gradients(x, params, dy, wrt)
        backward = reference.backward(dy, x, **params)
        numeric = finite_differences(reference.forward, dy, x, params, wrt)
        for quantity in ("x", *wrt):
            assert rel_error(derived[quantity], backward[quantity]) < 1e-9, (quantity, "NumPy backward")
            assert rel_error(derived[quantity], numeric[quantity]) < 1e-7, (quantity, "finite differences")
    return doc


@pytest.mark.parametrize("m", [1, 2, 3, 5, 16])
@pytest.mark.parametrize("view", ["named", "staged"])
@pytest.mark.parametrize("layer", BUILT_IN)
def test_built_in_layer_gradients(layer, view, m):
    check_gradients(layer, m, view)


def test_batchnorm_gradients_at_m_64():
    check_gradients("batchnorm", 64, "named", seeds=(0,))


@pytest.mark.parametrize("view", ["named", "staged"])
@pytest.mark.parametrize("target", USER)
def test_user_function_gradients(target, view):
    for m in (1, 4):
        check_gradients(target, m, view, seeds=(0,))


@pytest.mark.parametrize("layer", BUILT_IN + ["my_batchnorm"])
def test_named_and_staged_views_give_the_same_gradients(layer):
    named, staged = (JsonGraph(derive_json(layer, 5, v)) for v in ("named", "staged"))
    x, params, dy = random_point(layer, 5, seed=7)
    a, b = named.gradients(x, params, dy), staged.gradients(x, params, dy)
    assert rel_error(a["x"], b["x"]) < 1e-12
    assert rel_error(a["gamma"], b["gamma"]) < 1e-12 and a["beta"] == pytest.approx(b["beta"], rel=1e-14)


# -- the shape of the derivation --------------------------------------------------------
@pytest.mark.parametrize("view", ["named", "staged"])
@pytest.mark.parametrize("layer", BUILT_IN)
def test_every_adjoint_uses_forward_names_and_its_childrens_adjoints(layer, view):
    doc = JsonGraph(derive_json(layer, 3, view))
    children = {n: [c for c, node in doc.nodes.items() if n in node["parents"]] for n in doc.nodes}
    has_adjoint = {n for n, node in doc.nodes.items() if node["role"] not in ("output", "constant")}
    assert set(doc.adjoints) == {f"dL_d{n}" for n in has_adjoint}
    for n in has_adjoint:
        allowed = set(doc.nodes) | {f"dL_d{c}" for c in children[n]}
        assert {s.name for s in doc.adjoints[f"dL_d{n}"].free_symbols} <= allowed, n
        assert {s.name for s in doc.adjoints[f"dL_d{n}"].free_symbols if s.name.startswith("dL_d")} \
            == {f"dL_d{c}" for c in children[n]}, n


def test_adjoint_terms_are_the_chain_rule_sum_over_children():
    d = derive(build_graph(LAYERS["batchnorm"].trace(3), "named"))
    mu = d.adjoints["mu"]
    assert mu.name == "dL_dmu" and mu.symbol == sp.Symbol("dL_dmu")
    assert [c for c, _ in mu.terms] == ["sigma2", "xhat_1", "xhat_2", "xhat_3"]
    assert sp.simplify(mu.expr - sum(sp.Symbol(f"dL_d{c}") * p for c, p in mu.terms)) == 0
    assert d.partials["x_2", "mu"] == sp.Rational(1, 3)
    assert d.partials["beta", "y_1"] == 1
    assert d.upstream == sp.symbols("dL_dy_1:4")
    assert "y_1" not in d.adjoints and "epsilon" not in d.adjoints


@pytest.mark.parametrize("view", ["named", "staged"])
def test_substituted_adjoints_equal_the_numpy_backward(view):
    d = derive(build_graph(LAYERS["batchnorm"].trace(3), view))
    x, params, dy = random_point("batchnorm", 3, seed=3)
    # Forward values of every node (xmu_k, ivar … in the staged view), then the upstream dL_dy_k.
    values = JsonGraph(derive_json("batchnorm", 3, view)).evaluate_forward(x, params)
    values |= {f"dL_dy_{k}": g for k, g in enumerate(dy, 1)}
    expected = REFERENCES["batchnorm"].backward(dy, x, **params)
    for node, want in [("x_2", expected["x"][1]), ("gamma", expected["gamma"]), ("beta", expected["beta"])]:
        expr = d.substituted(node)
        adjoints = {s.name for s in expr.free_symbols if s.name.startswith("dL_d")}
        assert adjoints <= {"dL_dy_1", "dL_dy_2", "dL_dy_3"}  # only the given upstream gradients
        got = float(expr.xreplace({s: sp.Float(values[s.name], 30) for s in expr.free_symbols}))
        assert got == pytest.approx(want, rel=1e-12, abs=1e-14)


# -- the sigma2 -> mu path ----------------------------------------------------------------
def sigma2_term(target, x, params, dy):
    """∂sigma2/∂mu and the term dL_dsigma2·∂sigma2/∂mu of dL/dmu at a point, with every adjoint there."""
    layer, function = target_spec(target)
    d = derive(build_graph(trace_target(layer, function, len(x)), "named"))
    terms = dict(d.adjoints["mu"].terms)
    assert "sigma2" in terms  # dL/dmu has a path through sigma2
    values = JsonGraph(derive_json(target, len(x), "named")).evaluate_adjoints(x, params, dy)
    partial = terms["sigma2"]
    value = float(partial.xreplace({s: sp.Float(values[s.name], 30) for s in partial.free_symbols}))
    return value, value * values["dL_dsigma2"], values


def point_with_mean_away_from_zero(m):
    x, params, dy = random_point("batchnorm", m, seed=m)
    return x - x.mean() + 1.5, params, dy


@pytest.mark.parametrize("m", [1, 2, 3, 5])
def test_two_pass_variance_sigma2_term_of_dL_dmu_is_zero(m):
    x, params, dy = point_with_mean_away_from_zero(m)
    partial, term, values = sigma2_term("batchnorm", x, params, dy)
    assert abs(partial) < 1e-12 * np.max(np.abs(x))  # -(2/m) Σ (x_j − mu) = 0
    assert abs(term) < 1e-12 * max(1.0, abs(values["dL_dmu"]))
    dsigma2, dmu = batchnorm_statistics_adjoints(dy, x, params["gamma"], params["epsilon"])
    assert values["dL_dmu"] == pytest.approx(dmu, rel=1e-10)
    assert values["dL_dsigma2"] == pytest.approx(dsigma2, rel=1e-10, abs=1e-14)


@pytest.mark.parametrize("m", [2, 3, 5])
def test_one_pass_variance_changes_dL_dmu_but_not_dL_dx(m):
    x, params, dy = point_with_mean_away_from_zero(m)
    _, _, two_pass = sigma2_term("batchnorm", x, params, dy)
    partial, term, one_pass = sigma2_term("batchnorm_one_pass", x, params, dy)

    mu = x.mean()
    assert partial == pytest.approx(-2 * mu, rel=1e-12)  # ∂((1/m)Σx² − μ²)/∂μ
    assert abs(term) > 1e-3
    dsigma2, dmu_two_pass = batchnorm_statistics_adjoints(dy, x, params["gamma"], params["epsilon"])
    assert one_pass["dL_dsigma2"] == pytest.approx(dsigma2, rel=1e-9)
    assert one_pass["dL_dmu"] == pytest.approx(dmu_two_pass - 2 * mu * dsigma2, rel=1e-9)
    assert abs(one_pass["dL_dmu"] - two_pass["dL_dmu"]) > 1e-3 * abs(two_pass["dL_dmu"])

    dx_one = [one_pass[f"dL_dx_{k}"] for k in range(1, m + 1)]
    dx_two = [two_pass[f"dL_dx_{k}"] for k in range(1, m + 1)]
    assert rel_error(dx_one, dx_two) < 1e-9
    assert rel_error(dx_one, REFERENCES["batchnorm"].backward(dy, x, **params)["x"]) < 1e-9


class _CountingArgs(tuple):
    """An op's arguments that count how often they are walked (unpacked, iterated)."""

    walks = 0

    def __iter__(self):
        type(self).walks += 1
        return super().__iter__()


def test_an_m_term_sums_partials_walk_its_arguments_a_bounded_number_of_times():
    # issue 17: unpacking the m arguments of an m-term sum once per partial cost m² (seconds at m = 16384)
    from bngraph.engine.primitives import local_partials

    m = 200
    args = _CountingArgs(sp.symbols(f"x_1:{m + 1}"))
    partials = local_partials("add", args)
    assert partials == (sp.S.One,) * m
    assert _CountingArgs.walks <= 2
