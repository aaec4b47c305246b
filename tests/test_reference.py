"""The NumPy references against hand-computed values, finite differences and HIPS autograd."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bngraph.check.backward import make_case
from bngraph.check.diagnose import dx_scale
from bngraph.errors import BngraphError
from bngraph.check.numeric import (autograd_backward, autograd_forward, central_difference, max_relative_error,
                             numeric_backward, relative_error)
from bngraph.check.reference import (batchnorm_backward_compact, batchnorm_backward_staged, batchnorm_eval_forward,
                               batchnorm_forward, batchnorm_forward_one_pass, from_rows, layernorm_forward,
                               one_pass_variance, one_pass_variance_precision, reference_backward,
                               reference_forward, to_rows, update_running_stats)

LAYER_SHAPES = [
    ("batchnorm", (2, 3)),
    ("batchnorm", (5, 4)),
    ("batchnorm", (2, 3, 2, 2)),  # (N, C, H, W): statistics per channel over N·H·W
    ("batchnorm-eval", (3, 4)),
    ("batchnorm-eval", (2, 3, 2, 2)),
    ("layernorm", (3, 5)),
    ("layernorm", (4, 2)),
]


def _inputs(layer, shape, eps, seed=3):
    case = make_case(layer, shape, seed, eps)
    return case, (case.dout, case.x, case.gamma, case.beta, eps, case.running_mean, case.running_var)


# -- forward passes against values computed by hand -------------------------------------
def test_batchnorm_forward_normalises_each_feature_by_hand():
    x = np.array([[1.0, 10.0], [2.0, 20.0], [6.0, 60.0]])  # means 3, 30; biased variances 14/3, 1400/3
    out, _ = batchnorm_forward(x, gamma=[2.0, 1.0], beta=[0.5, -1.0], eps=0.0)
    expected_first = 2.0 * (np.array([1.0, 2.0, 6.0]) - 3.0) / np.sqrt(14 / 3) + 0.5
    np.testing.assert_allclose(out[:, 0], expected_first, rtol=1e-13)
    xhat = (np.array([1.0, 2.0, 6.0]) - 3.0) / np.sqrt(14 / 3)  # feature 2 is feature 1 times 10: same x̂
    np.testing.assert_allclose(out[:, 1], xhat - 1.0, rtol=1e-13)


def test_spatial_batchnorm_uses_one_mean_and_variance_per_channel():
    rng = np.random.default_rng(0)
    x = rng.normal(3.0, 2.0, size=(2, 3, 4, 5))
    out, _ = batchnorm_forward(x, gamma=np.ones(3), beta=np.zeros(3), eps=1e-5)
    for c in range(3):
        values = x[:, c].ravel()  # N·H·W = 40 values
        expected = (x[:, c] - values.mean()) / np.sqrt(values.var() + 1e-5)
        np.testing.assert_allclose(out[:, c], expected, rtol=1e-12)


def test_rows_layout_round_trips_and_groups_channels():
    x = np.arange(2 * 3 * 2 * 2, dtype=float).reshape(2, 3, 2, 2)
    rows = to_rows(x)
    assert rows.shape == (8, 3)
    assert sorted(rows[:, 1]) == sorted(x[:, 1].ravel())
    np.testing.assert_array_equal(from_rows(rows, x.shape), x)


def test_layernorm_forward_normalises_each_row():
    x = np.array([[1.0, 2.0, 6.0], [-4.0, 0.0, 1.0]])
    out, _ = layernorm_forward(x, gamma=np.ones(3), beta=np.zeros(3), eps=0.0)
    np.testing.assert_allclose(out[0], (x[0] - 3.0) / np.sqrt(14 / 3), rtol=1e-13)
    np.testing.assert_allclose(out.mean(axis=1), [0.0, 0.0], atol=1e-15)
    np.testing.assert_allclose(out.var(axis=1), [1.0, 1.0], rtol=1e-13)


def test_batchnorm_eval_forward_uses_running_statistics():
    out, _ = batchnorm_eval_forward([[3.0, 0.0], [5.0, 2.0]], [2.0, 1.0], [1.0, 0.0], [1.0, 0.0], [4.0, 1.0], eps=0.0)
    np.testing.assert_allclose(out, [[3.0, 0.0], [5.0, 2.0]])  # 2·(3−1)/2 + 1 = 3; 2·(5−1)/2 + 1 = 5


def test_autograd_forward_agrees_with_the_reference_forward():
    for layer, shape in LAYER_SHAPES:
        case, _ = _inputs(layer, shape, 1e-3)
        expected = reference_forward(layer, case.x, case.gamma, case.beta, 1e-3, case.running_mean, case.running_var)
        got = autograd_forward(layer, case.x, case.gamma, case.beta, 1e-3, case.running_mean, case.running_var)
        np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12)


# -- backward passes against finite differences and autograd -----------------------------
@pytest.mark.parametrize("layer, shape", LAYER_SHAPES)
def test_reference_backward_matches_finite_differences(layer, shape):
    case, args = _inputs(layer, shape, eps=1e-3)
    reference = reference_backward(layer, *args)
    numeric = numeric_backward(layer, *args)
    for name, r, n in zip(("dx", "dgamma", "dbeta"), reference, numeric):
        scale = dx_scale(case) if name == "dx" else None
        assert r.shape == n.shape
        assert max_relative_error(r, n, scale)[0] < 1e-6, name  # central differences: O(h²) error


@pytest.mark.parametrize("layer, shape", LAYER_SHAPES)
@pytest.mark.parametrize("eps", [1e-5, 1e-2])
def test_reference_backward_matches_autograd(layer, shape, eps):
    case, args = _inputs(layer, shape, eps)
    for name, r, a in zip(("dx", "dgamma", "dbeta"), reference_backward(layer, *args), autograd_backward(layer, *args)):
        assert max_relative_error(r, a, dx_scale(case) if name == "dx" else None)[0] < 1e-10, name


@pytest.mark.parametrize("shape", [(1, 3), (2, 3), (4, 3), (16, 5), (2, 3, 4, 5), (7,)])
def test_staged_and_compact_backward_agree(shape):
    rng = np.random.default_rng(1)
    gamma_shape = () if len(shape) == 1 else (shape[1],)
    x, dout = rng.normal(1.0, 2.0, shape), rng.normal(size=shape)
    gamma, beta = rng.uniform(0.5, 2.0, gamma_shape), rng.normal(size=gamma_shape)
    _, cache = batchnorm_forward(x, gamma, beta)
    staged, compact = batchnorm_backward_staged(dout, cache), batchnorm_backward_compact(dout, cache)
    for s, c in zip(staged, compact):
        assert s.shape == c.shape
        np.testing.assert_allclose(s, c, rtol=1e-10, atol=1e-12)
    assert compact[1].shape == gamma_shape  # dgamma has γ's shape, scalar for one feature


@settings(max_examples=25, deadline=None)
@given(n=st.integers(2, 6), d=st.integers(1, 4), seed=st.integers(0, 10_000))
def test_compact_backward_matches_autograd_for_any_small_batch(n, d, seed):
    case = make_case("batchnorm", (n, d), seed, 1e-3)
    _, cache = batchnorm_forward(case.x, case.gamma, case.beta, 1e-3)
    compact = batchnorm_backward_compact(case.dout, cache)
    ad = autograd_backward("batchnorm", case.dout, case.x, case.gamma, case.beta, 1e-3)
    assert max_relative_error(compact[0], ad[0], dx_scale(case))[0] < 1e-9
    np.testing.assert_allclose(compact[1], ad[1], rtol=1e-10, atol=1e-12)


def test_batchnorm_with_two_examples_by_hand():
    """N = 2: x̂ = ±a with a² = σ²/(σ²+ε), and dx_1 = γ/√(σ²+ε) · (1 − a²)/2 · (dout_1 − dout_2)."""
    eps = 1e-2
    x, dout = np.array([[0.0], [2.0]]), np.array([[0.7], [-0.3]])  # μ = 1, σ² = 1
    _, cache = batchnorm_forward(x, [3.0], [0.0], eps)
    dx, dgamma, dbeta = batchnorm_backward_staged(dout, cache)
    a2 = 1.0 / (1.0 + eps)
    dx1 = 3.0 / np.sqrt(1.0 + eps) * (1.0 - a2) / 2.0 * (0.7 - (-0.3))
    np.testing.assert_allclose(dx.ravel(), [dx1, -dx1], rtol=1e-12)
    np.testing.assert_allclose(dgamma, [np.sqrt(a2) * (-0.7 - 0.3)], rtol=1e-12)
    np.testing.assert_allclose(dbeta, [0.4], rtol=1e-12)


def test_batchnorm_with_one_example_passes_nothing_to_x():
    _, cache = batchnorm_forward([[2.0, -1.0]], [1.5, 2.0], [0.0, 0.0])
    dx, dgamma, dbeta = batchnorm_backward_compact([[1.0, 4.0]], cache)
    assert dx.tolist() == [[0.0, 0.0]] and dgamma.tolist() == [0.0, 0.0] and dbeta.tolist() == [1.0, 4.0]


def test_one_feature_layout_takes_scalar_gamma():
    out, cache = batchnorm_forward(np.array([1.0, 2.0, 6.0]), 2.0, 1.0, eps=0.0)
    np.testing.assert_allclose(out, 2.0 * (np.array([1.0, 2.0, 6.0]) - 3.0) / np.sqrt(14 / 3) + 1.0)
    dx, dgamma, dbeta = batchnorm_backward_compact(np.array([1.0, 0.0, 0.0]), cache)
    assert np.shape(dgamma) == () and float(dbeta) == 1.0
    assert abs(dx.sum()) < 1e-14


def test_bad_shapes_are_one_line_errors():
    with pytest.raises(BngraphError, match=r"gamma has shape \(2,\); expected \(3,\)"):
        batchnorm_forward(np.ones((4, 3)), np.ones(2), np.zeros(3))
    with pytest.raises(BngraphError, match="layer norm takes x of shape"):
        layernorm_forward(np.ones((2, 3, 4)), np.ones(4), np.zeros(4))
    with pytest.raises(BngraphError, match="unknown layer 'groupnorm'"):
        reference_forward("groupnorm", np.ones((2, 3)), np.ones(3), np.zeros(3))


# -- running statistics --------------------------------------------------------------
def test_running_stats_pytorch_convention_by_hand():
    x = np.array([[1.0], [2.0], [6.0]])  # mean 3; unbiased variance 14/2 = 7
    mean, var = update_running_stats([0.0], [1.0], x, momentum=0.1)
    np.testing.assert_allclose(mean, [0.9 * 0.0 + 0.1 * 3.0])
    np.testing.assert_allclose(var, [0.9 * 1.0 + 0.1 * 7.0])


def test_running_stats_both_variance_conventions_against_np_var():
    rng = np.random.default_rng(5)
    x = rng.normal(2.0, 3.0, size=(6, 4))
    old_mean, old_var = rng.normal(size=4), rng.uniform(0.5, 2.0, size=4)
    for variance, ddof in (("unbiased", 1), ("biased", 0)):
        mean, var = update_running_stats(old_mean, old_var, x, momentum=0.25, variance=variance)
        np.testing.assert_allclose(mean, 0.75 * old_mean + 0.25 * x.mean(axis=0), rtol=1e-14)
        np.testing.assert_allclose(var, 0.75 * old_var + 0.25 * np.var(x, axis=0, ddof=ddof), rtol=1e-14)


def test_running_stats_cs231n_decay_is_one_minus_momentum():
    """CS231n: running = 0.9·running + 0.1·batch with the biased variance."""
    x = np.array([[1.0, 0.0], [3.0, 4.0]])
    running_mean, running_var = np.array([1.0, 1.0]), np.array([2.0, 2.0])
    cs231n_mean = 0.9 * running_mean + (1 - 0.9) * x.mean(axis=0)
    cs231n_var = 0.9 * running_var + (1 - 0.9) * x.var(axis=0)
    mean, var = update_running_stats(running_mean, running_var, x, momentum=1 - 0.9, variance="biased")
    np.testing.assert_allclose(mean, cs231n_mean, rtol=1e-14)
    np.testing.assert_allclose(var, cs231n_var, rtol=1e-14)


def test_running_stats_per_channel_and_after_many_batches():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(2, 3, 2, 2))
    _, var = update_running_stats(np.zeros(3), np.zeros(3), x, momentum=1.0)  # all weight on the batch
    np.testing.assert_allclose(var, np.var(x, axis=(0, 2, 3), ddof=1), rtol=1e-14)
    mean = np.array([10.0])
    for _ in range(5):  # the same batch five times: old weight (1 − m)^5
        mean, _ = update_running_stats(mean, [1.0], [[1.0], [3.0]], momentum=0.1)
    np.testing.assert_allclose(mean, [0.9**5 * 10.0 + (1 - 0.9**5) * 2.0], rtol=1e-14)


def test_running_stats_refuse_bad_input():
    with pytest.raises(BngraphError, match="at least 2 values"):
        update_running_stats([0.0], [1.0], [[1.0]])
    with pytest.raises(BngraphError, match="variance must be"):
        update_running_stats([0.0], [1.0], [[1.0], [2.0]], variance="sample")


# -- one-pass variance and float32 ---------------------------------------------------
def test_one_pass_variance_is_exact_in_float64_on_small_data():
    x = np.array([[1.0, 4.0], [2.0, 4.0], [6.0, 7.0]])
    np.testing.assert_allclose(one_pass_variance(x), np.var(x, axis=0), rtol=1e-14)


def test_one_pass_variance_loses_float32_precision_when_the_mean_is_large():
    bad = one_pass_variance_precision(mean=1e4, std=1.0, m=256)
    good = one_pass_variance_precision(mean=0.0, std=1.0, m=256)
    assert bad.one_pass_relative_error > 0.1  # E[x²] ≈ 1e8 leaves float32 ~8 units of resolution
    assert bad.two_pass_relative_error < 1e-6
    assert good.one_pass_relative_error < 1e-5
    assert "one-pass" in bad.format() and "10000" in bad.format()


def test_one_pass_batchnorm_forward_in_float32():
    rng = np.random.default_rng(4)
    x = rng.normal(1e4, 1.0, size=(64, 2))
    exact = reference_forward("batchnorm", x, np.ones(2), np.zeros(2))
    np.testing.assert_allclose(batchnorm_forward_one_pass(x, np.ones(2), np.zeros(2)), exact, rtol=1e-6, atol=1e-6)
    with np.errstate(invalid="ignore"):
        single = batchnorm_forward_one_pass(x.astype(np.float32), np.ones(2), np.zeros(2))
    assert single.dtype == np.float32
    assert not np.all(np.abs(single - exact) < 0.1)  # a wrong variance, or NaN from a negative one


# -- the error measure and the numerical tools ---------------------------------------------
def test_relative_error_definition():
    errors = relative_error([1.0, 2.0, 0.0, 1e-9], [1.0, 1.0, 1e-20, 0.0])
    np.testing.assert_allclose(errors, [0.0, 0.5, 1e-20 / 2e-6, 1e-9 / 2e-6])
    assert max_relative_error([[1.0, 2.0], [3.0, 4.0]], [[1.0, 2.0], [3.0, 5.0]]) == (0.2, (1, 1))
    assert relative_error([1e-17], [0.0], scale=1.0)[0] == pytest.approx(1e-11)  # tiny next to the scale
    with pytest.raises(BngraphError, match="shapes"):
        relative_error(np.ones(3), np.ones(4))


def test_central_difference_of_a_known_function():
    gradients = central_difference(lambda a, b: float(np.sum(np.sin(a)) * b**2), [np.array([0.0, 1.0]), 3.0])
    np.testing.assert_allclose(gradients[0], 9.0 * np.cos([0.0, 1.0]), rtol=1e-9)
    np.testing.assert_allclose(gradients[1], 2 * 3.0 * np.sin([0.0, 1.0]).sum(), rtol=1e-9)


# -- PyTorch, when installed ---------------------------------------------------------
def test_reference_agrees_with_pytorch():
    pytest.importorskip("torch")
    from bngraph.check.numeric import torch_batchnorm

    for shape in [(4, 3), (2, 3, 4, 5)]:
        case = make_case("batchnorm", shape, 0, 1e-5)
        rm, rv = case.running_mean, case.running_var
        out, dx, dgamma, dbeta, new_mean, new_var = torch_batchnorm(
            case.x, case.gamma, case.beta, case.dout, 1e-5, 0.1, rm, rv)
        np.testing.assert_allclose(out, reference_forward("batchnorm", case.x, case.gamma, case.beta), atol=1e-12)
        for got, expected in zip((dx, dgamma, dbeta), reference_backward("batchnorm", case.dout, case.x,
                                                                         case.gamma, case.beta)):
            np.testing.assert_allclose(got, expected, rtol=1e-10, atol=1e-12)
        expected_mean, expected_var = update_running_stats(rm, rv, case.x, momentum=0.1, variance="unbiased")
        np.testing.assert_allclose(new_mean, expected_mean, rtol=1e-12)
        np.testing.assert_allclose(new_var, expected_var, rtol=1e-12)
