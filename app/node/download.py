"""Resumable, verified file downloads from Hugging Face, for a node's worker thread.

huggingface_hub downloads into a process-unique temp file, so a restarted node would start a
multi-GB file again from byte 0 (DESIGN.md, "Facts we checked"). Here huggingface_hub only
provides the auth headers, sent to the configured Hub's host only; the bytes stream with httpx2
into a partial file with a stable name, resumed with `Range: bytes=N-`, retried through
transient failures, checked against the size and sha256, and renamed into place atomically.
This module retries; `download_transfer` moves and checks the bytes of one attempt, and
`download_hub` knows the Hub's HTTP. Everything here blocks: never call it on the loop.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from pathlib import Path

import httpx2

from app.core.settings import DEFAULT_DOWNLOAD_READ_TIMEOUT
from app.node.download_transfer import (
    PARTIAL_SUFFIX,
    DownloadCancelled,
    Progress,
    Transfer,
    Transient,
    is_complete,
)

log = logging.getLogger(__name__)

FIRST_BACKOFF = 0.5
MAX_BACKOFF = 60.0  # seconds between retries at most


def clean_orphans(folder: Path, keep: set[str]) -> list[Path]:
    """Delete partial files in `folder` whose final file name is not in `keep`."""
    deleted: list[Path] = []
    if not folder.is_dir():
        return deleted
    for path in sorted(folder.glob("*" + PARTIAL_SUFFIX)):
        if path.name[: -len(PARTIAL_SUFFIX)] in keep or not path.is_file():
            continue
        try:
            path.unlink()
        except FileNotFoundError:
            continue
        deleted.append(path)
    return deleted


def download_file(
    url: str,
    dest: Path,
    *,
    expected_size: int | None,
    expected_sha256: str | None,
    progress: Progress,
    cancel: threading.Event,
    read_timeout: float = DEFAULT_DOWNLOAD_READ_TIMEOUT,
    max_backoff: float = MAX_BACKOFF,
    headers: dict[str, str] | None = None,
) -> None:
    """Download `url` to `dest`, resuming a partial file and retrying until done or cancelled.

    Raises DownloadError for what retrying cannot fix (404, access denied, wrong size or
    sha256, no disk space) and DownloadCancelled once `cancel` is set. A stall is noticed
    after `read_timeout` seconds, so that also bounds how long a cancel can take.
    """
    progress.file = dest.name
    expected = expected_sha256.lower() if expected_sha256 else None
    if expected_size is not None and is_complete(dest, expected_size, expected, cancel):
        progress.total_bytes = progress.downloaded_bytes = expected_size
        return
    transfer = Transfer(url, dest, expected_size, expected, progress, cancel, headers)
    timeout = httpx2.Timeout(read_timeout)
    failures = 0
    with httpx2.Client(timeout=timeout, follow_redirects=True) as client:
        while True:
            if cancel.is_set():
                raise DownloadCancelled(f"download of {dest.name} cancelled")
            before = transfer.hashed_len
            try:
                if transfer.attempt(client):
                    progress.retrying = progress.retry_at = None
                    return
                failures = 0  # the partial was reset: go again at once
            except Transient as exc:
                # Progress made means the link works: start the backoff over.
                failures = 0 if transfer.hashed_len > before else failures + 1
                delay = _backoff(failures, max_backoff, exc.retry_after)
                log.warning("download of %s: %s; retrying in %.1f s", dest.name, exc, delay)
                progress.retry_at = time.time() + delay
                progress.retrying = retry_reason(exc)
                if cancel.wait(delay):
                    raise DownloadCancelled(f"download of {dest.name} cancelled") from None


def retry_reason(exc: Transient) -> str:
    """Why a download waits, in words a user can act on, the technical detail after it."""
    cause = exc.__cause__
    if isinstance(cause, httpx2.TimeoutException) and not isinstance(cause, httpx2.ConnectTimeout):
        return f"the download stalled ({exc})"
    if isinstance(cause, httpx2.ConnectError | httpx2.ConnectTimeout):
        return f"Hugging Face could not be reached ({exc})"
    if cause is not None:
        return f"the connection to Hugging Face broke ({exc})"
    return f"Hugging Face answered {exc}; it may be busy"


def _backoff(failures: int, cap: float, retry_after: float | None) -> float:
    """Truncated exponential backoff with jitter, at least the server's Retry-After (capped)."""
    ceiling = min(cap, FIRST_BACKOFF * 2.0 ** min(failures, 30))
    delay = ceiling / 2 + random.uniform(0, ceiling / 2)
    if retry_after is not None:
        delay = max(delay, min(retry_after, cap))
    return delay
