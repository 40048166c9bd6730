"""A node fetches model files from the (fake) Hub: resumable, retried, verified, cancellable."""

from __future__ import annotations

import hashlib
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from app.node.download import clean_orphans, download_file
from app.node.download_transfer import DownloadCancelled, DownloadError, Progress, partial_path
from tests.fakes.fake_hub import FakeHub, FakeRepo
from tests.support.waiting import eventually_sync

REPO = "org/name"
NAME = "model-Q4_K_M.gguf"
DATA = random.Random(7).randbytes(300_000)
SHA = hashlib.sha256(DATA).hexdigest()
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def hub() -> Iterator[FakeHub]:
    """A fake Hub serving one repo with one LFS file (its ETag is the sha256)."""
    fake = FakeHub([FakeRepo(REPO, {NAME: DATA})]).start()
    try:
        yield fake
    finally:
        fake.stop()


def url_of(hub: FakeHub, name: str = NAME) -> str:
    return f"{hub.url}/{REPO}/resolve/main/{name}"


def fetch(
    hub: FakeHub,
    dest: Path,
    *,
    progress: Progress | None = None,
    cancel: threading.Event | None = None,
    name: str = NAME,
    expected_size: int | None = len(DATA),
    expected_sha256: str | None = SHA,
    read_timeout: float = 5.0,
) -> Progress:
    """Download with short backoffs, as a node's worker thread would."""
    progress = progress or Progress()
    download_file(
        url_of(hub, name),
        dest,
        expected_size=expected_size,
        expected_sha256=expected_sha256,
        progress=progress,
        cancel=cancel or threading.Event(),
        read_timeout=read_timeout,
        max_backoff=0.2,
    )
    return progress


def ranges(hub: FakeHub) -> list[str | None]:
    """The Range header of every GET of the file, in order."""
    return [r.range for r in hub.file_requests(NAME)]


def later(seconds: float, action: Callable[[], None]) -> threading.Timer:
    timer = threading.Timer(seconds, action)
    timer.start()
    return timer


def test_downloads_the_whole_file_and_reports_progress(hub: FakeHub, tmp_path: Path) -> None:
    hub.bytes_per_second = 600_000  # about half a second, so progress can be watched
    dest = tmp_path / "models" / NAME
    progress = Progress()
    seen: list[int] = []
    done = threading.Event()

    def watch() -> None:
        while not done.is_set():
            seen.append(progress.downloaded_bytes)
            time.sleep(0.02)

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        fetch(hub, dest, progress=progress)
    finally:
        done.set()
        watcher.join()

    assert dest.read_bytes() == DATA
    assert not partial_path(dest).exists()
    assert (progress.file, progress.downloaded_bytes, progress.total_bytes) == (
        NAME,
        len(DATA),
        len(DATA),
    )
    assert any(0 < n < len(DATA) for n in seen), "progress moved while bytes arrived"
    assert ranges(hub) == [None]


def test_a_file_already_in_place_is_not_downloaded_again(hub: FakeHub, tmp_path: Path) -> None:
    dest = tmp_path / NAME
    dest.write_bytes(DATA)
    progress = fetch(hub, dest)
    assert hub.requests == []
    assert progress.downloaded_bytes == progress.total_bytes == len(DATA)


def test_a_restarted_node_resumes_from_its_partial_file(hub: FakeHub, tmp_path: Path) -> None:
    dest = tmp_path / NAME
    done = 120_000
    partial_path(dest).write_bytes(DATA[:done])
    # Any response longer than the missing bytes would be cut and need a second GET,
    # so one GET proves that only the remaining bytes were sent.
    hub.fail_after_bytes = len(DATA) - done

    fetch(hub, dest)

    assert ranges(hub) == [f"bytes={done}-"]
    assert dest.read_bytes() == DATA
    assert not partial_path(dest).exists()


def test_a_complete_partial_is_verified_and_moved_into_place(hub: FakeHub, tmp_path: Path) -> None:
    dest = tmp_path / NAME
    partial_path(dest).write_bytes(DATA)
    fetch(hub, dest)
    assert ranges(hub) == []
    assert dest.read_bytes() == DATA


def test_a_connection_cut_mid_body_is_retried_from_where_it_stopped(
    hub: FakeHub, tmp_path: Path
) -> None:
    hub.fail_after_bytes = 100_000  # every response is cut after 100 kB
    dest = tmp_path / NAME
    fetch(hub, dest)
    assert ranges(hub) == [None, "bytes=100000-", "bytes=200000-"]
    assert dest.read_bytes() == DATA


def test_the_hub_answering_503_for_a_while_is_waited_out(hub: FakeHub, tmp_path: Path) -> None:
    hub.mode = "error503"

    def recover() -> None:
        hub.mode = "ok"

    timer = later(0.5, recover)
    dest = tmp_path / NAME
    try:
        fetch(hub, dest)
    finally:
        timer.cancel()
    assert dest.read_bytes() == DATA
    assert len(hub.requests) >= 3, "the 503s were retried"


def test_while_the_hub_fails_the_progress_says_why_and_when_it_retries(
    hub: FakeHub, tmp_path: Path
) -> None:
    """What the Hub card shows instead of a silent 0 %: the reason and the next try."""
    hub.mode = "error503"
    progress = Progress()
    done = threading.Event()

    def run() -> None:
        fetch(hub, tmp_path / NAME, progress=progress)
        done.set()

    worker = threading.Thread(target=run)
    worker.start()
    try:
        why = eventually_sync(lambda: progress.retrying, timeout=10, interval=0.01)
        assert "503" in why and "busy" in why
        retry_at = progress.retry_at
        assert retry_at is not None and time.time() - 1 < retry_at < time.time() + 1
    finally:
        hub.mode = "ok"
        worker.join(10)
    assert done.is_set() and (tmp_path / NAME).read_bytes() == DATA
    assert progress.retrying is None and progress.retry_at is None  # it went through: no note
    assert progress.received_bytes == len(DATA)


def test_an_unreachable_hub_is_named_as_such_with_the_next_try(tmp_path: Path) -> None:
    """Nothing listens on the Hub's port: the note says it could not be reached, not 0 %."""
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    progress, cancel = Progress(), threading.Event()

    def run() -> None:
        with pytest.raises(DownloadCancelled):
            download_file(
                f"http://127.0.0.1:{port}/{REPO}/resolve/main/{NAME}",
                tmp_path / NAME,
                expected_size=len(DATA),
                expected_sha256=SHA,
                progress=progress,
                cancel=cancel,
                max_backoff=30.0,
            )

    worker = threading.Thread(target=run)
    worker.start()
    try:
        why = eventually_sync(lambda: progress.retrying, timeout=10, interval=0.01)
        assert why.startswith("Hugging Face could not be reached")
        assert progress.retry_at is not None and progress.retry_at > time.time() - 1
    finally:
        cancel.set()
        worker.join(10)


def test_a_stall_is_retried_and_cancel_stops_it_keeping_the_partial(
    hub: FakeHub, tmp_path: Path
) -> None:
    hub.bytes_per_second = 400_000
    hub.fail_after_bytes = 64 * 1024  # the first response is cut, then the Hub stalls
    dest = tmp_path / NAME
    progress = Progress()
    cancel = threading.Event()
    outcome: list[BaseException] = []

    def run() -> None:
        try:
            fetch(hub, dest, progress=progress, cancel=cancel, read_timeout=0.3)
        except BaseException as exc:
            outcome.append(exc)

    worker = threading.Thread(target=run)
    worker.start()
    eventually_sync(lambda: progress.downloaded_bytes, timeout=10, interval=0.005)
    hub.mode = "hang"
    # Three stalled retries, each ended by the read timeout.
    eventually_sync(lambda: len(hub.file_requests(NAME)) >= 4, timeout=10, interval=0.02)

    asked = time.monotonic()
    cancel.set()
    worker.join(5)
    took = time.monotonic() - asked

    assert not worker.is_alive()
    assert len(outcome) == 1 and isinstance(outcome[0], DownloadCancelled)
    assert took < 1.0, f"cancel took {took:.2f} s"
    assert not dest.exists()
    kept = partial_path(dest).read_bytes()
    assert 0 < len(kept) < len(DATA)
    assert kept == DATA[: len(kept)]


def test_a_missing_file_fails_with_404(hub: FakeHub, tmp_path: Path) -> None:
    with pytest.raises(DownloadError, match=r"missing\.gguf was not found on Hugging Face \(404\)"):
        fetch(hub, tmp_path / "missing.gguf", name="missing.gguf")


def test_a_wrong_sha256_fails_and_leaves_no_file_behind(hub: FakeHub, tmp_path: Path) -> None:
    dest = tmp_path / NAME
    with pytest.raises(DownloadError, match="sha256"):
        fetch(hub, dest, expected_sha256="0" * 64)
    assert not dest.exists()
    assert not partial_path(dest).exists()


def test_the_hub_etag_is_the_checksum_when_none_is_given(hub: FakeHub, tmp_path: Path) -> None:
    dest = tmp_path / NAME
    partial_path(dest).write_bytes(b"\xff" * 50_000)  # right length so far, wrong bytes
    with pytest.raises(DownloadError, match=f"expected {SHA}"):
        fetch(hub, dest, expected_size=None, expected_sha256=None)
    assert not dest.exists()
    assert not partial_path(dest).exists()
    fetch(hub, dest, expected_size=None, expected_sha256=None)  # the next try starts clean
    assert dest.read_bytes() == DATA


def test_a_size_different_from_the_catalog_fails(hub: FakeHub, tmp_path: Path) -> None:
    with pytest.raises(DownloadError) as info:
        fetch(hub, tmp_path / NAME, expected_size=len(DATA) + 1)
    assert str(len(DATA)) in str(info.value) and str(len(DATA) + 1) in str(info.value)
    assert ranges(hub) == []


NO_SPACE_CHILD = """
import resource, signal, sys, threading
from pathlib import Path
from app.node.download import download_file
from app.node.download_transfer import DownloadError, Progress

signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG
resource.setrlimit(resource.RLIMIT_FSIZE, (64 * 1024, resource.RLIM_INFINITY))
url, dest, size, sha = sys.argv[1], Path(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
try:
    download_file(url, dest, expected_size=size, expected_sha256=sha, progress=Progress(),
                  cancel=threading.Event(), read_timeout=5.0, max_backoff=0.2)
except DownloadError as exc:
    print(f"DownloadError: {exc}")
    sys.exit(3)
print("downloaded")
"""


@pytest.mark.skipif(not hasattr(signal, "SIGXFSZ"), reason="needs POSIX file size limits")
def test_a_full_disk_fails_with_a_readable_reason_and_keeps_the_partial(
    hub: FakeHub, tmp_path: Path
) -> None:
    dest = tmp_path / NAME
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    child = subprocess.run(
        [sys.executable, "-c", NO_SPACE_CHILD, url_of(hub), str(dest), str(len(DATA)), SHA],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert child.returncode == 3, child.stdout + child.stderr
    assert "DownloadError: not enough disk space in" in child.stdout
    assert not dest.exists()
    kept = partial_path(dest).read_bytes()
    assert kept == DATA[: len(kept)]


def test_clean_orphans_deletes_partials_of_files_no_longer_wanted(tmp_path: Path) -> None:
    folder = tmp_path / "models"
    folder.mkdir()
    for name in ("keep.gguf.partial", "gone.gguf.partial", "keep.gguf", "notes.txt"):
        (folder / name).write_bytes(b"x")

    deleted = clean_orphans(folder, keep={"keep.gguf"})

    assert deleted == [folder / "gone.gguf.partial"]
    assert sorted(p.name for p in folder.iterdir()) == [
        "keep.gguf",
        "keep.gguf.partial",
        "notes.txt",
    ]
    assert clean_orphans(tmp_path / "absent", keep=set()) == []
