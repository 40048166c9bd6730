"""`llmlb --self-test`: start the embedded balancer in a temporary data dir, check that it
answers and that llama.cpp's libraries load, then open the real window (offscreen without a
display) and render each page, and check that Japanese text has glyphs and that the Japanese
translation loads: a broken bundle fails."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import tempfile
import time
import traceback
import urllib.error
import urllib.request
from pathlib import Path
from typing import TYPE_CHECKING

from app.core.settings import Settings

if TYPE_CHECKING:
    from app.context import AppContext


def self_test() -> int:
    """Run every check; print ok and return 0, or say what failed and return 1."""
    started = time.monotonic()
    _check_llama()
    if sys.platform.startswith("linux") and not any(
        os.environ.get(v) for v in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM")
    ):
        os.environ["QT_QPA_PLATFORM"] = "offscreen"  # a server or CI box: no screen, same widgets
    from app.ui import render_check  # Qt's libraries load here: a bundle without them fails

    app = render_check.start_qt()
    code = render_check.run(app, _serve_and_render(app))
    print(f"self-test took {time.monotonic() - started:.1f} s", file=sys.stderr)
    if code == 0:
        print("ok")
    return code


def _check_llama() -> None:
    import llama_cpp  # loads llama.cpp's shared libraries: a broken bundle fails here

    from app.node.devices import built_backend, list_devices

    llama_cpp.llama_backend_init()
    assert llama_cpp.llama_print_system_info(), "llama.cpp"
    devices = [
        f"{d.description or d.name} ({d.free_bytes / 1e9:.1f} GB free)" for d in list_devices()
    ]
    print(
        f"llama.cpp backend: {built_backend()}; devices: {', '.join(devices) or 'none (CPU)'}",
        file=sys.stderr,
    )


async def _serve_and_render(app: object) -> int:
    """The balancer headless, its API, then the window on it; 1 when anything failed."""
    from app.context import AppContext
    from app.ui.render_check import japanese_problem, translation_problem, window_problems

    problems = [p for p in [japanese_problem(app), translation_problem()] if p]
    with tempfile.TemporaryDirectory(prefix="llmlb-self-test-") as tmp:
        settings = Settings.from_env(data_dir=Path(tmp), port=0, local_node=False)
        ctx = AppContext(settings)
        await ctx.start()
        try:
            await _check_api(ctx)
            problems += await window_problems(app, ctx.base_url, ctx.admin_token, tmp)
        except Exception as exc:
            traceback.print_exc()
            problems.append(f"{type(exc).__name__}: {exc}")
        finally:
            await ctx.stop()
    for problem in problems:
        print(f"llmlb self-test FAILED: {problem}", file=sys.stderr, flush=True)
    return 1 if problems else 0


def _call(ctx: AppContext, path: str, body: object = None) -> tuple[int, object]:
    """`path` on the balancer as its admin (a POST of `body` when given): (status, JSON)."""
    headers = {"Authorization": f"Bearer {ctx.admin_token}", "Content-Type": "application/json"}
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(ctx.base_url + path, data=data, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return int(resp.status), json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


async def _check_api(ctx: object) -> None:
    from app.context import AppContext

    assert isinstance(ctx, AppContext)
    _, models = await asyncio.to_thread(_call, ctx, "/v1/models")
    _, hub = await asyncio.to_thread(_call, ctx, "/v0/models/hub")
    assert isinstance(models, dict) and models.get("object") == "list", models
    assert ctx.balancer is not None
    assert isinstance(hub, list) and len(hub) == len(ctx.balancer.catalog), "catalog"
    await _check_history(ctx)


async def _check_history(ctx: AppContext) -> None:
    """A request is recorded, and written by the history's own process (the bundle can start
    it: the balancer would fall back to writing in its own process, slower, without a word)."""
    assert ctx.balancer is not None
    writer = ctx.balancer.history.writer
    assert writer is not None
    for _ in range(200):  # it starts with the balancer, in the background
        if writer.alive:
            break
        await asyncio.sleep(0.05)
    assert writer.alive, "the request history's writer process did not start"
    chat = {"model": "self-test-absent", "messages": []}
    status, _ = await asyncio.to_thread(_call, ctx, "/v1/chat/completions", chat)
    assert status == 404, status
    _, rows = await asyncio.to_thread(_call, ctx, "/v0/requests")
    assert isinstance(rows, list) and len(rows) == 1, rows
    assert writer.alive, "the request history's writer process stopped"
