"""The Japanese translation is complete: Qt's lupdate, run over the UI's sources now, finds
no string that the repo's .ts lacks or leaves untranslated (packaging/translations.py check,
which `make test` runs here), and the check does catch one that is."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "packaging" / "translations.py"


def translations() -> ModuleType:
    spec = importlib.util.spec_from_file_location("translations", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_ui_string_has_its_japanese() -> None:
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "check"], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "translations complete" in done.stdout


def test_the_check_names_a_string_left_untranslated_or_with_a_lost_placeholder(
    tmp_path: Path,
) -> None:
    module = translations()
    tree = ET.parse(module.ts_file("ja"))
    messages = list(tree.getroot().iter("message"))
    blank = next(m for m in messages if m.findtext("source") == "Network")
    translation = blank.find("translation")
    assert translation is not None
    translation.text, translation.attrib["type"] = "", "unfinished"
    moved = next(m for m in messages if m.findtext("source") == "Registered {name}.")
    placeholder = moved.find("translation")
    assert placeholder is not None
    placeholder.text = "登録しました。"  # the model's name lost
    broken = tmp_path / "llmlb_ja.ts"
    tree.write(broken, encoding="utf-8", xml_declaration=True)
    found = module.problems("ja", broken)
    assert any("untranslated" in line and "'Network'" in line for line in found), found
    assert any("placeholders differ" in line and "Registered {name}." in line for line in found)
    assert len(found) == 2, found
