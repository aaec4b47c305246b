"""The terminal as bngraph writes to it: whatever it can encode, and quiet when it goes away.

:func:`console` wraps stdout and stderr for one command:

- A stream that cannot encode Greek (``PYTHONIOENCODING=ascii`` or ``latin-1``, ``LC_ALL=C``)
  gets ASCII notation instead of an error: μ → mu, σ² → sigma2, ∂L/∂x → dL/dx, ≤ → <=.
- A closed pipe (``bngraph report | head -1``) ends the output quietly, as Unix tools do; the
  command still returns its own exit status (a check that failed still says 1).

Files are always written in UTF-8; only what goes to a terminal or pipe is spelled out.

>>> to_ascii("∂L/∂μ ≤ 1e-6 · σ², x̂₁ − μ …, E[x²]")
'dL/dmu <= 1e-6 * sigma2, xhat1 - mu ..., E[x^2]'
"""
from __future__ import annotations

import contextlib
import os
import sys
import unicodedata

from bngraph.engine import progress

GREEK_TEST = "μσγβε∂x̂≤−"  # what bngraph writes most: if a stream cannot take these, it gets ASCII
SPELLED = {
    "∂": "d", "≤": "<=", "≥": ">=", "≠": "!=", "≈": "~", "−": "-", "–": "-", "—": "--", "·": "*",
    "×": "x", "÷": "/", "√": "sqrt", "Σ": "Sum", "∑": "Sum", "→": "->", "←": "<-", "⋯": "...",
    "\u0302": "hat", "ε": "eps", "ϵ": "eps", "ℓ": "l", "✓": "ok", "✗": "x", "•": "*", "°": "deg",
    "“": '"', "”": '"', "‘": "'", "’": "'",
}


def to_ascii(text: str) -> str:
    """``text`` in ASCII: bngraph's symbols spelled as its own names (mu, sigma2, xhat, dL/dx)."""
    if text.isascii():
        return text
    text = text.replace("σ²", "sigma2").replace("x̂", "xhat")  # bngraph's own names for them
    return "".join(_spell(c) for c in text)


def _spell(char: str) -> str:
    if char.isascii():
        return char
    if char in SPELLED:
        return SPELLED[char]
    name = unicodedata.name(char, "")
    if name.startswith(("GREEK SMALL LETTER", "GREEK CAPITAL LETTER")):
        word = name.split()[3].lower()  # GREEK SMALL LETTER MU -> mu (FINAL SIGMA -> final: rare)
        return word if "SMALL" in name else word.capitalize()
    if name.startswith("SUPERSCRIPT"):  # x² -> x^2
        return "^" + unicodedata.normalize("NFKD", char)
    decomposed = unicodedata.normalize("NFKD", char)  # ² -> 2, ₁ -> 1, é -> e + accent, … -> ...
    if decomposed != char:
        return "".join(_spell(c) if not unicodedata.combining(c) or c in SPELLED else "" for c in decomposed)
    return "?"


def needs_ascii(stream) -> bool:
    """True if ``stream`` cannot encode the symbols bngraph writes (μ, σ, ∂ …)."""
    encoding = getattr(stream, "encoding", None) or "ascii"
    try:
        GREEK_TEST.encode(encoding)
    except (UnicodeEncodeError, LookupError):
        return True
    return False


class ConsoleStream:
    """A text stream over ``stream``: ASCII notation if it needs it, silence once its pipe is closed."""

    def __init__(self, stream):
        self.stream, self.ascii, self.closed_pipe = stream, needs_ascii(stream), False

    def write(self, text: str) -> int:
        progress.clear()  # a status line on the terminal gives way to real output
        if not self.closed_pipe:
            try:
                self.stream.write(to_ascii(text) if self.ascii else text)
            except BrokenPipeError:
                self._pipe_closed()
        return len(text)

    def flush(self) -> None:
        if not self.closed_pipe:
            try:
                self.stream.flush()
            except BrokenPipeError:
                self._pipe_closed()

    def _pipe_closed(self) -> None:
        """Whoever read us has gone: send the rest (and Python's final flush) to /dev/null."""
        self.closed_pipe = True
        with contextlib.suppress(OSError, AttributeError, ValueError):
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, self.stream.fileno())
            os.close(devnull)

    def __getattr__(self, name):  # encoding, isatty, fileno … of the stream underneath
        return getattr(self.stream, name)


@contextlib.contextmanager
def console():
    """While one command runs, stdout and stderr are :class:`ConsoleStream`\\ s."""
    saved = sys.stdout, sys.stderr
    sys.stdout = ConsoleStream(sys.stdout) if sys.stdout is not None else None
    sys.stderr = ConsoleStream(sys.stderr) if sys.stderr is not None else None
    try:
        yield
    finally:
        for stream in (sys.stdout, sys.stderr):
            if stream is not None:
                stream.flush()
        sys.stdout, sys.stderr = saved
