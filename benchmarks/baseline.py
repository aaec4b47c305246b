"""The baseline: plain SymPy, the simple way, one point (one m) per child process.

The loss is written out in full, L = Σ_k dL_dy_k · y_k with
y_k = γ (x_k − μ)/√(σ² + ε) + β, μ and σ² substituted as explicit sums over x_1 … x_m;
then ``diff(L, x_1)`` and ``simplify``. That gives ONE component, dL/dx_1 (bngraph
derives all adjoints). Each point runs in its own process under a time limit, so a
point that never finishes costs only the limit.

    python benchmarks/baseline.py M LIMIT_SECONDS   # prints one JSON line
"""
from __future__ import annotations

import json
import signal
import subprocess
import sys
import time

import sympy as sp


def plain_sympy_gradient(m: int) -> tuple[float, float, sp.Expr]:
    """(seconds to build and diff, seconds to simplify, simplified dL/dx_1) at batch size m."""
    x = sp.symbols(f"x_1:{m + 1}")
    upstream = sp.symbols(f"dL_dy_1:{m + 1}")
    gamma, beta = sp.symbols("gamma beta")
    epsilon = sp.Symbol("epsilon", positive=True)
    start = time.perf_counter()
    mu = sum(x) / m
    sigma2 = sum((xk - mu) ** 2 for xk in x) / m
    loss = sum(d * (gamma * (xk - mu) / sp.sqrt(sigma2 + epsilon) + beta) for d, xk in zip(upstream, x))
    gradient = sp.diff(loss, x[0])
    built = time.perf_counter()
    simplified = sp.simplify(gradient)
    return built - start, time.perf_counter() - built, simplified


class _OutOfTime(Exception):
    pass


def _alarm(signum, frame):
    raise _OutOfTime


def main(argv: list[str]) -> int:
    m, limit = int(argv[0]), float(argv[1])
    signal.signal(signal.SIGALRM, _alarm)
    signal.setitimer(signal.ITIMER_REAL, limit)
    try:
        build_diff, simplify, result = plain_sympy_gradient(m)
    except _OutOfTime:
        print(json.dumps({"m": m, "timed_out": True, "limit": limit}))
        return 0
    signal.setitimer(signal.ITIMER_REAL, 0)
    print(json.dumps({"m": m, "timed_out": False, "build_diff": build_diff, "simplify": simplify,
                      "total": build_diff + simplify, "ops": int(sp.count_ops(result))}))
    return 0


def measure(m: int, limit: float, env: dict, cwd) -> dict:
    """One point in a child process; the parent's own timeout is a backstop for the alarm."""
    try:
        done = subprocess.run([sys.executable, __file__, str(m), str(limit)], cwd=cwd, env=env,
                              capture_output=True, text=True, timeout=limit + 60)
    except subprocess.TimeoutExpired:
        return {"m": m, "timed_out": True, "limit": limit}
    if done.returncode != 0:
        raise RuntimeError(f"baseline m = {m} failed: {done.stderr.strip()[-500:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
