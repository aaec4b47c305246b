"""The main job: everything bngraph says about one layer, written to one folder.

Every output is made in memory first; only when all of them exist is anything written,
each file atomically, so a failure leaves no half-written folder behind.
"""
from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from bngraph.output import export
from bngraph.tex import export as latex
from bngraph.engine.derive import derive
from bngraph.errors import BngraphError
from bngraph.engine.graph import build_graph
from bngraph.engine.layers import trace_target
from bngraph.output.files import _UMASK, write_atomic
from bngraph.output.render import render_graph
from bngraph.closedform.simplify import closed_form
from bngraph.check.verify import verify


def build_report(layer: str | None, function: str | None, m: int) -> tuple[dict[str, str | bytes], int]:
    """The report's files by name, and verify's exit status."""
    t = trace_target(layer, function, m)
    label = function or layer or "batchnorm"
    named = derive(build_graph(t, "named", label))
    staged = derive(build_graph(t, "staged", label))
    closed = closed_form(named)
    checks = verify(named, closed, other_view=staged)
    files: dict[str, str | bytes] = {
        "derivation.txt": export.to_text(named, closed),
        "derivation.json": export.to_json(named, closed),
        "derivation_staged.txt": export.to_text(staged),
        "derivation.tex": latex.to_latex(named, closed, standalone=True),
        "derivation.md": latex.to_markdown(named, closed),
        "forward_named.svg": render_graph(named.graph, None, format="svg"),
        "forward_staged.svg": render_graph(staged.graph, None, format="svg"),
        "backward_named.svg": render_graph(named.graph, None, format="svg", direction="backward", derivation=named),
        "backward_staged.svg": render_graph(staged.graph, None, format="svg", direction="backward", derivation=staged),
        "forward_named.dot": render_graph(named.graph, None, format="dot"),
        "verify.txt": checks.format(),
    }
    return files, checks.exit_code


def write_report(args, folder: Path) -> int:
    files, status = build_report(args.layer, args.function, args.m)
    if folder.exists() and not folder.is_dir():
        raise BngraphError(f"cannot write the report to {folder}: it is a file")
    if not folder.parent.is_dir():
        raise BngraphError(f"cannot write the report: the folder {folder.parent} does not exist")
    if folder.exists():
        for name, data in files.items():
            write_atomic(folder / name, data)
    else:  # a new folder appears whole, or not at all
        staging = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
        staging.chmod(0o777 & ~_UMASK)  # mkdtemp's 0700 is for a temporary folder, not a report
        try:
            for name, data in files.items():
                (staging / name).write_bytes(data if isinstance(data, bytes) else data.encode("utf-8"))
            staging.rename(folder)
        except OSError as exc:
            shutil.rmtree(staging, ignore_errors=True)
            raise BngraphError(f"cannot write the report to {folder}: {exc.strerror}") from None
    print(f"bngraph report: {args.function or args.layer or 'batchnorm'}, m = {args.m} -> {folder}/")
    for name in files:
        print(f"  {folder / name}")
    print("checks: " + ("all passed" if status == 0 else "a mismatch was found (see verify.txt)"))
    return status
