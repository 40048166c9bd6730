"""Parse what a user types to name a Hugging Face model: a repo id or any URL form."""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

from app.core.errors import BadRequest

_PART = r"[A-Za-z0-9][A-Za-z0-9._-]{0,95}"
_REPO_RE = re.compile(rf"^{_PART}/{_PART}$")
_HF_HOSTS = {"huggingface.co", "www.huggingface.co", "hf.co"}
_NON_MODEL = {"datasets", "spaces", "collections", "docs", "papers", "organizations"}


@dataclass(frozen=True)
class HfRef:
    """A model repo, with the file and revision when the URL named them."""

    repo_id: str
    filename: str | None = None
    revision: str | None = None


def check_repo_id(repo_id: str) -> str:
    """Return a valid model repo id (`org/name`) or raise BadRequest saying why."""
    if ".." in repo_id or "--" in repo_id or not _REPO_RE.match(repo_id):
        raise BadRequest(
            f"'{repo_id}' is not a Hugging Face model repo id (expected 'org/name')",
            param="repo",
        )
    return repo_id


def check_filename(filename: str) -> str:
    """Return a safe file path inside a repo, or raise BadRequest."""
    parts = filename.split("/")
    if (
        not filename
        or filename.startswith("/")
        or "\\" in filename
        or any(p in {"", ".", ".."} for p in parts)
        or len(filename) > 255
    ):
        raise BadRequest(f"'{filename}' is not a valid file name in a repo", param="filename")
    return filename


def parse_hf_reference(text: str, extra_hosts: frozenset[str] = frozenset()) -> HfRef:
    """Turn `org/repo` or a huggingface.co URL (repo, blob, resolve, tree) into a ref."""
    raw = text.strip()
    if not raw:
        raise BadRequest("give a Hugging Face repo id or URL", param="repo")
    if "://" not in raw and not raw.lower().startswith(("huggingface.co/", "hf.co/")):
        return HfRef(check_repo_id(raw.strip("/")))
    try:
        url = urlsplit(raw if "://" in raw else f"https://{raw}")
        host = (url.hostname or "").lower()
    except ValueError as exc:  # an unclosed or invalid [IPv6] host
        raise BadRequest(f"'{raw}' is not a valid URL: {exc}", param="repo") from exc
    netloc = url.netloc.lower()
    if url.scheme not in {"http", "https"} or (host not in _HF_HOSTS and netloc not in extra_hosts):
        raise BadRequest(f"'{raw}' is not a Hugging Face URL", param="repo")
    parts = [unquote(p) for p in url.path.split("/") if p]
    if not parts:
        raise BadRequest(f"'{raw}' names no repository", param="repo")
    if parts[0] in _NON_MODEL:
        raise BadRequest(f"'{raw}' is not a model repository", param="repo")
    if len(parts) < 2:
        raise BadRequest(f"'{raw}' names no repository (expected /org/name)", param="repo")
    repo_id = check_repo_id(f"{parts[0]}/{parts[1]}")
    rest = parts[2:]
    if not rest:
        return HfRef(repo_id)
    kind = rest[0]
    if kind not in {"blob", "resolve", "tree"} or len(rest) < 2:
        raise BadRequest(f"'{raw}' is not a model, file or folder URL", param="repo")
    revision = rest[1]
    if kind == "tree" or len(rest) == 2:
        return HfRef(repo_id, revision=revision)
    return HfRef(repo_id, filename=check_filename("/".join(rest[2:])), revision=revision)
