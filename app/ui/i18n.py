"""The UI's language through Qt's translation system: `tr()` looks text up in the installed
QTranslator, whose .qm is compiled from app/ui/translations/*.ts (packaging/translations.py)."""

from __future__ import annotations

import logging
import shutil
import subprocess
import sys
from pathlib import Path

import PySide6
from platformdirs import user_cache_dir
from PySide6.QtCore import QCoreApplication, QLibraryInfo, QLocale, QTranslator

log = logging.getLogger(__name__)

TRANSLATIONS = Path(__file__).with_name("translations")
LANGUAGES = ("en", "ja")  # English is the source text: it needs no translator

_language = "en"
_installed: list[QTranslator] = []


def set_language(choice: str) -> str:
    """`system`, `en` or `ja`: install that language's translators; returns the one in force.
    Widgets built afterwards read the new language (the window rebuilds its pages)."""
    global _language
    if choice == "system":
        choice = "ja" if QLocale.system().language() == QLocale.Language.Japanese else "en"
    language = choice if choice in LANGUAGES else "en"
    app = QCoreApplication.instance()
    if app is not None:
        for old in _installed:
            app.removeTranslator(old)
            old.deleteLater()
        _installed.clear()
        if language != "en":
            # Ours, and Qt's own for the standard buttons and dialogs (OK, Cancel, Yes…).
            qt_folder = QLibraryInfo.path(QLibraryInfo.LibraryPath.TranslationsPath)
            for name, folder in (
                (f"llmlb_{language}", _ours(language)),
                (f"qtbase_{language}", qt_folder),
            ):
                translator = QTranslator(app)
                if folder is not None and translator.load(name, str(folder)):
                    app.installTranslator(translator)
                    _installed.append(translator)
                else:
                    log.warning("no %s translation found in %s", name, folder)
    _language = language
    return language


def language() -> str:
    """The language in force: en or ja."""
    return _language


def tr(text: str) -> str:
    """The text in the current language (the English source when it has no translation)."""
    return QCoreApplication.translate("", text)


def QT_TR_NOOP(text: str) -> str:  # the name Qt's lupdate looks for
    """Mark a literal for translation where it is defined, for text chosen at run time;
    tr() translates it where it is shown. (Typed: PySide6's own returns `object`.)"""
    return text


def _ours(language: str) -> Path | None:
    """The folder holding llmlb_<language>.qm: the built one beside the sources (the bundle and
    the wheel ship it), else compiled now from the .ts into the cache (a source checkout that
    was not built with `make`)."""
    qm = TRANSLATIONS / f"llmlb_{language}.qm"
    ts = TRANSLATIONS / f"llmlb_{language}.ts"
    if qm.exists() and (not ts.exists() or qm.stat().st_mtime >= ts.stat().st_mtime):
        return TRANSLATIONS
    if not ts.exists():
        return None
    cache = Path(user_cache_dir("llmlb")) / "translations"
    built = cache / qm.name
    if built.exists() and built.stat().st_mtime >= ts.stat().st_mtime:
        return cache
    lrelease = shutil.which("pyside6-lrelease", path=str(Path(sys.executable).parent))
    command = [lrelease] if lrelease else [str(Path(PySide6.__file__).parent / "lrelease")]
    cache.mkdir(parents=True, exist_ok=True)
    try:
        subprocess.run([*command, "-silent", str(ts), "-qm", str(built)], check=True, timeout=60)
    except (OSError, subprocess.SubprocessError) as exc:
        log.warning("could not compile %s: %s", ts.name, exc)
        return None
    return cache
