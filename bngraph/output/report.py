"""The main job: everything bngraph says about one layer, written to one folder.

``index.html`` comes first: the one page to open (:mod:`bngraph.output.page`); the rest are the
same results as files for other tools (text, JSON, LaTeX, Markdown, SVG, DOT).

Every output is made in memory first; only when all of them exist is anything written,
each file atomically, so a failure leaves no half-written folder behind.
"""
from __future__ import annotations

import errno
import shutil
import tempfile
from pathlib import Path

from bngraph.output import export
from bngraph.tex import export as latex
from bngraph.engine import progress
from bngraph.engine.derive import derive
from bngraph.errors import BngraphError
from bngraph.engine.graph import build_graph
from bngraph.engine.layers import trace_target
from bngraph.output.files import _UMASK, write_atomic
from bngraph.output.page import build_page, function_source
from bngraph.output.render import render_graph
from bngraph.closedform.simplify import closed_form
from bngraph.check.verify import verify


def build_report(layer: str | None, function: str | None, m: int) -> tuple[dict[str, str | bytes], int]:
    """The report's files by name, and verify's exit status."""
    label = function or layer or "batchnorm"
    progress.step(f"tracing {label} at m = {m}")
    t = trace_target(layer, function, m)
    progress.step("deriving the adjoints of both views")
    named = derive(build_graph(t, "named", label))
    staged = derive(build_graph(t, "staged", label))
    progress.step("simplifying to the closed form")
    closed = closed_form(named)
    checks = verify(named, closed, other_view=staged)
    progress.step("writing the derivation and drawing the graphs")
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
        "forward_staged.dot": render_graph(staged.graph, None, format="dot"),
        "backward_named.dot": render_graph(named.graph, None, format="dot", direction="backward", derivation=named),
        "backward_staged.dot": render_graph(staged.graph, None, format="dot", direction="backward",
                                            derivation=staged),
        "verify.txt": checks.format(),
    }
    svgs = {name: data for name, data in files.items() if name.endswith(".svg")}
    source = function_source(function) if function else None
    page = build_page(named, staged, closed, checks, svgs, source)
    return {"index.html": page, **files}, checks.exit_code


def write_report(args, folder: Path) -> int:
    files, status = build_report(args.layer, args.function, args.m)
    if folder.exists() and not folder.is_dir():
        raise BngraphError(f"cannot write the report to {folder}: it is a file")
    if not folder.parent.is_dir():
        raise BngraphError(f"cannot write the report to {folder}: the folder {folder.parent} does not exist")
    try:
        if folder.exists():
            for name, data in files.items():
                write_atomic(folder / name, data)
        else:
            _write_new_folder(folder, files)
    except (OSError, BngraphError) as exc:
        raise BngraphError(f"cannot write the report to {folder}: {_reason(exc, folder)}") from None
    shown = str(folder).rstrip("/") + "/"  # "-o /" is "/", not "//"
    print(f"bngraph report: {args.function or args.layer or 'batchnorm'}, m = {args.m} -> {shown}")
    print(f"  open {folder / 'index.html'} in a browser: the whole derivation on one page")
    for name in files:
        if name != "index.html":
            print(f"  {folder / name}")
    print("checks: " + ("all passed" if status == 0 else "a mismatch was found (see verify.txt)"))
    return status


def _write_new_folder(folder: Path, files: dict[str, str | bytes]) -> None:
    """A new folder appears whole, or not at all: its files are written to a hidden one, renamed at the end."""
    staging = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
    try:
        staging.chmod(0o777 & ~_UMASK)  # mkdtemp's 0700 is for a temporary folder, not a report
        for name, data in files.items():
            (staging / name).write_bytes(data if isinstance(data, bytes) else data.encode("utf-8"))
        staging.rename(folder)
    except OSError:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def _reason(exc: Exception, folder: Path) -> str:
    """Why writing failed, in words: no errno, no temporary file's name."""
    if isinstance(exc, BngraphError):  # write_atomic's "cannot write FILE: reason"
        return str(exc).rpartition(": ")[2]
    reason = exc.strerror or type(exc).__name__
    if exc.errno == errno.ENOENT and folder.parent.is_dir():  # /proc: the folder exists, files cannot be made
        reason += f" (no files can be made in {folder.parent})"
    return reason
