"""The composition root: builds every service, starts them in order, stops them in reverse."""

from __future__ import annotations

import errno
import logging
import os

import aiohttp
from aiohttp import web

from app.core.catalog import load_catalog
from app.core.errors import StartupError
from app.core.events import EventBus
from app.core.hf import HfClient
from app.core.instance import DataDirLock
from app.core.mdns import MDNS_GROUP, address_towards
from app.core.paths import ensure_data_dir
from app.core.secrets import check_strength, load_admin_token, load_node_secret
from app.core.settings import Settings
from app.core.tasks import TaskSupervisor
from app.core.tls import Certificate, load_or_create
from app.core.vault import Vault
from app.db.request_store import RequestStore
from app.db.stats import StatsStore
from app.db.store import NodeStore, Store
from app.local_upstream import LocalUpstream
from app.node.agent import NodeAgent, node_config
from app.server.aliases import parse_aliases
from app.server.app import create_app
from app.server.auth import Auth, is_loopback
from app.server.connections import ConnectionGuard, GuardedAppRunner
from app.server.discovery import Discovery
from app.server.dispatch import Dispatcher
from app.server.external_nodes import ExternalServers
from app.server.history import RequestHistory
from app.server.history_process import WriterProcess
from app.server.hub_info import HubInfoCache
from app.server.metrics import Metrics
from app.server.node_samples import NodeSamples
from app.server.nodes import NodeRegistry
from app.server.registry import ModelRegistry
from app.server.state import Balancer
from app.server.stats import Stats

log = logging.getLogger(__name__)
DB_FILE = "llmlb.db"
HEADER_DEADLINE = 15.0  # seconds; uvicorn keeps idle connections 5 s, nginx 75 s


class AppContext:
    """One running balancer and, unless told otherwise, its local node, on the current loop."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.bus = EventBus()
        self.supervisor = TaskSupervisor("balancer")
        self.store: Store | None = None
        self.hf: HfClient | None = None
        self.balancer: Balancer | None = None
        self.nodes: NodeRegistry | None = None
        self.external: ExternalServers | None = None
        # Sync notices to nodes and polls of external servers: short calls, one pool for both.
        self.http: aiohttp.ClientSession | None = None
        self.runner: web.AppRunner | None = None
        self.local_node: NodeAgent | None = None
        self.discovery = Discovery()
        self.admin_token = ""
        self.admin_token_created = False
        self.port = settings.port
        self.certificate: Certificate | None = None  # with `tls` on: what we serve and peers pin
        self.lock: DataDirLock | None = None  # one running balancer per data folder

    @property
    def tls_fingerprint(self) -> str | None:
        """sha256 hex of the certificate we serve (for this process's own clients to pin)."""
        return self.certificate.fingerprint if self.certificate else None

    @property
    def base_url(self) -> str:
        """The balancer's root URL as a client on this machine reaches it."""
        host = self.settings.host
        if host in {"0.0.0.0", "::", ""}:
            host = "127.0.0.1"
        if ":" in host:
            host = f"[{host}]"
        scheme = "https" if self.settings.tls else "http"
        return f"{scheme}://{host}:{self.port}"

    def _lan_address(self) -> str:
        """The address LAN peers reach us at (what mDNS announces and the certificate names)."""
        host = self.settings.host
        return host if host not in {"0.0.0.0", "::", ""} else address_towards(MDNS_GROUP)

    async def start(self) -> None:
        """Start everything, or raise StartupError having undone what was started."""
        try:
            await self._start()
        except BaseException:
            await self.stop()
            raise

    async def _start(self) -> None:
        s = self.settings
        data_dir = ensure_data_dir(s.data_dir)
        # First, before the database or the node id is touched: a second instance on this
        # folder would register the same node and drift apart from the first.
        lock = DataDirLock(data_dir)
        lock.acquire()
        self.lock = lock
        catalog = load_catalog(s.catalog_path)
        try:
            parse_aliases(s.model_aliases)
        except ValueError as exc:
            raise StartupError(str(exc)) from exc
        self.admin_token, self.admin_token_created = load_admin_token(data_dir)
        if s.tls:
            self.certificate = load_or_create(data_dir, [self._lan_address()])
        self.store = Store(data_dir / DB_FILE)
        await self.store.open()
        self.hf = HfClient(s.hf_timeout)
        hub_info = HubInfoCache(self.hf, s.hub_info_ttl, self.supervisor)
        self.http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5))
        samples = NodeSamples()
        self.nodes = NodeRegistry(
            NodeStore(self.store),
            self.bus,
            self.supervisor,
            self.admin_token,
            s.node_offline_after,
            node_secret=load_node_secret(data_dir),
            vault=Vault(data_dir),
            http=self.http,
            samples=samples,
        )
        self.external = ExternalServers(self.nodes, self.http)
        join_token = s.join_token.strip() or None
        if join_token:
            check_strength(join_token, "LLMLB_JOIN_TOKEN")
        await self.nodes.load(join_token)
        registry = ModelRegistry(
            self.store,
            catalog,
            self.hf,
            self.bus,
            hub_info,
            self.nodes.states_by_model,
            live_states=self.nodes.live_states_by_model,
            external=self.external.served_elsewhere,
            on_manifest_change=self.nodes.set_manifest_version,
        )
        await registry.load()
        nodes = self.nodes
        auth = Auth(self.admin_token, self.store, is_loopback(s.host), nodes.may_read)
        await auth.reload_keys()
        external = self.external
        stats = Stats(
            StatsStore(self.store),
            samples,
            # as the proxy decides it: only a model that exists names a series
            lambda model: model in registry.records or external.serves(model),
        )
        metrics = Metrics(self.nodes, stats=stats)
        dispatcher = Dispatcher(self.nodes, s.queue_limit, s.queue_wait, metrics.queue)
        self.balancer = Balancer(
            s,
            self.store,
            catalog,
            self.bus,
            auth,
            registry,
            self.nodes,
            self.supervisor,
            self.discovery,
            dispatcher,
            RequestHistory(
                RequestStore(self.store),
                self.supervisor,
                metrics,
                stats=stats,
                bus=self.bus,
                dispatcher=dispatcher,
                writer=WriterProcess(self.store.db.path),
            ),
            external=self.external,
            tls_fingerprint=self.tls_fingerprint,
        )
        recovered = await stats.recover(
            self.balancer.history.store, set(registry.records) | set(external.served_elsewhere())
        )
        if recovered:
            log.info(
                "the dashboard's series took back %d requests no stored minute counted", recovered
            )
        self.balancer.history.start()
        self.runner = GuardedAppRunner(
            create_app(self.balancer),
            ConnectionGuard(),
            access_log=None,
            shutdown_timeout=2.0,
            handle_signals=False,
            # aiohttp closes a connection that has not sent a whole request head by then (and
            # idle keep-alive ones): half-open connections cannot pile up holding descriptors.
            keepalive_timeout=HEADER_DEADLINE,
        )
        await self.runner.setup()
        site = web.TCPSite(
            self.runner,
            s.host,
            s.port,
            reuse_address=True,
            ssl_context=self.certificate.server_context() if self.certificate else None,
        )
        try:
            await site.start()
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise StartupError(
                    f"port {s.port} on {s.host} is already in use (is llmlb already running?); "
                    "choose another with --port"
                ) from exc
            raise StartupError(f"cannot listen on {s.host}:{s.port}: {exc.strerror}") from exc
        self.port = self.runner.addresses[0][1]
        lock.record(self.port)
        self.nodes.start()
        self.external.start()
        log.info("llmlb serving %s/v1 (data dir %s)", self.base_url, data_dir)
        if not is_loopback(s.host) or os.environ.get("LLMLB_MDNS_INTERFACES"):
            try:
                await self.discovery.start(self._lan_address(), self.port, tls=bool(s.tls))
            except OSError as exc:
                log.warning("cannot advertise on the LAN: %s", exc)
        if s.local_node:
            self.local_node = NodeAgent(
                node_config(
                    s,
                    data_dir=data_dir / "node",
                    balancer_url=self.base_url,
                    credential=self.admin_token,
                    balancer_fingerprint=self.tls_fingerprint,
                    local=True,
                    name="this computer",
                )
            )
            await self.local_node.start()
            # The balancer calls its own local node in-process, without HTTP; the node's HTTP
            # app still serves direct and LAN calls.
            self.balancer.dispatcher.attach_local(
                self.local_node.url, LocalUpstream(self.local_node.models)
            )

    async def stop(self) -> None:
        """Stop in reverse order; safe to call twice or after a failed start."""
        if self.local_node is not None:
            node, self.local_node = self.local_node, None
            if self.balancer is not None:
                self.balancer.dispatcher.detach_local(node.url)
            await node.stop()
        await self.discovery.stop()
        if self.runner is not None:
            runner, self.runner = self.runner, None
            await runner.cleanup()
        await self.supervisor.stop()
        if self.http is not None:  # after the supervisor: no notice or poll still uses it
            http, self.http = self.http, None
            await http.close()
        if self.hf is not None:
            self.hf.close()
            self.hf = None
        if self.store is not None:
            store, self.store = self.store, None
            await store.close()
        if self.lock is not None:  # last: the next instance may start once all is closed
            held, self.lock = self.lock, None
            held.release()
