"""What a download says to the Hub and reads from its answers: credentials for the Hub's own
origin only, HEAD through same-origin redirects, the sha256 in an LFS file's ETag, Retry-After.

Plain HTTP knowledge, no state: the transfer (`download_transfer`) decides what to do with it.
"""

from __future__ import annotations

import re
from urllib.parse import unquote, urlsplit

import httpx2

# The documented import path; its lazy __init__ does not re-export the name for mypy.
from huggingface_hub.utils import build_hf_headers  # type: ignore[attr-defined]

from app.core.hf import hf_endpoint

_SHA256_RE = re.compile(r"^[0-9a-f]{64}$")
# Errors a retry can outlive: refused or reset connections, stalls, bodies cut short.
TRANSIENT_ERRORS = (httpx2.TimeoutException, httpx2.NetworkError, httpx2.RemoteProtocolError)


def request_headers(url: str, extra: dict[str, str] | None = None) -> dict[str, str]:
    """Headers for a download: the Hugging Face token only when `url` is on the configured
    Hub (same scheme, host and port as HF_ENDPOINT); any other host gets no credentials."""
    # Read at each try: a token set while the node runs is used by the next attempt.
    token = None if same_origin(url, hf_endpoint()) else False
    headers: dict[str, str] = build_hf_headers(token=token, headers=dict(extra or {}))
    if token is False:
        headers.pop("authorization", None)
        headers.pop("Authorization", None)
    return headers


def same_origin(a: str | httpx2.URL, b: str | httpx2.URL) -> bool:
    """Whether two URLs share scheme, host and port (default ports filled in)."""
    try:
        x, y = httpx2.URL(a), httpx2.URL(b)
    except (httpx2.InvalidURL, TypeError, ValueError):
        return False
    return _origin(x) == _origin(y)


def _origin(url: httpx2.URL) -> tuple[str, str, int | None]:
    scheme = url.scheme.lower()
    port = url.port or {"http": 80, "https": 443}.get(scheme)
    return scheme, url.host.lower(), port


def head_chain(client: httpx2.Client, url: str, headers: dict[str, str]) -> list[httpx2.Response]:
    """HEAD `url`, following redirects on the same origin only, like huggingface_hub does.

    A redirect to another host is the CDN's signed URL, which may accept GET only; the Hub's
    redirect response already carries the file's size and sha256.
    """
    chain: list[httpx2.Response] = []
    target = httpx2.URL(url)
    for _ in range(10):
        response = client.head(target, headers=headers, follow_redirects=False)
        chain.append(response)
        location = response.headers.get("Location")
        if not response.is_redirect or not location:
            break
        following = target.join(location)
        if not same_origin(following, target):
            break
        target = following
    return chain


def etag_sha256(chain: list[httpx2.Response]) -> str | None:
    """The sha256 the Hub gives as the (linked) ETag of an LFS file, if any response has one."""
    for name in ("X-Linked-Etag", "ETag"):
        for response in chain:
            value = response.headers.get(name, "").strip()
            value = value.removeprefix("W/").strip('"').lower()
            if _SHA256_RE.match(value):
                return value
    return None


def retry_after(response: httpx2.Response) -> float | None:
    """The Retry-After header in seconds, when it is a number."""
    value = response.headers.get("Retry-After", "").strip()
    try:
        return max(0.0, float(value)) if value else None
    except ValueError:
        return None


def file_label(url: str) -> str:
    """The repo file a resolve URL names (`Q4/model.gguf`), for messages."""
    try:
        path = unquote(urlsplit(url).path)
    except ValueError:  # a malformed URL: the request will say so
        return url
    _, sep, rest = path.partition("/resolve/")
    if sep and "/" in rest:
        return rest.split("/", 1)[1]
    return path.rsplit("/", 1)[-1] or url
