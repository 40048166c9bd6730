"""Resumable, verified file downloads from Hugging Face, for a node's worker thread.

huggingface_hub downloads into a process-unique temp file, so a restarted node would start a
multi-GB file again from byte 0 (DESIGN.md, "Facts we checked"). Here huggingface_hub only
provides the auth headers, sent to the configured Hub's host only; the bytes stream with httpx2
into a partial file with a stable name, resumed with `Range: bytes=N-`, retried through
transient failures, checked against the size and sha256, and renamed into place atomically.
Everything here blocks: never call it on the loop.
"""

from __future__ import annotations

import errno
import hashlib
import logging
import os
import random
import re
import shutil
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO
from urllib.parse import unquote, urlsplit

import httpx2

# The documented import path; its lazy __init__ does not re-export the name for mypy.
from huggingface_hub.utils import build_hf_headers  # type: ignore[attr-defined]

from app.core.errors import LlmlbError
from app.core.hf import hf_endpoint
from app.core.settings import DEFAULT_DOWNLOAD_READ_TIMEOUT

log = logging.getLogger(__name__)

CHUNK = 1024 * 1024
PARTIAL_SUFFIX = ".partial"
FIRST_BACKOFF = 0.5
MAX_BACKOFF = 60.0  # seconds between retries at most
_NO_SPACE = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG})
_SHA256_RE = re.compile(r"^[0-9a-f]{64}$")
_CONTENT_RANGE_RE = re.compile(r"^bytes (\d+)-(\d+)/(\d+|\*)$")
_UNSATISFIED_RE = re.compile(r"^bytes \*/(\d+)$")
# Errors a retry can outlive: refused or reset connections, stalls, bodies cut short.
_TRANSIENT_ERRORS = (httpx2.TimeoutException, httpx2.NetworkError, httpx2.RemoteProtocolError)


@dataclass
class Progress:
    """How far a download got; read by other threads, so only plain attribute writes."""

    file: str = ""
    downloaded_bytes: int = 0
    total_bytes: int = 0


class DownloadError(LlmlbError):
    """A download failed for good; str(exc) is one line a person can act on."""


class DownloadCancelled(LlmlbError):
    """The caller cancelled the download; the partial file stays for a later resume."""


class _Transient(Exception):
    """A failure worth retrying; `retry_after` is the server's hint in seconds, if any."""

    def __init__(self, reason: str, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.retry_after = retry_after


def partial_path(dest: Path) -> Path:
    """Where `dest` is downloaded to: a stable name, so a restarted node finds and resumes it."""
    return dest.with_name(dest.name + PARTIAL_SUFFIX)


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
    if expected_size is not None and _is_complete(dest, expected_size, expected, cancel):
        progress.total_bytes = progress.downloaded_bytes = expected_size
        return
    transfer = _Transfer(url, dest, expected_size, expected, progress, cancel, headers)
    timeout = httpx2.Timeout(read_timeout)
    failures = 0
    with httpx2.Client(timeout=timeout, follow_redirects=True) as client:
        while True:
            if cancel.is_set():
                raise DownloadCancelled(f"download of {dest.name} cancelled")
            before = transfer.hashed_len
            try:
                if transfer.attempt(client):
                    return
                failures = 0  # the partial was reset: go again at once
            except _Transient as exc:
                # Progress made means the link works: start the backoff over.
                failures = 0 if transfer.hashed_len > before else failures + 1
                delay = _backoff(failures, max_backoff, exc.retry_after)
                log.warning("download of %s: %s; retrying in %.1f s", dest.name, exc, delay)
                if cancel.wait(delay):
                    raise DownloadCancelled(f"download of {dest.name} cancelled") from None


def request_headers(url: str, extra: dict[str, str] | None = None) -> dict[str, str]:
    """Headers for a download: the Hugging Face token only when `url` is on the configured
    Hub (same scheme, host and port as HF_ENDPOINT); any other host gets no credentials."""
    # Read at each try: a token set while the node runs is used by the next attempt.
    token = None if same_origin(url, hf_endpoint()) else False
    headers: dict[str, str] = build_hf_headers(token=token, headers=dict(extra or {}))
    if token is False:
        headers.pop("authorization", None)
        headers.pop("Authorization", None)
    return headers


def same_origin(a: str | httpx2.URL, b: str | httpx2.URL) -> bool:
    """Whether two URLs share scheme, host and port (default ports filled in)."""
    try:
        x, y = httpx2.URL(a), httpx2.URL(b)
    except (httpx2.InvalidURL, TypeError, ValueError):
        return False
    return _origin(x) == _origin(y)


def _origin(url: httpx2.URL) -> tuple[str, str, int | None]:
    scheme = url.scheme.lower()
    port = url.port or {"http": 80, "https": 443}.get(scheme)
    return scheme, url.host.lower(), port


def _backoff(failures: int, cap: float, retry_after: float | None) -> float:
    """Truncated exponential backoff with jitter, at least the server's Retry-After (capped)."""
    ceiling = min(cap, FIRST_BACKOFF * 2.0 ** min(failures, 30))
    delay = ceiling / 2 + random.uniform(0, ceiling / 2)
    if retry_after is not None:
        delay = max(delay, min(retry_after, cap))
    return delay


def _is_complete(path: Path, size: int, sha256: str | None, cancel: threading.Event) -> bool:
    """Whether `path` already holds the file: its size, and its sha256 when one is known."""
    try:
        if path.stat().st_size != size:
            return False
    except FileNotFoundError:
        return False
    return sha256 is None or _hash_file(path, cancel).hexdigest() == sha256


def _hash_file(path: Path, cancel: threading.Event) -> hashlib._Hash:
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


def _file_label(url: str) -> str:
    """The repo file a resolve URL names (`Q4/model.gguf`), for messages."""
    try:
        path = unquote(urlsplit(url).path)
    except ValueError:  # a malformed URL: the request will say so
        return url
    _, sep, rest = path.partition("/resolve/")
    if sep and "/" in rest:
        return rest.split("/", 1)[1]
    return path.rsplit("/", 1)[-1] or url


class _Transfer:
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
        self.label = _file_label(url)
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
        """One try: True once `dest` is in place, False to go again now; raises _Transient."""
        headers = request_headers(self.url, self.extra_headers)
        headers["Accept-Encoding"] = "identity"  # the bytes on disk are the bytes of the file
        if not self.head_done:
            self._head(client, headers)
            if self.total is not None and _is_complete(
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
        except _TRANSIENT_ERRORS as exc:
            raise _Transient(f"{type(exc).__name__}: {exc}") from exc
        except (httpx2.HTTPError, httpx2.InvalidURL) as exc:
            raise DownloadError(f"cannot download {self.label}: {exc}") from exc

    def _head(self, client: httpx2.Client, headers: dict[str, str]) -> None:
        """Learn the size and the sha256 (the Hub's ETag of an LFS file) before streaming."""
        try:
            chain = _head_chain(client, self.url, headers)
        except _TRANSIENT_ERRORS as exc:
            raise _Transient(f"{type(exc).__name__}: {exc}") from exc
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
            self.sha256 = _etag_sha256(chain)
        self.head_done = True

    def _check_status(self, response: httpx2.Response) -> None:
        """Raise DownloadError for a refusal, _Transient for a failure a retry can outlive."""
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
            raise _Transient(f"HTTP {status}", _retry_after(response))
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
            self.hasher = _hash_file(self.partial, self.cancel) if size else hashlib.sha256()
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
            raise _Transient(f"body ended after {self.hashed_len} of {self.total} bytes")
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


def _etag_sha256(chain: list[httpx2.Response]) -> str | None:
    """The sha256 the Hub gives as the (linked) ETag of an LFS file, if any response has one."""
    for name in ("X-Linked-Etag", "ETag"):
        for response in chain:
            value = response.headers.get(name, "").strip()
            value = value.removeprefix("W/").strip('"').lower()
            if _SHA256_RE.match(value):
                return value
    return None


def _head_chain(client: httpx2.Client, url: str, headers: dict[str, str]) -> list[httpx2.Response]:
    """HEAD `url`, following redirects on the same origin only, like huggingface_hub does.

    A redirect to another host is the CDN's signed URL, which may accept GET only; the Hub's
    redirect response already carries the file's size and sha256.
    """
    chain: list[httpx2.Response] = []
    target = httpx2.URL(url)
    for _ in range(10):
        response = client.head(target, headers=headers, follow_redirects=False)
        chain.append(response)
        location = response.headers.get("Location")
        if not response.is_redirect or not location:
            break
        following = target.join(location)
        if not same_origin(following, target):
            break
        target = following
    return chain


def _retry_after(response: httpx2.Response) -> float | None:
    """The Retry-After header in seconds, when it is a number."""
    value = response.headers.get("Retry-After", "").strip()
    try:
        return max(0.0, float(value)) if value else None
    except ValueError:
        return None


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
