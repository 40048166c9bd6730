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

# The model's own keys come first: a few KB in practice; a longer header gets a second read.
PREFIXES = (64 * 1024, 1 << 20)


async def read_meta(
    hf: HfClient, repo: str, filename: str, revision: str | None
) -> GgufMeta | None:
    """The header of `filename` as far as its model keys, or None when it cannot be read
    (not a GGUF, the Hub slow or failing): then the caller falls back to what it knows."""
    url = hf.file_url(repo, filename, revision)
    meta: GgufMeta | None = None
    try:
        async with asyncio.timeout(min(hf.timeout, 15.0)):
            # The Hub redirects LFS files to its CDN; httpx drops the token on another host.
            async with httpx.AsyncClient(follow_redirects=True, timeout=hf.timeout) as client:
                for size in PREFIXES:
                    headers = {**build_hf_headers(), "Range": f"bytes=0-{size - 1}"}
                    async with client.stream("GET", url, headers=headers) as response:
                        length = response.headers.get("Content-Length", "")
                        # Only a partial answer of the asked size is read (a server that
                        # ignores Range would send the whole file).
                        if (
                            response.status_code != 206
                            or not length.isdigit()
                            or int(length) > size
                        ):
                            log.info(
                                "header of %s/%s: HTTP %s", repo, filename, response.status_code
                            )
                            return None
                        data = await response.aread()
                    meta = read_prefix(data)
                    if meta is None or meta.complete or len(data) < size:
                        break
    except (TimeoutError, httpx.HTTPError, OSError) as exc:
        log.info("header of %s/%s not read: %s", repo, filename, type(exc).__name__)
    return meta
