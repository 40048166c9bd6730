"""Prometheus metrics of the balancer (GET /metrics): requests, latency, queue, nodes, tokens,
downloads and model loads (README.md, "Prometheus", lists every one).

Each balancer has its own registry, so several can live in one process (tests do)."""

from __future__ import annotations

from collections import Counter as Tally
from collections.abc import Iterator
from typing import TypeAlias

from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.registry import Collector

from app.core.types import ModelState
from app.core.wire import NodeMetrics
from app.server.nodes import NodeRegistry
from app.server.stats import Stats

# One finished request as the metrics count it: endpoint, model ("" for a name that does not
# exist), status, milliseconds to the node's first byte.
Observed: TypeAlias = tuple[str, str, int, float | None]
_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)


class Metrics:
    """Counters fed by the relay; node gauges read when scraped."""

    def __init__(self, nodes: NodeRegistry, stats: Stats | None = None) -> None:
        self.nodes = nodes
        self.registry = CollectorRegistry()
        if stats is not None:
            self.registry.register(DashboardSeries(nodes, stats))
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

        device = ["node", "device", "backend"]
        self.device_total = Gauge(
            "llmlb_node_device_memory_total_bytes",
            "A node's accelerator memory (as its last heartbeat said)",
            device,
            registry=self.registry,
        )
        self.device_free = Gauge(
            "llmlb_node_device_memory_free_bytes",
            "A node's accelerator memory free",
            device,
            registry=self.registry,
        )
        self.device_use = Gauge(
            "llmlb_node_device_utilization_ratio",
            "A node's accelerator utilisation, 0 to 1 (where the platform reports it)",
            device,
            registry=self.registry,
        )
        self.speed = Gauge(
            "llmlb_node_model_tokens_per_second",
            "Generation speed measured from a node's answers (what dispatch prefers)",
            ["node", "model"],
            registry=self.registry,
        )
        self.ram_total = Gauge(
            "llmlb_node_memory_total_bytes", "A node's RAM", ["node"], registry=self.registry
        )
        self.ram_free = Gauge(
            "llmlb_node_memory_available_bytes",
            "A node's RAM available",
            ["node"],
            registry=self.registry,
        )
        self.queue = QueueMetrics(self.registry)

    def observe(self, endpoint: str, model: str, status: int, latency_ms: float | None) -> None:
        """Count one finished request."""
        self.observe_many([(endpoint, model, status, latency_ms)])

    def observe_many(self, observed: list[Observed]) -> None:
        """Count finished requests (the history's flusher hands them over with each batch)."""
        counts = Tally((endpoint, model, status) for endpoint, model, status, _ in observed)
        for (endpoint, model, status), count in counts.items():
            self.requests.labels(endpoint, model or "-", str(status)).inc(count)
        children: dict[str, Histogram] = {}
        for _, model, _, latency_ms in observed:
            if latency_ms is not None:
                child = children.get(model)
                if child is None:
                    child = children[model] = self.first_byte.labels(model)
                child.observe(latency_ms / 1000)

    def render(self) -> bytes:
        """The exposition text, with node gauges fresh."""
        gauges = (self.device_total, self.device_free, self.device_use, self.ram_total, self.speed)
        for gauge in (self.nodes_by_status, self.inflight, self.ram_free, *gauges):
            gauge.clear()
        counts: dict[str, int] = {}
        for view in self.nodes.nodes.values():
            counts[view.status] = counts.get(view.status, 0) + 1
            self.inflight.labels(view.id).set(view.inflight)
            self._memory(view.id, view.metrics)
            for model, rate in view.speed.public().items():
                self.speed.labels(view.id, model).set(rate)
        for status, count in counts.items():
            self.nodes_by_status.labels(status).set(count)
        return bytes(generate_latest(self.registry))

    def _memory(self, node: str, metrics: NodeMetrics | None) -> None:
        if metrics is None:
            return
        system = metrics["system"]
        if "memory_total_bytes" in system:
            self.ram_total.labels(node).set(system["memory_total_bytes"])
        if "memory_available_bytes" in system:
            self.ram_free.labels(node).set(system["memory_available_bytes"])
        for d in metrics["devices"]:
            labels = (node, d["name"], d["backend"] or "")
            self.device_total.labels(*labels).set(d["total_bytes"])
            self.device_free.labels(*labels).set(d["free_bytes"])
            if d["utilization"] is not None:
                self.device_use.labels(*labels).set(d["utilization"])


class DashboardSeries(Collector):
    """Tokens, tokens/s, downloads and model loads, read from the time series and the node
    table when scraped (the flusher and the heartbeats count them, not the request path).
    Only models that exist name a series, so a node or a client cannot grow the label sets."""

    def __init__(self, nodes: NodeRegistry, stats: Stats) -> None:
        self.nodes = nodes
        self.stats = stats

    def collect(self) -> Iterator[Metric]:
        """The families, fresh."""
        yield from self._tokens()
        yield from self._downloads()
        yield from self._loads()

    def _tokens(self) -> Iterator[Metric]:
        labels = ["model", "node"]
        tokens_in = CounterMetricFamily(
            "llmlb_tokens_in", "Prompt tokens of answered requests", labels=labels
        )
        tokens_out = CounterMetricFamily(
            "llmlb_tokens_out", "Generated tokens of answered requests", labels=labels
        )
        for (model, node), (count_in, count_out) in sorted(self.stats.tokens.items()):
            tokens_in.add_metric([model, node], count_in)
            tokens_out.add_metric([model, node], count_out)
        rate = GaugeMetricFamily(
            "llmlb_tokens_per_second",
            "Generated tokens per second of generation time, over the current and last minute",
            labels=["model"],
        )
        for model, value in sorted(self.stats.rates.items()):
            rate.add_metric([model], value)
        yield from (tokens_in, tokens_out, rate)

    def _downloads(self) -> Iterator[Metric]:
        running = GaugeMetricFamily(
            "llmlb_node_downloads_in_progress", "Models a node is downloading", labels=["node"]
        )
        labels = ["node", "model"]
        done = GaugeMetricFamily(
            "llmlb_node_download_downloaded_bytes", "Bytes of a model a node has", labels=labels
        )
        total = GaugeMetricFamily(
            "llmlb_node_download_total_bytes", "Bytes of a model a node downloads", labels=labels
        )
        for view in self.nodes.nodes.values():
            count = 0
            for s in view.models.values():
                if s.state == ModelState.DOWNLOADING and self.stats.known_model(s.model):
                    count += 1
                    done.add_metric([view.id, s.model], s.downloaded_bytes)
                    total.add_metric([view.id, s.model], s.total_bytes)
            running.add_metric([view.id], count)
        yield from (running, done, total)

    def _loads(self) -> Iterator[Metric]:
        labels = ["node", "model"]
        known = self.stats.known_model
        for name, text, counts in (
            ("llmlb_node_model_loads", "Times a node loaded a model", self.stats.samples.loads),
            (
                "llmlb_node_model_unloads",
                "Times a node unloaded a model",
                self.stats.samples.unloads,
            ),
        ):
            family = CounterMetricFamily(name, text, labels=labels)
            for (node, model), count in sorted(counts.items()):
                if known(model):
                    family.add_metric([node, model], count)
            yield family


# -- the dispatcher's queue ----------------------------------------------------------------
_WAIT_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)


class QueueMetrics:
    """The per-model queue, fed by the dispatcher only when a request has to wait (a request
    that finds a free slot costs nothing here)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.depth = Gauge(
            "llmlb_queue_depth",
            "Requests waiting for a free slot, per model",
            ["model"],
            registry=registry,
        )
        self.wait = Histogram(
            "llmlb_queue_wait_seconds",
            "How long requests that found every slot busy waited in the queue",
            ["model"],
            buckets=_WAIT_BUCKETS,
            registry=registry,
        )

    def joined(self, model: str) -> None:
        """A request joined `model`'s queue."""
        self.depth.labels(model).inc()

    def left(self, model: str, seconds: float) -> None:
        """A request left the queue after `seconds`: to run, or giving up."""
        self.depth.labels(model).dec()
        self.wait.labels(model).observe(seconds)


def response(metrics: Metrics) -> web.Response:
    """GET /metrics."""
    return web.Response(body=metrics.render(), headers={"Content-Type": CONTENT_TYPE_LATEST})
