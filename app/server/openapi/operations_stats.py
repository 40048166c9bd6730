"""The dashboard's statistics route of the OpenAPI document (see `operations`)."""

from __future__ import annotations

from app.server.openapi.builders import (
    Access,
    Query,
    Route,
    Schema,
    array,
    integer,
    json_reply,
    nullable,
    number,
    obj,
    string,
)
from app.server.stats import RANGES

_PERCENTILES = obj(
    {"p50": nullable(number()), "p95": nullable(number())},
    ("p50", "p95"),
    description="Milliseconds, to within 9.1% (log-scale bins); null when nothing was measured",
)
_BUCKET_FIELDS: dict[str, Schema] = {
    "at": number("The bucket's start (Unix seconds)"),
    "requests": integer(minimum=0),
    "errors": integer(
        "5xx, 429, or an answer that broke off (a client leaving is not one)", minimum=0
    ),
    "tokens_in": integer(minimum=0),
    "tokens_out": integer(minimum=0),
    "tokens_per_second": nullable(number("Generated tokens per second of generation time")),
    "ttft_ms": _PERCENTILES,
    "latency_ms": _PERCENTILES,
}
_BUCKET = obj(_BUCKET_FIELDS, tuple(_BUCKET_FIELDS))
_GROUP = obj(
    {"key": string("The model's name or the node's id"), **_BUCKET_FIELDS},
    ("key", *_BUCKET_FIELDS),
)
_SAMPLE = obj(
    {
        "at": number(),
        "cpu": nullable(number("Load average per core, 0 to 1")),
        "memory_used_bytes": nullable(integer()),
        "memory_total_bytes": nullable(integer()),
        "gpu_utilization": nullable(number("Mean over the node's devices, 0 to 1")),
        "gpu_memory_used_bytes": nullable(integer()),
        "gpu_memory_total_bytes": nullable(integer()),
    },
    (
        "at",
        "cpu",
        "memory_used_bytes",
        "memory_total_bytes",
        "gpu_utilization",
        "gpu_memory_used_bytes",
        "gpu_memory_total_bytes",
    ),
)
_STATS = obj(
    {
        "range": string(enum=list(RANGES)),
        "step_seconds": integer("60 for 1h and 24h, 3600 for 7d"),
        "since": number(),
        "until": number(),
        "model": nullable(string()),
        "node": nullable(string()),
        "buckets": array(_BUCKET, "Only buckets with traffic, oldest first"),
        "totals": _BUCKET,
        "by_model": array(_GROUP, "Busiest first; names no model has count in the totals only"),
        "by_node": array(
            _GROUP, "Busiest first; requests that reached no node count in the totals only"
        ),
        "nodes": array(
            obj(
                {"node_id": string(), "samples": array(_SAMPLE, "Averages per bucket")},
                ("node_id", "samples"),
            )
        ),
    },
    (
        "range",
        "step_seconds",
        "since",
        "until",
        "model",
        "node",
        "buckets",
        "totals",
        "by_model",
        "by_node",
        "nodes",
    ),
)

STATS_ROUTES: tuple[Route, ...] = (
    Route(
        "GET",
        "/v0/stats",
        "The /v1 traffic (requests, errors, tokens, tokens/s, TTFT and latency p50/p95) and "
        "the nodes' device use over the last hour or day by the minute, or the last week by "
        "the hour; the current minute included",
        "serving",
        Access.ADMIN,
        (json_reply(200, "Time buckets, totals, per model and per node", _STATS),),
        query=(
            Query("range", string(enum=list(RANGES)), "1h, 24h (the default) or 7d"),
            Query("model", string(minLength=1, maxLength=256), "Only this model's traffic"),
            Query("node", string(minLength=1, maxLength=200), "Only this node's traffic and use"),
        ),
        errors=(400,),
    ),
)
