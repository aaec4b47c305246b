"""The PyTorch and JAX targets, against each framework's own differentiation and library layers.

They run where torch / jax are installed (``pip install -e ".[torch]"``, ``".[jax]"``); CI does
not install them, and each test then says it is skipped and why.
"""
import importlib.util
from pathlib import Path

import numpy as np
import pytest

from bngraph.cli import main
from bngraph.engine.layers import LAYERS
from bngraph.engine.trace import DEFAULT_CONSTANTS, trace
from bngraph.engine.usercode import load_function

USER_LAYERS = Path(__file__).parent / "data" / "user_layers.py"
TARGETS = [*LAYERS, "rmsnorm", "batchnorm_one_pass", "layernorm_by_hand", "rmsnorm_rows", "log_softmax"]
WHY = "is not installed (pip install -e '.[{0}]'), so the {0} target is not tested here"


def generated(tmp_path, target, what):
    """The module ``bngraph codegen`` writes for ``what``, imported."""
    args = [what] if what in LAYERS else ["--function", f"{USER_LAYERS}:{what}"]
    path = tmp_path / f"{what.replace('-', '_')}_{target}.py"
    assert main(["codegen", *args, "--target", target, "-o", str(path)]) == 0
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def inputs(what, shape=(5, 3), seed=0):
    """(names, values, learnable) for the generated signature: x, then the parameters by role."""
    function = LAYERS[what].function if what in LAYERS else load_function(f"{USER_LAYERS}:{what}")
    roles = {r.name: r.op for r in trace(function, 2).records if r.op in ("parameter", "constant")}
    module_names = [n for n in roles if n not in DEFAULT_CONSTANTS] + [n for n in roles if n in DEFAULT_CONSTANTS]
    if what not in LAYERS:  # a user's function keeps its own order
        module_names = list(roles)
    rng = np.random.default_rng(seed)
    values = [rng.normal(0.5, 2.0, shape)]
    for n in module_names:
        values.append(1e-5 if n in DEFAULT_CONSTANTS else rng.uniform(0.5, 2.0, shape[1]))
    learnable = [k + 1 for k, n in enumerate(module_names) if roles[n] == "parameter"]
    return ["x"] + module_names, values, [0] + learnable


def function_name(what):
    return what.replace("-", "_")


# -- PyTorch ----------------------------------------------------------------------------------
@pytest.mark.parametrize("what", TARGETS)
def test_torch_backward_passes_gradcheck(what, tmp_path):
    torch = pytest.importorskip("torch", reason=f"torch {WHY.format('torch')}")
    module = generated(tmp_path, "torch", what)
    names, values, learnable = inputs(what)
    tensors = [v if isinstance(v, float) else torch.tensor(v, requires_grad=k in learnable)
               for k, v in enumerate(values)]
    assert torch.autograd.gradcheck(getattr(module, function_name(what)), tuple(tensors))
    numpy_out, _ = generated(tmp_path, "numpy", what).forward(*values)  # checked against the plain function
    assert np.allclose(getattr(module, function_name(what))(*tensors).detach().numpy(), numpy_out, rtol=1e-12)


def _torch_library(torch, what, x, params):
    F = torch.nn.functional
    if what == "batchnorm":
        return F.batch_norm(x, None, None, params[0], params[1], training=True, eps=1e-5)
    if what == "batchnorm-eval":
        return F.batch_norm(x, params[2], params[3], params[0], params[1], training=False, eps=1e-5)
    if what == "layernorm":
        return F.layer_norm(x, (x.shape[1],), params[0], params[1], eps=1e-5)
    return F.rms_norm(x, (x.shape[1],), params[0], eps=1e-5)


@pytest.mark.parametrize("what", ["batchnorm", "batchnorm-eval", "layernorm", "rmsnorm_rows"])
def test_torch_gradients_match_torch_library_layers(what, tmp_path):
    torch = pytest.importorskip("torch", reason=f"torch {WHY.format('torch')}")
    if what == "rmsnorm_rows" and not hasattr(torch.nn.functional, "rms_norm"):
        pytest.skip(f"torch {torch.__version__} has no F.rms_norm (it came in 2.4)")
    module = generated(tmp_path, "torch", what)
    names, values, learnable = inputs(what, shape=(7, 4), seed=3)
    dout = torch.tensor(np.random.default_rng(4).normal(size=(7, 4)))
    results = []
    for use_library in (False, True):
        tensors = [v if isinstance(v, float) else torch.tensor(v, requires_grad=k in learnable)
                   for k, v in enumerate(values)]
        if use_library:
            out = _torch_library(torch, what, tensors[0], [t for t in tensors[1:] if not isinstance(t, float)])
        else:
            out = getattr(module, function_name(what))(*tensors)
        grads = torch.autograd.grad(out, [tensors[k] for k in learnable], dout)
        results.append([out.detach().numpy()] + [g.numpy() for g in grads])
    for ours, library in zip(*results):
        np.testing.assert_allclose(ours, library, rtol=1e-10, atol=1e-12)


def test_torch_keeps_float32(tmp_path):
    torch = pytest.importorskip("torch", reason=f"torch {WHY.format('torch')}")
    module = generated(tmp_path, "torch", "batchnorm")
    x = torch.randn(16, 3, dtype=torch.float32, requires_grad=True)
    gamma, beta = torch.ones(3, requires_grad=True), torch.zeros(3, requires_grad=True)
    out = module.batchnorm(x, gamma, beta, 1e-5)
    out.backward(torch.randn(16, 3))
    assert out.dtype == x.grad.dtype == gamma.grad.dtype == torch.float32


# -- JAX ----------------------------------------------------------------------------------------
@pytest.fixture
def jax64():
    jax = pytest.importorskip("jax", reason=f"jax {WHY.format('jax')}")
    previous = jax.config.read("jax_enable_x64")
    jax.config.update("jax_enable_x64", True)
    yield jax
    jax.config.update("jax_enable_x64", previous)


@pytest.mark.parametrize("what", TARGETS)
def test_jax_custom_vjp_matches_jax_grad_of_the_plain_forward(what, tmp_path, jax64):
    jax, jnp = jax64, jax64.numpy
    module = generated(tmp_path, "jax", what)
    names, values, learnable = inputs(what)
    args = [v if isinstance(v, float) else jnp.asarray(v) for v in values]
    dout = jnp.asarray(np.random.default_rng(5).normal(size=values[0].shape))
    layer = getattr(module, function_name(what))

    def loss(forward):
        return lambda *a: jnp.sum(forward(*a) * dout)

    derived = jax.grad(loss(layer), argnums=tuple(learnable))(*args)
    plain = jax.grad(loss(lambda *a: module._forward(*a)[0]), argnums=tuple(learnable))(*args)  # JAX's own AD
    static = tuple(k for k, n in enumerate(names) if n in DEFAULT_CONSTANTS)
    jitted = jax.jit(jax.grad(loss(layer), argnums=tuple(learnable)), static_argnums=static)(*args)
    for a, b, c in zip(derived, plain, jitted):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(c, b, rtol=1e-10, atol=1e-12)
    numpy_out, _ = generated(tmp_path, "numpy", what).forward(*values)
    np.testing.assert_allclose(layer(*args), numpy_out, rtol=1e-12)


def test_jax_batchnorm_matches_jax_nn_standardize(tmp_path, jax64):
    jax, jnp = jax64, jax64.numpy
    module = generated(tmp_path, "jax", "batchnorm")
    rng = np.random.default_rng(6)
    x, gamma, beta = (jnp.asarray(a) for a in (rng.normal(size=(9, 4)), rng.uniform(0.5, 2, 4), rng.normal(size=4)))

    def library(x, gamma, beta):
        return gamma * jax.nn.standardize(x, axis=0, epsilon=1e-5) + beta

    ours = jax.grad(lambda *a: jnp.sum(jnp.sin(module.batchnorm(*a, 1e-5))), argnums=(0, 1, 2))(x, gamma, beta)
    theirs = jax.grad(lambda *a: jnp.sum(jnp.sin(library(*a))), argnums=(0, 1, 2))(x, gamma, beta)
    for a, b in zip(ours, theirs):
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12)


def test_jax_keeps_float32(tmp_path, jax64):
    jax, jnp = jax64, jax64.numpy
    module = generated(tmp_path, "jax", "layernorm")
    x = jnp.ones((4, 3), dtype=jnp.float32).at[0, 0].set(3.0)
    gamma, beta = jnp.ones(3, dtype=jnp.float32), jnp.zeros(3, dtype=jnp.float32)
    grads = jax.grad(lambda *a: jnp.sum(module.layernorm(*a, 1e-5) ** 2), argnums=(0, 1, 2))(x, gamma, beta)
    assert all(g.dtype == jnp.float32 for g in grads)
