"""What is measured of bngraph itself: each function returns plain numbers for the report."""
from __future__ import annotations

import importlib.util
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import sympy as sp

from bngraph.engine.derive import derive
from bngraph.output.export import to_json
from bngraph.engine.graph import build_graph
from bngraph.engine.layers import LAYERS
from bngraph.closedform.cache import disabled
from bngraph.closedform.simplify import closed_form_of

from .measure import cold, median, repeated, run_count, timed

LAYER = "batchnorm"
STAGES = ("trace", "view", "derive", "json")


def closed_form_symbolic_m(fast: int) -> dict:
    """``closed_form_of`` at symbolic m: the first call of the process, then repeats."""
    function = LAYERS[LAYER].function
    with disabled():  # computed every time: the cache would make the repeats look-ups
        first = timed(lambda: closed_form_of(function, LAYER))
        times = [timed(lambda: closed_form_of(function, LAYER)) for _ in range(fast)]
    return {"first": first, "times": times, "median": median(times)}


def named_pipeline(m: int, closed, folder: Path) -> dict[str, float]:
    """One run: trace, named view, every adjoint, the contract's JSON written to a file."""
    times = {}
    start = time.perf_counter()
    t = LAYERS[LAYER].trace(m)
    times["trace"] = time.perf_counter() - start
    start = time.perf_counter()
    graph = build_graph(t, "named", LAYER)
    times["view"] = time.perf_counter() - start
    start = time.perf_counter()
    derivation = derive(graph)
    times["derive"] = time.perf_counter() - start
    start = time.perf_counter()
    (folder / f"{LAYER}_m{m}.json").write_text(to_json(derivation, closed), encoding="utf-8")
    times["json"] = time.perf_counter() - start
    times["derivation"] = times["trace"] + times["view"] + times["derive"]  # what plain SymPy is set against
    times["total"] = times["derivation"] + times["json"]
    return times


def derivation_vs_m(sizes, fast: int, slow: int) -> dict[int, dict]:
    """Median of each stage and of the total at every m (stage medians need not add up)."""
    closed = closed_form_of(LAYERS[LAYER].function, LAYER)  # m-independent: printed, not derived, here
    results = {}
    with tempfile.TemporaryDirectory() as folder:
        for m in sizes:
            runs = []

            def once():
                runs.append(named_pipeline(m, closed, Path(folder)))

            repeated(once, fast, slow)
            results[m] = {"runs": runs, **{k: median([r[k] for r in runs]) for k in (*STAGES, "derivation", "total")}}
    return results


def cold_start(sizes, fast: int, slow: int) -> dict:
    """``python -m bngraph derive --format json`` from a cold start, and a cold ``import sympy``.

    The runs are interleaved, so the load of the machine falls on every command alike.
    """
    commands = {"import sympy": [sys.executable, "-c", "import sympy"]}
    with tempfile.TemporaryDirectory() as folder:
        for m in sizes:
            commands[f"derive m={m}"] = [sys.executable, "-m", "bngraph", "derive", "--format", "json",
                                         "--m", str(m), "-o", str(Path(folder) / f"m{m}.json")]
        times = {name: [cold(argv)] for name, argv in commands.items()}
        rounds = run_count(max(t[0] for t in times.values()), fast, slow, slow_above=3.0)
        for _ in range(rounds - 1):
            for name, argv in commands.items():
                times[name].append(cold(argv))
        for m in sizes:  # the output is the contract's document, not just any file
            doc = json.loads((Path(folder) / f"m{m}.json").read_text(encoding="utf-8"))
            assert doc["m"] == m and "closed_form" in doc and f"dL_dx_{m}" in doc["adjoints"]
    return {name: {"times": t, "median": median(t)} for name, t in times.items()}


def rendering(cases, fast: int, slow: int) -> dict | None:
    """The backward graph to SVG, given the derivation (layout and drawing only)."""
    try:
        from bngraph.output.render import render_graph
    except ImportError:
        return None
    results = {}
    with tempfile.TemporaryDirectory() as folder:
        for m, full in cases:
            derivation = derive(build_graph(LAYERS[LAYER].trace(m), "named", LAYER))
            path = Path(folder) / f"m{m}.svg"
            times = repeated(lambda: render_graph(derivation.graph, path, direction="backward",
                                                  derivation=derivation, full=full, format="svg"), fast, slow)
            results[f"m={m} {'full' if full else 'collapsed'}"] = {
                "m": m, "full": full, "times": times, "median": median(times), "bytes": path.stat().st_size}
    return results


# --- the closed form, compiled to NumPy ------------------------------------------------------

PER_EXAMPLE = ("x", "xhat", "dL_dy")  # IndexedBase families: arrays of shape (m, features)
GRADIENTS = ("dL_dx[i]", "dL_dgamma", "dL_dbeta")


def lambdified_backward(closed):
    """(dx, dgamma, dbeta) from the closed form: each Sum over j becomes a NumPy sum over axis 0.

    A Sum is replaced by a symbol; its body, lambdified over whole arrays, is summed down
    the batch; the outer formulas are then lambdified (with common subexpressions) over
    the arrays, the batch values and those sums. Nothing is typed in: change the closed
    form and this changes with it.
    """
    sums: dict[sp.Sum, sp.Symbol] = {}
    held = [closed.formulas[k].replace(lambda e: isinstance(e, sp.Sum),
                                       lambda s: sums.setdefault(s, sp.Symbol(f"_sum{len(sums)}")))
            for k in GRADIENTS]

    def flat(expr):  # x[i], x[j] -> the array x
        return expr.replace(lambda e: isinstance(e, sp.Indexed), lambda e: sp.Symbol(str(e.base)))

    outer = [flat(e) for e in held]
    names = sorted({str(s) for e in outer for s in e.free_symbols if s not in sums.values()})
    args = [sp.Symbol(n) for n in names] + list(sums.values())
    outer_fn = sp.lambdify(args, outer, "numpy", cse=True)
    bodies = []
    for s in sums:
        body = flat(s.function)
        body_names = sorted(str(v) for v in body.free_symbols)
        bodies.append((body_names, sp.lambdify([sp.Symbol(n) for n in body_names], body, "numpy")))

    def backward(env: dict):
        totals = [np.sum(fn(*(env[n] for n in body_names)), axis=0) for body_names, fn in bodies]
        return outer_fn(*(env[n] for n in names), *totals)

    return backward


def lambdified_vs_numpy(shape, fast: int, seed: int = 0) -> dict:
    """The compiled closed form against NumPy's compact backward on the same cache, interleaved."""
    from bngraph.check.reference import batchnorm_backward_compact, batchnorm_forward

    rng = np.random.default_rng(seed)
    n, d = shape
    x = rng.normal(1.0, 2.0, shape)
    gamma, beta, dout = rng.normal(size=d), rng.normal(size=d), rng.normal(size=shape)
    eps = 1e-5
    _, cache = batchnorm_forward(x, gamma, beta, eps)
    env = {"x": x, "xhat": cache.xhat, "dL_dy": dout, "gamma": cache.gamma, "sigma2": cache.var,
           "mu": x.mean(axis=0), "epsilon": eps, "m": n, "beta": beta}
    compiled = lambdified_backward(closed_form_of(LAYERS[LAYER].function, LAYER))
    ours, theirs = compiled(env), batchnorm_backward_compact(dout, cache)
    error = max(float(np.max(np.abs(a - b)) / (np.max(np.abs(b)) or 1.0)) for a, b in zip(ours, theirs))
    assert error < 1e-9, f"lambdified closed form disagrees with the NumPy reference: {error:.2e}"
    times = {"lambdified": [], "numpy compact": []}
    for _ in range(fast):
        times["lambdified"].append(_wall(lambda: compiled(env)))
        times["numpy compact"].append(_wall(lambda: batchnorm_backward_compact(dout, cache)))
    return {"shape": list(shape), "max_relative_difference": error,
            **{k: {"times": t, "median": median(t)} for k, t in times.items()}}


def _wall(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


# --- the generated NumPy backward (bngraph codegen) ----------------------------------------------

def compact_backward(dout, xhat, gamma, var, eps):
    """The compact hand-written NumPy backward of batch norm, as issue 20 gives it (the baseline)."""
    n = dout.shape[0]
    dbeta = dout.sum(0)
    dgamma = (dout * xhat).sum(0)
    dxhat = dout * gamma
    dx = (n * dxhat - dxhat.sum(0) - xhat * (dxhat * xhat).sum(0)) / (n * np.sqrt(var + eps))
    return dx, dgamma, dbeta


def generated_module(folder: Path):
    """``bngraph codegen batchnorm --target numpy``, written to a file and imported as a user would."""
    from bngraph.codegen import generate_for

    path = folder / "generated_batchnorm.py"
    path.write_text(generate_for(derive(build_graph(LAYERS[LAYER].trace(3), "named", LAYER)), "numpy"),
                    encoding="utf-8")
    spec = importlib.util.spec_from_file_location("generated_batchnorm", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def generated_vs_numpy(shape, runs: int, seed: int = 0) -> dict:
    """The generated backward against the compact hand-written one and the memory-traffic bound.

    The bound is the bytes the backward must move (read dout and the cached x-hat, write dx; the
    per-feature vectors besides) over the copy bandwidth, 2·bytes(a) / time(np.copyto(b, a)).
    Copy, compact and generated run interleaved, so the load of the machine falls on all three.
    """
    rng = np.random.default_rng(seed)
    n, d = shape
    x, dout = rng.normal(1.0, 2.0, shape), rng.normal(size=shape)
    gamma, beta, eps = rng.uniform(0.5, 2.0, d), rng.normal(size=d), 1e-5
    with tempfile.TemporaryDirectory() as folder:
        module = generated_module(Path(folder))
    _, cache = module.forward(x, gamma, beta, eps)
    mean = x.mean(axis=0)
    var = ((x - mean) ** 2).mean(axis=0)
    xhat = (x - mean) / np.sqrt(var + eps)
    ours, theirs = module.backward(dout, cache), compact_backward(dout, xhat, gamma, var, eps)
    error = max(float(np.max(np.abs(a - b)) / (np.max(np.abs(b)) or 1.0)) for a, b in zip(ours, theirs))
    assert error < 1e-9, f"the generated backward disagrees with the compact NumPy backward: {error:.2e}"
    target = np.empty_like(dout)
    times = {"copy": [], "numpy compact": [], "generated": []}
    for _ in range(runs):
        times["copy"].append(_wall(lambda: np.copyto(target, dout)))
        times["numpy compact"].append(_wall(lambda: compact_backward(dout, xhat, gamma, var, eps)))
        times["generated"].append(_wall(lambda: module.backward(dout, cache)))
    medians = {k: median(t) for k, t in times.items()}
    moved = 3 * dout.nbytes + 4 * gamma.nbytes  # dout, x-hat in, dx out; gamma, 1/std in, dgamma, dbeta out
    bandwidth = 2 * dout.nbytes / medians["copy"]
    # each run's own ratios (copy, compact and generated back to back), then their median: a load
    # that comes and goes during the run falls on both sides of each ratio
    bounds = [moved * c / (2 * dout.nbytes) for c in times["copy"]]
    ratios = {"compact": median([g / c for g, c in zip(times["generated"], times["numpy compact"])]),
              "bound": median([g / b for g, b in zip(times["generated"], bounds)])}
    return {"shape": list(shape), "max_relative_difference": error, "bytes": moved, "bandwidth": bandwidth,
            "bound": moved / bandwidth, "ratios": ratios,
            **{k: {"times": t, "median": medians[k]} for k, t in times.items()}}
