"""Issue 14's goal figures for ``bngraph audit``, on the held-out write-ups (benchmarks/heldout/) and,
for comparison, on the test corpus (tests/data/audit/corpus/):

    python benchmarks/audit_corpus.py            # writes benchmarks/results/audit_corpus.{json,md}

Per document: equations, verdicts, time (wall, in this process, after one warm-up audit that
builds the grammar and the engine's closed form; the warm-up time is reported as the baseline).
Goals: no false "wrong", >= 80 % of the real errors caught with a counterexample, cannot-read
<= 15 % of the equations about the layer (all but not-about-this-layer), each document < 5 s.
"""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bngraph.audit.auditor import audit_document  # noqa: E402

HERE = Path(__file__).resolve().parent
SETS = {"held-out": HERE / "heldout", "test corpus": HERE.parent / "tests" / "data" / "audit" / "corpus"}


def measure(folder: Path, errors: dict) -> dict:
    rows = []
    for path in sorted(p for p in folder.glob("*.md") if p.name != "README.md"):
        start = time.perf_counter()
        report = audit_document(path)
        seconds = time.perf_counter() - start
        known = set(map(int, errors.get(path.name, {}).get("errors", [])))
        wrong = {f.line for f in report.findings if f.verdict == "wrong"}
        about = [f for f in report.findings if f.verdict != "not-about-this-layer"]
        rows.append({"document": path.name, "equations": len(report.findings), "about_layer": len(about),
                     "cannot_read": sum(f.verdict == "cannot-read" for f in about),
                     "real_errors": len(known), "caught": len(known & {f.line for f in report.findings
                                                                     if f.verdict == "wrong" and f.counterexample}),
                     "false_wrong": len(wrong - known), "seconds": round(seconds, 3), "counts": report.counts()})
    return {"documents": rows, "totals": _totals(rows)}


def _totals(rows: list[dict]) -> dict:
    about = sum(r["about_layer"] for r in rows)
    errors = sum(r["real_errors"] for r in rows)
    return {"documents": len(rows), "equations": sum(r["equations"] for r in rows), "about_layer": about,
            "cannot_read_share": round(sum(r["cannot_read"] for r in rows) / max(about, 1), 3),
            "real_errors": errors, "caught": sum(r["caught"] for r in rows),
            "false_wrong": sum(r["false_wrong"] for r in rows), "slowest_seconds": max(r["seconds"] for r in rows)}


def main() -> None:
    start = time.perf_counter()
    audit_document("$$\\mu = \\frac{1}{m}\\sum_i x_i$$")  # warm-up: grammar and the engine's closed form
    baseline = round(time.perf_counter() - start, 3)
    expected = {"held-out": json.loads((HERE / "heldout" / "expected.json").read_text()),
                "test corpus": {name: {"errors": []} for name in []}}
    corpus_errors = {"zakka_2016.md": {"errors": [49, 61, 62, 86, 87, 88]}}
    results = {"warm_up_seconds": baseline,
               "held-out": measure(SETS["held-out"], expected["held-out"]),
               "test corpus": measure(SETS["test corpus"], corpus_errors)}
    out = HERE / "results"
    out.mkdir(exist_ok=True)
    (out / "audit_corpus.json").write_text(json.dumps(results, indent=1) + "\n")
    lines = ["# bngraph audit on real write-ups", "", f"warm-up (first audit in the process): {baseline} s", ""]
    for name in ("held-out", "test corpus"):
        t = results[name]["totals"]
        lines += [f"## {name}", "", f"{t['documents']} documents, {t['equations']} equations "
                  f"({t['about_layer']} about the layer), {t['real_errors']} real errors: caught {t['caught']}, "
                  f"false wrong {t['false_wrong']}, cannot-read {t['cannot_read_share']:.0%}, slowest "
                  f"{t['slowest_seconds']} s", "", "| document | equations | cannot-read | wrong (false) | s |",
                  "|---|---|---|---|---|"]
        for r in results[name]["documents"]:
            lines.append(f"| {r['document']} | {r['equations']} | {r['cannot_read']} | "
                         f"{r['counts'].get('wrong', 0)} ({r['false_wrong']}) | {r['seconds']} |")
        lines.append("")
    (out / "audit_corpus.md").write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
