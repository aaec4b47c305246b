"""The results as a Markdown table with the goals, as JSON, and as a log-log plot."""
from __future__ import annotations

import json
from pathlib import Path


def seconds(t) -> str:
    if t is None:
        return "—"
    if t < 1e-3:
        return f"{t * 1e6:.3g} µs"
    return f"{t * 1e3:.3g} ms" if t < 1 else f"{t:.3g} s"


def times_faster(r) -> str:
    return "—" if r is None else f"{r:,.0f}×" if r >= 100 else f"{r:.3g}×"


def speedup(results: dict, m: str, part: str = "total") -> tuple[float | None, bool]:
    """Baseline time / bngraph time at the same m; (lower bound, True) if the baseline timed out.

    ``part``: bngraph's ``total`` (with the JSON written) or its ``derivation`` alone.
    """
    ours, base = results["derivation"].get(m), results["baseline"].get(m)
    if not ours or not base or base.get("skipped"):
        return None, False
    if base["timed_out"]:
        return base["limit"] / ours[part], True
    return base["total"] / ours[part], False


def growth(results: dict) -> dict | None:
    sizes = sorted(map(int, results["derivation"]))
    if len(sizes) < 2:
        return None
    small, large = (256, 1024) if {256, 1024} <= set(sizes) else sizes[-2:]
    d = results["derivation"]
    return {"from": small, "to": large, "ratio": d[str(large)]["total"] / d[str(small)]["total"]}


def goals(results: dict) -> list[dict]:
    """Each goal: what, target, measured, a ratio against a baseline of the same run, met or not."""
    d, rows = results["derivation"], []

    def row(goal, target, measured, ratio, met):
        rows.append({"goal": goal, "target": target, "measured": measured, "ratio": ratio,
                     "met": None if met is None else bool(met)})

    t = d.get("1024", {}).get("total")
    row("m = 1024 named derivation (trace, view, all adjoints, JSON)", "< 2 s", seconds(t),
        "—", None if t is None else t < 2)
    g = results.get("growth")
    if g:
        row(f"growth time(m={g['to']}) / time(m={g['from']})", "≤ 5" if g["to"] == 4 * g["from"] else "(info)",
            f"{g['ratio']:.2f}", f"{g['to'] // g['from']}× the m", g["ratio"] <= 5 if g["to"] == 4 * g["from"] else None)
    c = results["closed_form"]
    row("closed form, symbolic m (first call in the process)", "< 1 s", seconds(c["first"]),
        f"repeats: {seconds(c['median'])}", c["first"] < 1)
    r, lower = speedup(results, "6")
    if r is not None:
        alone, _ = speedup(results, "6", "derivation")
        # Issue 9 defines this goal on trace + named-view derivation (all adjoints); writing the
        # JSON is shown beside it, since it is the larger half of bngraph's time at small m.
        row("speed-up over plain SymPy at m = 6 (bngraph: trace + named view + all adjoints; "
            "SymPy: dL/dx_1 only)", "≥ 1000×", (">" if lower else "") + times_faster(alone),
            f"plain SymPy / bngraph; with the JSON written too: {'>' if lower else ''}{times_faster(r)}",
            alone >= 1000)
    cold = results["cold_start"]
    derive3 = cold.get("derive m=3")
    if derive3:
        base = cold["import sympy"]["median"]
        row("cold `bngraph derive --m 3 --format json`", "< 1.5 s", seconds(derive3["median"]),
            f"{derive3['median'] / base:.2f}× cold `import sympy` ({seconds(base)})", derive3["median"] < 1.5)
    lam = results["lambdified"]
    ratio = lam["lambdified"]["median"] / lam["numpy compact"]["median"]
    row(f"lambdified closed form vs NumPy compact backward, {lam['shape'][0]}×{lam['shape'][1]} float64",
        "≤ 1.5×", seconds(lam["lambdified"]["median"]), f"{ratio:.2f}× ({seconds(lam['numpy compact']['median'])})",
        ratio <= 1.5)
    gen = results.get("generated")
    if gen:
        size = f"{gen['shape'][0]}×{gen['shape'][1]} float64"
        ours, compact = gen["generated"]["median"], gen["numpy compact"]["median"]
        to_compact, to_bound = gen["ratios"]["compact"], gen["ratios"]["bound"]
        row(f"generated NumPy backward (bngraph codegen) vs compact hand-written NumPy backward, {size}", "≤ 0.75×",
            seconds(ours), f"{to_compact:.2f}× (compact {seconds(compact)}; median of the runs' ratios)",
            to_compact <= 0.75)
        row(f"generated NumPy backward vs the memory-traffic bound, {size}", "≤ 4×", seconds(ours),
            f"{to_bound:.2f}× (bound {seconds(gen['bound'])}: {gen['bytes'] / 2**20:.3g} MiB at "
            f"{gen['bandwidth'] / 1e9:.1f} GB/s copy bandwidth; median of the runs' ratios)", to_bound <= 4)
    return rows


def markdown(results: dict) -> str:
    meta = results["meta"]
    out = [f"# bngraph benchmarks: {meta['layer']}{' (quick)' if meta['quick'] else ''}", "",
           f"`{meta['command']}` · {meta['date']} · commit {meta['commit']} · Python {meta['python']}, "
           f"SymPy {meta['sympy']}, NumPy {meta['numpy']} · {meta['cpus']} CPUs, load average "
           f"{meta['load_start']} at start, {meta['load_end']} at end · total {seconds(meta['wall'])}", "",
           "Times are medians (runs in brackets); every in-process run starts with SymPy's cache cleared. "
           "The machine may be shared: read the ratios, measured in the same run, before the times.", "",
           "## Goals", "", "| goal | target | measured | ratio against the same run | met |", "|---|---|---|---|---|"]
    for g in results["goals"]:
        met = {True: "yes", False: "**no**", None: "—"}[g["met"]]
        out.append(f"| {g['goal']} | {g['target']} | {g['measured']} | {g['ratio']} | {met} |")
    out += ["", "## Named derivation against m, in process", "",
            "bngraph: trace, named view, every adjoint (dL_dx_1 … dL_dx_m and the rest), the contract's JSON "
            "written to a file. Plain SymPy: the loss written out in x_1 … x_m, `diff` w.r.t. x_1, `simplify` "
            "(one component).", "",
            "| m | trace | view | derive | json | **total** | plain SymPy | bngraph faster by | without JSON |",
            "|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    sizes = sorted({*map(int, results["derivation"]), *map(int, results["baseline"])})
    for m in sizes:
        d, b = results["derivation"].get(str(m)), results["baseline"].get(str(m))
        cells = [seconds(d[k]) for k in ("trace", "view", "derive", "json")] if d else ["—"] * 4
        total = f"**{seconds(d['total'])}** ({len(d['runs'])})" if d else "—"
        faster = []
        for part in ("total", "derivation"):
            r, lower = speedup(results, str(m), part)
            faster.append((">" if lower else "") + times_faster(r) if r else "—")
        out.append(f"| {m} | {' | '.join(cells)} | {total} | {_baseline_cell(b)} | {' | '.join(faster)} |")
    g = results.get("growth")
    if g:
        out += ["", f"Growth: time(m = {g['to']}) / time(m = {g['from']}) = **{g['ratio']:.2f}** "
                    f"(m grew {g['to'] // g['from']}×; linear growth would give {g['to'] // g['from']})."]
    c = results["closed_form"]
    out += ["", "## Closed form, symbolic m", "",
            f"`closed_form_of(batchnorm)`: first call {seconds(c['first'])}, then median "
            f"{seconds(c['median'])} ({_runs(c['times'])}). Valid for every m: no m in its cost."]
    cold = results["cold_start"]
    base = cold["import sympy"]["median"]
    out += ["", "## Cold start (a fresh `python` each run, interleaved)", "",
            "| command | time | / cold `import sympy` |", "|---|---:|---:|"]
    for name, v in cold.items():
        command = "python -c 'import sympy'" if name == "import sympy" else \
            f"python -m bngraph derive --format json --m {name.split('=')[1]}"
        out.append(f"| `{command}` | {seconds(v['median'])} ({len(v['times'])}) | {v['median'] / base:.2f}× |")
    render = results.get("render")
    out += ["", "## Rendering the backward graph to SVG (derivation given)", ""]
    if render:
        out += ["| case | time | SVG size |", "|---|---:|---:|"]
        out += [f"| {k} | {seconds(v['median'])} ({len(v['times'])}) | {v['bytes'] / 1024:.0f} KiB |"
                for k, v in render.items()]
    else:
        out.append("bngraph/render.py is absent: not measured.")
    lam = results["lambdified"]
    n, f = lam["shape"]
    ratio = lam["lambdified"]["median"] / lam["numpy compact"]["median"]
    out += ["", f"## Closed form compiled to NumPy, ({n}, {f}) float64", "",
            "| backward | time | ratio |", "|---|---:|---:|",
            f"| `reference.batchnorm_backward_compact` | {seconds(lam['numpy compact']['median'])} "
            f"({len(lam['numpy compact']['times'])}) | 1 |",
            f"| lambdified closed form (Sums as NumPy sums) | {seconds(lam['lambdified']['median'])} "
            f"({len(lam['lambdified']['times'])}) | {ratio:.2f}× |", "",
            f"Largest relative difference between the two: {lam['max_relative_difference']:.1e}."]
    gen = results.get("generated")
    if gen:
        n, f = gen["shape"]
        compact = gen["numpy compact"]["median"]
        out += ["", f"## Generated NumPy backward (`bngraph codegen batchnorm --target numpy`), ({n}, {f}) float64", "",
                "The module `bngraph codegen` writes, imported from a file, against the compact hand-written backward "
                "`dx = (N*dxhat - dxhat.sum(0) - xhat*(dxhat*xhat).sum(0)) / (N*sqrt(var+eps))` (with dgamma, dbeta), "
                "and against the memory-traffic bound: the bytes a backward must move (read dout and x-hat, write dx, "
                "the per-feature vectors besides) over the copy bandwidth `np.copyto` reaches in the same run. "
                "The three run interleaved.", "",
                "| what | time | ratio to the compact backward | ratio to the bound |", "|---|---:|---:|---:|",
                f"| `np.copyto` of dout ({2 * gen['shape'][0] * gen['shape'][1] * 8 / 2**20:.3g} MiB moved: "
                f"{gen['bandwidth'] / 1e9:.1f} GB/s) | {seconds(gen['copy']['median'])} ({len(gen['copy']['times'])}) "
                f"| | |",
                f"| memory-traffic bound ({gen['bytes'] / 2**20:.3g} MiB) | {seconds(gen['bound'])} | "
                f"{gen['bound'] / compact:.2f}× | 1 |",
                f"| compact hand-written NumPy backward | {seconds(compact)} ({len(gen['numpy compact']['times'])}) | 1 | "
                f"{compact / gen['bound']:.2f}× |",
                f"| generated NumPy backward | {seconds(gen['generated']['median'])} ({len(gen['generated']['times'])}) | "
                f"{gen['ratios']['compact']:.2f}× | {gen['ratios']['bound']:.2f}× |", "",
                "Ratios of the generated backward are the medians of each run's own ratios (copy, compact and "
                "generated back to back); the others are ratios of medians.", "",
                f"Largest relative difference between the generated and the compact backward: "
                f"{gen['max_relative_difference']:.1e}."]
    out += ["", "## Plain SymPy baseline, per point (child process, time limit "
                f"{results['config']['baseline_limit']:g} s)", "",
            "| m | build + diff | simplify | total | ops in result |", "|---:|---:|---:|---:|---:|"]
    for m in sorted(map(int, results["baseline"])):
        b = results["baseline"][str(m)]
        if b.get("skipped") or b["timed_out"]:
            out.append(f"| {m} | | | {_baseline_cell(b)} | |")
        else:
            out.append(f"| {m} | {seconds(b['build_diff'])} | {seconds(b['simplify'])} | "
                       f"{seconds(b['total'])} ({len(b['runs'])}) | {b['ops']} |")
    return "\n".join(out) + "\n"


def _runs(times) -> str:
    return f"{len(times)} run{'s' if len(times) != 1 else ''}"


def _baseline_cell(b) -> str:
    if not b:
        return "—"
    if b.get("skipped"):
        return f"not run ({b['skipped']})"
    if b["timed_out"]:
        return f">{b['limit']:g} s" + (" (not run: a smaller m timed out)" if b.get("not_run") else "")
    return f"{seconds(b['total'])} ({len(b['runs'])})"


def write_json(results: dict, path: Path) -> None:
    path.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")


def plot(results: dict, path: Path) -> None:
    """Time against m, log-log: bngraph's named derivation, plain SymPy, the closed form."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    gen = results.get("generated")
    if gen:
        fig, (ax, bars) = plt.subplots(1, 2, figsize=(11, 4.5), dpi=120, gridspec_kw={"width_ratios": [3, 2]})
        _backward_bars(bars, results)
    else:
        fig, ax = plt.subplots(figsize=(7, 4.5), dpi=120)
    d = results["derivation"]
    ms = sorted(map(int, d))
    ax.plot(ms, [d[str(m)]["total"] for m in ms], "o-", label="bngraph: named derivation, all adjoints + JSON")
    b = results["baseline"]
    done = sorted(int(m) for m, v in b.items() if not v.get("skipped") and not v["timed_out"])
    ax.plot(done, [b[str(m)]["total"] for m in done], "s-", color="C3",
            label="plain SymPy: diff + simplify, dL/dx_1 only")
    late = sorted(int(m) for m, v in b.items() if not v.get("skipped") and v["timed_out"])
    if late:
        ax.plot(late, [b[str(m)]["limit"] for m in late], "^", color="C3", fillstyle="none", markersize=9,
                label="plain SymPy: over the time limit")
    c = results["closed_form"]["first"]
    ax.axhline(c, color="C2", linestyle="--", label=f"bngraph closed form, symbolic m ({seconds(c)})")
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel("batch size m")
    ax.set_ylabel("seconds (median)")
    ax.set_title(f"{results['meta']['layer']}: deriving the backward pass")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def _backward_bars(ax, results: dict) -> None:
    """The batch-norm backward on one large array: bound, generated, lambdified, compact NumPy (ms)."""
    gen, lam = results["generated"], results["lambdified"]
    rows = [("memory-traffic bound", gen["bound"], "C7"),
            ("generated (bngraph codegen)", gen["generated"]["median"], "C2"),
            ("lambdified closed form", lam["lambdified"]["median"], "C1"),
            ("compact hand-written NumPy", gen["numpy compact"]["median"], "C0")]
    labels = [r[0] for r in rows]
    values = [r[1] * 1e3 for r in rows]
    ax.barh(labels, values, color=[r[2] for r in rows])
    for k, v in enumerate(values):
        ax.text(v, k, f" {v:.3g} ms", va="center", fontsize=8)
    ax.invert_yaxis()
    ax.set_xlim(0, max(values) * 1.3)
    ax.set_xlabel("milliseconds (median, same run)")
    n, f = gen["shape"]
    ax.set_title(f"backward at ({n}, {f}) float64", fontsize=10)
    ax.tick_params(axis="y", labelsize=8)
