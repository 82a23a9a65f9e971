"""The layers are one-way: config -> schedule -> plan -> engine -> actions -> providers -> SDK.

Read from the source (every ``import``, TYPE_CHECKING ones included), so a new shortcut
between layers fails here before it becomes a cycle.
"""

from __future__ import annotations

import ast
from pathlib import Path

import imagebak

PACKAGE = Path(imagebak.__file__).parent

# What each top-level unit may import (besides itself). Anything not listed is forbidden.
BASE = {"errors", "vendors", "fsutil", "ownership", "records"}
ALLOWED: dict[str, set[str]] = {
    "errors": set(),
    "records": set(),
    "vendors": set(),
    "fsutil": set(),
    "ownership": set(),
    "output": {"errors"},
    "config": BASE,
    "schedule": BASE,
    "retention": BASE,
    "hooks": BASE,
    "logs": set(),
    "state": BASE | {"schedule", "execution"},  # the records of executions are the schema of their entries
    "plan": BASE | {"config", "schedule", "state"},
    "providers": BASE,
    "execution": BASE,
    "actions": BASE | {"execution", "providers", "retention"},
    "engine": BASE | {"config", "schedule", "state", "plan", "execution", "actions", "providers", "retention"},
    "emulator": BASE,
    "commands": BASE
    | {"config", "schedule", "state", "plan", "engine", "execution", "providers", "output", "emulator", "hooks"},
    "cli": BASE | {"commands", "config", "emulator", "__init__", "logs", "output"},
    "__main__": {"cli"},
    "__init__": set(),
}


def _unit(path: Path) -> str:
    rel = path.relative_to(PACKAGE)
    return rel.parts[0].removesuffix(".py")


def _imported_units(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names if node.module == "imagebak")
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
    parts = {n.split(".")[1] for n in names if n.startswith("imagebak.")}
    return {part if (PACKAGE / part).is_dir() or (PACKAGE / f"{part}.py").exists() else "__init__" for part in parts}


def test_every_module_imports_only_the_layers_below_it() -> None:
    violations = []
    for path in sorted(PACKAGE.rglob("*.py")):
        unit = _unit(path)
        assert unit in ALLOWED, f"{path}: a new top-level unit {unit!r}: place it in a layer here and in the docs"
        for used in _imported_units(path) - {unit}:
            if used not in ALLOWED[unit]:
                violations.append(f"{path.relative_to(PACKAGE.parent)} imports imagebak.{used}")
    assert violations == []


def test_the_unit_graph_has_no_cycle() -> None:
    graph: dict[str, set[str]] = {}
    for path in PACKAGE.rglob("*.py"):
        graph.setdefault(_unit(path), set()).update(_imported_units(path) - {_unit(path)})
    done: set[str] = set()

    def visit(unit: str, trail: tuple[str, ...]) -> None:
        assert unit not in trail, " -> ".join((*trail, unit))
        if unit in done:
            return
        for used in graph.get(unit, ()):
            visit(used, (*trail, unit))
        done.add(unit)

    for unit in graph:
        visit(unit, ())


def test_only_the_emulator_endpoint_and_its_command_load_the_emulator() -> None:
    importers = {
        str(path.relative_to(PACKAGE))
        for path in PACKAGE.rglob("*.py")
        if _unit(path) != "emulator" and "emulator" in _imported_units(path)
    }
    assert importers <= {"commands/connect.py", "cli.py"}
