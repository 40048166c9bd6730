"""The node's models folder: one folder per model, a manifest written last marks it complete."""

from __future__ import annotations

import json
import logging
import os
import shutil
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)
MANIFEST = "manifest.json"


def folder_name(model: str) -> str:
    """A file-system-safe folder name for a model name (`org/repo:Q4` → `org--repo@Q4`)."""
    return model.replace("/", "--").replace(":", "@")


class ModelLibrary:
    """Which models are complete on disk, and where their files are."""

    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)

    def folder(self, model: str) -> Path:
        """The model's folder (not created)."""
        return self.root / folder_name(model)

    def manifest(self, model: str) -> dict[str, Any] | None:
        """The manifest of a complete model, or None."""
        path = self.folder(model) / MANIFEST
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        files = data.get("files") or []
        folder = self.folder(model)
        if not files or not all((folder / f["name"]).is_file() for f in files):
            return None
        return data if isinstance(data, dict) else None

    def model_path(self, model: str) -> Path | None:
        """The file llama.cpp loads (the first shard of a split model), when complete."""
        manifest = self.manifest(model)
        if manifest is None:
            return None
        first: str = manifest["files"][0]["name"]
        return self.folder(model) / first

    def mark_complete(self, model: str, manifest: dict[str, Any]) -> None:
        """Write the manifest last, atomically: only then does the model count as ready."""
        folder = self.folder(model)
        tmp = folder / (MANIFEST + ".tmp")
        tmp.write_text(json.dumps({**manifest, "name": model}), encoding="utf-8")
        os.replace(tmp, folder / MANIFEST)

    def folders(self) -> dict[str, Path]:
        """Every model folder by model name (from its manifest, else from the folder name)."""
        out: dict[str, Path] = {}
        for path in self.root.iterdir():
            if not path.is_dir():
                continue
            name = path.name.replace("--", "/").replace("@", ":")
            try:
                name = json.loads((path / MANIFEST).read_text(encoding="utf-8"))["name"]
            except (OSError, ValueError, KeyError, TypeError):
                pass
            out[name] = path
        return out

    def remove(self, model: str) -> None:
        """Delete a model's folder and everything in it."""
        folder = self.folder(model)
        if folder.exists():
            shutil.rmtree(folder, ignore_errors=True)
            log.info("deleted the files of %s", model)
