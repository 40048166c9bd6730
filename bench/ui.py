"""The desktop app's figures: cold start to window, idle memory, event-loop stalls while streaming.

Run: `.venv/bin/python bench/ui.py` (Qt runs offscreen). Start and memory come from `python -m
app` subprocesses; stalls from the real app in this process (one qasync loop for Qt, the
balancer, the local node and the client), with a tiny model served by the fake Hub. Results go
to docs/benchmarks.md.
"""

from __future__ import annotations

import asyncio
import json
import os
import platform
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import aiohttp
import PySide6
import qasync
from PySide6.QtCore import Qt, QTimer
from PySide6.QtGui import QPixmap
from PySide6.QtWidgets import QApplication

from app.context import AppContext
from app.core.desktop_config import DesktopConfig
from app.core.settings import Settings
from app.ui.desktop import Desktop
from bench.common import ROOT, free_port, machine, percentile, record, today
from tests.fakes.fake_hub import FakeHub, FakeRepo
from tests.support.tiny_gguf import write_llama_gguf

RUNS, IDLE_AFTER, STREAM_S, TICK_MS, REFRESH_MS = 5, 5.0, 10.0, 5, 300
TARGET_START_S, TARGET_RSS_MB, TARGET_STALL_MS, TARGET_RAISE_S = 2.0, 250.0, 50.0, 1.0
RAISED = "raised the window for a later launch"  # what the first app logs (app/ui/desktop.py)
REPO, FILE = "bench/chat-gguf", "bench-chat-F32.gguf"


def _kib(path: str, key: str) -> float:
    try:
        lines = Path(path).read_text().splitlines()
    except OSError:
        return float("nan")
    return next((float(x.split()[1]) for x in lines if x.startswith(key + ":")), float("nan"))


def cold_start(tmp: Path) -> dict[str, float]:
    """One `python -m app`: s to the endpoint line, RSS/PSS (MB) 5 s after spawn, then a
    second launch on the same data folder (s until the first logs that it raised its window,
    s until the second exited), s to quit."""
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "LLMLB_CONFIG_DIR": str(tmp / "cfg")}
    env.update(HF_ENDPOINT="http://127.0.0.1:9", HF_HOME=str(tmp / "hf"))
    env.pop("LLMLB_DATA_DIR", None)
    command = [sys.executable, "-m", "app", "--port", str(free_port()), "--data-dir", str(tmp)]
    shown, raised, lines = threading.Event(), threading.Event(), []
    raised_at = [0.0]

    def drain(stream: Any) -> None:  # keeps the pipe empty and spots the endpoint line
        for line in stream:
            lines.append(line)
            if "OpenAI endpoint" in line:
                shown.set()
            if RAISED in line and not raised.is_set():
                raised_at[0] = time.perf_counter()
                raised.set()

    spawned = time.perf_counter()
    proc = subprocess.Popen(command, env=env, cwd=ROOT, stderr=subprocess.PIPE, text=True)
    reader = threading.Thread(target=drain, args=(proc.stderr,), daemon=True)
    reader.start()
    try:
        if not shown.wait(30):
            raise RuntimeError("no endpoint line within 30 s: " + "".join(lines[-5:]))
        start = time.perf_counter() - spawned
        time.sleep(max(0.0, IDLE_AFTER - (time.perf_counter() - spawned)))
        rss = _kib(f"/proc/{proc.pid}/status", "VmRSS") / 1024
        pss = _kib(f"/proc/{proc.pid}/smaps_rollup", "Pss") / 1024
        # A second launch, another --port: it must raise the first window and leave.
        second = [sys.executable, "-m", "app", "--port", str(free_port()), "--data-dir", str(tmp)]
        launched = time.perf_counter()
        out = subprocess.run(second, env=env, cwd=ROOT, capture_output=True, text=True, timeout=30)
        second_exit = time.perf_counter() - launched
        if out.returncode != 0 or not raised.wait(10):
            raise RuntimeError(f"second launch exited {out.returncode}: {out.stderr[-500:]}")
        raise_s = raised_at[0] - launched
        asked = time.perf_counter()
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=15)
        quit_s = time.perf_counter() - asked
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
        reader.join(timeout=5)
    if code != 0 or any("Traceback" in line for line in lines):
        raise RuntimeError(f"app exited {code}: " + "".join(lines[-5:]))
    return {"start": start, "rss": rss, "pss": pss, "quit": quit_s, "raise": raise_s,
            "second_exit": second_exit}  # fmt: skip


class Stalls:
    """A 5 ms precise QTimer and a 5 ms asyncio.sleep heartbeat: how late each fires, in ms."""

    def __init__(self) -> None:
        self.qt: list[float] = []
        self.aio: list[float] = []
        self._last = 0.0
        self._timer = QTimer()
        self._timer.setTimerType(Qt.TimerType.PreciseTimer)
        self._timer.timeout.connect(self._tick)
        self._task: asyncio.Task[None] | None = None

    def _tick(self) -> None:
        now = time.perf_counter()
        self.qt.append((now - self._last) * 1000 - TICK_MS)
        self._last = now

    async def _beat(self) -> None:
        while True:
            before = time.perf_counter()
            await asyncio.sleep(TICK_MS / 1000)
            self.aio.append((time.perf_counter() - before) * 1000 - TICK_MS)

    def start(self) -> Stalls:
        self._last = time.perf_counter()
        self._timer.start(TICK_MS)
        self._task = asyncio.ensure_future(self._beat())
        return self

    async def stop(self) -> dict[str, float]:
        self._timer.stop()
        assert self._task is not None
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)
        qt, aio = self.qt or [0.0], self.aio or [0.0]
        return {"qt": max(qt), "qt99": percentile(qt, 99), "aio": max(aio),
                "aio99": percentile(aio, 99), "ticks": len(self.qt)}  # fmt: skip


async def stream(http: aiohttp.ClientSession, url: str, model: str, until: float) -> int:
    """Streamed chat completions, back to back, until `until`; content chunks received."""
    body = {"model": model, "messages": [{"role": "user", "content": "tell me a long story"}],
            "max_tokens": 1800, "stream": True, "logit_bias": {"2": -100, "260": -100}}  # fmt: skip
    chunks = 0
    while time.perf_counter() < until:
        async with http.post(url + "/v1/chat/completions", json=body) as r:
            assert r.status == 200, await r.text()
            async for line in r.content:
                if time.perf_counter() >= until:
                    break  # leaving mid-stream cancels the generation
                if line.startswith(b"data: {"):
                    choices = json.loads(line[6:])["choices"]
                    chunks += bool(choices and choices[0].get("delta", {}).get("content"))
    return chunks


async def stall_main(app: QApplication, tmp: Path) -> dict[str, Any]:
    ctx = AppContext(Settings(host="127.0.0.1", port=0, data_dir=tmp / "data", hf_timeout=1.5))
    await ctx.start()
    desktop = Desktop(app, ctx.base_url, ctx.admin_token, DesktopConfig(), str(tmp), lambda: None)
    out: dict[str, Any] = {"refreshes": 0}
    desktop.state.hubChanged.connect(lambda: out.__setitem__("refreshes", out["refreshes"] + 1))
    wake, refresher = QTimer(), QTimer()  # `wake` as in _gui_main
    refresher.timeout.connect(desktop.state.refresh)
    try:
        wake.start(200)
        desktop.start()
        url, timeout = ctx.base_url, aiohttp.ClientTimeout(total=120)
        admin = {"Authorization": f"Bearer {ctx.admin_token}"}
        async with aiohttp.ClientSession(headers=admin, timeout=timeout) as http:
            async with http.post(url + "/v0/models/register", json={"repo": REPO}) as r:
                assert r.status == 201, await r.text()
                model = (await r.json())["name"]
            deadline = time.monotonic() + 90
            while True:
                async with http.get(url + "/v0/models/hub") as r:
                    entry = next(m for m in await r.json() if m["id"] == model)
                if entry["lifecycle_status"] == "ready":
                    break
                assert entry["lifecycle_status"] != "error" and time.monotonic() < deadline, entry
                await asyncio.sleep(0.1)
            await stream(http, url, model, time.perf_counter() + 1.0)  # loads the model
            refresher.start(REFRESH_MS)
            probe = Stalls().start()
            await asyncio.sleep(3.0)
            out["idle"] = await probe.stop()
            node = ctx.local_node
            assert node is not None
            runner = node.engines.runners[model]
            generated = runner.generated_tokens
            probe, out["refreshes"], started = Stalls().start(), 0, time.perf_counter()
            out["chunks"] = await stream(http, url, model, started + STREAM_S)
            out["seconds"] = time.perf_counter() - started
            out["tokens"] = runner.generated_tokens - generated  # a chunk carries several
            out["busy"] = await probe.stop()
            out.update(await playground(app, desktop, model))
        return out
    finally:
        refresher.stop()
        wake.stop()
        await desktop.close()
        await ctx.stop()


async def playground(app: QApplication, desktop: Desktop, model: str) -> dict[str, Any]:
    """Stalls while the Playground streams an answer, and what repainting the last message
    costs at 10 and at 200 messages (appending must not re-render the conversation)."""
    page = desktop.window.playground.chat  # the chat panel beside the conversation list
    desktop.window.show_page("Playground")
    page.refresh_models()
    page.model.setCurrentIndex(max(0, page.model.findData(model)))
    page.max_tokens.setValue(3000)
    page.input.setPlainText("Tell me a long story.")
    probe = Stalls().start()
    page.send()
    assert page.task is not None
    await asyncio.wait_for(page.task, 60)
    out: dict[str, Any] = {"pg_busy": await probe.stop(), "pg_text": len(page.widgets[-1].text)}
    page.reset()
    sample = "Some **bold** text, a list:\n\n- one\n- two\n\n```python\nprint('x')\n```\n" * 3

    def repaint_ms() -> float:
        last = page.widgets[-1]
        times = []
        for i in range(40):
            started = time.perf_counter()
            last.set_text(sample + f" token {i}")
            page.messages.activate()  # the conversation's layout, as Qt redoes it
            last.render(QPixmap(last.size()))  # and the paint of the message that changed
            times.append((time.perf_counter() - started) * 1000)
        return statistics.median(times)

    for count, key in ((10, "render_10"), (200, "render_200")):
        while len(page.widgets) < count:
            page._add("user" if len(page.widgets) % 2 == 0 else "assistant", sample)
        await asyncio.sleep(0.2)  # let Qt lay the new messages out
        out[key] = repaint_ms()
    page.reset()
    return out


def stalls(tmp: Path) -> dict[str, Any]:
    model = write_llama_gguf(tmp / FILE, n_embd=256, n_layer=4, n_ff=512)
    hub = FakeHub([FakeRepo(REPO, {FILE: model.read_bytes()})]).start()
    os.environ.update(HF_ENDPOINT=hub.url, LLMLB_CONFIG_DIR=str(tmp / "cfg"), HF_HOME=str(tmp))
    try:
        app = QApplication.instance() or QApplication([])
        assert isinstance(app, QApplication)
        return dict(qasync.run(stall_main(app, tmp)))
    finally:
        hub.stop()


def main() -> None:
    load = os.getloadavg()[0]
    runs = []
    for _ in range(RUNS):
        with tempfile.TemporaryDirectory(prefix="llmlb-bench-ui-") as tmp:
            runs.append(cold_start(Path(tmp)))
    with tempfile.TemporaryDirectory(prefix="llmlb-bench-ui-") as tmp:
        s = stalls(Path(tmp))
    med = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
    idle, busy = s["idle"], s["busy"]
    worst = max(busy["qt"], busy["aio"])

    def ok(met: bool) -> str:
        return "met" if met else "**MISSED**"

    starts = ", ".join(f"{r['start']:.2f}" for r in runs)
    raises = ", ".join(f"{r['raise']:.2f}" for r in runs)
    text = f"""## Desktop app (`bench/ui.py`)

{today()}, {machine()}, offscreen Qt.
The machine is shared with other engineers running their tests at the same time: load average
{load:.1f} at the start; on a busy machine the start, the stalls and tok/s below vary from run
to run.

Method. *Start*: `python -m app --port P --data-dir <fresh tmp>` ({RUNS} runs, Hub unreachable),
from spawn until the window is shown and the endpoint line printed (`_gui_main` prints it right
after `desktop.start()` shows the window). *Memory*: that process's VmRSS and PSS
{IDLE_AFTER:.0f} s after spawn, no model loaded. *Second launch*: then `python -m app
--port <another> --data-dir <the same>`, from its spawn until the first app's log line
"{RAISED}" reaches the bench (the first shows, un-minimises, raises
and activates its window, then logs); the second exits 0 without starting a balancer.
*Quit*: SIGTERM to exit. *Stalls*: the real app
in one process and one qasync loop (balancer, local node, `Desktop`), a random-weight llama GGUF
(n_embd 256, 4 layers) from the fake Hub, registered, ready and loaded; {STREAM_S:.0f} s of
streamed chat completions (EOS banned) through the balancer by aiohttp on that loop while
`desktop.state.refresh()` runs every {REFRESH_MS} ms; a stall is how late a {TICK_MS} ms precise
QTimer, or an `asyncio.sleep(0.005)` heartbeat, fires. Baseline: 3 s of refreshes, no stream.

| Figure | Result | Target | |
|---|---|---|---|
| Cold start to window shown, median | {med["start"]:.2f} s (runs {starts}) | \
< {TARGET_START_S:.0f} s | {ok(med["start"] < TARGET_START_S)} |
| Idle memory {IDLE_AFTER:.0f} s after start, median | RSS {med["rss"]:.0f} MB, \
PSS {med["pss"]:.0f} MB | < {TARGET_RSS_MB:.0f} MB | {ok(med["rss"] < TARGET_RSS_MB)} |
| Second launch to first window raised, median | {med["raise"]:.2f} s (runs {raises}; \
second exits after {med["second_exit"]:.2f} s) | < {TARGET_RAISE_S:.0f} s | \
{ok(med["raise"] < TARGET_RAISE_S)} |
| Quit, SIGTERM to exit, median | {med["quit"]:.2f} s | < 5 s | {ok(med["quit"] < 5)} |
| Stall, streaming + refresh (QTimer) | max {busy["qt"]:.1f} ms, p99 {busy["qt99"]:.1f} ms \
| ≤ {TARGET_STALL_MS:.0f} ms | {ok(busy["qt"] <= TARGET_STALL_MS)} |
| Stall, streaming + refresh (asyncio) | max {busy["aio"]:.1f} ms, p99 {busy["aio99"]:.1f} ms \
| ≤ {TARGET_STALL_MS:.0f} ms | {ok(busy["aio"] <= TARGET_STALL_MS)} |
| Stall, refresh only (QTimer / asyncio) | max {idle["qt"]:.1f} / {idle["aio"]:.1f} ms, \
p99 {idle["qt99"]:.1f} / {idle["aio99"]:.1f} ms | | |

Playground (the real page streaming an answer, {s["pg_text"]} characters): longest stall \
QTimer {s["pg_busy"]["qt"]:.1f} ms, asyncio {s["pg_busy"]["aio"]:.1f} ms (p99 \
{s["pg_busy"]["qt99"]:.1f} / {s["pg_busy"]["aio99"]:.1f}): target \
{ok(max(s["pg_busy"]["qt"], s["pg_busy"]["aio"]) <= TARGET_STALL_MS)}. Repainting the message \
being streamed costs {s["render_10"]:.2f} ms in a 10-message conversation and \
{s["render_200"]:.2f} ms in a 200-message one (median of 40; ratio \
{s["render_200"] / s["render_10"]:.2f}): only the last message is re-rendered.

Streaming: {s["tokens"]} tokens in {s["chunks"]} streamed chunks in {s["seconds"]:.1f} s \
({s["tokens"] / s["seconds"]:.0f} tok/s; a stream gathers its tokens for up to 20 ms),
{s["refreshes"]} refreshes, {busy["ticks"]} QTimer firings. Longest stall {worst:.1f} ms: target
{ok(worst <= TARGET_STALL_MS)}. PySide6 {PySide6.__version__}, Python \
{platform.python_version()}, llama.cpp threads: the node's default (all cores but one).
"""
    record("ui", text)
    print(text, flush=True)


if __name__ == "__main__":
    main()
