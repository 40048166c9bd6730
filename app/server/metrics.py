"""Prometheus metrics of the balancer (GET /metrics): requests, latency, queue, nodes.

Each balancer has its own registry, so several can live in one process (tests do)."""

from __future__ import annotations

from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from app.server.nodes import NodeRegistry

_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)


class Metrics:
    """Counters fed by the relay; node gauges read when scraped."""

    def __init__(self, nodes: NodeRegistry) -> None:
        self.nodes = nodes
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "llmlb_requests",
            "Inference requests answered",
            ["endpoint", "model", "status"],
            registry=self.registry,
        )
        self.first_byte = Histogram(
            "llmlb_first_byte_seconds",
            "Time until the node's first byte",
            ["model"],
            buckets=_BUCKETS,
            registry=self.registry,
        )
        self.nodes_by_status = Gauge(
            "llmlb_nodes", "Nodes by status", ["status"], registry=self.registry
        )
        self.inflight = Gauge(
            "llmlb_node_inflight", "Requests in flight per node", ["node"], registry=self.registry
        )

    def observe(self, endpoint: str, model: str, status: int, latency_ms: float | None) -> None:
        """Count one finished request."""
        self.requests.labels(endpoint, model or "-", str(status)).inc()
        if latency_ms is not None:
            self.first_byte.labels(model).observe(latency_ms / 1000)

    def render(self) -> bytes:
        """The exposition text, with node gauges fresh."""
        self.nodes_by_status.clear()
        self.inflight.clear()
        counts: dict[str, int] = {}
        for view in self.nodes.nodes.values():
            counts[view.status] = counts.get(view.status, 0) + 1
            self.inflight.labels(view.id).set(view.inflight)
        for status, count in counts.items():
            self.nodes_by_status.labels(status).set(count)
        return bytes(generate_latest(self.registry))


def response(metrics: Metrics) -> web.Response:
    """GET /metrics."""
    return web.Response(body=metrics.render(), headers={"Content-Type": CONTENT_TYPE_LATEST})
