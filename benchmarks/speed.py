"""Issue 17's rows: whole commands in fresh processes, time and peak memory, as ratios in one run.

    python benchmarks/speed.py                       # this checkout: a few minutes
    python benchmarks/speed.py --before DIR          # and an older checkout (e.g. `git archive`d), interleaved
    python benchmarks/speed.py --quick               # small sizes, one run each (the smoke test)

Every command is a fresh ``python -m bngraph …`` with the checkout first on ``PYTHONPATH``, timed
from exec to exit under ``/usr/bin/time`` for its peak resident memory. The cold ``derive`` at m = 3
is measured twice, against the same run's cold ``import sympy`` (the three interleaved): with the
closed-form cache warm (a cache of this run's own, filled by one untimed run first) and with
``--no-cache`` (dropped for a checkout older than the flag, which has no cache). Every other
command gets an empty cache of its own, so it computes the closed form as before the cache existed. With ``--before``, each
measurement runs for both checkouts one after the other, so the load of a shared machine falls
on both alike. Writes ``speed.md`` and ``speed.json`` in ``--out`` (default benchmarks/results/).
"""
from __future__ import annotations

import argparse
import compileall
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
TIME = shutil.which("time") or ("/usr/bin/time" if Path("/usr/bin/time").exists() else None)
MEMORY_CAP = 8 * 10**9  # bytes of address space a command may take: a shared machine is not run out of memory


def _cap_memory():
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_CAP, MEMORY_CAP))


def run(checkout: Path, argv: list[str], folder: Path, timeout: float = 1800, cache: Path | None = None) -> dict:
    """One fresh process: wall seconds and peak resident memory (bytes, None without /usr/bin/time).
    ``cache``: the closed-form cache it uses (default: an empty one in ``folder``, never the user's)."""
    env = dict(os.environ, PYTHONPATH=str(checkout), PYTHONDONTWRITEBYTECODE="1",
               BNGRAPH_CACHE_DIR=str(cache or folder / "cache"))
    if "--no-cache" in argv and "--no-cache" not in (checkout / "bngraph" / "cli.py").read_text(encoding="utf-8"):
        argv = [a for a in argv if a != "--no-cache"]  # a checkout from before the cache: it computes every time
    report = folder / "time.txt"
    command = [sys.executable, *argv]
    if TIME:
        command = [TIME, "-o", str(report), "-f", "%M %U %S", *command]
    start = time.perf_counter()
    try:
        done = subprocess.run(command, cwd=folder, env=env, capture_output=True, text=True, timeout=timeout,
                              preexec_fn=_cap_memory)
    except subprocess.TimeoutExpired:
        return {"failed": f"over {timeout:.0f} s"}
    wall = time.perf_counter() - start
    if done.returncode not in (0, 1):  # verify exits 1 on a mismatch: still a measured run
        return {"failed": f"exit {done.returncode} after {wall:.0f} s (address space capped at "
                          f"{MEMORY_CAP / 1e9:.0f} GB): {done.stderr.strip()[-200:]}"}
    peak = cpu = None
    if TIME:  # its last line: peak KB, user and system CPU seconds
        kb, user, system = report.read_text().splitlines()[-1].split()
        peak, cpu = int(kb) * 1024, float(user) + float(system)
    return {"wall": wall, "peak": peak, "cpu": cpu, "stdout": done.stdout}


def derive(m: int, fmt: str = "json", view: str = "named") -> list[str]:
    return ["-m", "bngraph", "derive", "--m", str(m), "--view", view, "--format", fmt, "-o", f"out_m{m}.{fmt}"]


COLD = ["-m", "bngraph", "derive", "--m", "3"]
FULL = {"json": 1024, "baseline": 5, "verify": 256, "big": 4096, "bigger": 16384, "largest": 65536}
QUICK = {"json": 64, "baseline": 2, "verify": 16, "big": 64, "bigger": 256, "largest": 512}


def names(quick: bool) -> dict[str, str]:
    """The commands' names at the sizes of this run."""
    s = QUICK if quick else FULL
    return {"sympy": "import sympy", "cold": "derive m=3 text (cache)", "cold_fresh": "derive m=3 text --no-cache",
            "json": f"derive m={s['json']} json",
            "baseline": f"plain SymPy m={s['baseline']}", "derive_v": f"derive m={s['verify']} json",
            "verify": f"verify m={s['verify']}", **{k: f"derive m={s[k]} json" for k in ("big", "bigger", "largest")}}


def commands(quick: bool) -> dict[str, tuple[list[str], int]]:
    """name -> (argv, runs): the sizes of the issue's table (smaller with --quick)."""
    s, n = QUICK if quick else FULL, names(quick)
    few, some = (1, 1) if quick else (3, 5)
    return {
        n["sympy"]: (["-c", "import sympy"], some),
        n["cold"]: (COLD, some),
        n["cold_fresh"]: ([*COLD, "--no-cache"], some),
        n["json"]: (derive(s["json"]), few),
        n["baseline"]: ([str(HERE / "baseline.py"), str(s["baseline"]), "120"], few),
        n["derive_v"]: (derive(s["verify"]), few),
        n["verify"]: (["-m", "bngraph", "verify", "--m", str(s["verify"])], few),
        # the growth rows' sizes run 3, 3 and 2 times: one run of m = 16384 took 18 to 25 s on a quiet machine
        n["big"]: (derive(s["big"]), 1 if quick else 3),
        n["bigger"]: (derive(s["bigger"]), 1 if quick else 3),
        n["largest"]: (derive(s["largest"]), 1 if quick else 2),
    }


def schedule(quick: bool) -> list[str]:
    """The order of the runs: the cold start's three commands (import sympy, derive with the cache,
    derive with --no-cache) round after round, so the load falls on all three alike; then the rest."""
    n, table = names(quick), commands(quick)
    cold = [n["sympy"], n["cold"], n["cold_fresh"]]
    order = [name for _ in range(max(table[c][1] for c in cold)) for name in cold]
    return order + [name for name, (_, runs) in table.items() if name not in cold for _ in range(runs)]


def measure(checkouts: dict[str, Path], quick: bool, skip: dict[str, set], partial: Path) -> dict:
    """Every command's runs for every checkout, interleaved: one run of each checkout in turn
    (written to ``partial`` after each run, so a long run interrupted keeps what it measured)."""
    results = {label: {} for label in checkouts}
    table, warm = commands(quick), names(quick)["cold"]
    for checkout in checkouts.values():  # compiled once, as ``pip install`` does: no run pays for compiling
        compileall.compile_dir(checkout / "bngraph", quiet=1)
    with tempfile.TemporaryDirectory() as caches:
        cache = {label: Path(caches) / label for label in checkouts}  # each checkout's own, for the warm row
        for label, checkout in checkouts.items():  # one untimed run fills it
            with tempfile.TemporaryDirectory() as folder:
                run(checkout, table[warm][0], Path(folder), cache=cache[label])
        for name in schedule(quick):
            argv = table[name][0]
            for label, checkout in checkouts.items():
                if name in skip.get(label, ()):
                    continue
                print(f"[speed] {label}: {name}", file=sys.stderr, flush=True)
                with tempfile.TemporaryDirectory() as folder:
                    one = run(checkout, argv, Path(folder), cache=cache[label] if name == warm else None)
                if name.startswith("plain SymPy") and "failed" not in one:  # the child times its diff + simplify
                    one["wall"] = json.loads(one["stdout"].strip().splitlines()[-1])["total"]
                one.pop("stdout", None)
                results[label].setdefault(name, []).append(one)
                partial.write_text(json.dumps(results, indent=1) + "\n", encoding="utf-8")
    return results


def summary(runs: list[dict]) -> dict | None:
    runs = [r for r in runs if "failed" not in r]
    if not runs:
        return None
    cpus = [r["cpu"] for r in runs if r.get("cpu") is not None]
    return {"wall": statistics.median(r["wall"] for r in runs), "cpu": statistics.median(cpus) if cpus else None,
            "peak": max((r["peak"] for r in runs if r["peak"] is not None), default=None), "runs": len(runs)}


def rows(medians: dict, quick: bool) -> list[dict]:
    """The issue's table: each measure as a ratio of two timings of the same run, and memory."""
    s, n = QUICK if quick else FULL, names(quick)

    def t(key):
        return medians[n[key]]["wall"] if n[key] in medians else None

    def ratio(a, b):
        return t(a) / t(b) if t(a) is not None and t(b) else None

    def cpu_ratio(a, b):  # CPU seconds (user + system): what the work grows by, whatever else the machine runs
        ca, cb = (medians.get(n[k], {}).get("cpu") for k in (a, b))
        return ca / cb if ca is not None and cb else None

    def peak(key):
        p = medians.get(n[key], {}).get("peak")
        return p / 1e6 if p else None

    return [
        {"measure": "cold `bngraph derive` (m = 3, text), closed-form cache warm / cold `import sympy`", "goal": 1.4,
         "value": ratio("cold", "sympy")},
        {"measure": "cold `bngraph derive --no-cache` (m = 3, text) / cold `import sympy`", "goal": 1.4,
         "value": ratio("cold_fresh", "sympy")},
        {"measure": f"`derive --m {s['json']} --format json` (cold) / plain SymPy diff + simplify "
                    f"of one component at m = {s['baseline']}", "goal": 0.2, "value": ratio("json", "baseline")},
        {"measure": f"t(m = {s['bigger']}) / t(m = {s['big']}), named, JSON (linear is 4)", "goal": 4.6,
         "value": ratio("bigger", "big")},
        {"measure": f"peak memory at m = {s['bigger']} (MB)", "goal": 600, "value": peak("bigger")},
        {"measure": f"`verify --m {s['verify']}` / `derive --m {s['verify']} --format json`", "goal": 2.5,
         "value": ratio("verify", "derive_v")},
        {"measure": f"m = {s['largest']}, named, JSON: t(m = {s['largest']}) / t(m = {s['bigger']}) (linear is 4)",
         "goal": 4.6, "value": ratio("largest", "bigger")},
        {"measure": f"m = {s['largest']}, named, JSON: peak memory (MB)", "goal": 2000, "value": peak("largest")},
        {"measure": f"the two growth rows in CPU time (user + system): t(m = {s['bigger']}) / t(m = {s['big']})",
         "goal": 4.6, "value": cpu_ratio("bigger", "big")},
        {"measure": f"… and t(m = {s['largest']}) / t(m = {s['bigger']})", "goal": 4.6,
         "value": cpu_ratio("largest", "bigger")},
    ]


def machine() -> dict:
    def git(*a):
        done = subprocess.run(["git", *a], cwd=REPO, capture_output=True, text=True)
        return done.stdout.strip()

    memory = None
    if Path("/proc/meminfo").exists():
        memory = int(Path("/proc/meminfo").read_text().split()[1]) * 1024
    cpu = ""
    if Path("/proc/cpuinfo").exists():
        cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                    if line.startswith("model name")), "")
    return {"date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"), "commit": git("rev-parse", "--short", "HEAD"),
            "python": platform.python_version(), "platform": platform.platform(), "cpu": cpu, "cpus": os.cpu_count(),
            "memory": memory, "load": " ".join(f"{v:.2f}" for v in os.getloadavg())}


def _number(value, goal) -> str:
    if value is None:
        return "—"
    return f"{value:,.0f}" if goal >= 100 else f"{value:.2f}"


def markdown(result: dict) -> str:
    labels = list(result["rows"])
    meta = result["machine"]
    lines = [f"# Issue 17: speed and memory of whole commands{' (quick)' if result['quick'] else ''}", "",
             f"`python benchmarks/speed.py{' --before DIR' if len(labels) > 1 else ''}` · {meta['date']} · "
             f"{meta['cpu']}, {meta['cpus']} CPUs, {(meta['memory'] or 0) / 1e9:.0f} GB · {meta['platform']} · "
             f"Python {meta['python']} · load average {result['load_start']} at start, {meta['load']} at end. "
             "The machine was shared with other jobs: the ratios, each of two timings of the same run, "
             "are what holds.", "",
             "| measure | goal | " + " | ".join(labels) + " |", "|---|---:|" + "---:|" * len(labels)]
    for k, row in enumerate(result["rows"][labels[0]]):
        cells = [_number(result["rows"][label][k]["value"], row["goal"]) for label in labels]
        met = result["rows"][labels[-1]][k]["value"]
        mark = "" if met is None else (" ✓" if met <= row["goal"] else " ✗")
        lines.append(f"| {row['measure']} | ≤ {_number(row['goal'], row['goal'])} | " + " | ".join(cells[:-1] + [cells[-1] + mark]) + " |")
    lines += ["", "## Commands (medians; CPU time and peak resident memory from `/usr/bin/time`)", "",
              "| command | " + " | ".join(f"{label} time | {label} CPU | {label} peak" for label in labels) + " |",
              "|---|" + "---:|---:|---:|" * len(labels)]
    for name in commands(result["quick"]):
        cells = []
        for label in labels:
            s = result["medians"][label].get(name)
            cpu = s.get("cpu") if s else None
            cells += [f"{s['wall']:.2f} s ({s['runs']})", f"{cpu:.2f} s" if cpu is not None else "—",
                      f"{s['peak'] / 1e6:,.0f} MB" if s["peak"] else "—"] if s \
                else [result["skipped"].get(label, {}).get(name, "not run"), "—", "—"]
        lines.append(f"| `{name}` | " + " | ".join(cells) + " |")
    lines += ["", f"`{names(result['quick'])['baseline']}` is the child's own diff + simplify time (benchmarks/baseline.py), "
              "not its start-up; every other time is a whole process from exec to exit.", ""]
    return "\n".join(lines)


def plot(result: dict, path: Path) -> None:
    """Each row's measure over its goal, one bar per checkout: under 1 (the line) meets the goal."""
    import textwrap

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = list(result["rows"])
    rows = result["rows"][labels[-1]]
    fig, ax = plt.subplots(figsize=(9, 0.5 * len(rows) * len(labels) + 1.5))
    height = 0.8 / len(labels)
    for k, label in enumerate(labels):
        values = [r["value"] / r["goal"] if r["value"] is not None else 0 for r in result["rows"][label]]
        ax.barh([n + k * height for n in range(len(rows))], values, height, label=label)
    ax.axvline(1, color="black", linewidth=1)
    ax.set_yticks([n + height * (len(labels) - 1) / 2 for n in range(len(rows))],
                  [textwrap.fill(r["measure"].replace("`", ""), 42) for r in rows], fontsize=7)
    ax.invert_yaxis()
    ax.set_xscale("log")
    ax.set_xlabel("measured / goal (log scale): left of the line meets the goal; no bar: not measured", fontsize=8)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", type=Path, help="an older checkout to measure in the same run")
    parser.add_argument("--before-skip", action="append", default=[],
                        help="NAME:REASON: a command not run on the older checkout (say why)")
    parser.add_argument("--skip", action="append", default=[],
                        help="NAME:REASON: a command not run on this checkout (say why)")
    parser.add_argument("--label", default="now", help="this checkout's column (default: now)")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--markdown", type=Path, metavar="JSON", help="only write the Markdown of a JSON written before")
    parser.add_argument("--out", type=Path, default=HERE / "results")
    args = parser.parse_args(argv)
    if args.markdown:  # e.g. a before and an after run merged by hand into one JSON
        result = json.loads(args.markdown.read_text())
        args.markdown.with_suffix(".md").write_text(markdown(result), encoding="utf-8")
        plot(result, args.markdown.with_suffix(".png"))
        return 0
    checkouts = {"before": args.before.resolve()} if args.before else {}
    checkouts[args.label] = REPO
    skipped = {"before": dict(s.split(":", 1) for s in args.before_skip)}
    skipped[args.label] = dict(s.split(":", 1) for s in args.skip)
    load_start = " ".join(f"{v:.2f}" for v in os.getloadavg())
    args.out.mkdir(parents=True, exist_ok=True)
    stem = ("speed_quick" if args.quick else "speed") + ("" if args.label == "now" else f"_{args.label}")
    raw = measure(checkouts, args.quick, {label: set(reasons) for label, reasons in skipped.items()},
                  args.out / f"{stem}.partial.json")
    (args.out / f"{stem}.partial.json").unlink()
    for label, by in raw.items():  # a command that failed every run: say so in the table
        skipped[label].update({name: runs[-1]["failed"] for name, runs in by.items() if summary(runs) is None})
    medians = {label: {name: s for name, runs in by.items() if (s := summary(runs))} for label, by in raw.items()}
    result = {"quick": args.quick, "machine": machine(), "load_start": load_start, "runs": raw, "medians": medians,
              "skipped": skipped, "rows": {label: rows(medians[label], args.quick) for label in checkouts}}
    (args.out / f"{stem}.json").write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    (args.out / f"{stem}.md").write_text(markdown(result), encoding="utf-8")
    plot(result, args.out / f"{stem}.png")
    print(markdown(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
