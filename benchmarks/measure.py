"""Timing helpers: medians of repeated runs, with SymPy's cache cleared before each run.

SymPy memoises expression construction globally; a second derivation at the same m would
mostly hit that cache and look faster than any real use (the command line always starts
cold). So every in-process run starts from an empty cache.
"""
from __future__ import annotations

import gc
import os
import statistics
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Callable

from sympy.core.cache import clear_cache

REPO = Path(__file__).resolve().parent.parent


def median(values):
    return statistics.median(values) if values else None


def run_count(first: float, fast: int, slow: int, slow_above: float = 1.0) -> int:
    """How many runs in all, given the first one: ``fast`` for quick cases, ``slow`` otherwise."""
    return fast if first < slow_above else slow


def timed(fn: Callable[[], object]) -> float:
    """Seconds one call of ``fn`` takes, from an empty SymPy cache and after a collection."""
    clear_cache()
    gc.collect()
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def repeated(fn: Callable[[], object], fast: int, slow: int) -> list[float]:
    """Durations of ``fn``: 1 run, then more up to ``fast`` (or ``slow`` if it took over 1 s)."""
    times = [timed(fn)]
    while len(times) < run_count(times[0], fast, slow):
        times.append(timed(fn))
    return times


def child_env() -> dict:
    """The environment for a child Python: this checkout importable, no bytecode surprises."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    return env


def cold(argv: list[str], timeout: float = 120) -> float:
    """Wall-clock seconds of one child process, from exec to exit (it must succeed)."""
    with tempfile.TemporaryDirectory() as cache:  # a fresh closed-form cache: computed every run, as before it existed
        start = time.perf_counter()
        done = subprocess.run(argv, cwd=REPO, env=child_env() | {"BNGRAPH_CACHE_DIR": cache}, capture_output=True,
                              text=True, timeout=timeout)
        elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv[1:])} exited {done.returncode}: {done.stderr.strip()[-500:]}")
    return elapsed
