"""The closed form kept between runs, in the user's cache directory.

The closed form holds for every m, so a layer's is computed once and kept. It is filed under
a key made of the *traced program* (the traces at m = 4, 5, 6 it is lifted from: every
record's name, op, arguments and flags; not the function's name), bngraph's version, SymPy's,
and a digest of the source of the modules that compute it, so that an edited checkout never
reads an entry an older one wrote. ``--no-cache`` (``disabled()``) computes it afresh: the
output is the same byte for byte.

The directory is ``$BNGRAPH_CACHE_DIR``, else ``$XDG_CACHE_HOME/bngraph``, else
``~/.cache/bngraph``. An entry is JSON (:mod:`bngraph.closedform.serialise`), never code: it is
rebuilt from a fixed list of SymPy classes. One that cannot be read (cut short, corrupt, of
another format, or edited: a checksum covers it) is computed again and rewritten; it is written
to a temporary file and renamed into place, so that no reader sees half of it; a directory that
cannot be written is left alone.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import sys
import tempfile
from functools import lru_cache
from pathlib import Path
from typing import Callable, Sequence

import sympy as sp

from bngraph.engine.trace import Trace
from bngraph.closedform.form import ClosedForm, Identity, Step
from bngraph.closedform.serialise import from_document, to_document

FORMAT = 1
_enabled = True
# The modules whose code makes the closed form (their source is part of the key).
_MAKERS = ("bngraph.engine.primitives", "bngraph.closedform.plates", "bngraph.closedform.recognise",
           "bngraph.closedform.simplify", "bngraph.closedform.form", "bngraph.closedform.serialise", __name__)


@contextlib.contextmanager
def disabled():
    """Neither read nor write the cache inside this block (``--no-cache``)."""
    global _enabled
    before, _enabled = _enabled, False
    try:
        yield
    finally:
        _enabled = before


def directory() -> Path | None:
    """Where entries are kept; None where there is no home directory to put them in."""
    chosen = os.environ.get("BNGRAPH_CACHE_DIR")
    if chosen:
        return Path(chosen)
    xdg = os.environ.get("XDG_CACHE_HOME")
    if xdg and os.path.isabs(xdg):
        return Path(xdg) / "bngraph"
    try:
        return Path.home() / ".cache" / "bngraph"
    except RuntimeError:  # no home directory
        return None


@lru_cache(maxsize=1)
def _code() -> str:
    import bngraph

    digest = hashlib.sha256(f"{FORMAT} {bngraph.__version__} {sp.__version__}".encode())
    for name in _MAKERS:
        digest.update(Path(sys.modules[name].__file__).read_bytes())
    return digest.hexdigest()


def program_key(traces: Sequence[Trace]) -> str:
    """The key of the closed form lifted from ``traces``: their records, and the code's version."""
    digest = hashlib.sha256(_code().encode())
    for t in traces:
        records = [[r.name, r.op, [a if isinstance(a, str) else sp.srepr(a) for a in r.args], r.named, r.generated]
                   for r in t.records]
        digest.update(json.dumps([t.m, list(t.outputs), records]).encode())
    return digest.hexdigest()


def remembered(traces: Sequence[Trace], layer: str, compute: Callable[[], ClosedForm]) -> ClosedForm:
    """The closed form of the program ``traces`` record: from the cache, else ``compute()``d and kept."""
    folder = directory() if _enabled else None
    if folder is None:
        return compute()
    key = program_key(traces)
    path = folder / f"closed-form-{key}.json"
    found = _read(path, key, layer)
    if found is not None:
        return found
    closed = compute()
    text = _entry(key, closed)
    if text is not None:
        _write(path, text)
    return closed


def _fields(c: ClosedForm) -> dict:
    """Everything of a closed form but its layer's label (which is the caller's)."""
    return {"formulas": c.formulas, "definitions": c.definitions, "chain_rule": c.chain_rule,
            "identities": [(d.lhs, d.rhs, d.reason) for d in c.identities],
            "steps": {k: [(s.description, s.expr) for s in steps] for k, steps in c.steps.items()},
            "provenance": c.provenance, "partials": c.partials, "chain_terms": c.chain_terms,
            "recognised": c.recognised}


def _closed_form(fields, layer: str) -> ClosedForm:
    f = dict(fields)
    return ClosedForm(layer, f["formulas"], f["definitions"], f["chain_rule"],
                      tuple(Identity(*d) for d in f["identities"]),
                      type(f["steps"])({k: tuple(Step(*s) for s in v) for k, v in f["steps"].items()}),
                      f["provenance"], f["partials"], f["chain_terms"], f["recognised"])


def _checksum(document) -> str:
    return hashlib.sha256(json.dumps(document, sort_keys=True).encode()).hexdigest()


def _entry(key: str, closed: ClosedForm) -> str | None:
    """The file's text, or None where the closed form cannot be written and read back as it is."""
    try:
        document = to_document(_fields(closed))
        if to_document(_fields(_closed_form(from_document(document), closed.layer))) != document:
            return None  # it would not come back the same
    except Exception:  # noqa: BLE001 - a node of a class the reader does not rebuild: not kept, still returned
        return None
    return json.dumps({"format": FORMAT, "key": key, "checksum": _checksum(document), "document": document})


def _read(path: Path, key: str, layer: str) -> ClosedForm | None:
    try:
        entry = json.loads(path.read_bytes())
    except (OSError, ValueError, RecursionError):  # missing, unreadable, cut short, not JSON
        return None
    if not (isinstance(entry, dict) and entry.get("format") == FORMAT and entry.get("key") == key
            and entry.get("checksum") == _checksum(entry.get("document"))):
        return None
    try:
        return _closed_form(from_document(entry["document"]), layer)
    except Exception:  # noqa: BLE001 - an entry edited into nonsense: computed again, never a traceback
        return None


def _write(path: Path, text: str) -> None:
    """Write ``text`` to a temporary file beside ``path``, then rename it into place (atomic)."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".", suffix=".tmp")
    except OSError:  # the directory cannot be made or written: no cache
        return
    renamed = False
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(text)
        os.replace(temporary, path)
        renamed = True
    except OSError:  # a full disk, say: no cache
        pass
    finally:
        if not renamed:  # nothing half-written is left behind, even on Ctrl-C
            with contextlib.suppress(OSError):
                os.unlink(temporary)
