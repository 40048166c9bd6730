"""Files attached in the Playground: text inline, PDFs as their text, images as data URLs for
models that see. Everything stays on this machine; nothing is sent half."""

from __future__ import annotations

import base64
import mimetypes
from dataclasses import dataclass
from pathlib import Path

from app.core.wire import JsonObject, JsonValue

MAX_BYTES = 100 * 1024 * 1024
TEXT_SUFFIXES = {
    ".txt",
    ".md",
    ".py",
    ".js",
    ".ts",
    ".json",
    ".csv",
    ".yaml",
    ".yml",
    ".toml",
    ".html",
    ".css",
    ".c",
    ".h",
    ".cpp",
    ".rs",
    ".go",
    ".java",
    ".sh",
    ".sql",
    ".xml",
    ".ini",
    ".log",
    ".rst",
}
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".gif", ".webp"}


class AttachmentError(Exception):
    """A file that cannot be attached, with the reason in plain words."""


@dataclass(frozen=True)
class Attachment:
    """A file ready to send: `text` for text and PDFs, `data_url` for images."""

    name: str
    kind: str  # text / pdf / image
    size: int
    text: str = ""
    data_url: str = ""

    def part(self) -> JsonObject:
        """The OpenAI content part for this file."""
        if self.kind == "image":
            return {"type": "image_url", "image_url": {"url": self.data_url}}
        return {"type": "text", "text": f'<file name="{self.name}">\n{self.text}\n</file>'}


def saved_text(text: str, files: list[Attachment]) -> str:
    """A message as saved: the user's words, then each file's text under its name."""
    return text + "".join(f"\n\n[{f.name}]\n{f.text}" for f in files if f.text)


def typed_text(saved: str, meta: list[JsonValue]) -> str:
    """The user's own words of a saved message (`saved_text` undone), without the files."""
    cut = len(saved)
    for item in meta:
        if isinstance(item, dict):
            at = saved.find(f"\n\n[{item.get('name')}]\n")
            cut = min(cut, at) if at >= 0 else cut
    return saved[:cut]


def resent(saved: str, meta: list[JsonValue]) -> JsonValue:
    """A saved message as it is sent again: the user's words, then each file as its own part,
    as when it was first sent (so a file too large for the context is cut, not the words)."""
    found: list[tuple[str, int, int]] = []  # name, where its header starts, where its text does
    for name in names(meta):
        header = f"\n\n[{name}]\n"
        at = saved.find(header, found[-1][2] if found else 0)
        if at >= 0:
            found.append((name, at, at + len(header)))
    if not found:
        return saved
    parts: list[JsonValue] = [{"type": "text", "text": saved[: found[0][1]]}]
    for i, (name, _, start) in enumerate(found):
        end = found[i + 1][1] if i + 1 < len(found) else len(saved)
        parts.append(Attachment(name, "text", end - start, text=saved[start:end]).part())
    return parts


def names(meta: list[JsonValue]) -> list[str]:
    """The file names of a saved message's attachments."""
    return [str(item.get("name")) for item in meta if isinstance(item, dict)]


def load(path: Path, vision: bool) -> Attachment:
    """Read a file for the chat, or raise AttachmentError saying why not."""
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise AttachmentError(f"{path.name} cannot be read: {exc.strerror}") from exc
    if size > MAX_BYTES:
        raise AttachmentError(f"{path.name} is {size / 2**20:.0f} MB; the limit is 100 MB")
    suffix = path.suffix.lower()
    if suffix in IMAGE_SUFFIXES:
        if not vision:
            raise AttachmentError(
                f"{path.name} is an image, and this model cannot see images; pick a model with "
                "the Vision capability"
            )
        mime = mimetypes.guess_type(path.name)[0] or "image/png"
        data = base64.b64encode(path.read_bytes()).decode()
        return Attachment(path.name, "image", size, data_url=f"data:{mime};base64,{data}")
    if suffix == ".pdf":
        return Attachment(path.name, "pdf", size, text=_pdf_text(path))
    raw = path.read_bytes()
    if suffix not in TEXT_SUFFIXES and b"\0" in raw[:4096]:
        raise AttachmentError(f"{path.name} is not a text, PDF or image file")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise AttachmentError(f"{path.name} is not UTF-8 text") from exc
    return Attachment(path.name, "text", size, text=text)


def _pdf_text(path: Path) -> str:
    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    try:
        reader = PdfReader(str(path))
        pages = [page.extract_text() or "" for page in reader.pages]
    except (PdfReadError, OSError, ValueError) as exc:
        raise AttachmentError(f"{path.name} is not a readable PDF: {exc}") from exc
    text = "\n\n".join(p.strip() for p in pages if p.strip())
    if not text:
        raise AttachmentError(f"{path.name} has no text to read (a scanned PDF?)")
    return text
