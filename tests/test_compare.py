"""`bngraph derive --function FILE.py:FUNC --compare LAYER`: the same function as a built-in layer
for every m? the same backward? and where not, a counterexample that is true."""
from __future__ import annotations

import json
import re

import numpy as np
import pytest

from bngraph.cli import main

CORPUS = "tests/data/numpy_forwards.py"
USER = "tests/data/user_layers.py"

SLIPS = '''
import numpy as np

def eps_outside_the_root(x, gamma, beta, eps):
    return gamma * (x - x.mean()) / (np.sqrt(x.var()) + eps) + beta

def unbiased(x, gamma, beta, eps):
    return gamma * (x - x.mean()) / np.sqrt(x.var(ddof=1) + eps) + beta
'''


@pytest.fixture(scope="module")
def slips(tmp_path_factory):
    path = tmp_path_factory.mktemp("slips") / "slips.py"
    path.write_text(SLIPS)
    return path


def compare(capsys, target, layer="batchnorm", fmt="text"):
    code = main(["derive", "--function", target, "--compare", layer, "--format", fmt])
    out = capsys.readouterr().out
    return code, (json.loads(out) if fmt == "json" else out)


@pytest.mark.parametrize("target", [f"{CORPUS}:cs231n_np_var", f"{CORPUS}:kratzert_nine_steps", f"{USER}:my_batchnorm"])
def test_a_batch_norm_written_another_way_is_the_same_function_with_the_same_backward(target, capsys):
    code, doc = compare(capsys, target, fmt="json")
    assert code == 0 and doc["forward"]["same"] and doc["identical"]
    assert doc["forward"]["how"] == "equal for every m (proved on the closed forms)"
    assert set(doc["backward"]) == {"dL_dx[i]", "dL_dgamma", "dL_dbeta"}
    assert all(a["same"] and a["how"] == "identical closed forms" for a in doc["backward"].values())


def test_named_one_pass_statistics_are_the_same_function_with_other_intermediate_adjoints(capsys):
    code, out = compare(capsys, f"{USER}:batchnorm_one_pass")
    assert code == 0 and "forward:  the same function" in out
    assert "identical, formula for formula" not in out  # its dL_dmu differs: sigma2 reads mu directly


def test_epsilon_outside_the_root_is_a_different_function_shown_by_a_true_counterexample(slips, capsys):
    code, doc = compare(capsys, f"{slips}:eps_outside_the_root", fmt="json")
    assert code == 1 and not doc["forward"]["same"] and not doc["backward"]["dL_dx[i]"]["same"]
    assert doc["backward"]["dL_dbeta"]["same"]  # Σ dL_dy either way
    # the counterexample, recomputed by hand in NumPy
    text = doc["forward"]["counterexample"]
    m = int(re.search(r"at m = (\d+)", text)[1])
    x = np.array([float(v) for v in re.search(r"x = \(([^)]*)\)", text)[1].split(",")])
    gamma, beta, eps = (float(re.search(rf"{n} = ([-\d.e]+)", text)[1]) for n in ("gamma", "beta", "eps"))
    k, yours, layer = re.search(r"y_(\d+) = ([-\d.e]+) \(yours\), ([-\d.e]+) \(batchnorm\)", text).groups()
    k = int(k) - 1
    assert len(x) == m and m >= 2
    assert np.isclose(float(yours), (gamma * (x - x.mean()) / (x.std() + eps) + beta)[k], rtol=1e-5)
    assert np.isclose(float(layer), (gamma * (x - x.mean()) / np.sqrt(x.var() + eps) + beta)[k], rtol=1e-5)


def test_an_unbiased_variance_differs_from_batch_norm(slips, capsys):
    code, out = compare(capsys, f"{slips}:unbiased")
    assert code == 1 and "forward:  a different function: at m = " in out
    assert re.search(r"dL_dx\[i\]\s+differs: at m = \d+", out)


def test_rmsnorm_is_not_layer_norm(capsys):
    code, out = compare(capsys, f"{USER}:rmsnorm", layer="layernorm")
    assert code == 1 and "(layernorm)" in out


def test_different_parameters_cannot_be_the_same_function(capsys):
    code, out = compare(capsys, f"{USER}:log_softmax")
    assert code == 1 and "it takes the parameters (gamma, beta), batchnorm takes (gamma, beta, epsilon)" in out


@pytest.mark.parametrize("args, message", [
    (["derive", "--compare", "batchnorm"], "give --function"),
    (["derive", "--function", f"{CORPUS}:cs231n_np_var", "--compare", "batchnorm", "--format", "latex"], "text or JSON"),
    (["derive", "--function", f"{CORPUS}:cs231n_np_var", "--compare", "groupnorm"], "unknown layer 'groupnorm'"),
])
def test_compare_usage_errors_are_one_line(args, message, capsys):
    assert main(args) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def test_compare_is_in_the_help(capsys):
    with pytest.raises(SystemExit):
        main(["derive", "--help"])
    out = capsys.readouterr().out
    assert "--compare LAYER" in out and "--compare batchnorm" in out
