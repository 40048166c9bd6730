"""A local fake of the Hugging Face Hub speaking the paths and headers huggingface_hub uses.

It serves `/api/models/{repo}[/revision/{rev}]` (model info, with file sizes and LFS sha256
when `blobs=true`) and `/{repo}/resolve/{rev}/{file}` (HEAD and GET with Range, ETag,
X-Repo-Commit). It runs on its own thread and loop so sync, async and Qt tests can all use
it. Modes make it hang or answer 503; a throttle makes downloads take seconds; `redirect_to`
sends file requests to another server, as the Hub sends them to its CDN. It records each
request's Authorization header, to show who was given a token.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

_RANGE_RE = re.compile(r"^bytes=(\d+)-(\d*)$")


def _header_read(record: RequestRecord) -> bool:
    return record.method == "GET" and bool(re.match(r"^bytes=0-\d+$", record.range or ""))


@dataclass
class FakeRepo:
    """A model repo: files by path, popularity, commit sha."""

    repo_id: str
    files: dict[str, bytes]
    downloads: int = 1000
    likes: int = 10
    sha: str = "0123456789abcdef0123456789abcdef01234567"
    pipeline_tag: str | None = "text-generation"
    gated: bool = False

    @staticmethod
    def is_lfs(name: str) -> bool:
        """Large binaries live in LFS (their ETag is the sha256), like on the real Hub."""
        return name.endswith((".gguf", ".bin", ".safetensors"))


@dataclass
class RequestRecord:
    """One request the fake received."""

    method: str
    path: str
    range: str | None
    query: dict[str, str] = field(default_factory=dict)
    authorization: str | None = None  # the Authorization header, to see who got a token


class FakeHub:
    """Start with `start()` (or as a context manager); `url` is its HF_ENDPOINT."""

    def __init__(self, repos: list[FakeRepo] | None = None) -> None:
        self.repos: dict[str, FakeRepo] = {r.repo_id: r for r in repos or []}
        self.mode = "ok"  # "ok", "hang" or "error503"
        self.bytes_per_second: float | None = None  # throttle for file downloads
        self.fail_after_bytes: int | None = None  # cut a download after this many bytes
        # Like the real Hub's redirect of LFS files to its CDN: resolve URLs answer 302 to
        # this base URL + the same path, with the X-Linked-* headers on the redirect.
        self.redirect_to: str | None = None
        self.requests: list[RequestRecord] = []
        self.url = ""
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None
        self._ready = threading.Event()
        self._lock = threading.Lock()

    def add(self, repo: FakeRepo) -> FakeRepo:
        """Publish a repo."""
        self.repos[repo.repo_id] = repo
        return repo

    def file_requests(self, name: str) -> list[RequestRecord]:
        """Requests that downloaded a file (GET on its resolve URL), not header reads."""
        with self._lock:
            return [
                r
                for r in self.requests
                if r.method == "GET" and r.path.endswith("/" + name) and not _header_read(r)
            ]

    def header_reads(self, name: str) -> list[RequestRecord]:
        """Requests that read the start of a file (a closed Range from byte 0), as the
        balancer does at registration to learn what a GGUF is."""
        with self._lock:
            return [r for r in self.requests if r.path.endswith("/" + name) and _header_read(r)]

    # -- lifecycle --------------------------------------------------------------
    def start(self) -> FakeHub:
        """Serve on 127.0.0.1 on a free port, on a thread of its own."""
        self._thread = threading.Thread(target=self._run, name="fake-hub", daemon=True)
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("fake hub did not start")
        return self

    def stop(self) -> None:
        """Stop serving (hanging requests are cancelled)."""
        if self._loop is None:
            return
        asyncio.run_coroutine_threadsafe(self._shutdown(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        assert self._thread is not None
        self._thread.join(10)
        self._loop = None

    def __enter__(self) -> FakeHub:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        asyncio.set_event_loop(loop)
        loop.run_until_complete(self._startup())
        self._ready.set()
        loop.run_forever()
        loop.close()

    async def _startup(self) -> None:
        app = web.Application()
        app.router.add_get("/api/models/{org}/{name}", self._model_info)
        app.router.add_get("/api/models/{org}/{name}/revision/{rev}", self._model_info)
        app.router.add_route("*", "/{org}/{name}/resolve/{rev}/{path:.+}", self._resolve)
        app.middlewares.append(self._record)
        self._runner = web.AppRunner(app, shutdown_timeout=0.5)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = self._runner.addresses[0][1]
        self.url = f"http://127.0.0.1:{port}"

    async def _shutdown(self) -> None:
        assert self._runner is not None
        await self._runner.cleanup()

    # -- handlers ---------------------------------------------------------------
    @web.middleware
    async def _record(self, request: web.Request, handler: Any) -> web.StreamResponse:
        with self._lock:
            self.requests.append(
                RequestRecord(
                    request.method,
                    request.path,
                    request.headers.get("Range"),
                    dict(request.query),
                    request.headers.get("Authorization"),
                )
            )
        if self.mode == "hang":
            await asyncio.sleep(3600)
        if self.mode == "error503":
            return web.json_response({"error": "Service Unavailable"}, status=503)
        response: web.StreamResponse = await handler(request)
        return response

    def _repo(self, request: web.Request) -> FakeRepo:
        repo_id = f"{request.match_info['org']}/{request.match_info['name']}"
        repo = self.repos.get(repo_id)
        if repo is None:
            raise web.HTTPNotFound(
                headers={"X-Error-Code": "RepoNotFound", "X-Error-Message": "Repository not found"},
                text='{"error":"Repository not found"}',
                content_type="application/json",
            )
        rev = request.match_info.get("rev")
        if rev is not None and rev not in {"main", repo.sha}:
            raise web.HTTPNotFound(
                headers={"X-Error-Code": "RevisionNotFound", "X-Error-Message": "Invalid rev id"},
                text='{"error":"Invalid rev id"}',
                content_type="application/json",
            )
        return repo

    async def _model_info(self, request: web.Request) -> web.Response:
        repo = self._repo(request)
        blobs = request.query.get("blobs", "").lower() in {"1", "true"}
        siblings = []
        for name, data in repo.files.items():
            sibling: dict[str, Any] = {"rfilename": name}
            if blobs:
                sibling["size"] = len(data)
                sibling["blobId"] = hashlib.sha1(data).hexdigest()
                if repo.is_lfs(name):
                    sibling["lfs"] = {
                        "sha256": hashlib.sha256(data).hexdigest(),
                        "size": len(data),
                        "pointerSize": 135,
                    }
            siblings.append(sibling)
        org = repo.repo_id.split("/")[0]
        return web.json_response(
            {
                "_id": hashlib.md5(repo.repo_id.encode()).hexdigest()[:24],
                "id": repo.repo_id,
                "modelId": repo.repo_id,
                "author": org,
                "sha": repo.sha,
                "lastModified": "2026-01-01T00:00:00.000Z",
                "createdAt": "2025-01-01T00:00:00.000Z",
                "private": False,
                "disabled": False,
                "gated": repo.gated,
                "downloads": repo.downloads,
                "likes": repo.likes,
                "tags": ["gguf"],
                "pipeline_tag": repo.pipeline_tag,
                "library_name": "gguf",
                "siblings": siblings,
            }
        )

    async def _resolve(self, request: web.Request) -> web.StreamResponse:
        repo = self._repo(request)
        path = request.match_info["path"]
        data = repo.files.get(path)
        if data is None:
            raise web.HTTPNotFound(
                headers={"X-Error-Code": "EntryNotFound", "X-Error-Message": "Entry not found"},
                text='{"error":"Entry not found"}',
                content_type="application/json",
            )
        etag = (
            hashlib.sha256(data).hexdigest()
            if repo.is_lfs(path)
            else hashlib.sha1(data).hexdigest()
        )
        headers = {
            "ETag": f'"{etag}"',
            "X-Repo-Commit": repo.sha,
            "Accept-Ranges": "bytes",
        }
        if repo.is_lfs(path):
            headers["X-Linked-Etag"] = f'"{etag}"'
            headers["X-Linked-Size"] = str(len(data))
        if self.redirect_to is not None:
            headers["Location"] = self.redirect_to + request.path
            return web.Response(status=302, headers=headers)
        start, end = 0, len(data) - 1
        status = 200
        range_header = request.headers.get("Range")
        if range_header:
            match = _RANGE_RE.match(range_header.strip())
            if not match or int(match.group(1)) >= len(data):
                return web.Response(status=416, headers={"Content-Range": f"bytes */{len(data)}"})
            start = int(match.group(1))
            end = min(int(match.group(2)), end) if match.group(2) else end
            status = 206
            headers["Content-Range"] = f"bytes {start}-{end}/{len(data)}"
        headers["Content-Length"] = str(end - start + 1)
        if request.method == "HEAD":
            return web.Response(status=status, headers=headers)
        response = web.StreamResponse(status=status, headers=headers)
        await response.prepare(request)
        await self._send(request, response, data[start : end + 1])
        return response

    async def _send(self, request: web.Request, response: web.StreamResponse, body: bytes) -> None:
        chunk = 16 * 1024
        sent = 0
        started = time.monotonic()
        for offset in range(0, len(body), chunk):
            piece = body[offset : offset + chunk]
            if self.fail_after_bytes is not None and sent + len(piece) > self.fail_after_bytes:
                piece = piece[: max(0, self.fail_after_bytes - sent)]
                if piece:
                    await response.write(piece)
                # Drop the connection mid-body, as a flaky network would.
                if request.transport is not None:
                    request.transport.close()
                return
            await response.write(piece)
            sent += len(piece)
            if self.bytes_per_second:
                due = started + sent / self.bytes_per_second
                delay = due - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
        await response.write_eof()
