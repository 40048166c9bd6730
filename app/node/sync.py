"""Reconcile the node's disk with the balancer's model list: download what is missing,
delete what was unregistered, one model at a time, reporting byte progress."""

from __future__ import annotations

import asyncio
import functools
import logging
import math
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from app.core.node_protocol import ModelReportJson
from app.core.settings import DEFAULT_DOWNLOAD_READ_TIMEOUT
from app.core.tasks import TaskSupervisor
from app.core.types import ModelReport, ModelState, SyncState
from app.node.balancer_client import BalancerClient, BalancerUnavailable
from app.node.download import MAX_BACKOFF, clean_orphans, download_file
from app.node.download_transfer import DownloadCancelled, DownloadError, Progress
from app.node.engine.llama import check_gguf
from app.node.engine.pool import EngineManager
from app.node.engine.types import EngineError
from app.node.library import ModelLibrary
from app.node.manifest import ManifestError, parse_manifest

log = logging.getLogger(__name__)

SPEED_WINDOW = 3.0  # seconds the download speed is averaged over


class SyncWorker:
    """Owns the download queue and the per-model states the heartbeat reports."""

    def __init__(
        self,
        library: ModelLibrary,
        client: BalancerClient,
        engines: EngineManager,
        supervisor: TaskSupervisor,
        read_timeout: float = DEFAULT_DOWNLOAD_READ_TIMEOUT,
        max_backoff: float = MAX_BACKOFF,
        on_change: Callable[[str], None] | None = None,
    ) -> None:
        self.library = library
        self.client = client
        self.engines = engines
        self.supervisor = supervisor
        self.read_timeout = read_timeout
        self.max_backoff = max_backoff
        self.states: dict[str, ModelReport] = {}
        # Models in error because llama.cpp could not load their complete files (not a failed
        # download): their next request, or a Retry, loads them again.
        self.load_failed: set[str] = set()
        self.desired: list[str] = []
        self.sync_state = SyncState.IDLE
        self.progress = Progress()
        self.current: str | None = None
        # Told the model's name whenever a model changes state.
        self.on_change = on_change or (lambda _name: None)
        self._cancel = threading.Event()
        self._trigger = asyncio.Event()
        self._downloader: asyncio.Task[None] | None = None
        self._stopping = False
        # Downloads run on their own thread, never on asyncio's default executor: a stuck
        # transfer must not hold up the process at exit.
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="download")

    def stop(self) -> None:
        """Cancel the download in progress (its partial file stays) and start no other."""
        self._stopping = True
        self._cancel.set()
        self._executor.shutdown(wait=False, cancel_futures=True)

    def start(self) -> None:
        """Check the files on disk (sizes now, hashes in the download pass), then reconcile."""
        for name in self.library.folders():
            self.states[name] = self._state_on_disk(name)
        self._trigger.set()
        self.supervisor.spawn(self._loop(), "sync")

    def _state_on_disk(self, name: str) -> ModelReport:
        """A complete model is ready only if its files have the manifest's sizes and no
        sha256 is known; a hash to check, or a file to fetch again, makes it pending, and the
        download pass hashes it on the download thread (off the loop) or fetches it again."""
        manifest = self.library.manifest(name)
        if manifest is None:
            return ModelReport(name)
        damaged = self.library.damaged(name, manifest)
        if damaged:
            log.warning("model %s: %s has the wrong size; fetching it again", name, damaged[0])
            self.library.mark_incomplete(name)
            return ModelReport(name)
        if any(f.sha256 for f in manifest.files):
            return ModelReport(name)  # pending: checked against its sha256 before it is served
        # Found complete: its files are all downloaded, as after the download that made them.
        size = self.library.size_on_disk(name, manifest)
        return ModelReport(name, ModelState.READY, downloaded_bytes=size, total_bytes=size)

    def trigger(self) -> None:
        """Ask for a reconcile pass (a push from the balancer, or a new manifest version)."""
        self._trigger.set()

    def mark_error(self, name: str, reason: str) -> None:
        """Record that a model's complete files cannot run (llama.cpp refused to load them);
        its next request, or a Retry, tries to load it again."""
        self.states[name] = ModelReport(name, ModelState.ERROR, error=reason)
        self.load_failed.add(name)
        self._changed(name)

    def mark_ready(self, name: str) -> None:
        """A model that failed to load has loaded after all."""
        state = self.states.get(name)
        self.load_failed.discard(name)
        if state is None or state.state != ModelState.ERROR:
            return
        manifest = self.library.manifest(name)
        size = self.library.size_on_disk(name, manifest) if manifest is not None else 0
        self.states[name] = ModelReport(
            name, ModelState.READY, downloaded_bytes=size, total_bytes=size
        )
        self._changed(name)

    def retry(self, name: str) -> bool:
        """Try a model in error again (the Retry button): one that failed to load is ready for
        a new load on its next request; one whose download failed is fetched again (a file
        already whole is only checked). False when the model is not in error here."""
        state = self.states.get(name)
        if state is None or state.state != ModelState.ERROR:
            return False
        if name in self.load_failed and self.library.model_path(name) is not None:
            self.mark_ready(name)
            return True
        self.load_failed.discard(name)
        self.states[name] = self._state_on_disk(name)
        self._changed(name)
        self._trigger.set()  # the download pass takes it
        return True

    def _changed(self, name: str) -> None:
        self.on_change(name)

    async def _loop(self) -> None:
        while True:
            await self._trigger.wait()
            self._trigger.clear()
            try:
                await self._reconcile()
            except BalancerUnavailable as exc:
                log.info("sync postponed: %s", exc)
                await asyncio.sleep(2)
                self._trigger.set()

    async def _reconcile(self) -> None:
        names = await self.client.model_names()
        self.desired = names
        wanted = set(names)
        if self.current is not None and self.current not in wanted:
            self._cancel.set()
        for name in self.library.folders():
            if name not in wanted and name != self.current:
                await self.engines.drop(name)
                self.library.remove(name)
        for name in list(self.states):
            if name not in wanted:
                del self.states[name]
                self.load_failed.discard(name)
                self._changed(name)
        for name in names:
            if name not in self.states:
                self.states[name] = self._state_on_disk(name)
                self._changed(name)
        if self._downloader is None or self._downloader.done():
            self._downloader = self.supervisor.spawn(self._download_all(), "downloads")
        await self._refresh_settings(names)

    async def _refresh_settings(self, names: list[str]) -> None:
        """Take the settings of models already complete here (a model's GPU layers changed:
        that changes the manifest version) from their manifests, downloading nothing; a
        loaded model reloads with them on its next use."""
        for name in names:
            state = self.states.get(name)
            # A model that failed to load takes new settings too (they may be the fix).
            settled = state is not None and (
                state.state == ModelState.READY or name in self.load_failed
            )
            if not settled or name == self.current:
                continue
            try:
                manifest = parse_manifest(
                    await self.client.manifest(name), self.library.folder(name)
                )
            except (BalancerUnavailable, ManifestError, ValueError) as exc:
                log.warning("model %s keeps its settings: %s", name, exc)
                continue
            if self.library.update_settings(name, manifest):
                log.info("model %s: new settings (gpu_layers %s)", name, manifest.gpu_layers)

    async def _download_all(self) -> None:
        while not self._stopping:
            todo = [
                n
                for n in self.desired
                if (s := self.states.get(n)) is not None
                and s.state in (ModelState.PENDING, ModelState.DOWNLOADING)
            ]
            if not todo:
                failed = any(s.state == ModelState.ERROR for s in self.states.values())
                self.sync_state = (
                    SyncState.FAILED
                    if failed
                    else (SyncState.SUCCESS if self.desired else SyncState.IDLE)
                )
                return
            self.sync_state = SyncState.RUNNING
            await self._download(todo[0])

    async def _download(self, name: str) -> None:
        state = self.states[name]
        self.current = name
        self._cancel = threading.Event()
        try:
            folder = self.library.folder(name)
            data = await self.client.manifest(name)
            try:
                manifest = parse_manifest(data, folder)
            except ManifestError as exc:
                raise ManifestError(
                    f"the balancer's manifest for {name} is refused: {exc}"
                ) from exc
            files = manifest.files
            folder.mkdir(parents=True, exist_ok=True)
            clean_orphans(folder, {f.name for f in files})
            state.state, state.error = ModelState.DOWNLOADING, None
            state.total_bytes = sum(f.size or 0 for f in files)
            done_before = 0
            self._changed(name)
            for f in files:
                self.progress = Progress(file=f.name)
                watcher = self.supervisor.spawn(
                    self._watch(state, done_before, self.progress), f"progress-{name}"
                )
                if self._stopping:  # checked right before the executor: no await between
                    raise DownloadCancelled("the node is stopping")
                try:
                    await asyncio.get_running_loop().run_in_executor(
                        self._executor,
                        functools.partial(
                            download_file,
                            f.url,
                            folder / f.name,
                            expected_size=f.size,
                            expected_sha256=f.sha256,
                            progress=self.progress,
                            cancel=self._cancel,
                            read_timeout=self.read_timeout,
                            max_backoff=self.max_backoff,
                        ),
                    )
                finally:
                    watcher.cancel()
                done_before += f.size or self.progress.total_bytes
                state.downloaded_bytes = done_before
            check_gguf(folder / files[0].name)
            self.library.mark_complete(name, manifest)
            state.state, state.error = ModelState.READY, None
            state.downloaded_bytes = state.total_bytes = done_before
            log.info("model %s is ready", name)
        except DownloadCancelled:
            log.info("download of %s cancelled", name)
            if name not in self.desired:
                await self.engines.drop(name)
                self.library.remove(name)
        except (DownloadError, EngineError, ManifestError, ValueError) as exc:
            log.warning("model %s failed: %s", name, exc)
            state.state, state.error = ModelState.ERROR, str(exc)
        except BalancerUnavailable as exc:
            log.info("manifest of %s unavailable: %s", name, exc)
            if exc.status == 404:
                self.states.pop(name, None)
            else:
                await asyncio.sleep(2)
        except OSError as exc:
            state.state, state.error = (
                ModelState.ERROR,
                f"cannot write the model files: {exc.strerror}",
            )
        finally:
            self.current = None
            self._changed(name)

    async def _watch(self, state: ModelReport, base: int, progress: Progress) -> None:
        """Copy the download thread's byte counts into the model state, a few times a second,
        with the speed (a moving average) and why it waits to retry (a note in `error` while
        still downloading, and when the next attempt starts), until bytes flow."""
        seen, received = progress.downloaded_bytes, progress.received_bytes
        clock = time.monotonic()
        speed = 0.0
        try:
            while True:
                now = time.monotonic()
                if progress.downloaded_bytes != seen:
                    progress.retrying = progress.retry_at = None
                moved = progress.received_bytes - received
                # Smoothed over about SPEED_WINDOW seconds: one slow chunk does not swing it.
                weight = 1.0 - math.exp(-(now - clock) / SPEED_WINDOW) if now > clock else 0.0
                speed += (moved / max(now - clock, 1e-3) - speed) * weight
                seen, received, clock = progress.downloaded_bytes, progress.received_bytes, now
                retrying = progress.retrying is not None
                state.bytes_per_second = 0 if retrying else int(speed)
                if state.error != progress.retrying or state.retry_at != progress.retry_at:
                    state.error, state.retry_at = progress.retrying, progress.retry_at
                    self._changed(state.model)
                state.downloaded_bytes = base + progress.downloaded_bytes
                if progress.total_bytes and state.total_bytes < base + progress.total_bytes:
                    state.total_bytes = base + progress.total_bytes  # the manifest had no size
                await asyncio.sleep(0.2)
        finally:
            state.bytes_per_second, state.retry_at = 0, None

    def report(self) -> list[ModelReportJson]:
        """Per-model states for the heartbeat."""
        out: list[ModelReportJson] = []
        for name, s in self.states.items():
            path = self.library.model_path(name) if s.state == ModelState.READY else None
            out.append(
                {
                    "name": name,
                    "state": s.state,
                    "downloaded_bytes": s.downloaded_bytes,
                    "total_bytes": s.total_bytes,
                    "error": s.error,
                    "path": str(path) if path else None,
                    "bytes_per_second": s.bytes_per_second,
                    "retry_in": None if s.retry_at is None else max(0.0, s.retry_at - time.time()),
                }
            )
        return out
