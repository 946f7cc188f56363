"""The packages form layers: no import cycle between them, and the scheduler knows nothing of
what sits above it (the monitor hears of passes through callables the composition root hands
it)."""

from __future__ import annotations

import ast
import graphlib
from pathlib import Path

import postpilot

SOURCE = Path(postpilot.__file__).parent


# The migrations are their own entry point (alembic runs them; nothing in the store imports
# them): a backfill there may use the code that writes the same rows at run time.
MIGRATIONS = ("store", "migrations")


def _node(module: str) -> str | None:
    """The package (or top-level module) of postpilot that `module` belongs to."""
    parts = module.split(".")
    if parts[0] != "postpilot" or len(parts) < 2:
        return None
    return "migrations" if tuple(parts[1:3]) == MIGRATIONS else parts[1]


def _imported(path: Path) -> set[str]:
    package = ".".join(("postpilot", *path.relative_to(SOURCE).parent.parts))
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package.split(".")[: len(package.split(".")) - max(node.level - 1, 0)]
            module = ".".join([*base, node.module or ""]) if node.level else node.module or ""
            names.add(module)
            names.update(f"{module}.{alias.name}" for alias in node.names)
    return names


def package_imports() -> dict[str, set[str]]:
    edges: dict[str, set[str]] = {}
    for path in SOURCE.rglob("*.py"):
        parts = path.relative_to(SOURCE).with_suffix("").parts
        source = "migrations" if parts[:2] == MIGRATIONS else parts[0]
        targets = {_node(name) for name in _imported(path)}
        edges.setdefault(source, set()).update(t for t in targets if t and t != source)
    return edges


def test_no_import_cycle_between_packages() -> None:
    graphlib.TopologicalSorter(package_imports()).prepare()  # raises CycleError on a cycle


def test_the_scheduler_does_not_import_what_sits_above_it() -> None:
    above = {"monitor", "runtime", "api", "cli", "tools"}
    assert package_imports()["scheduler"] & above == set()


def test_nothing_imports_the_migrations() -> None:
    assert {s for s, targets in package_imports().items() if "migrations" in targets} == set()


def test_only_entry_points_import_the_composition_root() -> None:
    importers = {source for source, targets in package_imports().items() if "runtime" in targets}
    assert importers <= {"api", "cli", "tools"}
