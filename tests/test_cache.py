"""The closed-form cache: the same bytes with it as with ``--no-cache``, keyed on the traced
program, read as data only (a whitelist of SymPy classes), and never trusted when damaged."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import sympy as sp

from bngraph.cli import main
from bngraph.closedform import cache, simplify
from bngraph.closedform.plates import SIZES
from bngraph.closedform.serialise import Unreadable, Unwritable, from_document, to_document
from bngraph.engine.layers import LAYERS
from bngraph.engine.trace import name, sqrt, trace

REPO = Path(__file__).resolve().parents[1]
USER = f"{REPO / 'tests' / 'data' / 'user_layers.py'}:batchnorm_one_pass"
NUMPY_USER = f"{REPO / 'tests' / 'data' / 'numpy_forwards.py'}:cs231n_np_var"


@pytest.fixture
def folder(tmp_path, monkeypatch):
    """An empty cache of this test's own."""
    monkeypatch.setenv("BNGRAPH_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache"


@pytest.fixture
def no_simplifying(monkeypatch):
    """Inside ``with no_simplifying():`` computing a closed form fails the test: it must come from the cache."""
    import contextlib

    @contextlib.contextmanager
    def forbid():
        def computed(*_):
            raise AssertionError("the closed form was computed, not read from the cache")

        with monkeypatch.context() as patch:
            patch.setattr(simplify, "_closed_form_of", computed)
            yield

    return forbid


def derive(capsys, *args) -> str:
    assert main(["derive", *args]) == 0
    captured = capsys.readouterr()
    assert captured.err == ""
    return captured.out


def entries(folder: Path) -> list[Path]:
    return sorted(folder.glob("*")) if folder.exists() else []


@pytest.mark.parametrize("target", [*(["--function", t] for t in (USER, NUMPY_USER)), *([layer] for layer in LAYERS)],
                         ids=lambda t: t[-1].rsplit(":", 1)[-1])
def test_cache_and_no_cache_give_the_same_bytes(target, folder, capsys, no_simplifying):
    fresh = {(view, fmt): derive(capsys, *target, "--view", view, "--format", fmt, "--no-cache")
             for view in ("named", "staged") for fmt in ("text", "json", "latex")}
    assert entries(folder) == []  # --no-cache writes nothing
    derive(capsys, *target)  # fills the cache
    assert len(entries(folder)) == 1
    with no_simplifying():
        for (view, fmt), text in fresh.items():
            assert derive(capsys, *target, "--view", view, "--format", fmt) == text, (view, fmt)


def test_a_cold_process_reads_what_another_wrote(folder):
    def run(*args):
        done = subprocess.run([sys.executable, "-m", "bngraph", "derive", *args], capture_output=True, text=True,
                              cwd=REPO, timeout=120, env=dict(os.environ, BNGRAPH_CACHE_DIR=str(folder)))
        assert done.returncode == 0 and done.stderr == "", done.stderr
        return done.stdout

    fresh = run("--no-cache")
    assert entries(folder) == []
    assert run() == fresh and len(entries(folder)) == 1
    written = entries(folder)[0].stat().st_mtime_ns
    assert run() == fresh and entries(folder)[0].stat().st_mtime_ns == written  # read, not rewritten


# -- the key --------------------------------------------------------------------------------
def _traces(func):
    return [trace(func, size) for size in SIZES]


def _biased(x, gamma, beta, eps):
    mu = name(sum(x) / len(x), "mu")
    sigma2 = name(sum((xk - mu) ** 2 for xk in x) / len(x), "sigma2")
    return [gamma * (xk - mu) / sqrt(sigma2 + eps) + beta for xk in x]


def _unbiased(x, gamma, beta, eps):
    mu = name(sum(x) / len(x), "mu")
    sigma2 = name(sum((xk - mu) ** 2 for xk in x) / (len(x) - 1), "sigma2")
    return [gamma * (xk - mu) / sqrt(sigma2 + eps) + beta for xk in x]


def _biased_renamed(x, gamma, beta, eps):  # _biased's body under another name
    mu = name(sum(x) / len(x), "mu")
    sigma2 = name(sum((xk - mu) ** 2 for xk in x) / len(x), "sigma2")
    return [gamma * (xk - mu) / sqrt(sigma2 + eps) + beta for xk in x]


def test_the_key_is_the_traced_program_not_the_name():
    key = cache.program_key
    assert key(_traces(_biased)) == key(_traces(_biased_renamed))
    assert key(_traces(_biased)) != key(_traces(_unbiased))  # one constant differs: 1/m or 1/(m - 1)
    assert len({key(_traces(LAYERS[layer].function)) for layer in LAYERS}) == len(LAYERS)


def test_a_program_never_gets_another_programs_closed_form(folder, no_simplifying):
    fresh = {f: simplify.closed_form_of(f, "mine").formulas["dL_dx[i]"] for f in (_biased, _unbiased)}
    with cache.disabled():
        assert simplify.closed_form_of(_unbiased, "mine").formulas["dL_dx[i]"] == fresh[_unbiased]
    assert fresh[_biased] != fresh[_unbiased]
    for f in (_biased, _unbiased):  # both written, each read back as its own
        simplify.closed_form_of(f, "mine")
    with no_simplifying():
        assert simplify.closed_form_of(_unbiased, "mine").formulas["dL_dx[i]"] == fresh[_unbiased]
        assert simplify.closed_form_of(_biased, "mine").formulas["dL_dx[i]"] == fresh[_biased]
        renamed = simplify.closed_form_of(_biased_renamed, "another")  # the same program: shared
    assert renamed.layer == "another" and renamed.formulas["dL_dx[i]"] == fresh[_biased]


def test_the_key_holds_bngraphs_version(monkeypatch):
    import bngraph

    before = cache.program_key(_traces(_biased))
    cache._code.cache_clear()
    monkeypatch.setattr(bngraph, "__version__", "99.0")
    try:
        assert cache.program_key(_traces(_biased)) != before
    finally:
        cache._code.cache_clear()


# -- damaged entries --------------------------------------------------------------------------
def _filled(folder) -> tuple[Path, str]:
    fresh = simplify.closed_form_of(_biased, "mine")
    (path,) = entries(folder)
    return path, str(fresh.formulas["dL_dx[i]"])


def _resealed(entry: dict) -> str:
    """An entry edited by someone who also fixed its checksum."""
    entry["checksum"] = cache._checksum(entry["document"])
    return json.dumps(entry)


def _edit_a_number(entry: dict) -> dict:
    nodes = entry["document"]["nodes"]
    k = next(k for k, node in enumerate(nodes) if node[0] == "Integer" and node[1] == 2)
    nodes[k] = ["Integer", 3]
    return entry


def _damaged(text: str) -> dict[str, str]:
    entry = json.loads(text)
    return {
        "truncated": text[: len(text) // 2],
        "empty": "",
        "not JSON": "\x00\xff garbage",
        "a list": "[]",
        "another format": json.dumps({**entry, "format": cache.FORMAT + 1}),
        "another key": json.dumps({**entry, "key": "0" * 64}),
        "a number edited": json.dumps(_edit_a_number(json.loads(text))),
        "a class outside the list": _resealed({**entry, "document": {
            "nodes": [["Symbol", "x", {}], ["__import__", 0]], "value": {"e": 1}}}),
        "a node referring forward": _resealed({**entry, "document": {"nodes": [["Add", 1, 1], ["Symbol", "x", {}]],
                                                                     "value": {"e": 0}}}),
        "an unknown assumption": _resealed({**entry, "document": {"nodes": [["Symbol", "x", {"evil": True}]],
                                                                  "value": {"e": 0}}}),
        "fields missing": _resealed({**entry, "document": {"nodes": [], "value": {"map": []}}}),
        "nested too deep": "[" * 100000 + "]" * 100000,
    }


@pytest.mark.parametrize("damage", list(_damaged(json.dumps({"format": 1, "key": "", "checksum": "", "document": {
    "nodes": [["Integer", 2]], "value": None}}))))
def test_a_damaged_entry_is_computed_again_and_rewritten(damage, folder, capsys):
    path, right = _filled(folder)
    path.write_text(_damaged(path.read_text())[damage])
    again = simplify.closed_form_of(_biased, "mine")
    assert str(again.formulas["dL_dx[i]"]) == right
    assert capsys.readouterr().err == ""
    assert cache._read(path, cache.program_key(_traces(_biased)), "mine") is not None  # rewritten whole


def test_a_sealed_entry_naming_another_class_runs_nothing(folder, tmp_path):
    path, _ = _filled(folder)
    entry = json.loads(path.read_text())
    entry["document"]["nodes"].append(["system", 0])  # os.system, were names looked up anywhere
    path.write_text(_resealed(entry))
    assert cache._read(path, entry["key"], "mine") is None


def test_an_unwritable_cache_is_skipped_silently(tmp_path, monkeypatch, capsys):
    (tmp_path / "a file").write_text("")
    monkeypatch.setenv("BNGRAPH_CACHE_DIR", str(tmp_path / "a file" / "cache"))
    with cache.disabled():
        fresh = derive(capsys, "layernorm")
    assert derive(capsys, "layernorm") == fresh


def test_a_failed_write_leaves_no_file(folder, monkeypatch):
    def refuse(*_):
        raise OSError("disk full")

    monkeypatch.setattr(cache.os, "replace", refuse)
    simplify.closed_form_of(_biased, "mine")
    assert entries(folder) == []  # neither the entry nor its temporary file


def test_an_interrupted_write_leaves_no_file(folder, monkeypatch):
    def interrupt(*_):
        raise KeyboardInterrupt

    monkeypatch.setattr(cache.os, "replace", interrupt)
    with pytest.raises(KeyboardInterrupt):
        simplify.closed_form_of(_biased, "mine")
    assert entries(folder) == []


@pytest.mark.slow
def test_processes_writing_one_entry_at_once_agree(folder):
    env = dict(os.environ, BNGRAPH_CACHE_DIR=str(folder))
    command = [sys.executable, "-m", "bngraph", "derive", "layernorm", "--format", "json"]
    runs = [subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO, env=env)
            for _ in range(3)]
    outputs = {p.communicate(timeout=120) for p in runs}
    fresh = subprocess.run([*command, "--no-cache"], capture_output=True, text=True, cwd=REPO, env=env, timeout=120)
    assert outputs == {(fresh.stdout, "")}
    assert [p.name.endswith(".json") for p in entries(folder)] == [True]


def test_the_cache_directory(monkeypatch, tmp_path):
    monkeypatch.delenv("BNGRAPH_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache.directory() == tmp_path / "xdg" / "bngraph"
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/is/ignored")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert cache.directory() == tmp_path / "home" / ".cache" / "bngraph"
    monkeypatch.setenv("BNGRAPH_CACHE_DIR", str(tmp_path / "mine"))
    assert cache.directory() == tmp_path / "mine"


@pytest.mark.slow
@pytest.mark.parametrize("command, forms", [(["verify", "--m", "2"], 1), (["codegen", "--target", "numpy"], 1),
                                            # the auditor derives Batch Norm's and its evaluation mode's (for a
                                            # formula with running statistics)
                                            (["audit", str(REPO / "tests" / "data" / "audit" / "bn_correct.md")], 2)],
                         ids=lambda c: c[0] if isinstance(c, list) else str(c))
def test_every_command_that_computes_a_closed_form_takes_no_cache(command, forms, folder):
    def run(*extra):  # a process of its own: the auditor keeps a closed form for the process
        done = subprocess.run([sys.executable, "-m", "bngraph", *command, *extra], capture_output=True, text=True,
                              cwd=REPO, timeout=120, env=dict(os.environ, BNGRAPH_CACHE_DIR=str(folder)))
        assert done.returncode in (0, 1) and "Traceback" not in done.stderr, done.stderr
        return done.stdout

    fresh = run("--no-cache")
    assert entries(folder) == []
    assert run() == fresh and len(entries(folder)) == forms
    assert run() == fresh and len(entries(folder)) == forms


# -- the serialisation ------------------------------------------------------------------------
def test_expressions_come_back_equal_and_unchanged():
    x, j, m = sp.IndexedBase("x"), sp.Symbol("j", integer=True), sp.Symbol("m", integer=True, positive=True)
    unevaluated = sp.Mul(2, sp.Add(x[j], m, evaluate=False), evaluate=False)  # would distribute if rebuilt evaluated
    values = {"sum": sp.Sum(x[j] ** 2, (j, 1, m)) / m, "kept": unevaluated, "exp": sp.exp(-x[j]) * sp.log(m),
              "nested": {"a": (sp.Rational(-3, 7), True, None, "text")}}
    back = from_document(json.loads(json.dumps(to_document(values))))
    assert back["sum"] == values["sum"] and back["exp"] == values["exp"]
    assert back["kept"].args == unevaluated.args and str(back["kept"]) == str(unevaluated)
    assert [s.is_positive for s in back["sum"].free_symbols if s.name == "m"] == [True]  # assumptions kept
    assert back["nested"]["a"] == values["nested"]["a"]
    assert list(from_document(to_document({"b": 1 == 1, "a": None}))) == ["b", "a"]  # order kept


@pytest.mark.parametrize("expr", [sp.Function("f")(sp.Symbol("x")), sp.Dummy("d"), sp.Float(0.5), sp.pi])
def test_what_the_reader_would_not_rebuild_is_not_written(expr):
    with pytest.raises(Unwritable):
        to_document({"e": expr})


@pytest.mark.parametrize("document", [
    {"nodes": [["eval", "1"]], "value": {"e": 0}},
    {"nodes": [["Symbol", "x", {}], ["sympify", 0]], "value": {"e": 1}},  # SymPy's, but not on the list
    {"nodes": [["Symbol", "x", {}], ["KroneckerDelta", 0, 0]], "value": {"e": 1}},
    {"nodes": [["Symbol", "x", {"real": "yes"}]], "value": {"e": 0}},
    {"nodes": [["Integer", "12"]], "value": {"e": 0}},
    {"nodes": [["Integer", 1]], "value": {"e": 1}},
    {"nodes": [["Add", 0]], "value": None},
    {"nodes": [], "value": {"e": 0}, "extra": 1},
    {"nodes": [], "value": {"set": []}},
])
def test_what_is_not_a_document_is_not_read(document):
    with pytest.raises(Unreadable):
        from_document(document)
