"""Issue 14's goal figures for ``bngraph audit``, on the held-out write-ups (benchmarks/heldout/) and,
for comparison, on the test corpus (tests/data/audit/corpus/):

    python benchmarks/audit_corpus.py                  # writes benchmarks/results/audit_corpus.{json,md}
    python benchmarks/audit_corpus.py --baseline REV   # and times every document with REV's auditor too

With ``--baseline``, the bngraph package of git revision REV and this checkout's each audit every
document (both sets and bngraph's own derivations, written by this checkout's ``derive``) in a child
process of their own, after the same warm-up, alternately, twice; the ratio of the two faster times
per document is the speed-up (the machine's load falls on both).

Each document is audited as the layer its ``expected.json`` entry names (``"layer"``; default batchnorm):
a write-up about RMSNorm is judged against RMSNorm, not against Batch Norm.

Per document: equations, verdicts, time (wall, in this process, after one warm-up audit that
builds the grammar and the engine's closed form; the warm-up time is reported as the baseline).
Goals: no false "wrong", >= 80 % of the real errors caught with a counterexample, cannot-read
<= 15 % of the equations about the layer (all but not-about-this-layer), each document < 5 s.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bngraph.audit.auditor import audit_document  # noqa: E402

HERE = Path(__file__).resolve().parent
SETS = {"held-out": HERE / "heldout", "test corpus": HERE.parent / "tests" / "data" / "audit" / "corpus",
        "fresh": HERE / "heldout_fresh", "round 4": HERE / "heldout_r4", "final": HERE / "heldout_final",
        "second untouched": HERE / "heldout_u2", "third untouched": HERE / "heldout_u3",
        "fourth untouched": HERE / "heldout_u4", "fifth untouched": HERE / "heldout_u5",
        "sixth untouched": HERE / "heldout_u6",
        "development 8": HERE / "heldout_dev8", "development 9": HERE / "heldout_dev9",
        "development 10": HERE / "heldout_dev10"}
# Held-out write-ups set aside before the auditor was fixed against the others (issue 14, second round):
# nobody looked at the auditor's findings on them while fixing; their figures are reported on their own.
# The third round fixed the reading gaps seen on them, so they are worked on now; the fresh set
# (benchmarks/heldout_fresh/) was left untouched in round 3 and worked on in round 4.
ROUND2 = "held-out, set aside in round 2 (worked on in round 3)"
FRESH = "fresh (untouched in round 3, worked on in round 4)"
# Round 4 (benchmarks/heldout_r4/): measured once with the code unchanged (results/audit_corpus_r4_untouched.md),
# then worked on.
ROUND4 = "round 4 (measured untouched first, then worked on)"
FINAL = "final (untouched: gathered apart, measured once after round 4)"
# Round 6 (benchmarks/heldout_u2/): gathered and judged by hand while round 5 fixed the auditor, never
# run through it; measured once after round 5 (results/audit_corpus_u2_untouched.md, kept as measured).
SECOND = "second untouched (gathered apart in round 5, measured once after it; worked on in round 6)"
# Round 7 (benchmarks/heldout_u3/): gathered and judged by hand during round 6, never run through the auditor; measured
# once before round 7 (results/audit_corpus_u3_untouched.md, kept as measured).
THIRD = "third untouched (gathered apart in round 6, measured once before round 7; worked on in round 7)"
# benchmarks/heldout_u4/: gathered and judged by hand during round 7, measured once after round 7's fixes
# (results/audit_corpus_u4_untouched.md, kept as measured), then worked on.
FOURTH = "fourth untouched (gathered apart in round 7, measured once after it, then worked on)"
# Round 8: benchmarks/heldout_u5/ gathered and judged by hand while round 8 fixed the auditor against development
# sets (heldout_dev8/, heldout_dev9/, heldout_dev10/: real write-ups whose auditor findings helpers triaged),
# measured once after round 8's fixes (results/audit_corpus_u5_untouched.md, kept as measured), then worked on.
FIFTH = "fifth untouched (gathered apart in round 8, measured once after its fixes, then worked on)"
# benchmarks/heldout_u6/: gathered during the second half of round 8 and measured once at its end
# (results/audit_corpus_u6_untouched.md, kept as measured), then worked on.
SIXTH = "sixth untouched (gathered apart late in round 8, measured once at its end, then worked on)"
DEVELOPMENT = "development sets of round 8 (the auditor's findings on them triaged by hand: worked on)"
UNTOUCHED = ("ai_edu_bn_zh.md", "geeksmental_bn_doubts.md", "makemore_decoupled_bn.md", "mobilenet_notes_bn.md",
             "tf_xla_batchnormgrad.md")


NOT_WRITE_UPS = ("README.md", "FALSE_WRONG.md")  # a set's own notes (FALSE_WRONG.md: a development set's triage)


def measure(folder: Path, errors: dict, keep=lambda name: True) -> dict:
    rows = []
    for path in sorted(p for p in folder.glob("*.md") if p.name not in NOT_WRITE_UPS and keep(p.name)):
        start = time.perf_counter()
        report = audit_document(path, errors.get(path.name, {}).get("layer", "batchnorm"))
        seconds = time.perf_counter() - start
        known = set(map(int, errors.get(path.name, {}).get("errors", [])))
        disputed = set(map(int, errors.get(path.name, {}).get("disputed", {})))  # counted neither way
        wrong = {f.line for f in report.findings if f.verdict == "wrong"} - disputed
        about = [f for f in report.findings if f.verdict != "not-about-this-layer"]
        rows.append({"document": path.name, "layer": report.layer, "equations": len(report.findings), "about_layer": len(about),
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


TIMER = """
import json, sys, time
from bngraph.audit.auditor import audit_document
audit_document("$$\\\\mu = \\\\frac{1}{m}\\\\sum_i x_i$$")
times = {}
for arg in sys.argv[1:]:
    layer, path = arg.split(":", 1)
    start = time.perf_counter()
    audit_document(path, layer)
    times[arg] = time.perf_counter() - start
print(json.dumps(times))
"""


def own_derivations(folder: Path) -> list[str]:
    """bngraph's own derivation documents (this checkout's ``derive``), as ``layer:path``."""
    from bngraph.cli import main as cli

    full = "--full" in subprocess.run([sys.executable, "-m", "bngraph", "derive", "--help"], capture_output=True,
                                      text=True, cwd=HERE.parent).stdout
    docs = []
    for layer, view, fmt, extra in [("batchnorm", "named", "latex", []), ("batchnorm", "staged", "markdown", []),
                                    ("layernorm", "staged", "markdown", [])] + (
            [("batchnorm", "staged", "latex", ["--full"])] if full else []):
        path = folder / f"{layer}-{view}-3{''.join(extra)}.{'md' if fmt == 'markdown' else 'tex'}"
        with open(os.devnull, "w") as quiet:
            stdout, sys.stdout = sys.stdout, quiet
            try:
                cli(["derive", layer, "--m", "3", "--view", view, "--format", fmt, *extra, "-o", str(path)])
            finally:
                sys.stdout = stdout
        docs.append(f"{layer}:{path}")
    return docs


def time_in_child(package_root: Path, docs: list[str]) -> dict[str, float]:
    done = subprocess.run([sys.executable, "-c", TIMER, *docs], capture_output=True, text=True, check=True,
                          env={**os.environ, "PYTHONPATH": str(package_root)}, cwd=tempfile.gettempdir())
    return json.loads(done.stdout)


def against_baseline(revision: str) -> dict:
    """Every document timed with ``revision``'s auditor and with this checkout's."""
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp) / "baseline"
        base.mkdir()
        archive = subprocess.run(["git", "archive", revision, "bngraph"], capture_output=True, check=True,
                                 cwd=HERE.parent).stdout
        (Path(tmp) / "base.tar").write_bytes(archive)
        with tarfile.open(Path(tmp) / "base.tar") as tar:
            tar.extractall(base, filter="data")
        docs = [f"batchnorm:{p}" for folder in SETS.values() for p in sorted(folder.glob("*.md"))
                if p.name not in NOT_WRITE_UPS] + own_derivations(Path(tmp))
        runs = {"baseline": [], "now": []}
        for _ in range(2):
            runs["baseline"].append(time_in_child(base, docs))
            runs["now"].append(time_in_child(HERE.parent, docs))
    rows = []
    for doc in docs:
        before = min(r[doc] for r in runs["baseline"])
        after = min(r[doc] for r in runs["now"])
        layer, path = doc.split(":", 1)
        rows.append({"document": Path(path).name, "layer": layer, "baseline_seconds": round(before, 3),
                     "seconds": round(after, 3), "speed_up": round(before / after, 2)})
    return {"revision": revision, "documents": rows,
            "slowest_baseline": max(r["baseline_seconds"] for r in rows), "slowest": max(r["seconds"] for r in rows)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", metavar="REV", help="also time the auditor of this git revision")
    parser.add_argument("--worked-on", action="store_true",
                        help="measure only the write-ups being worked on (not UNTOUCHED); writes nothing")
    args = parser.parse_args()
    start = time.perf_counter()
    audit_document("$$\\mu = \\frac{1}{m}\\sum_i x_i$$")  # warm-up: grammar and the engine's closed form
    baseline = round(time.perf_counter() - start, 3)
    expected = {"held-out": json.loads((HERE / "heldout" / "expected.json").read_text()),
                "test corpus": {name: {"errors": []} for name in []}}
    corpus_errors = {"zakka_2016.md": {"errors": [49, 61, 62, 86, 87, 88]}}
    results = {"warm_up_seconds": baseline,
               "held-out, worked on": measure(SETS["held-out"], expected["held-out"], lambda n: n not in UNTOUCHED),
               "test corpus": measure(SETS["test corpus"], corpus_errors)}
    if not args.worked_on:
        results[ROUND2] = measure(SETS["held-out"], expected["held-out"], lambda n: n in UNTOUCHED)
        results[FRESH] = measure(SETS["fresh"], json.loads((SETS["fresh"] / "expected.json").read_text()))
        results[ROUND4] = measure(SETS["round 4"], json.loads((SETS["round 4"] / "expected.json").read_text()))
        results[FINAL] = measure(SETS["final"], json.loads((SETS["final"] / "expected.json").read_text()))
        results[SECOND] = measure(SETS["second untouched"],
                                  json.loads((SETS["second untouched"] / "expected.json").read_text()))
        results[THIRD] = measure(SETS["third untouched"],
                                 json.loads((SETS["third untouched"] / "expected.json").read_text()))
        results[FOURTH] = measure(SETS["fourth untouched"],
                                  json.loads((SETS["fourth untouched"] / "expected.json").read_text()))
        results[FIFTH] = measure(SETS["fifth untouched"],
                                 json.loads((SETS["fifth untouched"] / "expected.json").read_text()))
        results[SIXTH] = measure(SETS["sixth untouched"],
                                 json.loads((SETS["sixth untouched"] / "expected.json").read_text()))
        development = [measure(SETS[n], json.loads((SETS[n] / "expected.json").read_text()))
                       for n in ("development 8", "development 9", "development 10")]
        results[DEVELOPMENT] = {"documents": [d for r in development for d in r["documents"]],
                                "totals": _totals([d for r in development for d in r["documents"]])}
    names = ["held-out, worked on", "test corpus"] + ([] if args.worked_on else
                                                     [ROUND2, FRESH, ROUND4, FINAL, SECOND, THIRD, FOURTH, FIFTH,
                                                      SIXTH, DEVELOPMENT])
    lines = ["# bngraph audit on real write-ups", "", f"warm-up (first audit in the process): {baseline} s", "",
             "The held-out write-ups are split: those the auditor was fixed against (worked on) and "
             f"{len(UNTOUCHED)} set aside in the second round (whose reading gaps the third round then fixed, so they "
             "are worked on now). The fresh set (benchmarks/heldout_fresh/) was added and measured before the third "
             "round of fixes and kept out of it; the round-4 set (benchmarks/heldout_r4/) was measured once before the "
             "fourth round's fixes (results/audit_corpus_r4_untouched.md, kept as measured). The fourth round looked at "
             "the findings on both, so they are worked on. The final set (benchmarks/heldout_final/) was gathered and judged by "
             "hand while round 4 was under way, never run through the auditor, and measured once, after round 4's "
             "fixes: it is the untouched figure. Since round 5 each document is audited as the layer its expected.json "
             "names (`layer`, default batchnorm): the round-4 set and the final set's LayerNorm and RMSNorm write-ups "
             "were audited as Batch Norm before. The second untouched set (benchmarks/heldout_u2/, 27 write-ups) was "
             "gathered and judged by hand during round 5, never run through the auditor, and measured once after "
             "round 5 (results/audit_corpus_u2_untouched.md, kept as measured: 6/19 caught, 11 false wrong); round 6 looked at "
             "its findings, so it is worked on now. The third untouched set (benchmarks/heldout_u3/, 17 write-ups) was "
             "gathered during round 6 and measured once before round 7 (results/audit_corpus_u3_untouched.md: 3/9 caught, "
             "10 false wrong); round 7 worked on it. The fourth (benchmarks/heldout_u4/, 18 write-ups) was gathered during "
             "round 7 and measured once after its fixes (results/audit_corpus_u4_untouched.md: 3/6 caught, 7 false wrong); "
             "its false wrong were then mended, so it is worked on too. The fifth (benchmarks/heldout_u5/, 16 write-ups) "
             "was gathered during round 8, which fixed the auditor against two development sets instead "
             "(benchmarks/heldout_dev8/, heldout_dev9/, heldout_dev10/: real write-ups whose findings were triaged by "
             "hand), and measured "
             "once after round 8's fixes (results/audit_corpus_u5_untouched.md: 3/8 caught, 9 false wrong); its false "
             "wrong were then mended, so it is worked on too. The sixth (benchmarks/heldout_u6/, 16 write-ups) was gathered "
             "late in round 8 and measured once at its end (results/audit_corpus_u6_untouched.md: 2/5 caught, 8 false "
             "wrong, 5 of them rows its hand judgement disputed one line lower), then worked on.",
             ""]
    for name in names:
        t = results[name]["totals"]
        lines += [f"## {name}", "", f"{t['documents']} documents, {t['equations']} equations "
                  f"({t['about_layer']} about the layer), {t['real_errors']} real errors: caught {t['caught']}, "
                  f"false wrong {t['false_wrong']}, cannot-read {t['cannot_read_share']:.0%}, slowest "
                  f"{t['slowest_seconds']} s", "", "| document | equations | cannot-read | real errors (caught) | wrong (false) | s |",
                  "|---|---|---|---|---|---|"]
        for r in results[name]["documents"]:
            lines.append(f"| {r['document']} | {r['equations']} | {r['cannot_read']} | {r['real_errors']} "
                         f"({r['caught']}) | {r['counts'].get('wrong', 0)} ({r['false_wrong']}) | {r['seconds']} |")
        lines.append("")
    if args.baseline:
        results["speed"] = speed = against_baseline(args.baseline)
        lines += [f"## speed against {args.baseline}", "",
                  "Each auditor in a child process of its own, after a warm-up, alternately, twice; the faster "
                  f"time of each. Slowest document: {speed['slowest_baseline']} s before, {speed['slowest']} s now.",
                  "", "| document | before (s) | now (s) | speed-up |", "|---|---|---|---|"]
        lines += [f"| {r['document']} | {r['baseline_seconds']} | {r['seconds']} | {r['speed_up']}× |"
                  for r in speed["documents"]]
        lines.append("")
    if args.worked_on:
        print("\n".join(lines))
        return
    out = HERE / "results"
    out.mkdir(exist_ok=True)
    (out / "audit_corpus.json").write_text(json.dumps(results, indent=1) + "\n")
    (out / "audit_corpus.md").write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
