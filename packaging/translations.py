"""The UI's translations with Qt's own tools: `update` runs pyside6-lupdate over app/ui into the
.ts sources kept in the repo, `build` compiles them to .qm with pyside6-lrelease, and `check`
fails when a source string is missing from a .ts or has no translation."""

from __future__ import annotations

import argparse
import shutil
import string
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET
from pathlib import Path

import PySide6

ROOT = Path(__file__).resolve().parent.parent
UI = ROOT / "app" / "ui"
TRANSLATIONS = UI / "translations"
LANGUAGES = ("ja",)


def ts_file(language: str) -> Path:
    """The translation source of one language, kept in the repo."""
    return TRANSLATIONS / f"llmlb_{language}.ts"


def qm_file(language: str) -> Path:
    """The compiled translation the app loads (built, not kept in the repo)."""
    return TRANSLATIONS / f"llmlb_{language}.qm"


def qt_tool(name: str) -> str:
    """lupdate or lrelease: the pyside6- wrapper on PATH, else the binary inside PySide6."""
    wrapper = shutil.which(f"pyside6-{name}") or shutil.which(
        f"pyside6-{name}", path=str(Path(sys.executable).parent)
    )
    if wrapper:
        return wrapper
    for candidate in (
        Path(PySide6.__file__).parent / name,
        Path(PySide6.__file__).parent / "Qt" / "bin" / name,
    ):
        if candidate.exists():
            return str(candidate)
    raise SystemExit(f"translations: Qt's {name} not found (it comes with PySide6)")


def sources() -> list[Path]:
    """Every UI module and the entry point (its startup errors): lupdate finds the tr("...")
    and QT_TR_NOOP("...") literals in them."""
    return [*sorted(UI.glob("*.py")), ROOT / "app" / "main.py"]


def lupdate(target: Path) -> None:
    """Bring one .ts up to date with the sources (new strings unfinished, gone ones dropped)."""
    command = [qt_tool("lupdate"), *map(str, sources()), "-no-obsolete", "-locations", "none"]
    subprocess.run([*command, "-ts", str(target)], check=True, capture_output=True, text=True)


def build() -> list[Path]:
    """Compile every .ts into the .qm beside it."""
    built = []
    for language in LANGUAGES:
        target = qm_file(language)
        subprocess.run(
            [qt_tool("lrelease"), "-silent", str(ts_file(language)), "-qm", str(target)],
            check=True,
        )
        built.append(target)
    return built


def messages(ts: Path) -> dict[str, str | None]:
    """Source text → its translation (None while unfinished or empty)."""
    found: dict[str, str | None] = {}
    for message in ET.parse(ts).getroot().iter("message"):
        source = message.findtext("source") or ""
        translation = message.find("translation")
        done = (
            translation is not None
            and translation.get("type") not in {"unfinished", "vanished", "obsolete"}
            and bool((translation.text or "").strip())
        )
        found[source] = (translation.text if translation is not None else None) if done else None
    return found


def problems(language: str, kept: Path | None = None) -> list[str]:
    """What keeps one language's .ts (the repo's, or `kept`) from being complete: strings it
    lacks or leaves untranslated, and translations whose {placeholders} differ from the
    English."""
    kept = kept or ts_file(language)
    with tempfile.TemporaryDirectory() as tmp:
        fresh = Path(tmp) / kept.name
        shutil.copy(kept, fresh)
        lupdate(fresh)
        current = messages(fresh)
    stored = messages(kept)
    found = [
        f"not in {kept.name} (run `make translations`): {s!r}" for s in current if s not in stored
    ]
    for source, text in current.items():
        if source in stored and text is None:
            found.append(f"untranslated in {kept.name}: {source!r}")
        elif text is not None:
            wanted = set(_fields(source))
            if set(_fields(text)) != wanted:
                found.append(f"placeholders differ in {kept.name}: {source!r} → {text!r}")
    return found


def _fields(text: str) -> list[str]:
    try:
        return sorted(name for _, name, _, _ in string.Formatter().parse(text) if name)
    except ValueError:  # a lone brace: no placeholders to compare
        return []


def main() -> int:
    """update | build | check."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("command", choices=["update", "build", "check"])
    args = parser.parse_args()
    if args.command == "update":
        for language in LANGUAGES:
            lupdate(ts_file(language))
            for line in problems(language):
                print(line)
        return 0
    if args.command == "build":
        for path in build():
            print(path.relative_to(ROOT))
        return 0
    found = [line for language in LANGUAGES for line in problems(language)]
    print("\n".join(found) or "translations complete")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
