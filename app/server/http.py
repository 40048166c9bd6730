"""Request helpers and the middleware that turns every failure into OpenAI's error shape."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import aiohttp
from aiohttp import web

from app.core.errors import BadRequest, PayloadTooLarge, UnsupportedMediaType, UserFacingError
from app.core.wire import JsonObject

log = logging.getLogger(__name__)

MANAGEMENT_BODY_LIMIT = 1024 * 1024  # /v0 bodies are small JSON documents
# The Playground attaches files of up to 100 MB: an image travels as base64 (4/3 of its size)
# and a text file inline, JSON-escaped; both must fit in one request and in the saved message.
INFERENCE_BODY_LIMIT = 256 * 1024 * 1024
MESSAGE_BODY_LIMIT = INFERENCE_BODY_LIMIT
_READ_CHUNK = 256 * 1024
# What a page can send to any site without a CORS preflight.
_BROWSER_SIMPLE_TYPES = frozenset(
    {"text/plain", "application/x-www-form-urlencoded", "multipart/form-data"}
)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
# An API with its own error shape (Anthropic's): the OpenAI-shaped body and its status in, the
# API's body out. The app maps path prefixes to them (ERROR_SHAPES); the rest answer OpenAI's.
ErrorShape = Callable[[int, dict[str, Any]], object]
ERROR_SHAPES = web.AppKey("error_shapes", tuple[tuple[str, ErrorShape], ...])

_STATUS_TYPES = {
    400: ("invalid_request_error", "invalid_request"),
    401: ("authentication_error", "invalid_api_key"),
    403: ("permission_error", "forbidden"),
    404: ("invalid_request_error", "not_found"),
    405: ("invalid_request_error", "method_not_allowed"),
    413: ("invalid_request_error", "payload_too_large"),
    415: ("invalid_request_error", "unsupported_media_type"),
    429: ("rate_limit_error", "rate_limited"),
}


def error_response(
    status: int,
    message: str,
    code: str | None = None,
    type_: str | None = None,
    param: str | None = None,
) -> web.Response:
    """An OpenAI-shaped error response."""
    default_type, default_code = _STATUS_TYPES.get(status, ("server_error", "server_error"))
    body = {
        "error": {
            "message": message,
            "type": type_ or default_type,
            "param": param,
            "code": code or default_code,
        }
    }
    return web.json_response(body, status=status)


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Catch at the edge: user errors, aiohttp's HTTP errors and bugs, all as OpenAI JSON (or
    in the error shape of the API the path belongs to, ERROR_SHAPES)."""
    response = await _answer(request, handler)
    if response.status < 400 or not isinstance(response, web.Response):
        return response
    for prefix, shape in request.app.get(ERROR_SHAPES, ()):
        if request.path.startswith(prefix) and isinstance(response.body, bytes):
            try:
                body = json.loads(response.body)
            except ValueError:
                return response
            if not isinstance(body, dict) or not isinstance(body.get("error"), dict):
                return response
            shaped = web.json_response(shape(response.status, body), status=response.status)
            for key, value in response.headers.items():
                if key.lower() not in {"content-type", "content-length"}:
                    shaped.headers[key] = value
            return shaped
    return response


async def _answer(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except UserFacingError as exc:
        response = web.json_response(exc.body(), status=exc.status)
        response.headers.update(exc.headers)
        return response
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        message = exc.text if exc.text and not exc.text.startswith(f"{exc.status}:") else exc.reason
        if exc.status == 404:
            message = f"no such endpoint: {request.method} {request.path}"
        elif exc.status == 405:
            message = f"{request.method} is not allowed on {request.path}"
        elif exc.status == 413:
            message = "request body too large"
        response = error_response(exc.status, message)
        for key in ("Allow", "Retry-After"):
            if key in exc.headers:
                response.headers[key] = exc.headers[key]
        return response
    except ConnectionResetError:
        raise
    except Exception:
        log.exception("unhandled error on %s %s", request.method, request.path)
        return error_response(500, "internal error in the balancer; see its log")


async def read_body(request: web.Request, limit: int) -> bytes:
    """The whole body, read to its end; PayloadTooLarge (413) as soon as it passes `limit`.

    `request.content.read(n)` returns what has arrived so far, not n bytes (DESIGN.md's facts):
    a body sent in several TCP segments must be read until its length, or EOF when chunked.
    """
    length = request.content_length
    if length is not None:
        if length > limit:
            raise PayloadTooLarge(f"request body is {length} bytes; the limit is {limit}")
        try:
            return await request.content.readexactly(length)
        except asyncio.IncompleteReadError as exc:
            raise BadRequest(
                f"request body ended after {len(exc.partial)} of its {length} bytes"
            ) from None
        except ConnectionResetError:  # the client hung up mid-body: nobody to answer
            raise BadRequest(f"the client left before sending its {length} bytes") from None
    try:
        body = await read_capped(request.content, limit)
    except ConnectionResetError:
        raise BadRequest("the client left before the end of its body") from None
    if body is None:
        raise PayloadTooLarge(f"request body is larger than the limit of {limit} bytes")
    return body


async def read_capped(stream: aiohttp.StreamReader, limit: int) -> bytes | None:
    """Everything `stream` holds up to its end, or None as soon as it passes `limit` bytes
    (for bodies without a length: chunked requests, and what nodes and servers answer)."""
    body = bytearray()
    async for chunk in stream.iter_chunked(_READ_CHUNK):
        body += chunk
        if len(body) > limit:
            return None
    return bytes(body)


def check_json_content_type(request: web.Request) -> None:
    """Refuse the body types a browser sends cross-origin without asking first (forms and
    text/plain): a web page cannot post to us unasked. JSON, none, or any other type is read
    as JSON (scripts and SDKs label bodies loosely)."""
    header = request.headers.get("Content-Type")
    if header is None or header.startswith("application/json"):
        return  # the usual case, without parsing the header
    kind = request.content_type.lower()
    if kind in _BROWSER_SIMPLE_TYPES:
        raise UnsupportedMediaType(
            f"the body must be JSON sent with 'Content-Type: application/json' (got '{kind}')"
        )


def parse_json(body: bytes) -> Any:
    """Bytes to JSON, or BadRequest saying what is wrong (nesting too deep included)."""
    if not body.strip():
        raise BadRequest("request body is empty; send a JSON object")
    try:
        if body[:1] == b"{" and body[1:2] != b"\x00":
            # UTF-8, as json.loads would find it: decoded here, without its encoding check
            # (bench/proxy.py's request path)
            return json.loads(body.decode("utf-8", "surrogatepass"))
        return json.loads(body)
    except RecursionError:
        raise BadRequest("request body is nested too deeply to be read") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadRequest(f"request body is not valid JSON: {exc}") from exc


async def read_raw_json(request: web.Request, limit: int) -> tuple[bytes, Any]:
    """The body's bytes (read whole, at most `limit`) and their JSON."""
    check_json_content_type(request)
    body = await read_body(request, limit)
    return body, parse_json(body)


async def read_json(request: web.Request, limit: int = MANAGEMENT_BODY_LIMIT) -> Any:
    """The body as JSON (see read_raw_json)."""
    return (await read_raw_json(request, limit))[1]


async def read_object(request: web.Request, limit: int = MANAGEMENT_BODY_LIMIT) -> JsonObject:
    """The body as a JSON object (its values read with isinstance checks)."""
    data = await read_json(request, limit)
    if not isinstance(data, dict):
        raise BadRequest("request body must be a JSON object")
    return data


def optional_str(data: Mapping[str, object], key: str) -> str | None:
    """data[key] as a string, None when absent or null; BadRequest on another type."""
    value = data.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise BadRequest(f"'{key}' must be a string", param=key)
    return value
