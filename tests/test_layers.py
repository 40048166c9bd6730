"""The layers of DESIGN.md, checked by scanning every import in app/."""

from __future__ import annotations

import ast
from pathlib import Path

APP = Path(__file__).resolve().parents[1] / "app"

# What each layer may import from the project (besides itself).
ALLOWED = {
    "core": set(),
    "db": {"core"},
    "node": {"core"},
    "ui": {"core"},
    "server": {"core", "db"},
}
QT = ("PySide6", "qasync", "shiboken6")


def imports(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(), str(path))
    names: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.append(node.module)
    return names


def test_each_layer_imports_only_the_ones_below_it() -> None:
    problems = []
    for layer, allowed in ALLOWED.items():
        for path in (APP / layer).rglob("*.py"):
            for name in imports(path):
                parts = name.split(".")
                if parts[0] == "app" and len(parts) > 1 and parts[1] != layer:
                    if parts[1] not in allowed:
                        problems.append(f"{path.relative_to(APP)} imports {name}")
    assert problems == []


def test_only_the_ui_and_the_entry_point_import_qt() -> None:
    offenders = []
    for path in APP.rglob("*.py"):
        rel = path.relative_to(APP).as_posix()
        if rel.startswith("ui/") or rel == "main.py":
            continue
        offenders += [f"{rel}: {n}" for n in imports(path) if n.split(".")[0] in QT]
    assert offenders == []


def test_every_module_has_a_docstring() -> None:
    missing = [
        str(p.relative_to(APP))
        for p in APP.rglob("*.py")
        if ast.get_docstring(ast.parse(p.read_text())) is None
    ]
    assert missing == []
