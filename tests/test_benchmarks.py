"""The benchmark harness at tiny sizes, so that it cannot rot: one documented command, run whole."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_quick_benchmark_writes_table_json_and_plot(tmp_path):
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "run.py"), "--quick", "--out", str(tmp_path)],
                          cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    results = json.loads((tmp_path / "latest.json").read_text(encoding="utf-8"))

    # every stage of the named derivation is timed, and the stages make up the total
    run = results["derivation"]["4"]["runs"][0]
    assert set(run) == {"trace", "view", "derive", "json", "derivation", "total"}
    assert abs(sum(run[k] for k in ("trace", "view", "derive", "json")) - run["total"]) < 1e-9
    assert abs(run["total"] - run["json"] - run["derivation"]) < 1e-9
    assert results["growth"] == {"from": 2, "to": 4, "ratio": results["growth"]["ratio"]}

    # the plain-SymPy baseline finished at m = 2 and bngraph is compared with it at the same m
    assert results["baseline"]["2"]["timed_out"] is False and results["baseline"]["2"]["ops"] > 0
    assert set(results["cold_start"]) == {"import sympy", "derive m=3"}
    # the compiled closed form computes the same gradients as the NumPy reference
    assert results["lambdified"]["max_relative_difference"] < 1e-9
    # so does the module bngraph codegen writes, and both its goals are judged
    assert results["generated"]["max_relative_difference"] < 1e-9
    assert results["generated"]["bound"] == results["generated"]["bytes"] / results["generated"]["bandwidth"]
    assert {g["goal"].split(",")[0] for g in results["goals"]} >= {
        "closed form", "lambdified closed form vs NumPy compact backward",
        "generated NumPy backward (bngraph codegen) vs compact hand-written NumPy backward",
        "generated NumPy backward vs the memory-traffic bound"}

    table = (tmp_path / "latest.md").read_text(encoding="utf-8")
    assert "## Goals" in table and "| 2 |" in table and "plain SymPy" in table
    assert "| generated NumPy backward |" in table and "| memory-traffic bound (" in table
    assert (tmp_path / "derive_vs_m.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    # and issue 17's whole-command table (speed.py): every row, each ratio beside the run's `import sympy`
    speed = json.loads((tmp_path / "speed_quick.json").read_text(encoding="utf-8"))
    rows = speed["rows"]["now"]
    assert len(rows) == 10 and all(r["value"] is not None and r["value"] > 0 for r in rows), rows
    assert speed["medians"]["now"]["import sympy"]["wall"] > 0
    speed_table = (tmp_path / "speed_quick.md").read_text(encoding="utf-8")
    assert "| `import sympy` |" in speed_table and "cold `bngraph derive --no-cache`" in speed_table
    assert speed["medians"]["now"]["derive m=512 json"]["cpu"] > 0 and "in CPU time" in speed_table

