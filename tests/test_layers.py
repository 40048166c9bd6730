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


def _module_name(path: Path) -> str:
    parts = path.relative_to(APP.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _project_imports(path: Path, modules: set[str]) -> set[str]:
    """The modules of app/ that `path` imports (relative imports resolved, type-only too)."""
    package = _module_name(path).split(".")
    if path.name != "__init__.py":
        package = package[:-1]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            module = ".".join([*base, *([node.module] if node.module else [])])
            found.add(module)
            found.update(f"{module}.{alias.name}" for alias in node.names)
    return found & modules


def test_no_import_cycle_in_app() -> None:
    paths = {_module_name(p): p for p in APP.rglob("*.py")}
    graph = {name: _project_imports(p, set(paths)) - {name} for name, p in paths.items()}
    cycles: list[list[str]] = []
    done: set[str] = set()

    def visit(name: str, trail: list[str]) -> None:
        if name in trail:
            cycles.append([*trail[trail.index(name) :], name])
            return
        if name in done:
            return
        for other in sorted(graph[name]):
            visit(other, [*trail, name])
        done.add(name)

    for name in sorted(graph):
        visit(name, [])
    assert cycles == []


def test_no_module_in_app_is_over_400_lines() -> None:
    """A file past 400 lines is split along a real seam (STYLE.md): a new engineer reads
    one room at a time."""
    long = {
        str(p.relative_to(APP)): n
        for p in APP.rglob("*.py")
        if (n := len(p.read_text(encoding="utf-8").splitlines())) > 400
    }
    assert long == {}


def test_only_the_guis_client_names_v0_paths() -> None:
    """The GUI reaches the management API through `app/ui/client.py` alone, so a path or a
    shape changes in one place."""
    naming = sorted(
        str(p.relative_to(APP))
        for p in (APP / "ui").rglob("*.py")
        if p.name != "client.py" and '"/v0' in p.read_text(encoding="utf-8")
    )
    assert naming == []
