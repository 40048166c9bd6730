"""The node's models folder: one folder per model, a manifest written last marks it complete."""

from __future__ import annotations

import json
import logging
import os
import shutil
from dataclasses import replace
from pathlib import Path

from app.node.manifest import Manifest, ManifestError, check_model, folder_name, parse_manifest

__all__ = ["MANIFEST", "ModelLibrary", "folder_name"]

log = logging.getLogger(__name__)
MANIFEST = "manifest.json"


class ModelLibrary:
    """Which models are complete on disk, and where their files are."""

    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)

    def folder(self, model: str) -> Path:
        """The model's folder (not created); ValueError if the name would leave the root."""
        path = self.root / folder_name(model)
        if path.resolve().parent != self.root.resolve():
            raise ValueError(f"the folder of {model!r} is not inside {self.root}")
        return path

    def stored_manifest(self, model: str) -> Manifest | None:
        """The manifest written when the model was complete (checked again), or None."""
        try:
            folder = self.folder(model)
            data = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
            return parse_manifest(data, folder)
        except (OSError, ValueError, ManifestError):
            return None

    def manifest(self, model: str) -> Manifest | None:
        """The manifest of a complete model (every file present), or None."""
        manifest = self.stored_manifest(model)
        if manifest is None:
            return None
        folder = self.folder(model)
        if not all((folder / f.name).is_file() for f in manifest.files):
            return None
        return manifest

    def damaged(self, model: str, manifest: Manifest) -> list[str]:
        """The files whose size on disk differs from the manifest's (a cheap check: stat only)."""
        folder = self.folder(model)
        bad: list[str] = []
        for f in manifest.files:
            try:
                size = (folder / f.name).stat().st_size
            except OSError:
                bad.append(f.name)
                continue
            if f.size is not None and size != f.size:
                bad.append(f.name)
        return bad

    def size_on_disk(self, model: str, manifest: Manifest) -> int:
        """The bytes the model's files take (what a complete model reports as downloaded)."""
        folder = self.folder(model)
        total = 0
        for f in manifest.files:
            try:
                total += (folder / f.name).stat().st_size
            except OSError:
                continue
        return total

    def model_path(self, model: str) -> Path | None:
        """The file llama.cpp loads (the first shard of a split model), when complete."""
        manifest = self.manifest(model)
        if manifest is None:
            return None
        return self.folder(model) / manifest.files[0].name

    def mark_complete(self, model: str, manifest: Manifest) -> None:
        """Write the manifest last, atomically: only then does the model count as ready."""
        folder = self.folder(model)
        tmp = folder / (MANIFEST + ".tmp")
        stored = manifest.to_json()
        stored["name"] = model
        tmp.write_text(json.dumps(stored), encoding="utf-8")
        os.replace(tmp, folder / MANIFEST)

    def update_settings(self, model: str, manifest: Manifest) -> bool:
        """Take a complete model's new settings (its GPU layers, capabilities) from the
        balancer's `manifest` without fetching anything: True when the stored manifest changed.
        A manifest naming other files changes nothing here (that is a download's business)."""
        stored = self.manifest(model)
        if stored is None or not stored.same_files(manifest):
            return False
        if stored.settings() == manifest.settings():
            return False
        # Keep the stored files (their URLs as fetched); only the settings are new.
        self.mark_complete(
            model,
            replace(
                stored,
                capabilities=manifest.capabilities,
                gpu_layers=manifest.gpu_layers,
                context_size=manifest.context_size,
            ),
        )
        return True

    def mark_incomplete(self, model: str) -> None:
        """Withdraw the manifest: a file failed its check, so the model is not complete."""
        try:
            (self.folder(model) / MANIFEST).unlink(missing_ok=True)
        except (OSError, ValueError) as exc:
            log.warning("cannot mark %s incomplete: %s", model, exc)

    def folders(self) -> dict[str, Path]:
        """Every model folder by model name (from its manifest, else from the folder name)."""
        out: dict[str, Path] = {}
        for path in self.root.iterdir():
            if not path.is_dir():
                continue
            name: object = path.name.replace("--", "/").replace("@", ":")
            try:
                name = json.loads((path / MANIFEST).read_text(encoding="utf-8"))["name"]
            except (OSError, ValueError, KeyError, TypeError):
                pass
            try:
                out[check_model(name)] = path
            except ManifestError:
                log.warning("ignoring the folder %s: %s", path.name, "not a model name")
        return out

    def remove(self, model: str) -> None:
        """Delete a model's folder and everything in it."""
        folder = self.folder(model)
        if folder.exists():
            shutil.rmtree(folder, ignore_errors=True)
            log.info("deleted the files of %s", model)
