"""A node: its HTTP app, its models on disk, its engines, and its link to a balancer."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import random
import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import llama_cpp
from aiohttp import web

from app import __version__
from app.core.mdns import address_towards
from app.core.node_protocol import (
    DeviceJson,
    HeartbeatBody,
    ModelReportJson,
    RegistrationBody,
)
from app.core.settings import (
    DEFAULT_DOWNLOAD_READ_TIMEOUT,
    DEFAULT_IDLE_UNLOAD_TTL,
    Settings,
    parse_gpu_layers,
)
from app.core.system import system_metrics
from app.core.tasks import TaskSupervisor
from app.core.tls import Certificate, load_or_create, normalize_fingerprint
from app.core.types import ModelState, NodeStatus
from app.node.api import create_node_app
from app.node.balancer_client import BalancerClient, BalancerNotTrusted, BalancerUnavailable
from app.node.devices import add_rpc_server, list_devices
from app.node.download import MAX_BACKOFF
from app.node.engine.llama import planned_context
from app.node.engine.pool import EngineManager
from app.node.engine.types import EngineOptions
from app.node.library import ModelLibrary
from app.node.models import NodeModels
from app.node.sync import SyncWorker

log = logging.getLogger(__name__)
IDENTITY = "node.json"


@dataclass(frozen=True)
class NodeConfig:
    """Everything a node needs to run."""

    data_dir: Path
    balancer_url: str
    credential: str  # join token, or the admin token for the in-process local node
    balancer_fingerprint: str | None = None  # the balancer's TLS certificate, pinned ahead
    host: str = "127.0.0.1"
    port: int = 0
    name: str = ""
    local: bool = False
    discovered: bool = False  # the balancer was found by mDNS: its proofs must name its address
    heartbeat_interval: float = 2.0
    idle_unload_ttl: float = DEFAULT_IDLE_UNLOAD_TTL
    engine: EngineOptions = field(default_factory=EngineOptions)
    read_timeout: float = DEFAULT_DOWNLOAD_READ_TIMEOUT
    max_backoff: float = MAX_BACKOFF
    rpc_servers: tuple[str, ...] = ()  # llama.cpp RPC servers ("host:port") used as devices


def node_config(settings: Settings, **values: Any) -> NodeConfig:
    """A node's config from the settings in force (engine, idle unload, stall timeout)."""
    return NodeConfig(
        idle_unload_ttl=settings.idle_unload_ttl,
        engine=EngineOptions(
            n_ctx=settings.context_size,
            n_threads=settings.threads,
            n_gpu_layers=parse_gpu_layers(settings.gpu_layers),
            slots=settings.slots,
            flash_attn=settings.flash_attn,
            stream_interval=settings.stream_interval,
            memory_limit=int(settings.model_memory * 1e9) if settings.model_memory > 0 else None,
        ),
        read_timeout=settings.download_read_timeout,
        rpc_servers=tuple(s.strip() for s in settings.rpc_servers.split(",") if s.strip()),
        **values,
    )


def saved_pin(data_dir: Path) -> str | None:
    """The balancer certificate a node in `data_dir` pinned when it joined (None: none)."""
    try:
        pin = json.loads((data_dir / IDENTITY).read_text()).get("balancer_fingerprint")
        return normalize_fingerprint(pin) if isinstance(pin, str) else None
    except (OSError, ValueError, AttributeError):
        return None


class NodeAgent:
    """Runs a node on the current event loop."""

    def __init__(self, config: NodeConfig) -> None:
        self.config = config
        self.supervisor = TaskSupervisor("node")
        config.data_dir.mkdir(parents=True, exist_ok=True)
        self.library = ModelLibrary(config.data_dir / "models")
        self.client = BalancerClient(config.balancer_url, fingerprint=config.balancer_fingerprint)
        self.engines = EngineManager(config.engine, config.idle_unload_ttl, self.supervisor)
        self._beat_soon = asyncio.Event()  # a model changed state: tell the balancer now
        self.sync = SyncWorker(
            self.library,
            self.client,
            self.engines,
            self.supervisor,
            config.read_timeout,
            config.max_backoff,
            on_change=lambda _name: self._beat_soon.set(),
        )
        # What inference may use of this node (its HTTP app and the in-process adapter).
        self.models = NodeModels(self.sync, self.library, self.engines)
        self.node_id: str | None = None
        self.node_token: str | None = None
        self.balancer_token: str | None = None  # how our balancer proves itself to us
        self.status_name = NodeStatus.PENDING
        self.url = ""
        self.certificate: Certificate | None = None  # ours, when our balancer speaks TLS
        self._runner: web.AppRunner | None = None
        self._manifest_version: Any = None
        self.registered = asyncio.Event()
        self._sync_started = False
        self.devices: list[DeviceJson] = []  # the accelerators, as last probed

    async def start(self) -> None:
        """Listen, then register and heartbeat in the background."""
        self._load_identity()
        self._runner = web.AppRunner(
            create_node_app(self), access_log=None, shutdown_timeout=1.0, handle_signals=False
        )
        await self._runner.setup()
        host = self.config.host
        if host in {"0.0.0.0", "::"}:
            # Tell the balancer the address it can reach us at.
            host = address_towards(urlsplit(self.config.balancer_url).hostname or "127.0.0.1")
        if self.client.https and not self.config.local:
            # A balancer on TLS gets a node on TLS: prompts and answers cross the LAN
            # encrypted both ways. It pins our certificate by the fingerprint we register with.
            self.certificate = load_or_create(self.config.data_dir, [host])
        site = web.TCPSite(
            self._runner,
            self.config.host,
            self.config.port,
            ssl_context=self.certificate.server_context() if self.certificate else None,
        )
        await site.start()
        port = self._runner.addresses[0][1]
        scheme = "https" if self.certificate else "http"
        self.url = f"{scheme}://{host}:{port}"
        self.engines.start()
        self.supervisor.spawn(self._link(), "link")
        log.info("node listening on %s", self.url)

    async def _attach_devices(self) -> None:
        """Add the configured RPC servers to llama.cpp's devices, then probe them all."""
        loop = asyncio.get_running_loop()
        for endpoint in self.config.rpc_servers:
            try:
                await loop.run_in_executor(None, add_rpc_server, endpoint)
            except RuntimeError as exc:
                log.warning("cannot use the RPC server %s: %s", endpoint, exc)
        await self._probe_devices()

    async def _probe_devices(self) -> None:
        """Read the devices' memory now (off the loop: an RPC server answers over the network;
        one that does not answer in time leaves the last figures)."""
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(5.0):
                found = await loop.run_in_executor(None, list_devices)
        except TimeoutError:
            log.warning("the devices did not report their memory within 5 s")
            return
        self.devices = [d.json() for d in found]

    async def stop(self) -> None:
        """Stop serving, cancel downloads (partials stay for the next start), unload models."""
        self.sync.stop()
        if self._runner is not None:
            runner, self._runner = self._runner, None
            await runner.cleanup()
        await self.supervisor.stop()
        await self.engines.close()
        await self.client.close()

    # -- identity ---------------------------------------------------------------
    def _identity_path(self) -> Path:
        return self.config.data_dir / IDENTITY

    def _load_identity(self) -> None:
        try:
            data = json.loads(self._identity_path().read_text())
            self.node_id, self.node_token = data["node_id"], data["node_token"]
            self.balancer_token = data.get("balancer_token")
        except (OSError, ValueError, KeyError, TypeError):
            pass
        # A pin given on the command line wins (how an admin accepts a replaced certificate).
        if self.client.fingerprint is None:
            self.client.fingerprint = saved_pin(self.config.data_dir)

    def _save_identity(self) -> None:
        path = self._identity_path()
        tmp = path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            json.dump(
                {
                    "node_id": self.node_id,
                    "node_token": self.node_token,
                    "balancer_token": self.balancer_token,
                    "balancer_fingerprint": self.client.fingerprint,
                },
                fh,
            )
        os.replace(tmp, path)

    # -- link to the balancer ---------------------------------------------------
    async def _link(self) -> None:
        # The devices first (RPC servers answer over the network), off the start's path: the
        # registration names them, and the node listens already.
        await self._attach_devices()
        delay = 0.5
        while True:
            try:
                await self._register()
                break
            except BalancerUnavailable as exc:
                if isinstance(exc, BalancerNotTrusted):
                    log.warning("not sending the join token: %s", exc)
                else:
                    log.info("cannot register with %s yet: %s", self.config.balancer_url, exc)
                await asyncio.sleep(delay * random.uniform(0.5, 1.5))
                delay = min(delay * 2, 30.0)
        self._start_sync_once_approved()
        await self._heartbeats()

    def _start_sync_once_approved(self) -> None:
        """Start the sync the first time the balancer says this node is no longer pending.

        A pending node (a joiner no admin approved yet) heartbeats but reads no model list
        and downloads nothing: approval is what lets a balancer make it fetch gigabytes.
        """
        if self._sync_started or self.status_name == NodeStatus.PENDING:
            return
        self._sync_started = True
        log.info("approved by the balancer (%s): syncing models", self.status_name)
        self.sync.start()

    async def _register(self) -> None:
        body: RegistrationBody = {
            "node_id": self.node_id,
            "node_token": self.node_token,
            "name": self.config.name or socket.gethostname(),
            "url": self.url,
            "runtime_version": f"llama-cpp-python {llama_cpp.__version__}",
            "llmlb_version": __version__,
            "local": self.config.local,
            "gpu_devices": [d["name"] for d in self.devices],
            "supported_runtimes": ["llama_cpp"],
            "tls_fingerprint": self.certificate.fingerprint if self.certificate else None,
        }
        if not self.config.local:
            # The join token goes only to a balancer that proves it knows it already.
            await self.client.prove(self.config.credential, bound=self.config.discovered)
        if self.node_token:
            self.client.node_token = self.node_token
        data = await self.client.register(body, self.config.credential)
        self.node_id, self.node_token = data["node_id"], data["node_token"]
        self.balancer_token = data.get("balancer_token")
        self.client.node_token = self.node_token
        self.status_name = data["status"]
        self._save_identity()
        self.registered.set()
        log.info("registered with the balancer as %s (%s)", self.node_id, self.status_name)

    async def _heartbeats(self) -> None:
        failures = 0
        while True:
            try:
                await self._probe_devices()
                answer = await self.client.heartbeat(self.heartbeat_body())
                failures = 0
                self.status_name = answer["status"] or self.status_name
                self._start_sync_once_approved()
                version = answer.get("manifest_version")
                # While pending (again, after a re-registration too) the version is not taken:
                # the first pass after approval runs.
                syncing = self._sync_started and self.status_name != NodeStatus.PENDING
                if version != self._manifest_version and syncing:
                    self._manifest_version = version
                    self.sync.trigger()
            except BalancerUnavailable as exc:
                failures += 1
                if exc.status in (401, 404):
                    # The balancer forgot us (deleted, or a new database): register again.
                    await self._link_again()
                elif failures in (1, 10):
                    log.warning("heartbeat failed: %s", exc)
            self._beat_soon.clear()
            interval = self.config.heartbeat_interval
            if self.sync.current is not None:
                interval = min(interval, 1.0)  # progress bars move every second
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(interval):
                    await self._beat_soon.wait()

    async def _link_again(self) -> None:
        self.node_id = self.node_token = None
        self.client.node_token = None
        try:
            await self._register()
        except BalancerUnavailable as exc:
            log.info("re-registration failed: %s", exc)

    def heartbeat_body(self) -> HeartbeatBody:
        """What the node tells the balancer every few seconds."""
        states = self.sync.states
        ready = sum(1 for s in states.values() if s.state == ModelState.READY)
        progress = self.sync.progress
        return {
            "node_id": self.node_id,
            "models": [self._with_context(m) for m in self.sync.report()],
            "loaded_models": self.engines.loaded(),
            "active_requests": self.engines.active_requests(),
            "ready_models": [ready, len(states)],
            "sync_state": self.sync.sync_state,
            "sync_progress": {
                "model_id": self.sync.current,
                "file": progress.file,
                "downloaded_bytes": progress.downloaded_bytes,
                "total_bytes": progress.total_bytes,
            }
            if self.sync.current
            else None,
            "system": system_metrics(self.library.root),
            "devices": list(self.devices),
            "slots": max(1, self.config.engine.slots),  # sequences a model decodes together
            "free_slots": self.engines.free_slots(),
        }

    def _with_context(self, report: ModelReportJson) -> ModelReportJson:
        """A ready model's report with the context a conversation gets here: the loaded
        runner's, else what a load now would give."""
        if report["state"] != ModelState.READY or report["path"] is None:
            return report
        manifest = self.library.manifest(report["name"])
        engine = self.config.engine
        asked = (manifest.context_size if manifest else None) or engine.n_ctx or None
        runner = self.engines.runners.get(report["name"])
        if runner is not None and runner.asked_ctx == asked and runner.context_length:
            return {**report, "context_length": runner.context_length}
        gpus = [d for d in self.devices if d["backend"] != "cpu"]
        context = planned_context(
            Path(report["path"]),
            max(1, engine.slots),
            asked,
            sum(d["free_bytes"] for d in gpus) if gpus else None,
            any(d["backend"] == "metal" for d in gpus),
        )
        return {**report, "context_length": context}

    def status(self) -> dict[str, Any]:
        """The node's own view, for /node/status."""
        return {
            **self.heartbeat_body(),
            "url": self.url,
            "status": self.status_name,
            "counters": {
                name: {
                    "generated_tokens": r.generated_tokens,
                    "cancelled_requests": r.cancelled_requests,
                    "loaded": r.loaded,
                }
                for name, r in self.engines.runners.items()
            },
        }
