"""The balancer's services, stored on the aiohttp app under one typed key."""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web

from app.core.catalog import Catalog
from app.core.events import EventBus
from app.core.settings import Settings
from app.core.tasks import TaskSupervisor
from app.db.store import Store
from app.server.auth import Auth
from app.server.discovery import Discovery
from app.server.dispatch import Dispatcher
from app.server.external_nodes import ExternalServers
from app.server.history import RequestHistory
from app.server.nodes import NodeRegistry
from app.server.registry import ModelRegistry


@dataclass
class Balancer:
    """Everything a handler may need, built by the composition root."""

    settings: Settings
    store: Store
    catalog: Catalog
    bus: EventBus
    auth: Auth
    registry: ModelRegistry
    nodes: NodeRegistry
    supervisor: TaskSupervisor
    discovery: Discovery
    dispatcher: Dispatcher
    history: RequestHistory
    external: ExternalServers
    tls_fingerprint: str | None = None  # sha256 hex of our TLS certificate; None: plain HTTP
    paused: bool = False  # the user paused serving: /v1 inference answers 503


BALANCER = web.AppKey("balancer", Balancer)


def balancer(request: web.Request) -> Balancer:
    """The balancer serving this request."""
    return request.app[BALANCER]
