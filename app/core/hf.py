"""Hugging Face Hub metadata via huggingface_hub: async, bounded, readable on failure."""

from __future__ import annotations

import asyncio
import logging
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import urlsplit

import httpx2 as httpx
from huggingface_hub import HfApi, hf_hub_url
from huggingface_hub.errors import (
    GatedRepoError,
    HfHubHTTPError,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)

from app.core.errors import BadRequest, UpstreamError

log = logging.getLogger(__name__)
T = TypeVar("T")
DEFAULT_ENDPOINT = "https://huggingface.co"


def hf_endpoint() -> str:
    """HF_ENDPOINT as huggingface_hub reads it, but read now (tests and mirrors change it)."""
    return (os.environ.get("HF_ENDPOINT") or DEFAULT_ENDPOINT).rstrip("/")


def endpoint_hosts() -> frozenset[str]:
    """Host names (with port) of a custom endpoint, accepted in pasted URLs like huggingface.co."""
    netloc = urlsplit(hf_endpoint()).netloc.lower()
    return frozenset({netloc}) if netloc else frozenset()


@dataclass(frozen=True)
class RepoFileInfo:
    """A file in a repo: its path, size, and sha256 when it is stored with LFS."""

    name: str
    size: int
    sha256: str | None


@dataclass(frozen=True)
class RepoListing:
    """A repo at a revision: its commit and files."""

    repo_id: str
    sha: str | None
    files: list[RepoFileInfo]
    downloads: int | None
    likes: int | None


class HfClient:
    """Every Hub call in its own small thread pool, with a timeout, mapped to our errors."""

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self._executor = ThreadPoolExecutor(max_workers=4, thread_name_prefix="hf")

    def close(self) -> None:
        """Stop taking calls; calls in flight end by their own timeout."""
        self._executor.shutdown(wait=False, cancel_futures=True)

    def file_url(self, repo_id: str, filename: str, revision: str | None) -> str:
        """The resolve URL a node downloads from."""
        return hf_hub_url(repo_id, filename, revision=revision, endpoint=hf_endpoint())

    async def repo_listing(self, repo_id: str, revision: str | None = None) -> RepoListing:
        """The repo's files with sizes and sha256 (one /api/models call)."""
        info = await self._call(self._model_info, repo_id, revision)
        files = [
            RepoFileInfo(
                s.rfilename,
                int(s.size or (s.lfs.size if s.lfs else 0)),
                s.lfs.sha256 if s.lfs else None,
            )
            for s in (info.siblings or [])
        ]
        return RepoListing(repo_id, info.sha, files, info.downloads, info.likes)

    async def popularity(self, repo_id: str) -> tuple[int | None, int | None]:
        """(downloads, likes) of a repo."""
        info = await self._call(self._model_info, repo_id, None, False)
        return info.downloads, info.likes

    def _model_info(self, repo_id: str, revision: str | None, files: bool = True) -> Any:
        api = HfApi(endpoint=hf_endpoint())
        return api.model_info(
            repo_id, revision=revision, files_metadata=files, timeout=self.timeout
        )

    async def _call(self, fn: Any, repo_id: str, *args: Any) -> Any:
        loop = asyncio.get_running_loop()
        future = loop.run_in_executor(self._executor, fn, repo_id, *args)
        try:
            # The library's own timeout covers each read; this one bounds the whole call.
            async with asyncio.timeout(self.timeout + 1.0):
                return await future
        except (TimeoutError, httpx.TimeoutException) as exc:
            raise UpstreamError(
                f"Hugging Face did not answer within {self.timeout:g} s; try again later",
                status=504,
                code="hf_timeout",
            ) from exc
        except GatedRepoError as exc:
            raise BadRequest(
                f"'{repo_id}' is gated on Hugging Face: accept its licence there and set HF_TOKEN",
                param="repo",
                code="hf_gated",
            ) from exc
        except RevisionNotFoundError as exc:
            raise BadRequest(
                f"'{repo_id}' has no such revision on Hugging Face",
                param="repo",
                code="hf_revision_not_found",
            ) from exc
        except RepositoryNotFoundError as exc:
            raise BadRequest(
                f"'{repo_id}' was not found on Hugging Face (private repos need HF_TOKEN)",
                param="repo",
                code="hf_repo_not_found",
            ) from exc
        except HfHubHTTPError as exc:
            status = exc.response.status_code if exc.response is not None else "?"
            raise UpstreamError(
                f"Hugging Face answered HTTP {status}; try again later", code="hf_unavailable"
            ) from exc
        except (httpx.HTTPError, OSError) as exc:
            raise UpstreamError(
                f"Hugging Face could not be reached ({type(exc).__name__}); check the network",
                code="hf_unreachable",
            ) from exc
