"""`GET /v0/logs`: the balancer's structured log, or a node's fetched from the node."""

from __future__ import annotations

import dataclasses
import json
import logging
from datetime import datetime

import aiohttp
from aiohttp import web

from app.core.errors import BadRequest, Unavailable, UpstreamError
from app.core.log_query import MAX_LIMIT, LogFilter, entry_of, parse_filter, query_log
from app.core.logs import current_log_file
from app.core.wire import LogEntry, LogsJson
from app.server.http import read_capped
from app.server.node_view import NodeView
from app.server.state import balancer

log = logging.getLogger(__name__)
routes = web.RouteTableDef()

BALANCER_SOURCE = "balancer"
FORMATS = ("json", "text", "jsonl")
NODE_TIMEOUT = aiohttp.ClientTimeout(total=15)
# A node's answer holds at most MAX_LIMIT entries of at most 4 MB of lines (log_query's
# KEEP_BYTES); JSON escaping can grow it, never past this.
NODE_ANSWER_MAX = 16 * 1024 * 1024
# The in-process node logs under these loggers (app/node/..., and llama.cpp's own lines that
# its engine relays), into the balancer's own file.
LOCAL_NODE_LOGGERS = ("app.node", "llama.cpp")
NOT_REACHABLE = "this node's logs are not reachable from llmlb"


@routes.get("/v0/logs")
async def logs(request: web.Request) -> web.StreamResponse:
    """Entries newest last, filtered by level, time and keyword; `format=text|jsonl` downloads."""
    form = request.query.get("format", "json")
    if form not in FORMATS:
        raise BadRequest(f"'format' must be one of {', '.join(FORMATS)}", param="format")
    filt = parse_filter(request.query)
    source = request.query.get("source", BALANCER_SOURCE) or BALANCER_SOURCE
    if source == BALANCER_SOURCE:
        answer = await query_log(current_log_file(), source, filt)
    else:
        answer = await _node_log(request, source, filt)
    if form == "json":
        return web.json_response(answer)
    return _download(answer, form)


async def _node_log(request: web.Request, node_id: str, filt: LogFilter) -> LogsJson:
    nodes = balancer(request).nodes
    view = nodes.require(node_id)
    if view.kind == "external":
        raise BadRequest(NOT_REACHABLE, param="source", code="logs_not_reachable")
    if view.kind == "local":
        # This computer's node runs inside the balancer's process and logs into the same
        # file: its log is the balancer's records of the node's loggers.
        local = dataclasses.replace(filt, loggers=LOCAL_NODE_LOGGERS)
        return await query_log(current_log_file(), node_id, local)
    if not view.live or nodes.http is None:
        raise Unavailable(
            f"node '{view.name or view.id}' is {view.status.value}: its log can be read once it "
            "is back online",
            code="node_offline",
        )
    return await _fetch(nodes.http, view, filt)


async def _fetch(http: aiohttp.ClientSession, view: NodeView, filt: LogFilter) -> LogsJson:
    """The node's own `GET /node/logs`, its answer checked as anything a peer sends."""
    name = view.name or view.id
    try:
        async with http.get(
            f"{view.url}/node/logs",
            params=filt.query(),
            headers=view.auth_headers(),
            ssl=view.ssl(),
            timeout=NODE_TIMEOUT,
        ) as r:
            status = r.status
            raw = await read_capped(r.content, NODE_ANSWER_MAX) if status == 200 else b""
    except (aiohttp.ClientError, TimeoutError) as exc:
        # The caller is told why (the Logs page shows it); a page tailing a dead node's log
        # asks every 2 s, which at INFO filled the balancer's own log.
        log.debug("log of node %s not fetched: %s", view.id, exc)
        raise UpstreamError(
            f"node '{name}' did not answer for its log: {str(exc) or type(exc).__name__}",
            code="node_unavailable",
        ) from exc
    if status != 200:
        raise UpstreamError(f"node '{name}' answered {status} for its log", code="node_unavailable")
    if raw is None:
        raise UpstreamError(f"node '{name}' sent a log larger than llmlb reads", code="bad_node")
    entries = _entries_of(raw, filt)
    if entries is None:
        raise UpstreamError(
            f"node '{name}' sent its log in a form llmlb does not read", code="bad_node"
        )
    kept, truncated = entries
    return {"source": view.id, "entries": kept, "truncated": truncated}


def _entries_of(raw: bytes, filt: LogFilter) -> tuple[list[LogEntry], bool] | None:
    """The entries of a node's answer that pass the filter (applied again: a node's answer is
    not trusted to hold what was asked), at most `limit`; None when it is no answer of ours."""
    try:
        body = json.loads(raw)
    except ValueError:
        return None
    if not isinstance(body, dict):
        return None
    items, truncated = body.get("entries"), body.get("truncated")
    if not isinstance(items, list) or not isinstance(truncated, bool) or len(items) > MAX_LIMIT:
        return None
    entries: list[LogEntry] = []
    for item in items:
        entry = entry_of(item)
        if entry is None:
            return None
        if filt.matches(entry):
            entries.append(entry)
    if len(entries) > filt.limit:
        entries, truncated = entries[-filt.limit :], True
    return entries, truncated


def _download(answer: LogsJson, form: str) -> web.Response:
    """The entries as a file to save: readable text, or JSON lines as on disk."""
    if form == "jsonl":
        body = "".join(json.dumps(e, ensure_ascii=False) + "\n" for e in answer["entries"])
        media, suffix = "application/jsonl", "jsonl"
    else:
        body = "".join(text_line(e) for e in answer["entries"])
        media, suffix = "text/plain", "log"
    # The source is a node id or "balancer": still, only safe characters reach the header.
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in answer["source"])[:80]
    return web.Response(
        text=body,
        content_type=media,
        headers={"Content-Disposition": f'attachment; filename="llmlb-{safe}.{suffix}"'},
    )


def text_line(entry: LogEntry) -> str:
    """One entry as the stderr log writes it (local time), its traceback on the lines after."""
    when = datetime.fromtimestamp(entry["at"]).isoformat(sep=" ", timespec="milliseconds")
    line = f"{when} {entry['level']} {entry['logger']}: {entry['message']}\n"
    exc = entry.get("exc")
    return line + (exc.rstrip("\n") + "\n" if exc else "")
