"""The project's exceptions: what a user can fix, and how it reads on the wire."""

from __future__ import annotations

from typing import TypedDict


class ErrorDetail(TypedDict):
    """What went wrong, in OpenAI's error shape."""

    message: str
    type: str
    param: str | None
    code: str | None


class ErrorBody(TypedDict):
    """An error answer's body: `{"error": {message, type, param, code}}`."""

    error: ErrorDetail


class LlmlbError(Exception):
    """Base of every exception this project raises on purpose."""


class StartupError(LlmlbError):
    """The app cannot start; the message is one line a person can act on."""


class UserFacingError(LlmlbError):
    """Something the caller can fix; rendered as an OpenAI-shaped error body."""

    status: int = 400
    code: str = "invalid_request"
    type: str = "invalid_request_error"

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        code: str | None = None,
        type: str | None = None,
        param: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        if status is not None:
            self.status = status
        if code is not None:
            self.code = code
        if type is not None:
            self.type = type
        self.param = param
        self.headers = headers or {}

    def body(self) -> ErrorBody:
        """The error in OpenAI's shape: {"error": {message, type, param, code}}."""
        return {
            "error": {
                "message": self.message,
                "type": self.type,
                "param": self.param,
                "code": self.code,
            }
        }


class BadRequest(UserFacingError):
    """The request itself is wrong (bad JSON, wrong type, bad name)."""


class Unauthorized(UserFacingError):
    """No or wrong credentials."""

    status = 401
    code = "invalid_api_key"
    type = "authentication_error"


class NotFound(UserFacingError):
    """The thing named does not exist."""

    status = 404
    code = "not_found"
    type = "invalid_request_error"


class Conflict(UserFacingError):
    """The thing already exists or another operation got there first."""

    status = 409
    code = "conflict"


class PayloadTooLarge(UserFacingError):
    """The body is larger than this endpoint accepts."""

    status = 413
    code = "payload_too_large"


class UnsupportedMediaType(UserFacingError):
    """The body is not of a type this endpoint reads (JSON endpoints want JSON)."""

    status = 415
    code = "unsupported_media_type"


class Forbidden(UserFacingError):
    """The caller is known but may not do this (a web page's origin, a host name)."""

    status = 403
    code = "forbidden"
    type = "permission_error"


class TooManyRequests(UserFacingError):
    """Too many attempts; the Retry-After header says when to try again."""

    status = 429
    code = "rate_limited"
    type = "rate_limit_error"


class Unavailable(UserFacingError):
    """The service cannot answer now (model downloading, no node, upstream down)."""

    status = 503
    code = "unavailable"
    type = "server_error"


class UpstreamError(UserFacingError):
    """A service we depend on (Hugging Face, a node) failed or did not answer."""

    status = 502
    code = "upstream_error"
    type = "server_error"
