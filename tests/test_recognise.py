"""Closed forms in the textbook's names: the NumPy corpus (tests/data/numpy_forwards.py) derives,
each closed form evaluated through its definitions equals a NumPy backward written here
independently, every Batch-Norm-equivalent one prints the built-in's closed form byte for
byte, and no closed form ever uses a name it does not define."""
from __future__ import annotations

import json

import numpy as np
import pytest
import sympy as sp

from bngraph.cli import main
from bngraph.closedform.evaluate import NotANumber, closed_form_values
from bngraph.closedform.recognise import MU, normal_form, same
from bngraph.closedform.simplify import closed_form_of
from bngraph.engine.layers import LAYERS
from bngraph.engine.trace import trace
from bngraph.engine.usercode import load_function

CORPUS = "tests/data/numpy_forwards.py"
USER = "tests/data/user_layers.py"
forwards = load_function(f"{CORPUS}:cs231n_np_var").__globals__  # the corpus module's names
REFERENCE, BN_EQUIVALENT = forwards["REFERENCE"], forwards["BN_EQUIVALENT"]


# -- independent NumPy backward passes (no bngraph) -------------------------------------------
def normalisation_backward(x, dy, gamma, eps, ddof=0):
    """y = γ (x − μ)/√(v + ε) + β, v = Σ(x − μ)²/(m − ddof): dx = (g − mean g − x̂ Σ g x̂/(m − ddof))/√(v + ε)."""
    m = len(x)
    centred = x - x.mean()
    root = np.sqrt((centred**2).sum() / (m - ddof) + eps)
    xhat = centred / root
    g = dy * gamma
    dx = (g - g.mean() - xhat * (g * xhat).sum() / (m - ddof)) / root
    return dx, (dy * xhat).sum(), dy.sum()


def rms_backward(x, dy, weight, eps):
    """y = w x/r, r = √(Σx²/m + ε): dx = w (dy/r − x Σ(dy x)/(m r³))."""
    m = len(x)
    r = np.sqrt((x * x).mean() + eps)
    return weight * (dy / r - x * (dy * x).sum() / (m * r**3)), (dy * x / r).sum()


def leaves_of(func):
    t = trace(func, 2)  # (not 1: a variance over m − 1 is undefined there)
    return [(r.name, r.op) for r in t.records if r.op in ("parameter", "constant")]


@pytest.fixture(scope="module")
def closed_forms():
    return {name: closed_form_of(load_function(f"{CORPUS}:{name}"), name) for name in REFERENCE}


@pytest.fixture(scope="module")
def builtin():
    return closed_form_of(LAYERS["batchnorm"].function, "batchnorm")


def test_the_corpus_has_at_least_twelve_styles_and_nine_are_batch_norm():
    assert len(REFERENCE) >= 12 and len(BN_EQUIVALENT) >= 9


@pytest.mark.parametrize("name", list(REFERENCE))
@pytest.mark.parametrize("m", [1, 2, 5, 11])
def test_closed_form_through_its_definitions_equals_an_independent_numpy_backward(name, m, closed_forms):
    kind, options = REFERENCE[name]
    cf = closed_forms[name]
    leaves = leaves_of(load_function(f"{CORPUS}:{name}"))
    rng = np.random.default_rng(m)
    x, dy = rng.normal(0.3, 1.5, m), rng.normal(size=m)
    values = {"gamma": 1.3, "beta": -0.4, "eps": 0.01}  # ε large enough that forgetting it shows
    point = {f"x_{k}": x[k - 1] for k in range(1, m + 1)}
    params = [n for n, op in leaves if op == "parameter"]
    for n, op in leaves:  # by position: the scale, then the shift; ε is the constant
        point[n] = values["eps"] if op == "constant" else values[["gamma", "beta"][params.index(n)]]
    upstream = {f"dL_dy_{k}": dy[k - 1] for k in range(1, m + 1)}
    eps = options.get("eps", values["eps"])
    gamma = values["gamma"] if options.get("affine", True) else 1.0
    undefined_at_one = eps == 0 or options.get("ddof", 0) == 1
    if m == 1 and undefined_at_one:  # σ = 0 under the root, or a variance over m − 1 = 0
        with pytest.raises(NotANumber):
            closed_form_values(cf, point, upstream, m)
        return
    got = closed_form_values(cf, point, upstream, m)
    if kind == "batchnorm":
        dx, dgamma, dbeta = normalisation_backward(x, dy, gamma, eps, options.get("ddof", 0))
        expected = {"dL_dx[i]": dx}
        if options.get("affine", True):
            expected.update({f"dL_d{params[0]}": dgamma, f"dL_d{params[1]}": dbeta})
    else:
        dx, dweight = rms_backward(x, dy, values["gamma"], eps)
        expected = {"dL_dx[i]": dx, f"dL_d{params[0]}": dweight}
    for key, want in expected.items():
        assert np.allclose(got[key], want, rtol=1e-9, atol=1e-12), (key, got[key], want)


@pytest.mark.parametrize("name", BN_EQUIVALENT)
def test_every_batch_norm_equivalent_forward_has_the_builtin_closed_form_byte_for_byte(name, closed_forms, builtin):
    cf = closed_forms[name]
    theirs = [n for n, _ in leaves_of(LAYERS["batchnorm"].function)]
    mine = [n for n, _ in leaves_of(load_function(f"{CORPUS}:{name}"))]
    rename = {sp.Symbol(t): sp.Symbol(u) for t, u in zip(theirs, mine)}  # eps for epsilon, scaler for gamma …

    def printed(table, swap):
        return [(k.replace("gamma", mine[0]).replace("beta", mine[1]) if swap else k, sp.sstr(e.xreplace(swap)))
                for k, e in table.items()]

    assert printed(cf.formulas, {}) == printed(builtin.formulas, rename)
    assert printed(cf.definitions, {}) == printed(builtin.definitions, rename)


@pytest.fixture(scope="module")
def builtin_outputs():
    """``bngraph derive`` of the built-in batchnorm, as JSON and as text."""
    return {fmt: _cli(["derive", "--format", fmt]) for fmt in ("json", "text")}


def _cli(argv):
    import contextlib
    import io

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(argv) == 0
    return out.getvalue()


COURSE_NAMED = [n for n in BN_EQUIVALENT
                if [p for p, _ in leaves_of(load_function(f"{CORPUS}:{n}"))] == ["gamma", "beta", "epsilon"]]


@pytest.mark.parametrize("name", COURSE_NAMED)
def test_the_json_closed_form_is_the_builtins_byte_for_byte(name, builtin_outputs):
    theirs = json.loads(builtin_outputs["json"])
    mine = json.loads(_cli(["derive", "--function", f"{CORPUS}:{name}", "--format", "json"]))
    assert json.dumps(mine["closed_form"]) == json.dumps(theirs["closed_form"])
    assert json.dumps(mine["definitions"]) == json.dumps(theirs["definitions"])
    assert list(mine)[-2:] == ["closed_form", "definitions"]


def test_the_text_closed_form_is_the_builtins_byte_for_byte(builtin_outputs):
    def closed_section(text):
        lines = text.splitlines()
        start = lines.index("closed form (symbolic m, for every m >= 1; i free, j summed over 1..m):")
        return lines[start:lines.index("compact backward (common subexpressions):")]

    def definitions(text):
        section = text[text.index("definitions (symbolic m"):text.index("closed form (symbolic m")]
        return [line for line in section.splitlines() if " = " in line]

    mine = _cli(["derive", "--function", f"{CORPUS}:{COURSE_NAMED[0]}"])
    assert closed_section(mine) == closed_section(builtin_outputs["text"])
    assert definitions(mine) == definitions(builtin_outputs["text"]) and len(definitions(mine)) == 4
    assert "recognised its batch mean mu" in mine and "recognised" not in builtin_outputs["text"]


def test_an_unnamed_plain_python_batch_norm_gets_the_textbook_closed_form(tmp_path, builtin):
    path = tmp_path / "plain.py"
    path.write_text("from bngraph import sqrt\n"
                    "def bn(x, gamma, beta, epsilon):\n"
                    "    m = len(x)\n"
                    "    mean = sum(x) / m\n"
                    "    var = sum((xk - mean) ** 2 for xk in x) / m\n"
                    "    return [gamma * (xk - mean) / sqrt(var + epsilon) + beta for xk in x]\n")
    cf = closed_form_of(load_function(f"{path}:bn"), "bn")
    assert dict(cf.formulas) == dict(builtin.formulas) and dict(cf.definitions) == dict(builtin.definitions)
    assert "mu" in cf.recognised and "xhat" in cf.recognised


# -- what is recognised, and what is not ------------------------------------------------------
def test_the_normal_form_proves_one_pass_and_two_pass_variances_equal():
    x, j, m = sp.IndexedBase("x"), sp.Symbol("j", integer=True), sp.Symbol("m", integer=True, positive=True)
    two_pass = sp.Sum((x[j] - MU) ** 2, (j, 1, m)) / m
    one_pass = sp.Sum(x[j] ** 2, (j, 1, m)) / m - MU**2
    assert same(two_pass, one_pass) and same(sp.sqrt(two_pass) ** 2, one_pass)
    assert not same(two_pass, sp.Sum((x[j] - MU) ** 2, (j, 1, m)) / (m - 1))
    assert normal_form(sp.sqrt(two_pass + 1) - sp.sqrt(one_pass + 1)) == 0


def test_epsilon_outside_the_root_is_not_taken_for_batch_norm(tmp_path):
    path = tmp_path / "outside.py"
    path.write_text("import numpy as np\n"
                    "def eps_outside(x, gamma, beta, eps):\n"
                    "    return gamma * (x - x.mean()) / (np.sqrt(x.var()) + eps) + beta\n")
    cf = closed_form_of(load_function(f"{path}:eps_outside"), "eps_outside")
    assert "xhat[i]" not in cf.definitions  # there is no normalised input (x − μ)/√(v + c) in it
    assert {"mu", "sigma2"} <= set(cf.definitions)  # its statistics are still called by their names
    rng = np.random.default_rng(3)
    x, dy = rng.normal(size=5), rng.normal(size=5)
    point = {f"x_{k}": x[k - 1] for k in range(1, 6)} | {"gamma": 1.3, "beta": 0.2, "eps": 0.1}
    got = closed_form_values(cf, point, {f"dL_dy_{k}": dy[k - 1] for k in range(1, 6)}, 5)["dL_dx[i]"]

    def loss(v):
        return dy @ (1.3 * (v - v.mean()) / (v.std() + 0.1) + 0.2)

    h, fd = 1e-6, []
    for k in range(5):
        e = np.zeros(5)
        e[k] = h
        fd.append((loss(x + e) - loss(x - e)) / (2 * h))
    assert np.allclose(got, fd, rtol=1e-6)


def test_statistics_a_user_did_not_name_are_named_beside_those_they_did():
    from bngraph import name, sqrt

    def half_named(x, gamma, beta, eps):
        m = len(x)
        mean = sum(x) / m
        var = sum((xk - mean) ** 2 for xk in x) / m
        scaled = [name(gamma * (xk - mean) / sqrt(var + eps), "scaled") for xk in x]
        return [s + beta for s in scaled]

    cf = closed_form_of(half_named, "half_named")
    assert list(cf.definitions)[:2] == ["mu", "sigma2"] and "scaled[i]" in cf.definitions
    assert cf.recognised == "bngraph recognised what the function did not name: mu, sigma2."


def test_the_unbiased_variance_is_called_by_its_own_name(closed_forms):
    cf = closed_forms["unbiased_ddof1"]
    assert "sigma2_unbiased" in cf.definitions and "sigma2" not in cf.definitions
    assert str(cf.definitions["sigma2_unbiased"]) == "Sum((-mu + x[j])**2, (j, 1, m))/(m - 1)"


def test_rmsnorm_gets_its_root_mean_square_named(closed_forms):
    assert str(closed_forms["rmsnorm_square"].definitions["rms"]) == "sqrt(eps + Sum(x[j]**2, (j, 1, m))/m)"


# -- never an undefined name ------------------------------------------------------------------
TARGETS = [f"{CORPUS}:{n}" for n in REFERENCE] + [f"{USER}:{n}" for n in
                                                  ("my_batchnorm", "batchnorm_one_pass", "rmsnorm", "log_softmax")]


@pytest.mark.parametrize("target", TARGETS + list(LAYERS))
def test_a_closed_form_uses_no_name_it_does_not_define(target, closed_forms):
    func = LAYERS[target].function if target in LAYERS else load_function(target)
    name = target.rpartition(":")[2]
    cf = closed_forms[name] if target.startswith(CORPUS) else closed_form_of(func, target)
    allowed = {"x", "dL_dy", "m", "i", "j"} | {n for n, _ in leaves_of(func)}
    defined = set()
    for key, definition in cf.definitions.items():  # dependency order: each uses only what is before it
        assert _names(definition) <= allowed | defined, (key, definition)
        defined.add(key.removesuffix("[i]"))
    for key, formula in cf.formulas.items():
        assert _names(formula) <= allowed | defined | {key.removesuffix("[i]")}, (key, formula)


def _names(expr) -> set[str]:
    bases = {str(e.base) for e in expr.atoms(sp.Indexed)}
    return bases | {s.name for s in expr.free_symbols if not isinstance(s, sp.Indexed)} - bases \
        | {str(v) for s in expr.atoms(sp.Sum) for v in s.variables}


def test_an_unnamed_forward_prints_without_artefacts(capsys):
    assert main(["derive", "--function", f"{CORPUS}:kratzert_nine_steps", "--format", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert all("1*(" not in text for text in doc["forward"].values())
    assert "(x_1 + x_2 + x_3)/3" in doc["forward"]["y_1"]


def test_text_lists_the_definitions_above_the_closed_form(capsys):
    assert main(["derive", "--function", f"{USER}:log_softmax"]) == 0
    out = capsys.readouterr().out
    assert out.index("definitions (symbolic m") < out.index("  lse = log(Sum(exp(x[j]), (j, 1, m)))") < \
        out.index("closed form (symbolic m")
