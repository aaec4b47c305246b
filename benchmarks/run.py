"""Benchmarks of bngraph on batch norm, in one run: see benchmarks/README.md.

    python benchmarks/run.py            # full run, a few minutes; writes benchmarks/results/
    python benchmarks/run.py --quick    # tiny sizes, seconds: the smoke test runs this
"""
from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make this checkout importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks import baseline, cases, report  # noqa: E402
from benchmarks.measure import REPO, child_env, median  # noqa: E402


@dataclass(frozen=True)
class Config:
    derivation_m: tuple[int, ...] = (2, 3, 4, 5, 6, 8, 64, 256, 1024)
    baseline_m: tuple[int, ...] = (2, 3, 4, 5, 6)
    cold_m: tuple[int, ...] = (3, 1024)
    render: tuple[tuple[int, bool], ...] = ((3, True), (1024, False))
    array_shape: tuple[int, int] = (4096, 1024)
    fast: int = 5  # runs of a case that takes under a second
    slow: int = 3  # runs of one that takes longer
    baseline_limit: float = 60.0  # seconds per plain-SymPy point
    baseline_budget: float = 300.0  # seconds for all of them
    baseline_repeat_under: float = 10.0  # repeat a point (up to 3 runs) while it has cost less


QUICK = Config(derivation_m=(2, 4), baseline_m=(2,), cold_m=(3,), render=((3, True), (16, False)),
               array_shape=(256, 32), fast=1, slow=1, baseline_limit=30.0, baseline_budget=30.0,
               baseline_repeat_under=0.0)


def baseline_points(config: Config) -> dict[str, dict]:
    """Plain SymPy at each m, each run in a child under the time limit, within the budget."""
    points, spent, over = {}, 0.0, False
    for m in config.baseline_m:
        if over:  # a larger m only takes longer: record it as over the limit without waiting
            points[str(m)] = {"m": m, "timed_out": True, "limit": config.baseline_limit, "not_run": True}
            continue
        if spent >= config.baseline_budget:
            points[str(m)] = {"m": m, "skipped": "over the budget"}
            continue
        runs = []
        while len(runs) < 3:
            _progress(f"plain SymPy m = {m}, run {len(runs) + 1}")
            run = baseline.measure(m, config.baseline_limit, child_env(), REPO)
            spent += config.baseline_limit if run["timed_out"] else run["total"]
            runs.append(run)
            if run["timed_out"] or sum(r["total"] for r in runs) > config.baseline_repeat_under:
                break
        over = runs[-1]["timed_out"]
        if over:
            points[str(m)] = {**runs[-1], "runs": runs}
        else:
            points[str(m)] = {"m": m, "timed_out": False, "runs": runs,
                              **{k: median([r[k] for r in runs]) for k in ("build_diff", "simplify", "total")},
                              "ops": runs[0]["ops"]}
    return points


def run(config: Config, quick: bool, command: str) -> dict:
    started, load_start = time.perf_counter(), _load()
    results: dict = {"meta": {}, "config": asdict(config)}
    _progress("closed form, symbolic m")
    results["closed_form"] = cases.closed_form_symbolic_m(config.fast)  # first: its first call is cold
    _progress(f"named derivation, m = {', '.join(map(str, config.derivation_m))}")
    results["derivation"] = {str(m): v for m, v in
                             cases.derivation_vs_m(config.derivation_m, config.fast, config.slow).items()}
    results["growth"] = report.growth(results)
    _progress(f"lambdified closed form vs NumPy, {config.array_shape}")
    results["lambdified"] = cases.lambdified_vs_numpy(config.array_shape, max(config.fast, 3) + 2)
    _progress(f"generated NumPy backward (bngraph codegen) vs NumPy and the copy bandwidth, {config.array_shape}")
    results["generated"] = cases.generated_vs_numpy(config.array_shape, max(config.fast, 3) * 3)
    _progress("rendering")
    results["render"] = cases.rendering(config.render, config.fast, config.slow)
    _progress("cold start")
    results["cold_start"] = cases.cold_start(config.cold_m, config.fast, config.slow)
    results["baseline"] = baseline_points(config)
    results["meta"] = _meta(quick, command, load_start, time.perf_counter() - started)
    results["goals"] = report.goals(results)
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="benchmarks/run.py", description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="tiny sizes, one run each (seconds)")
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "results",
                        help="folder for latest.md, latest.json, derive_vs_m.png (default: benchmarks/results)")
    parser.add_argument("--no-plot", action="store_true", help="skip the PNG plot")
    parser.add_argument("--baseline-limit", type=float, help="seconds per plain-SymPy point (default 60)")
    parser.add_argument("--no-speed", action="store_true",
                        help="skip issue 17's whole-command table (speed.py; about 4 minutes in a full run)")
    args = parser.parse_args(argv)
    config = QUICK if args.quick else Config()
    if args.baseline_limit:
        config = Config(**{**asdict(config), "baseline_limit": args.baseline_limit})
    command = "python benchmarks/run.py" + (" --quick" if args.quick else "")
    with tempfile.TemporaryDirectory() as cache:  # the closed-form cache of this run's own, never the user's
        os.environ["BNGRAPH_CACHE_DIR"] = cache
        results = run(config, args.quick, command)
    args.out.mkdir(parents=True, exist_ok=True)
    report.write_json(results, args.out / "latest.json")
    (args.out / "latest.md").write_text(report.markdown(results), encoding="utf-8")
    if not args.no_plot:
        report.plot(results, args.out / "derive_vs_m.png")
    for g in results["goals"]:
        mark = {True: "ok  ", False: "MISS", None: "    "}[g["met"]]
        print(f"{mark} {g['goal']}: {g['measured']} (target {g['target']}; {g['ratio']})")
    print(f"written: {args.out / 'latest.md'}")
    if not args.no_speed:  # issue 17's rows, whole commands, each ratio beside the same run's `import sympy`
        from benchmarks import speed

        speed.main((["--quick"] if args.quick else []) + ["--out", str(args.out)])
    return 0


def _progress(text: str) -> None:
    print(f"[bench] {text}", file=sys.stderr, flush=True)


def _load() -> str:
    return " ".join(f"{v:.2f}" for v in os.getloadavg()) if hasattr(os, "getloadavg") else "?"


def _meta(quick: bool, command: str, load_start: str, wall: float) -> dict:
    import numpy
    import sympy

    def git(*a):
        done = subprocess.run(["git", *a], cwd=REPO, capture_output=True, text=True)
        return done.stdout.strip() if done.returncode == 0 else ""

    commit = git("rev-parse", "--short", "HEAD") or "?"
    if git("status", "--porcelain", "--untracked-files=no"):
        commit += " + uncommitted changes"
    return {"layer": cases.LAYER, "quick": quick, "command": command,
            "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"), "commit": commit,
            "python": platform.python_version(), "sympy": sympy.__version__, "numpy": numpy.__version__,
            "platform": platform.platform(), "cpus": os.cpu_count(), "load_start": load_start,
            "load_end": _load(), "wall": wall}


if __name__ == "__main__":
    sys.exit(main())
