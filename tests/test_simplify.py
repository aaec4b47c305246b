"""The closed form for every m: against the concrete-m derivation exactly, and against
NumPy backward passes written independently in tests/numpy_layers.py."""
from __future__ import annotations

import json
import random
from fractions import Fraction

import numpy as np
import pytest
import sympy as sp
from sympy.parsing.sympy_parser import parse_expr

import numpy_layers as ref
from bngraph.cli import main
from bngraph.engine.derive import derive
from bngraph.engine.graph import build_graph
from bngraph.engine.layers import LAYERS, load_function
from bngraph.closedform.simplify import closed_form, closed_form_of, concrete
from bngraph.engine.trace import name, sqrt

USER = "tests/data/user_layers.py"


@pytest.fixture(scope="module")
def bn():
    return closed_form_of(LAYERS["batchnorm"].function, "batchnorm")


def exact_point(m: int, rng: random.Random, running=False):
    """Random rationals with σ² + ε a perfect square, so every value is rational."""
    x = [sp.Rational(rng.randint(-40, 40), rng.randint(1, 9)) for _ in range(m)]
    mu = sum(x) / m
    sigma2 = sum((v - mu) ** 2 for v in x) / m
    q = sp.Rational(rng.randint(1, 30), 7)
    while q**2 <= sigma2:
        q += 1
    leaves = {f"x_{k}": v for k, v in enumerate(x, 1)}
    leaves.update(gamma=sp.Rational(rng.randint(1, 20), 3), beta=sp.Rational(rng.randint(-9, 9), 4),
                  epsilon=q**2 - sigma2)
    if running:  # eval mode: running_var + ε a perfect square too
        leaves.update(running_mean=sp.Rational(1, 3), running_var=sp.Rational(7, 9), epsilon=sp.Rational(2, 9))
    upstream = {f"dL_dy_{k}": sp.Rational(rng.randint(-20, 20), rng.randint(1, 5)) for k in range(1, m + 1)}
    return leaves, upstream


def exact_walk(derivation, leaves, upstream):
    """Forward values then adjoints, in exact arithmetic (no floats anywhere)."""
    known = {sp.Symbol(k): v for k, v in {**leaves, **upstream}.items()}
    for node in derivation.graph:
        if node.expr is not None:
            known[node.symbol] = node.expr.xreplace(known)
    for n, adjoint in derivation.adjoints.items():
        known[adjoint.symbol] = adjoint.expr.xreplace(known)
    return known


@pytest.mark.parametrize("layer", ["batchnorm", "layernorm", "batchnorm-eval"])
def test_closed_form_equals_the_concrete_derivation_exactly_for_m_1_to_16(layer):
    cf = closed_form_of(LAYERS[layer].function, layer)
    rng = random.Random(layer)
    for m in range(1, 17):
        d = derive(build_graph(LAYERS[layer].trace(m), "named"))
        leaves, upstream = exact_point(m, rng, running=layer == "batchnorm-eval")
        known = exact_walk(d, leaves, upstream)
        for k in range(1, m + 1):
            closed = cf.instantiate("dL_dx[i]", m, k).xreplace(known)
            assert closed.is_Rational and closed == known[sp.Symbol(f"dL_dx_{k}")], (m, k)
        for p in ("gamma", "beta"):
            assert concrete(cf.formulas[f"dL_d{p}"], m).xreplace(known) == known[sp.Symbol(f"dL_d{p}")]


def test_closed_form_equals_the_concrete_derivation_symbolically_for_small_m(bn):
    for m in (1, 2, 3):
        d = derive(build_graph(LAYERS["batchnorm"].trace(m), "named"))
        xhat = {sp.Symbol(f"xhat_{k}"): d.graph[f"xhat_{k}"].expr for k in range(1, m + 1)}
        defs = {sp.Symbol(n): d.graph[n].expr for n in ("sigma2", "mu")}
        for k in range(1, m + 1):
            diff = d.substituted(f"x_{k}") - bn.instantiate("dL_dx[i]", m, k).xreplace(xhat)
            for _ in range(2):  # σ² holds μ: two rounds of definitions
                diff = diff.xreplace(defs)
            assert sp.simplify(diff) == 0


def numeric(cf, key, m, values: dict):
    out = []
    symbols = {sp.Symbol(k): v for k, v in values.items()}
    indices = range(1, m + 1) if key.endswith("[i]") else [None]
    for k in indices:
        out.append(float(concrete(cf.formulas[key], m, k).xreplace(symbols)))
    return np.array(out)


@pytest.mark.parametrize("m", [1, 2, 7, 64])
def test_closed_form_matches_an_independent_numpy_backward(bn, m):
    rng = np.random.default_rng(m)
    x, dy = rng.normal(3.0, 2.0, m), rng.normal(size=m)
    gamma, beta, eps = 1.7, -0.3, 1e-5
    fwd = ref.batchnorm_forward(x, gamma, beta, eps)
    values = {f"x_{k}": x[k - 1] for k in range(1, m + 1)}
    values.update({f"xhat_{k}": fwd["xhat"][k - 1] for k in range(1, m + 1)})
    values.update({f"dL_dy_{k}": dy[k - 1] for k in range(1, m + 1)})
    values.update(gamma=gamma, beta=beta, epsilon=eps, mu=fwd["mu"], sigma2=fwd["sigma2"])
    want = ref.batchnorm_backward(dy, x, gamma, beta, eps)
    scale = abs(gamma) * np.abs(dy).max() / np.sqrt(fwd["sigma2"] + eps)
    assert np.allclose(numeric(bn, "dL_dx[i]", m, values), want["x"], rtol=1e-9, atol=1e-9 * scale)
    assert np.isclose(numeric(bn, "dL_dgamma", m, values)[0], want["gamma"], rtol=1e-10)
    assert np.isclose(numeric(bn, "dL_dbeta", m, values)[0], want["beta"], rtol=1e-12)
    dsigma2, dmu = ref.batchnorm_statistics_adjoints(dy, x, gamma, eps)
    assert np.isclose(numeric(bn, "dL_dsigma2", m, values)[0], dsigma2, rtol=1e-9, atol=1e-12)
    assert np.isclose(numeric(bn, "dL_dmu", m, values)[0], dmu, rtol=1e-9)


def test_m_equal_one_gives_zero_input_gradient(bn):
    # σ² = 0, x̂ = 0: the output is β whatever x is, so dL/dx_1 = 0 exactly.
    assert bn.instantiate("dL_dx[i]", 1, 1).xreplace({sp.Symbol("xhat_1"): 0}) == 0


def test_textbook_structure_of_batchnorm(bn):
    m, i, j = sp.Symbol("m"), sp.Symbol("i"), sp.Symbol("j")
    f = bn.formulas["dL_dx[i]"]
    # One factor γ/(m √(σ² + ε)) and three terms: m·dy_i, −Σ dy_j, −x̂_i Σ dy_j x̂_j.
    numer, denom = sp.fraction(sp.factor_terms(f))
    assert denom.free_symbols >= {sp.Symbol("epsilon"), sp.Symbol("sigma2")}
    assert len(sp.Add.make_args(sp.expand(numer / sp.Symbol("gamma")))) == 3
    assert {type(a) for a in f.atoms(sp.Sum)} == {sp.Sum}


def test_no_kronecker_delta_or_piecewise_anywhere():
    funcs = [LAYERS[n].function for n in LAYERS]
    funcs += [load_function(f"{USER}:{f}") for f in ("my_batchnorm", "batchnorm_one_pass", "rmsnorm", "log_softmax")]
    for func in funcs:
        cf = closed_form_of(func, func.__name__)
        for key, f in cf.formulas.items():
            assert not f.has(sp.KroneckerDelta) and not f.has(sp.Piecewise), (func.__name__, key)
            assert not f.has(sp.Derivative), (func.__name__, key)


def test_identities_are_recorded_and_hold_numerically(bn):
    reasons = {str(ident.lhs): ident for ident in bn.identities}
    assert "Sum(xhat[j], (j, 1, m))" in reasons and reasons["Sum(xhat[j], (j, 1, m))"].rhs == 0
    assert "mu" in reasons["Sum(xhat[j], (j, 1, m))"].reason
    square = reasons["Sum(xhat[j]**2, (j, 1, m))"]
    x = np.random.default_rng(3).normal(2, 3, 11)
    fwd = ref.batchnorm_forward(x, 1.0, 0.0, 0.01)
    by_name = {"m": 11, "sigma2": fwd["sigma2"], "epsilon": 0.01}
    value = float(square.rhs.xreplace({s: by_name[s.name] for s in square.rhs.free_symbols}))
    assert np.isclose((fwd["xhat"] ** 2).sum(), value)
    assert np.isclose(fwd["xhat"].sum(), 0, atol=1e-12)
    # every step is recorded, the last one is the formula
    for key, steps in bn.steps.items():
        assert steps[-1].expr == bn.formulas[key] and len(steps) >= 3


def test_two_pass_and_one_pass_user_functions_agree_on_dx_but_not_on_dmu():
    two = closed_form_of(load_function(f"{USER}:my_batchnorm"), "two")
    one = closed_form_of(load_function(f"{USER}:batchnorm_one_pass"), "one")
    eps, epsilon = sp.Symbol("eps"), sp.Symbol("epsilon")
    a = two.formulas["dL_dx[i]"].xreplace({eps: epsilon})
    b = one.formulas["dL_dx[i]"].xreplace({eps: epsilon})
    assert sp.simplify(a - b) == 0
    assert sp.simplify(two.formulas["dL_dmu"].xreplace({eps: epsilon}) - one.formulas["dL_dmu"]) != 0


def test_unbiased_variance_fits_one_over_m_minus_one():
    def unbiased(x, gamma, beta, epsilon):
        m = len(x)
        mu = name(sum(x) / m, "mu")
        s2 = name(sum((v - mu) ** 2 for v in x) / (m - 1), "s2")
        xhat = name([(v - mu) / sqrt(s2 + epsilon) for v in x], "xhat")
        return [gamma * h + beta for h in xhat]

    cf = closed_form_of(unbiased, "unbiased")
    assert cf.definitions["s2"].has(sp.Symbol("m", integer=True, positive=True) - 1)
    rng = np.random.default_rng(0)
    for m in (2, 5, 9):
        x, dy = rng.normal(size=m), rng.normal(size=m)
        s2 = x.var(ddof=1)
        xhat = (x - x.mean()) / np.sqrt(s2 + 1e-3)
        g = dy * 1.5
        # d/dx of ((x − μ)/√(s² + ε)) with s² unbiased: its own NumPy formula
        dx = (g - g.mean() - xhat * (g * xhat).sum() / (m - 1)) / np.sqrt(s2 + 1e-3)
        values = {f"xhat_{k}": xhat[k - 1] for k in range(1, m + 1)}
        values.update({f"dL_dy_{k}": dy[k - 1] for k in range(1, m + 1)})
        values.update(gamma=1.5, epsilon=1e-3, s2=s2, mu=x.mean())
        assert np.allclose(numeric(cf, "dL_dx[i]", m, values), dx, rtol=1e-9)


FIRST_IS_SPECIAL = """
def first_is_special(x, gamma):
    return [gamma * x[0]] + [xk - x[0] for xk in x[1:]]
"""


def test_a_function_that_treats_one_example_specially_has_no_closed_form(tmp_path, capsys):
    path = tmp_path / "special.py"
    path.write_text(FIRST_IS_SPECIAL)
    func = load_function(f"{path}:first_is_special")
    from bngraph.engine.trace import trace

    assert closed_form(derive(build_graph(trace(func, 3), "named"))) is None
    assert main(["derive", "--function", f"{path}:first_is_special", "--format", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert "closed_form" not in doc and set(doc["adjoints"]) >= {"dL_dx_1", "dL_dgamma"}


def test_json_closed_form_parses_back_and_compact_backward_is_printed(capsys):
    assert main(["derive", "--format", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    names = {n: sp.Symbol(n) for n in ("gamma", "beta", "epsilon", "mu", "sigma2", "m", "i", "j")}
    names.update({n: sp.IndexedBase(n) for n in ("x", "xhat", "dL_dy")})
    assert set(doc["closed_form"]) >= {"dL_dx[i]", "dL_dmu", "dL_dsigma2", "dL_dgamma", "dL_dbeta"}
    for text in doc["closed_form"].values():
        parsed = parse_expr(text, local_dict=names)
        assert not parsed.has(sp.KroneckerDelta)
    assert main(["derive"]) == 0
    out = capsys.readouterr().out
    assert "compact backward" in out and "dL_dx[i] = " in out


def test_closed_form_time_is_reasonable_and_cached_layers_give_the_same_answer(bn):
    again = closed_form_of(LAYERS["batchnorm"].function, "batchnorm")
    assert again.formulas == bn.formulas  # deterministic


def test_rational_constants_survive_lifting():
    def scaled(x, gamma):
        m = len(x)
        mu = name(0.5 * sum(x) / m, "half_mean")
        return [gamma * (xk - mu) for xk in x]

    cf = closed_form_of(scaled, "scaled")
    m_ = sp.Symbol("m", integer=True, positive=True)
    assert cf.definitions["half_mean"] == sp.Sum(sp.IndexedBase("x")[sp.Symbol("j", integer=True)], (sp.Symbol("j", integer=True), 1, m_)) / (2 * m_)
    # dL/dx_i = γ (dy_i − Σ dy / (2m)): check at m = 4 against plain arithmetic
    dy = [Fraction(1), Fraction(-2), Fraction(3), Fraction(5)]
    got = [cf.instantiate("dL_dx[i]", 4, k).xreplace({sp.Symbol("gamma"): 3, **{sp.Symbol(f"dL_dy_{k}"): sp.Rational(v) for k, v in enumerate(dy, 1)}}) for k in range(1, 5)]
    assert got == [3 * (v - sum(dy) / 8) for v in dy]


def test_a_family_whose_name_ends_like_another_is_not_taken_for_its_adjoint():
    def tangled(x, gamma):
        a = name([2 * xk for xk in x], "aaaaq")  # "aaaaq"[4:] == "q", another family's name
        q = name([gamma * ak * xk for ak, xk in zip(a, x)], "q")  # q_k = 2 γ x_k²
        return [qk + 1 for qk in q]

    cf = closed_form_of(tangled, "tangled")
    rng = np.random.default_rng(1)
    for m in (1, 3, 6):
        x, dy = rng.normal(size=m), rng.normal(size=m)
        values = {f"dL_dy_{k}": dy[k - 1] for k in range(1, m + 1)}
        values.update({f"x_{k}": x[k - 1] for k in range(1, m + 1)})
        values.update({f"aaaaq_{k}": 2 * x[k - 1] for k in range(1, m + 1)})
        values.update(gamma=1.3)
        assert np.allclose(numeric(cf, "dL_dx[i]", m, values), 4 * 1.3 * x * dy, rtol=1e-12)
