"""One file's ranged transfer and its verification: the partial file with a stable name, HEAD
for the size and sha256, `Range: bytes=N-` from where the partial ends, the bytes hashed as they
land, then size and sha256 checked and the file renamed into place atomically.

`download.download_file` drives a `Transfer` through retries. Everything here blocks: never
call it on the loop.
"""

from __future__ import annotations

import errno
import hashlib
import logging
import os
import re
import shutil
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import httpx2

from app.core.errors import LlmlbError
from app.node.download_hub import (
    TRANSIENT_ERRORS,
    etag_sha256,
    file_label,
    head_chain,
    request_headers,
    retry_after,
)

log = logging.getLogger(__name__)

CHUNK = 1024 * 1024
PARTIAL_SUFFIX = ".partial"
_NO_SPACE = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG})
_CONTENT_RANGE_RE = re.compile(r"^bytes (\d+)-(\d+)/(\d+|\*)$")
_UNSATISFIED_RE = re.compile(r"^bytes \*/(\d+)$")


@dataclass
class Progress:
    """How far a download got; read by other threads, so only plain attribute writes."""

    file: str = ""
    downloaded_bytes: int = 0
    total_bytes: int = 0
    # Why the transfer is waiting to try again (the Hub unreachable, a 5xx...), for the user to
    # see; None while bytes flow.
    retrying: str | None = None
    # Bytes that came over the network (never a resumed partial): what the speed is made of.
    received_bytes: int = 0
    # When the next attempt starts (time.time()), while `retrying` says why it waits.
    retry_at: float | None = None


class DownloadError(LlmlbError):
    """A download failed for good; str(exc) is one line a person can act on."""


class DownloadCancelled(LlmlbError):
    """The caller cancelled the download; the partial file stays for a later resume."""


class Transient(Exception):
    """A failure worth retrying; `retry_after` is the server's hint in seconds, if any."""

    def __init__(self, reason: str, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.retry_after = retry_after


def partial_path(dest: Path) -> Path:
    """Where `dest` is downloaded to: a stable name, so a restarted node finds and resumes it."""
    return dest.with_name(dest.name + PARTIAL_SUFFIX)


def is_complete(path: Path, size: int, sha256: str | None, cancel: threading.Event) -> bool:
    """Whether `path` already holds the file: its size, and its sha256 when one is known."""
    try:
        if path.stat().st_size != size:
            return False
    except FileNotFoundError:
        return False
    return sha256 is None or hash_file(path, cancel).hexdigest() == sha256


def hash_file(path: Path, cancel: threading.Event) -> hashlib._Hash:
    """The sha256 of a file's current bytes, read in chunks; a cancel stops it."""
    hasher = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(CHUNK):
            if cancel.is_set():
                raise DownloadCancelled(f"download of {path.name} cancelled")
            hasher.update(chunk)
    return hasher


@contextmanager
def _disk_errors(folder: Path) -> Iterator[None]:
    """Turn a failed write into a DownloadError; a full disk says so plainly."""
    try:
        yield
    except OSError as exc:
        if exc.errno in _NO_SPACE:
            raise DownloadError(f"not enough disk space in {folder}: {exc.strerror}") from exc
        raise DownloadError(f"cannot write in {folder}: {exc}") from exc


def _fsync_dir(folder: Path) -> None:
    """Make the rename durable; some systems (Windows) cannot open a directory, which is fine."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


class Transfer:
    """One file's download state across attempts: the partial file and the hash of its bytes."""

    def __init__(
        self,
        url: str,
        dest: Path,
        expected_size: int | None,
        expected_sha256: str | None,
        progress: Progress,
        cancel: threading.Event,
        headers: dict[str, str] | None,
    ) -> None:
        self.url = url
        self.dest = dest
        self.partial = partial_path(dest)
        self.label = file_label(url)
        self.total = expected_size
        self.sha256 = expected_sha256
        self.progress = progress
        self.cancel = cancel
        self.extra_headers = dict(headers or {})
        self.head_done = False
        # The sha256 of partial[:hashed_len]; the partial's bytes are always a prefix of the file.
        self.hasher = hashlib.sha256()
        self.hashed_len = -1

    def attempt(self, client: httpx2.Client) -> bool:
        """One try: True once `dest` is in place, False to go again now; raises Transient."""
        headers = request_headers(self.url, self.extra_headers)
        headers["Accept-Encoding"] = "identity"  # the bytes on disk are the bytes of the file
        if not self.head_done:
            self._head(client, headers)
            if self.total is not None and is_complete(
                self.dest, self.total, self.sha256, self.cancel
            ):
                self.progress.total_bytes = self.progress.downloaded_bytes = self.total
                return True
        offset = self._sync_partial()
        if self.total is not None:
            self.progress.total_bytes = self.total
            if offset == self.total:
                return self._finish()
            self._check_space(self.total - offset)
        if offset > 0:
            headers["Range"] = f"bytes={offset}-"
        try:
            with client.stream("GET", self.url, headers=headers) as response:
                return self._receive(response, offset)
        except TRANSIENT_ERRORS as exc:
            raise Transient(f"{type(exc).__name__}: {exc}") from exc
        except (httpx2.HTTPError, httpx2.InvalidURL) as exc:
            raise DownloadError(f"cannot download {self.label}: {exc}") from exc

    def _head(self, client: httpx2.Client, headers: dict[str, str]) -> None:
        """Learn the size and the sha256 (the Hub's ETag of an LFS file) before streaming."""
        try:
            chain = head_chain(client, self.url, headers)
        except TRANSIENT_ERRORS as exc:
            raise Transient(f"{type(exc).__name__}: {exc}") from exc
        except (httpx2.HTTPError, httpx2.InvalidURL) as exc:
            raise DownloadError(f"cannot reach {self.label}: {exc}") from exc
        last = chain[-1]
        if not last.is_redirect:
            self._check_status(last)
        # The Hub puts X-Linked-* on its redirect to the CDN; the CDN's own ETag is no sha256.
        size_text = next(
            (r.headers["X-Linked-Size"] for r in chain if "X-Linked-Size" in r.headers),
            None if last.is_redirect else last.headers.get("Content-Length"),
        )
        remote_size = int(size_text) if size_text and size_text.isdigit() else None
        if remote_size is not None and self.total is not None and remote_size != self.total:
            raise DownloadError(
                f"{self.label} is {remote_size} bytes on Hugging Face, expected {self.total}"
            )
        if self.total is None:
            self.total = remote_size
        if self.sha256 is None:
            self.sha256 = etag_sha256(chain)
        self.head_done = True

    def _check_status(self, response: httpx2.Response) -> None:
        """Raise DownloadError for a refusal, Transient for a failure a retry can outlive."""
        status = response.status_code
        if status < 400:
            return
        if status == 404:
            raise DownloadError(f"{self.label} was not found on Hugging Face (404)")
        if status in (401, 403):
            if response.headers.get("X-Error-Code") == "RepoNotFound":
                raise DownloadError(
                    f"{self.label} was not found on Hugging Face ({status}): the repo does not"
                    " exist, or it is private: set HF_TOKEN"
                )
            raise DownloadError(
                f"access denied to {self.label} on Hugging Face ({status}): the repo is gated"
                " or private: set HF_TOKEN (and accept the repo's terms on its page)"
            )
        if status in (408, 429) or status >= 500:
            raise Transient(f"HTTP {status}", retry_after(response))
        raise DownloadError(f"Hugging Face refused {self.label} (HTTP {status})")

    def _sync_partial(self) -> int:
        """Make the hash cover exactly the partial's bytes; return how many there are."""
        try:
            size = self.partial.stat().st_size
        except FileNotFoundError:
            size = 0
        if self.total is not None and size > self.total:
            log.warning("%s is longer than the file; starting again", self.partial.name)
            self._restart()
            size = 0
        if size != self.hashed_len:
            self.hasher = hash_file(self.partial, self.cancel) if size else hashlib.sha256()
            self.hashed_len = size
        self.progress.downloaded_bytes = size
        return size

    def _restart(self) -> None:
        """Empty the partial file: its bytes cannot be resumed."""
        with _disk_errors(self.dest.parent):
            self.partial.parent.mkdir(parents=True, exist_ok=True)
            self.partial.open("wb").close()
        self.hasher = hashlib.sha256()
        self.hashed_len = 0
        self.progress.downloaded_bytes = 0

    def _check_space(self, remaining: int) -> None:
        """Fail before streaming when the disk cannot take the rest of the file."""
        folder = self.dest.parent
        with _disk_errors(folder):
            folder.mkdir(parents=True, exist_ok=True)
            free = shutil.disk_usage(folder).free
        if free < remaining:
            raise DownloadError(
                f"not enough disk space in {folder}: {self.label} needs {remaining} more bytes,"
                f" {free} are free"
            )

    def _receive(self, response: httpx2.Response, offset: int) -> bool:
        """Append the response body to the partial file, then finish when it is all there."""
        status = response.status_code
        if status == 416 and offset > 0:
            match = _UNSATISFIED_RE.match(response.headers.get("Content-Range", ""))
            if match and int(match.group(1)) == offset:
                self._set_total(offset)  # the partial already holds the whole file
                return self._finish()
            self._restart()
            return False
        self._check_status(response)
        if status == 206:
            match = _CONTENT_RANGE_RE.match(response.headers.get("Content-Range", ""))
            if not match or int(match.group(1)) != offset:
                self._restart()
                return False
            if match.group(3) != "*":
                self._set_total(int(match.group(3)))
        else:
            if offset > 0:
                log.info("server ignored the Range request for %s; starting again", self.label)
                self._restart()
                offset = 0
            length = response.headers.get("Content-Length")
            if length and length.isdigit():
                self._set_total(int(length))
        mode = "ab" if offset else "wb"
        with _disk_errors(self.dest.parent):
            self.partial.parent.mkdir(parents=True, exist_ok=True)
            with self.partial.open(mode, buffering=CHUNK) as f:
                self._stream_into(f, response)
                f.flush()
                os.fsync(f.fileno())
        if self.total is not None and self.hashed_len < self.total:
            raise Transient(f"body ended after {self.hashed_len} of {self.total} bytes")
        return self._finish()

    def _set_total(self, total: int) -> None:
        """Take the size the server sends; a different size than expected is an error."""
        if self.total is not None and total != self.total:
            raise DownloadError(
                f"{self.label} is {total} bytes on Hugging Face, expected {self.total}"
            )
        self.total = total
        self.progress.total_bytes = total

    def _stream_into(self, f: IO[bytes], response: httpx2.Response) -> None:
        """Write the body as it lands, hashing and counting it; a cancel stops it.

        Each network read is taken as it comes (iter_raw(CHUNK) would hold bytes back until
        1 MiB arrived, losing them when the connection drops); the file's 1 MiB buffer makes
        the disk writes large.
        """
        for chunk in response.iter_raw():
            if self.cancel.is_set():
                raise DownloadCancelled(f"download of {self.dest.name} cancelled")
            f.write(chunk)
            self.hasher.update(chunk)
            self.hashed_len += len(chunk)
            self.progress.downloaded_bytes = self.hashed_len
            self.progress.received_bytes += len(chunk)

    def _finish(self) -> bool:
        """Check the partial's size and sha256, then move it into place atomically."""
        size = self.hashed_len
        if self.total is not None and size != self.total:
            self._discard()
            raise DownloadError(f"{self.label}: got {size} bytes, expected {self.total}")
        digest = self.hasher.hexdigest()
        if self.sha256 is not None and digest != self.sha256:
            self._discard()
            raise DownloadError(f"{self.label} is corrupt: sha256 {digest}, expected {self.sha256}")
        if self.sha256 is None:
            log.info("no sha256 known for %s; checked its size only", self.label)
        with _disk_errors(self.dest.parent):
            os.replace(self.partial, self.dest)
            _fsync_dir(self.dest.parent)
        self.progress.total_bytes = self.progress.downloaded_bytes = size
        return True

    def _discard(self) -> None:
        """Delete a partial whose bytes are wrong: resuming it could never succeed."""
        self.partial.unlink(missing_ok=True)
        self.hasher = hashlib.sha256()
        self.hashed_len = -1
        self.progress.downloaded_bytes = 0
