"""The offline tools are the CLI's: no other package imports `postpilot.tools`, so the API, the
scheduler and the monitor never load compare, backup or the demo's data."""

from __future__ import annotations

import ast
from pathlib import Path

import postpilot

SOURCE = Path(postpilot.__file__).parent


def _imports_tools(path: Path) -> bool:
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module, *(f"{node.module}.{alias.name}" for alias in node.names)]
        else:
            continue
        if any(name == "postpilot.tools" or name.startswith("postpilot.tools.") for name in names):
            return True
    return False


def test_only_the_cli_imports_the_tools() -> None:
    importers = {
        path.relative_to(SOURCE).parts[0] for path in SOURCE.rglob("*.py") if _imports_tools(path)
    }
    assert importers <= {"cli", "tools"}, importers
    assert "cli" in importers
