"""Read the start of a GGUF file on the Hub (an HTTP Range request) to learn what it is before
any node has fetched it: the balancer registers a model with capabilities from its header."""

from __future__ import annotations

import asyncio
import logging

import httpx2 as httpx
from huggingface_hub.utils import build_hf_headers  # type: ignore[attr-defined]

from app.core.gguf_meta import GgufMeta, read_prefix
from app.core.hf import HfClient

log = logging.getLogger(__name__)

CHUNK = 16 * 1024
MAX_PREFIX = 1 << 20  # the model's own keys come first; a megabyte is far more than they take


async def read_meta(
    hf: HfClient, repo: str, filename: str, revision: str | None
) -> GgufMeta | None:
    """The header of `filename` as far as its model keys, or None when it cannot be read
    (not a GGUF, the Hub slow or failing): then the caller falls back to what it knows."""
    url = hf.file_url(repo, filename, revision)
    headers = {**build_hf_headers(), "Range": f"bytes=0-{MAX_PREFIX - 1}"}
    data = b""
    meta: GgufMeta | None = None
    try:
        async with asyncio.timeout(min(hf.timeout, 15.0)):
            # The Hub redirects LFS files to its CDN; httpx drops the token on another host.
            async with httpx.AsyncClient(follow_redirects=True, timeout=hf.timeout) as client:
                async with client.stream("GET", url, headers=headers) as response:
                    if response.status_code not in (200, 206):
                        log.info("header of %s/%s: HTTP %s", repo, filename, response.status_code)
                        return None
                    async for chunk in response.aiter_bytes(CHUNK):
                        data += chunk
                        meta = read_prefix(data)
                        if meta is None or meta.complete or len(data) >= MAX_PREFIX:
                            break
    except (TimeoutError, httpx.HTTPError, OSError) as exc:
        log.info("header of %s/%s not read: %s", repo, filename, type(exc).__name__)
    return meta if meta is not None else (read_prefix(data) if data else None)
