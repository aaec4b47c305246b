"""The layout shows the pipeline: one package per stage, imports only from earlier stages.

Every module's module-level imports are read with ``ast`` (an import inside a function,
such as a Jupyter ``_repr_svg_`` reaching for the renderer, is a deliberate late import
and is not counted). The rules: no cycle among modules; a package imports only from
itself and from packages before it in :data:`STAGES`; no folder holds more than 12
modules; every package opens with a docstring; no class is longer than 200 lines.
"""
from __future__ import annotations

import ast
from pathlib import Path

import networkx as nx
import pytest

import bngraph

ROOT = Path(bngraph.__file__).parent
# Pipeline order: a module may import from its own stage and from any stage before it.
STAGES = ["errors", "engine", "closedform", "check", "tex", "audit", "codegen", "output", "cli", "__main__"]
MAX_MODULES, MAX_CLASS_LINES = 12, 200


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in sorted(ROOT.rglob("*.py"))}


def stage_of(module: str) -> str | None:
    """``bngraph.engine.trace`` -> ``engine``; the top package itself has no stage."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else None


def _top_level_statements(body):
    """Statements run at import: the module body, and the bodies of classes, ifs and trys in it."""
    for node in body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            continue
        yield node
        for field in ("body", "orelse", "finalbody", "handlers"):
            inner = getattr(node, field, None)
            if isinstance(inner, list):
                yield from _top_level_statements(inner)


def imports_of(module: str) -> set[str]:
    """The bngraph modules ``module`` imports when it is imported."""
    path = MODULES[module]
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = set()
    for node in _top_level_statements(ast.parse(path.read_text()).body):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            for alias in node.names:  # ``from bngraph.check import numeric`` imports a module
                candidate = f"{base}.{alias.name}"
                found.add(candidate if candidate in MODULES else base)
    return {name for name in found if name in MODULES and name != module}


def import_graph() -> nx.DiGraph:
    graph = nx.DiGraph()
    graph.add_nodes_from(MODULES)
    for module in MODULES:
        graph.add_edges_from((module, imported) for imported in imports_of(module))
    return graph


def test_the_import_graph_is_read():
    """The reader itself sees what a module imports (a test of the test)."""
    assert "bngraph.engine.graph" in imports_of("bngraph.engine.derive")
    assert "bngraph.check.numeric" in imports_of("bngraph.check.verify")  # from bngraph.check import numeric
    assert "bngraph.output.render" not in imports_of("bngraph.engine.graph")  # only inside _repr_svg_


def test_no_import_cycle():
    cycles = list(nx.simple_cycles(import_graph()))
    assert cycles == [], f"import cycles: {cycles}"


def test_every_stage_imports_only_earlier_stages():
    order = {stage: k for k, stage in enumerate(STAGES)}
    wrong = []
    for module, imported in import_graph().edges:
        here, there = stage_of(module), stage_of(imported)
        if here is None:  # bngraph/__init__.py: the public API, from the engine only (the rest loads on use)
            if there not in ("errors", "engine"):
                wrong.append((module, imported))
        elif there is None or order[there] > order[here]:
            wrong.append((module, imported))
    assert wrong == [], f"a stage imports a later one: {wrong}"


def test_every_module_belongs_to_a_known_stage():
    assert {stage_of(m) for m in MODULES} - {None} <= set(STAGES)


@pytest.mark.parametrize("folder", sorted({p.parent for p in MODULES.values()}), ids=lambda p: p.name)
def test_no_folder_holds_more_than_12_modules(folder):
    modules = [p for p in folder.glob("*.py") if p.name != "__init__.py"]
    assert len(modules) <= MAX_MODULES, f"{folder.name}: {len(modules)} modules"


@pytest.mark.parametrize("package", sorted(p for p in MODULES.values() if p.name == "__init__.py"),
                         ids=lambda p: p.parent.name)
def test_every_package_opens_with_a_docstring_saying_what_it_takes_and_gives(package):
    doc = ast.get_docstring(ast.parse(package.read_text()))
    assert doc, f"{package} has no docstring"
    if package.parent != ROOT:
        assert "takes" in doc.lower() and "gives" in doc, f"{package}: say what the stage takes and gives"


@pytest.mark.parametrize("module", sorted(MODULES), ids=str)
def test_no_class_is_over_200_lines(module):
    for node in ast.walk(ast.parse(MODULES[module].read_text())):
        if isinstance(node, ast.ClassDef):
            length = node.end_lineno - node.lineno + 1
            assert length <= MAX_CLASS_LINES, f"{module}.{node.name}: {length} lines"


def test_the_public_api_is_where_it_was():
    from bngraph.check import assert_backward_matches, check_backward
    from bngraph.audit import assert_document_correct

    for name in ("trace", "build_graph", "derive", "LAYERS", "name", "stage", "sqrt", "exp", "log",
                 "closed_form", "verify", "check_backward"):
        assert callable(getattr(bngraph, name)) or name == "LAYERS"
    assert bngraph.check_backward is check_backward and bngraph.assert_backward_matches is assert_backward_matches
    assert callable(assert_document_correct)
