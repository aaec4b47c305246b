"""Progress on stderr for work that takes more than a couple of seconds.

Only on a terminal, and only for the command line (:func:`begin` starts it): one status
line, rewritten in place and erased when the command ends, so neither stdout, a pipe, a
log file nor the one-line error ever holds it. Anything else written to stdout or stderr (through :mod:`bngraph.output.console`)
erases it first. A step shows once the command has run for
:data:`SHOW_AFTER` seconds, or at once when its caller knows it is long: a large Graphviz
layout holds the interpreter, so no timer could speak while it runs.

>>> begin(); step("tracing")  # not a terminal here: nothing is written
>>> end()
"""
from __future__ import annotations

import sys
import time

SHOW_AFTER = 2.0  # seconds
_ERASE = "\r\033[K"


class _State:
    started: float | None = None  # None: not the command line, or not a terminal
    showing = False  # a status line is on the terminal
    writing = False  # this module is writing it


def begin() -> None:
    """The command starts: show progress from now on if stderr is a terminal."""
    isatty = getattr(sys.stderr, "isatty", None)
    _State.started = time.monotonic() if isatty is not None and isatty() else None
    _State.showing = False


def step(text: str, long: bool = False) -> None:
    """The command enters a step called ``text`` (``long``: show it even before SHOW_AFTER)."""
    if _State.started is None:
        return
    if long or _State.showing or time.monotonic() - _State.started >= SHOW_AFTER:
        _write(f"{_ERASE}bngraph: {text} …")
        _State.showing = True


def clear() -> None:
    """Erase the status line (something else is about to be written); the next step shows it again."""
    if _State.showing and not _State.writing:
        _State.showing = False
        _write(_ERASE)


def end() -> None:
    """The command ends (or fails): erase the status line, so what follows starts a clean line."""
    clear()
    _State.started = None


def _write(text: str) -> None:
    _State.writing = True
    try:
        sys.stderr.write(text)
        sys.stderr.flush()
    finally:
        _State.writing = False
