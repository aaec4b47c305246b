"""The tutorial notebooks: each runs without an error, and the committed ones are what
``notebooks/build.py`` generates, executed, with their outputs."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"


def _load_build():
    spec = importlib.util.spec_from_file_location("notebooks_build", NOTEBOOKS / "build.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


build = _load_build()
NAMES = sorted(build.NOTEBOOKS)


def committed(name: str):
    return nbformat.read(NOTEBOOKS / name, as_version=4)


def test_every_notebook_in_the_folder_is_built_by_build_py():
    assert sorted(p.name for p in NOTEBOOKS.glob("*.ipynb")) == NAMES


@pytest.mark.parametrize("name", NAMES)
def test_committed_cells_are_what_build_py_generates(name):
    got = [(c.cell_type, c.source) for c in committed(name).cells]
    want = [(c.cell_type, c.source) for c in build.build(name).cells]
    assert got == want, f"{name} differs from notebooks/build.py: run `python notebooks/build.py {name[:2]}`"


@pytest.mark.parametrize("name", NAMES)
def test_committed_notebook_was_executed_top_to_bottom_with_outputs(name):
    cells = [c for c in committed(name).cells if c.cell_type == "code"]
    assert [c.execution_count for c in cells] == list(range(1, len(cells) + 1))
    assert sum(len(c.outputs) for c in cells) >= len(cells) - 1  # a cell that only defines may be silent
    errors = [o for c in cells for o in c.outputs if o.output_type == "error"]
    assert not errors
    first = committed(name).cells[0]
    assert first.cell_type == "markdown" and first.source.startswith("# ")


@pytest.mark.slow
@pytest.mark.parametrize("name", NAMES)
def test_notebook_runs_without_error(name):
    nb = committed(name)
    client = nbclient.NotebookClient(nb, timeout=build.CELL_TIMEOUT, kernel_name=build.KERNEL,
                                     resources={"metadata": {"path": str(NOTEBOOKS)}})
    client.execute()  # raises CellExecutionError, with the cell and its traceback, on any error
    assert all(o.output_type != "error" for c in nb.cells if c.cell_type == "code" for o in c.outputs)
