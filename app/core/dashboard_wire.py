"""The JSON shapes of the dashboard's /v0 routes (stats, queue, logs); `app.core.wire`
re-exports them, so import them from there like every other wire type."""

from __future__ import annotations

from typing import NotRequired, TypedDict


class Percentiles(TypedDict):
    """Milliseconds at the 50th and 95th percentile; None when nothing was measured."""

    p50: float | None
    p95: float | None


class StatsBucket(TypedDict):
    """One time bucket of /v1 traffic (only buckets with traffic are listed)."""

    at: float  # the bucket's start (unix seconds)
    requests: int
    errors: int  # status >= 500, 429, or an answer that broke off (not a client leaving)
    tokens_in: int
    tokens_out: int
    tokens_per_second: float | None  # tokens_out / the time spent generating them
    ttft_ms: Percentiles
    latency_ms: Percentiles  # the whole request


class StatsGroup(StatsBucket):
    """The totals of one model or node over the range (`at` is the range's start)."""

    key: str  # the model's name or the node's id


class NodeSample(TypedDict):
    """One node's averages over one bucket, from its heartbeats."""

    at: float
    cpu: float | None  # load average per core, 0 to 1 (capped)
    memory_used_bytes: int | None
    memory_total_bytes: int | None
    gpu_utilization: float | None  # mean over its devices, 0 to 1
    gpu_memory_used_bytes: int | None
    gpu_memory_total_bytes: int | None


class NodeSeries(TypedDict):
    """A node's device use over the range."""

    node_id: str
    samples: list[NodeSample]


class StatsJson(TypedDict):
    """`GET /v0/stats?range=1h|24h|7d[&model=][&node=]`."""

    range: str
    step_seconds: int  # 60 for 1h and 24h, 3600 for 7d
    since: float
    until: float
    model: str | None
    node: str | None
    buckets: list[StatsBucket]  # oldest first
    totals: StatsBucket
    by_model: list[StatsGroup]
    by_node: list[StatsGroup]
    nodes: list[NodeSeries]


class QueueEntry(TypedDict):
    """One /v1 request waiting for a slot, or running on a node."""

    id: str
    model: str
    endpoint: str
    client: str | None
    since: float  # when it began waiting, or running (unix seconds)
    position: int | None  # 1 = next to run; None while running
    eta_seconds: float | None  # waiting: expected seconds until it runs (measured speed)
    node_id: str | None  # running: where


class QueueModel(TypedDict):
    """A model's queue in numbers."""

    model: str
    waiting: int
    running: int
    slots: int  # free + busy slots over the online nodes that have it ready


class QueueJson(TypedDict):
    """`GET /v0/queue`."""

    waiting: list[QueueEntry]  # in queue order per model
    running: list[QueueEntry]
    models: list[QueueModel]


class LogEntry(TypedDict):
    """One structured log record (a JSON line in the log file)."""

    at: float
    level: str  # DEBUG, INFO, WARNING, ERROR, CRITICAL
    logger: str
    message: str
    exc: NotRequired[str]  # the traceback, when one was logged


class LogsJson(TypedDict):
    """`GET /v0/logs`: entries newest last; `truncated` when more matched than `limit`."""

    source: str  # "balancer" or a node's id
    entries: list[LogEntry]
    truncated: bool
