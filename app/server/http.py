"""Request helpers and the middleware that turns every failure into OpenAI's error shape."""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from app.core.errors import BadRequest, PayloadTooLarge, UserFacingError

log = logging.getLogger(__name__)

MANAGEMENT_BODY_LIMIT = 1024 * 1024  # /v0 bodies are small JSON documents
INFERENCE_BODY_LIMIT = 128 * 1024 * 1024  # room for 100 MB attachments, base64 included

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

_STATUS_TYPES = {
    400: ("invalid_request_error", "invalid_request"),
    401: ("authentication_error", "invalid_api_key"),
    403: ("permission_error", "forbidden"),
    404: ("invalid_request_error", "not_found"),
    405: ("invalid_request_error", "method_not_allowed"),
    413: ("invalid_request_error", "payload_too_large"),
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
    """Catch at the edge: user errors, aiohttp's HTTP errors and bugs, all as OpenAI JSON."""
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


async def read_raw_json(request: web.Request, limit: int) -> tuple[bytes, Any]:
    """The body's bytes and their JSON, refusing bodies over `limit` before reading them whole."""
    if request.content_length is not None and request.content_length > limit:
        raise PayloadTooLarge(
            f"request body is {request.content_length} bytes; the limit is {limit}"
        )
    body = await request.content.read(limit + 1)
    if len(body) > limit:
        raise PayloadTooLarge(f"request body is larger than the limit of {limit} bytes")
    if not body.strip():
        raise BadRequest("request body is empty; send a JSON object")
    try:
        return body, json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadRequest(f"request body is not valid JSON: {exc}") from exc


async def read_json(request: web.Request, limit: int = MANAGEMENT_BODY_LIMIT) -> Any:
    """The body as JSON (see read_raw_json)."""
    return (await read_raw_json(request, limit))[1]


async def read_object(request: web.Request, limit: int = MANAGEMENT_BODY_LIMIT) -> dict[str, Any]:
    """The body as a JSON object."""
    data = await read_json(request, limit)
    if not isinstance(data, dict):
        raise BadRequest("request body must be a JSON object")
    return data


def optional_str(data: dict[str, Any], key: str) -> str | None:
    """data[key] as a string, None when absent or null; BadRequest on another type."""
    value = data.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise BadRequest(f"'{key}' must be a string", param=key)
    return value
