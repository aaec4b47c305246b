"""The golden outputs of ``bngraph derive`` (and of ``render`` to DOT): what the speed work
must not change, byte for byte.

Every built-in layer, both views, m = 1, 2, 3, 8, 64: text, JSON, standalone LaTeX (and with
``--full`` up to m = 3), and the backward graph as DOT; plus a few user forwards (plain
Python and NumPy) at small m. The files were written by the code before any speed change (issue 17). ``hashes.json`` holds
the sha256 of every case; cases with m <= 3 are kept in full too, so a failure shows a diff.

    python tests/golden.py          # rewrite tests/data/golden/ from the current code

Rewrite them only in a commit that changes an output on purpose, never in a speed commit.
"""
from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
FOLDER = HERE / "data" / "golden"
HASHES = FOLDER / "hashes.json"
FULL_UP_TO = 3  # m: kept in full (the rest only as a hash)

LAYERS = ("batchnorm", "batchnorm-eval", "layernorm")
VIEWS = ("named", "staged")
SIZES = (1, 2, 3, 8, 64)
FULL_TEX_UP_TO = 3  # m: also the LaTeX with --full (the derivation node by node; 41 s for a NumPy forward at m = 8)
# user forwards: (file in tests/data, function) at a few m, named view
USER = (("user_layers.py", "my_batchnorm"), ("user_layers.py", "rmsnorm"), ("user_layers.py", "batchnorm_one_pass"),
        ("numpy_forwards.py", "cs231n_np_var"), ("numpy_forwards.py", "kratzert_nine_steps"),
        ("numpy_forwards.py", "numpy_ml_batchnorm1d"))
USER_SIZES = (2, 8)


def targets():
    """(case stem, layer, function, view, m) of every case."""
    for layer in LAYERS:
        for view in VIEWS:
            for m in SIZES:
                yield f"{layer}/{view}/m{m}", layer, None, view, m
    for file, function in USER:
        for m in USER_SIZES:
            yield f"user/{function}/m{m}", None, f"{HERE / 'data' / file}:{function}", "named", m


def outputs(layer, function, view, m) -> dict[str, str]:
    """What ``derive`` prints as text, JSON and a standalone LaTeX file (with ``--full`` too at
    small m), and ``render`` as DOT (backward, derivation given)."""
    from bngraph.closedform.simplify import closed_form
    from bngraph.engine.derive import derive
    from bngraph.engine.graph import build_graph
    from bngraph.engine.layers import trace_target
    from bngraph.output import export
    from bngraph.output.render import render_graph
    from bngraph.tex.export import to_latex

    label = function or layer
    derivation = derive(build_graph(trace_target(layer, function, m), view, label))
    closed = closed_form(derivation)
    texts = {"txt": export.to_text(derivation, closed), "json": export.to_json(derivation, closed),
             "tex": to_latex(derivation, closed, standalone=True),
             "dot": render_graph(derivation.graph, format="dot", direction="backward", derivation=derivation)}
    if m <= FULL_TEX_UP_TO:
        texts["full.tex"] = to_latex(derivation, closed, standalone=True, full=True)
    return texts


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _relative(text: str) -> str:
    """The checkout's absolute path out of the text (a user function's file name is in it), also
    as the LaTeX spells it (a checkout in /tmp/ci_main is /tmp/ci\\_main there)."""
    from bngraph.tex.export import _prose

    for spelled in dict.fromkeys([_prose(str(HERE)), str(HERE)]):
        text = text.replace(spelled, "<tests>")
    return text


def case_outputs(case) -> dict[str, str]:
    return {fmt: _relative(text) for fmt, text in outputs(*case[1:]).items()}


def write() -> None:
    hashes = {}
    for case in targets():
        stem, m = case[0], case[-1]
        for fmt, text in case_outputs(case).items():
            hashes[f"{stem}.{fmt}"] = sha256(text)
            if m <= FULL_UP_TO:
                path = FOLDER / f"{stem}.{fmt}"
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(text, encoding="utf-8")
        print(stem, file=sys.stderr)
    HASHES.write_text(json.dumps(hashes, indent=1, sort_keys=True) + "\n", encoding="utf-8")


if __name__ == "__main__":
    sys.path.insert(0, str(HERE.parent))
    write()
