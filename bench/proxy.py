"""The proxy hop: what the balancer adds in front of a fast upstream, against nginx and LiteLLM.

Run: `.venv/bin/python bench/proxy.py` (about 3 minutes, after waiting up to a minute for a
quiet machine). It needs nginx and wrk (Debian's `nginx-light` and `wrk`; installed with
apt-get when missing and running as root) and LiteLLM's proxy in its own venv under
`~/.cache/llmlb-bench/litellm-venv` (created on the first run, about a minute).

The upstream is nginx 1.22 with one worker (`bench/proxy/upstream.conf`): `return 200` with a
tiny chat completion on `/v1/chat/completions`, a `/v1/models` listing `bench-model`, and under
the base URL `…/stream` a second "server" (model `bench-sse`) whose chat completion is a
prepared 1,000-chunk `chat.completion.chunk` SSE answer (~171 KB, distinct text per chunk,
ending `data: [DONE]`) served from a file. Four paths are measured in the same run, one after
the other, everything on 127.0.0.1:

  (1) direct to the upstream;
  (2) nginx as a reverse proxy with a keepalive upstream pool, one worker (`reverse.conf`);
  (3) the thinnest possible aiohttp relay (`bench/proxy/relay.py`: one handler forwarding the
      body through one pooled ClientSession and streaming the answer back, on uvloop): the
      Python ceiling llmlb is held to;
  (4) llmlb: `llmlb serve --no-local-node`, the upstream (and its `/stream` twin) added with
      `POST /v0/nodes/external`, loaded once `/v1/models` lists both models; every record it
      keeps is on (history with bodies, stats, queue tracking, metrics);
  (5) LiteLLM's proxy (`litellm --config`, one worker, master key), models `openai/...`.

Load: `wrk -t1 -cC -d8s --latency -s bench/proxy/chat.lua URL` at C = 1, 16, 64 (req/s, p50,
p99), then the same script with `BENCH_STREAM=1` (`"stream": true`) at C = 1 (p50 time to
receive the whole stream) and C = 8 (streams/s). Every path's answers are checked once before
it is loaded (the chat JSON, and the stream's event count and `[DONE]`). A path that cannot be
measured gets a row saying why and the rest is still measured. The section goes to
docs/benchmarks.md and is printed.
"""

from __future__ import annotations

import json
import os
import resource
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import free_port, machine, record, start_llmlb, stop, today

HERE = Path(__file__).resolve().parent / "proxy"
CHAT_LUA = HERE / "chat.lua"  # BENCH_STREAM=1: a streaming request
SECONDS = 8
WARMUP_SECONDS = 2
CONCURRENCY = (1, 16, 64)
STREAM_CONCURRENCY = (1, 8)
CHUNKS = 1000
MODEL = "bench-model"
STREAM_MODEL = "bench-sse"
LITELLM_VERSION = "1.108.7"
LITELLM_VENV = Path.home() / ".cache" / "llmlb-bench" / "litellm-venv"
LITELLM_START_TIMEOUT = 90.0
MODELS_TIMEOUT = 30.0
TARGET_ADDED_P50_MS = 0.5  # llmlb p50 − direct p50 at c=1
TARGET_SHARE_OF_RELAY = 0.80  # llmlb req/s at c=64 / the thin aiohttp relay's
TARGET_P99_MS = 30.0  # llmlb p99 at c=64
TARGET_TIMES_LITELLM = 5.0  # llmlb req/s at c=64 / LiteLLM
TARGET_TRANSLATION_MS = 1.0  # /v1/messages p50 − /v1/chat/completions p50, 1,000-chunk stream
QUIET_SHARE = 0.10  # other work may use this much of the cores when we start
QUIET_WAIT = 60.0
EXTERNAL_MISSING = "not measured yet (external nodes missing)"
CHAT_ANSWER = {
    "id": "chatcmpl-bench",
    "object": "chat.completion",
    "created": 1700000000,
    "model": MODEL,
    "choices": [
        {
            "index": 0,
            "message": {"role": "assistant", "content": "Hi!"},
            "finish_reason": "stop",
        }
    ],
    "usage": {"prompt_tokens": 9, "completion_tokens": 2, "total_tokens": 11},
}


def say(message: str) -> None:
    print(f"[proxy bench] {message}", file=sys.stderr, flush=True)


def compact(value: object) -> str:
    return json.dumps(value, separators=(",", ":"))


def models_answer(name: str) -> str:
    return compact(
        {"object": "list", "data": [{"id": name, "object": "model", "created": 0, "owned_by": "x"}]}
    )


def sse_answer() -> bytes:
    """1,000 `chat.completion.chunk` events, distinct text in each, then `data: [DONE]`."""
    events = []
    for i in range(CHUNKS):
        delta = {"content": f" {i}"} | ({"role": "assistant"} if i == 0 else {})
        event = {
            "id": "chatcmpl-1",
            "object": "chat.completion.chunk",
            "created": 1700000000,
            "model": STREAM_MODEL,
            "choices": [
                {"index": 0, "delta": delta, "finish_reason": "stop" if i == CHUNKS - 1 else None}
            ],
        }
        events.append(b"data: " + compact(event).encode() + b"\n\n")
    events.append(b"data: [DONE]\n\n")
    return b"".join(events)


# -- wrk ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Wrk:
    """One wrk run, from the `done` hook of the Lua script."""

    requests: int
    seconds: float
    bytes: int
    p50_us: float
    p99_us: float
    errors: int  # socket errors, timeouts and non-2xx answers

    @property
    def rate(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0


def wrk(
    url: str, conns: int, seconds: int, env: dict[str, str], stream: bool = False, api: str = ""
) -> Wrk:
    """`wrk -t1 -cC -dNs --latency -s chat.lua url` (a streaming request if `stream`; an
    Anthropic Messages body if `api` is "messages"), parsed from the script's BENCH line."""
    command = ["wrk", "-t1", f"-c{conns}", f"-d{seconds}s", "--latency", "--timeout", "30s"]
    command += ["-s", str(CHAT_LUA), url]
    done = subprocess.run(
        command,
        env={**os.environ, **env, "BENCH_STREAM": "1" if stream else "0", "BENCH_API": api},
        capture_output=True,
        text=True,
        timeout=seconds + 60,
        check=False,
    )
    line = next((x for x in done.stdout.splitlines() if x.startswith("BENCH ")), None)
    if line is None:
        raise RuntimeError(f"wrk gave no result: {done.stdout[-500:]} {done.stderr[-500:]}")
    data = json.loads(line.removeprefix("BENCH "))
    errors = sum(data[k] for k in ("connect", "read", "write", "status", "timeout"))
    return Wrk(
        requests=data["requests"],
        seconds=data["duration_us"] / 1e6,
        bytes=data["bytes"],
        p50_us=data["p50_us"],
        p99_us=data["p99_us"],
        errors=errors,
    )


# -- processes ----------------------------------------------------------------------------


def stop_group(proc: subprocess.Popen[bytes]) -> None:
    """End a process started in its own session, and whatever it started (nginx's worker)."""
    for sig, wait in ((signal.SIGTERM, 10.0), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(wait)
        except subprocess.TimeoutExpired:
            continue
        try:  # the leader is gone; anything left in its group goes too
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        return


@contextmanager
def spawned(
    command: list[str], log: Path, env: dict[str, str] | None = None
) -> Iterator[subprocess.Popen[bytes]]:
    """A subprocess in its own session, output to `log`, always ended on exit."""
    with log.open("wb") as out:
        proc = subprocess.Popen(
            command,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env={**os.environ, **(env or {})},
            start_new_session=True,
        )
    try:
        yield proc
    finally:
        stop_group(proc)


def drain(stream: IO[bytes] | None, tail: list[bytes]) -> None:
    """Read a child's pipe to the end so it never blocks on a full pipe; keep the last lines."""
    if stream is None:
        return
    for line in stream:
        tail.append(line)
        del tail[:-20]


def request(
    url: str, body: object = None, headers: dict[str, str] | None = None, timeout: float = 10
) -> tuple[int, dict[str, str], bytes]:
    """One HTTP request: status, headers, body (errors are answers too)."""
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, headers={**(headers or {})})
    if data is not None:
        req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, dict(r.headers.items()), r.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers.items()), exc.read()


def wait_until(
    url: str, headers: dict[str, str], timeout: float, proc: subprocess.Popen[bytes] | None
) -> float:
    """Poll `url` until it answers 200; returns the seconds it took."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"the process exited ({proc.returncode}) before answering")
        try:
            if request(url, headers=headers, timeout=2)[0] == 200:
                return time.monotonic() - started
        except OSError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{url} did not answer 200 within {timeout:.0f} s")


def ensure_tools() -> None:
    """nginx and wrk, from Debian's packages."""
    if shutil.which("nginx") is None and Path("/usr/sbin/nginx").exists():
        os.environ["PATH"] += os.pathsep + "/usr/sbin"
    if shutil.which("nginx") and shutil.which("wrk"):
        return
    command = "apt-get update && apt-get install -y nginx-light wrk"
    if os.geteuid() != 0:
        say(f"nginx or wrk is missing; install them with: sudo sh -c '{command}'")
        raise SystemExit(2)
    say(f"nginx or wrk is missing: running {command}")
    subprocess.run(["sh", "-c", command], check=True, stdout=subprocess.DEVNULL)
    if not (shutil.which("nginx") and shutil.which("wrk")):
        raise SystemExit("nginx or wrk is still missing after apt-get")


def nginx_config(template: str, work: Path, values: dict[str, str]) -> Path:
    text = (HERE / template).read_text().replace("{{DIR}}", str(work))
    for key, value in values.items():
        text = text.replace("{{" + key + "}}", value)
    path = work / template
    path.write_text(text)
    return path


@contextmanager
def nginx(template: str, work: Path, port: int, values: dict[str, str]) -> Iterator[None]:
    conf = nginx_config(template, work, {"PORT": str(port), **values})
    name = template.removesuffix(".conf")
    errors = work / f"{name}-startup.log"
    command = ["nginx", "-p", str(work), "-e", str(errors), "-c", str(conf)]
    with spawned(command, work / f"{name}.out") as proc:
        wait_until(f"http://127.0.0.1:{port}/v1/models", {}, 10, proc)
        yield


def ensure_litellm() -> Path:
    """LiteLLM's proxy in its own venv (reused when present)."""
    exe = LITELLM_VENV / "bin" / "litellm"
    if exe.exists():
        return exe
    say(f"installing litellm[proxy]=={LITELLM_VERSION} into {LITELLM_VENV} (about a minute)")
    LITELLM_VENV.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run([sys.executable, "-m", "venv", str(LITELLM_VENV)], check=True)
    pip = [str(LITELLM_VENV / "bin" / "python"), "-m", "pip", "install", "-q"]
    pinned = subprocess.run([*pip, f"litellm[proxy]=={LITELLM_VERSION}"], check=False)
    if pinned.returncode != 0:
        say(f"litellm {LITELLM_VERSION} did not install; trying the newest available")
        subprocess.run([*pip, "litellm[proxy]"], check=True)
    return exe


def litellm_version() -> str:
    python = LITELLM_VENV / "bin" / "python"
    code = "import importlib.metadata as m; print(m.version('litellm'))"
    done = subprocess.run([str(python), "-c", code], capture_output=True, text=True, check=False)
    return done.stdout.strip() or "?"


def cpu_seconds() -> tuple[float, float]:
    """Busy CPU seconds so far: the whole machine's, and this script's process tree's."""
    tick = os.sysconf("SC_CLK_TCK")
    cpu = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    busy = sum(cpu) - cpu[3] - cpu[4]  # all but idle and iowait (steal counts as taken)
    parents: dict[int, int] = {}
    used: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            rest = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        pid = int(stat.parent.name)
        parents[pid], used[pid] = int(rest[1]), int(rest[11]) + int(rest[12])
    tree = {os.getpid()}
    while grown := {p for p, parent in parents.items() if parent in tree and p not in tree}:
        tree |= grown
    waited = resource.getrusage(resource.RUSAGE_CHILDREN)  # wrk runs, once they ended
    ours = sum(used.get(p, 0) for p in tree) / tick + waited.ru_utime + waited.ru_stime
    return busy / tick, ours


def other_share(seconds: float) -> float:
    """Share of the cores that other processes use, over `seconds`."""
    started, (busy, ours) = time.monotonic(), cpu_seconds()
    time.sleep(seconds)
    busy_end, ours_end = cpu_seconds()
    cores = (time.monotonic() - started) * (os.cpu_count() or 1)
    return max(0.0, (busy_end - busy) - (ours_end - ours)) / cores


def wait_for_quiet() -> float:
    """Wait (at most QUIET_WAIT s) until other work leaves the cores alone; its last share."""
    deadline = time.monotonic() + QUIET_WAIT
    while (share := other_share(2.0)) > QUIET_SHARE and time.monotonic() < deadline:
        say(f"other work uses {share:.0%} of the cores; waiting for a quieter machine")
    return share


# -- the paths ----------------------------------------------------------------------------


@dataclass
class Route:
    """One path to the upstream and what was measured along it."""

    label: str
    chat_url: str = ""
    stream_url: str = ""
    messages_url: str = ""  # the same stream through /v1/messages (llmlb only)
    env: dict[str, str] = field(default_factory=dict)  # BENCH_AUTH / BENCH_MODEL for wrk
    note: str = ""  # why it was not measured
    checked: str = ""  # the pre-flight check of the answers
    runs: dict[str, Wrk] = field(default_factory=dict)  # "chat-16", "stream-8", ...
    other_cpu: float = 0.0  # share of the cores other work took during the measurements

    def headers(self) -> dict[str, str]:
        auth = self.env.get("BENCH_AUTH")
        return {"Authorization": f"Bearer {auth}"} if auth else {}


def check(route: Route) -> None:
    """One plain and one streamed answer, looked at before the load."""
    body = {"model": MODEL, "messages": [{"role": "user", "content": "Say hi."}]}
    status, headers, raw = request(route.chat_url, body, route.headers())
    if status != 200:
        raise RuntimeError(f"chat answered {status}: {raw[:300]!r}")
    content = json.loads(raw)["choices"][0]["message"]["content"]
    model = route.env.get("BENCH_MODEL", STREAM_MODEL)
    stream_body = {"model": model, "messages": [{"role": "user", "content": "Count."}]}
    status, _, raw = request(route.stream_url, {**stream_body, "stream": True}, route.headers())
    if status != 200:
        raise RuntimeError(f"stream answered {status}: {raw[:300]!r}")
    events = [x for x in raw.split(b"\n") if x.startswith(b"data:")]
    texts = [
        json.loads(x[5:])["choices"][0]["delta"].get("content") or ""
        for x in events
        if x.strip() != b"data: [DONE]"
    ]
    done = bool(events) and events[-1].strip() == b"data: [DONE]"
    node = headers.get("x-llmlb-node")
    route.checked = (
        f"chat {content!r}{f' (x-llmlb-node {node})' if node else ''}; stream {len(events)} "
        f"events, {len(raw):,} bytes, {len(set(texts))} distinct texts, "
        f"{'ends' if done else 'does NOT end'} with [DONE]"
    )
    if route.messages_url:
        route.checked += "; " + check_messages(route, stream_body, "".join(texts))


def check_messages(route: Route, body: dict[str, object], text: str) -> str:
    """The same stream through /v1/messages: Anthropic's events, the same text."""
    status, _, raw = request(
        route.messages_url, {**body, "max_tokens": CHUNKS, "stream": True}, route.headers()
    )
    if status != 200:
        raise RuntimeError(f"/v1/messages answered {status}: {raw[:300]!r}")
    kinds = [x[7:] for x in raw.split(b"\n") if x.startswith(b"event: ")]
    data = [json.loads(x[6:]) for x in raw.split(b"\n") if x.startswith(b"data: ")]
    deltas = [d["delta"]["text"] for d in data if d["type"] == "content_block_delta"]
    if "".join(deltas) != text:
        raise RuntimeError("/v1/messages did not carry the stream's text exactly")
    last = kinds[-1].decode() if kinds else "nothing"
    return (
        f"/v1/messages {len(kinds)} events ({len(deltas)} text deltas, the same text), "
        f"{len(raw):,} bytes, ends with {last}"
    )


def measure(route: Route) -> None:
    """Warm up, then every load on this path."""
    check(route)
    say(f"{route.label}: {route.checked}")
    started, (busy, ours) = time.monotonic(), cpu_seconds()
    wrk(route.chat_url, 16, WARMUP_SECONDS, route.env)
    for c in CONCURRENCY:
        run = wrk(route.chat_url, c, SECONDS, route.env)
        route.runs[f"chat-{c}"] = run
        say(
            f"{route.label} c={c}: {run.rate:,.0f} req/s, p50 {us(run.p50_us)}, errors {run.errors}"
        )
    for c in STREAM_CONCURRENCY:
        run = wrk(route.stream_url, c, SECONDS, route.env, stream=True)
        route.runs[f"stream-{c}"] = run
        say(f"{route.label} stream c={c}: {run.rate:,.1f}/s, p50 {us(run.p50_us)}")
        if route.messages_url:
            run = wrk(route.messages_url, c, SECONDS, route.env, stream=True, api="messages")
            route.runs[f"messages-{c}"] = run
            say(f"{route.label} /v1/messages c={c}: {run.rate:,.1f}/s, p50 {us(run.p50_us)}")
    busy_end, ours_end = cpu_seconds()
    cores = (time.monotonic() - started) * (os.cpu_count() or 1)
    route.other_cpu = max(0.0, (busy_end - busy) - (ours_end - ours)) / cores


def add_llmlb(stack: ExitStack, work: Path, upstream: str, route: Route) -> None:
    """Start the balancer and add the upstream as two external nodes; or say why not."""
    port = free_port()
    token = secrets.token_urlsafe(24)
    data_dir = work / "llmlb-data"
    data_dir.mkdir()
    proc = start_llmlb(data_dir, port, {"LLMLB_ADMIN_TOKEN": token})
    tail: list[bytes] = []
    threading.Thread(target=drain, args=(proc.stderr, tail), daemon=True).start()

    stack.callback(stop, proc)
    base = f"http://127.0.0.1:{port}"
    admin = {"Authorization": f"Bearer {token}"}
    for name, url in (("nginx", upstream), ("nginx-stream", upstream + "/stream")):
        body = {"name": name, "base_url": url}
        status, _, raw = request(f"{base}/v0/nodes/external", body, admin)
        if status in (404, 405):
            route.note = EXTERNAL_MISSING
            return
        if status != 201 or "node_id" not in json.loads(raw):
            route.note = f"not measured: POST /v0/nodes/external answered {status} {raw[:200]!r}"
            return
    deadline = time.monotonic() + MODELS_TIMEOUT
    listed: set[str] = set()
    while time.monotonic() < deadline and not {MODEL, STREAM_MODEL} <= listed:
        status, _, raw = request(f"{base}/v1/models")
        if status == 200:
            listed = {m.get("id") for m in json.loads(raw).get("data", [])}
        time.sleep(0.2)
    if not {MODEL, STREAM_MODEL} <= listed:
        route.note = f"not measured: /v1/models did not list {MODEL} within {MODELS_TIMEOUT:.0f} s"
        return
    route.chat_url = route.stream_url = f"{base}/v1/chat/completions"
    route.messages_url = f"{base}/v1/messages"


def add_relay(stack: ExitStack, work: Path, upstream: str, route: Route) -> None:
    """Start the thin aiohttp relay in front of the upstream."""
    port = free_port()
    command = [sys.executable, str(HERE / "relay.py"), str(port), upstream]
    proc = stack.enter_context(spawned(command, work / "relay.log"))
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until(f"{base}/v1/models", {}, MODELS_TIMEOUT, proc)
    except RuntimeError as exc:
        route.note = f"not measured: {exc}"
        return
    route.chat_url = f"{base}/v1/chat/completions"
    route.stream_url = f"{base}/stream/v1/chat/completions"


def add_litellm(stack: ExitStack, work: Path, upstream: str, route: Route) -> float:
    """Start LiteLLM's proxy in front of the upstream; returns its start-up seconds."""
    exe = ensure_litellm()
    port = free_port()
    key = "sk-" + secrets.token_hex(16)
    entries = ((MODEL, upstream + "/v1"), (STREAM_MODEL, upstream + "/stream/v1"))
    lines = ["model_list:"]
    for name, api_base in entries:
        lines += [
            f"  - model_name: {name}",
            "    litellm_params:",
            f"      model: openai/{name}",
            f"      api_base: {api_base}",
            "      api_key: sk-upstream-needs-none",
        ]
    config = work / "litellm.yaml"
    config.write_text("\n".join(lines) + "\n")
    env = {"LITELLM_MASTER_KEY": key, "LITELLM_LOCAL_MODEL_COST_MAP": "True"}
    command = [str(exe), "--config", str(config), "--host", "127.0.0.1", "--port", str(port)]
    proc = stack.enter_context(spawned(command, work / "litellm.log", env))
    base = f"http://127.0.0.1:{port}"
    auth = {"Authorization": f"Bearer {key}"}
    try:
        took = wait_until(f"{base}/v1/models", auth, LITELLM_START_TIMEOUT, proc)
    except RuntimeError as exc:
        log = (work / "litellm.log").read_text(errors="replace").strip().splitlines()[-3:]
        route.note = f"not measured: {exc} ({' | '.join(log)})"
        return 0.0
    route.chat_url = route.stream_url = f"{base}/v1/chat/completions"
    route.env = {"BENCH_AUTH": key, "BENCH_MODEL": STREAM_MODEL}
    return took


# -- the report ---------------------------------------------------------------------------


def us(value: float) -> str:
    """A latency in µs, shown as µs, ms or s."""
    if value < 1000:
        return f"{value:.0f} µs"
    if value < 1_000_000:
        return f"{value / 1000:.2f} ms"
    return f"{value / 1e6:.2f} s"


def rate(value: float) -> str:
    return f"{value:,.0f}" if value >= 100 else f"{value:,.1f}"


def cell(run: Wrk | None, with_rate: bool = True) -> str:
    """`req/s · p50 · p99` (or without the rate), and the errors if there were any."""
    if run is None:
        return "—"
    errors = f" ({run.errors} errors)" if run.errors else ""
    if run.requests == 0:
        return f"none finished in {run.seconds:.0f} s{errors}"
    parts = [rate(run.rate)] if with_rate else []
    return " · ".join([*parts, us(run.p50_us), us(run.p99_us)]) + errors


def verdict(ok: bool | None) -> str:
    return "not measured" if ok is None else ("met" if ok else "MISSED")


def report(routes: list[Route], notes: list[str]) -> str:
    lines = [
        "## Proxy hop (`bench/proxy.py`)",
        "",
        f"{today()}, {machine()}.",
        "",
        "Method. Upstream: nginx 1.22, one worker, `return 200` with a tiny chat completion "
        f"({len(compact(CHAT_ANSWER))} bytes) on `/v1/chat/completions` and a `/v1/models` "
        f"listing `{MODEL}`; under `…/stream`, a prepared {CHUNKS:,}-chunk "
        f"`chat.completion.chunk` SSE answer ({len(sse_answer()) / 1000:.0f} KB, distinct text "
        "per chunk, ending `data: [DONE]`) served from a file. Load: "
        f"`wrk -t1 -cC -d{SECONDS}s --latency --timeout 30s -s bench/proxy/chat.lua URL` "
        f"(a small non-streaming chat body), {WARMUP_SECONDS} s of warm-up at c=16 first; "
        'streams with `BENCH_STREAM=1` (`"stream": true`), wrk timing each request '
        "to the end of the whole stream. All on 127.0.0.1; the paths are measured one after "
        "the other, each process running only during its own measurements (the upstream "
        "throughout).",
        "",
        "| path | c=1 req/s · p50 · p99 | c=16 req/s · p50 · p99 | c=64 req/s · p50 · p99 |",
        "|---|---|---|---|",
    ]
    for r in routes:
        if r.note:
            lines.append(f"| {r.label} | {r.note} | | |")
        else:
            lines.append(
                f"| {r.label} | "
                + " | ".join(cell(r.runs[f"chat-{c}"]) for c in CONCURRENCY)
                + " |"
            )
    lines += [
        "",
        f"Streaming, {CHUNKS:,} chunks: time to receive the whole stream.",
        "",
        "| path | c=1 p50 · p99 per stream | c=8 streams/s · p50 · p99 | bytes per answer |",
        "|---|---|---|---|",
    ]
    for r in routes:
        if r.note:
            lines.append(f"| {r.label} | {r.note} | | |")
            continue
        one, eight = r.runs["stream-1"], r.runs["stream-8"]
        size = one.bytes / one.requests if one.requests else 0
        lines.append(f"| {r.label} | {cell(one, False)} | {cell(eight)} | {size:,.0f} |")
        if "messages-1" in r.runs:
            one, eight = r.runs["messages-1"], r.runs["messages-8"]
            size = one.bytes / one.requests if one.requests else 0
            label = "llmlb `/v1/messages` (the same stream as Anthropic events, translated)"
            lines.append(f"| {label} | {cell(one, False)} | {cell(eight)} | {size:,.0f} |")
    lines += ["", "Answers checked before each path was loaded:", ""]
    lines += [f"- {r.label}: {r.checked or r.note}" for r in routes]
    others = ", ".join(f"{r.label.split(' (')[0]} {r.other_cpu:.0%}" for r in routes if r.runs)
    lines += [
        "",
        f"Other work on the machine during each path's measurements (share of the "
        f"{os.cpu_count()} cores not used by this bench's own processes): {others}.",
    ]
    lines += ["", "Ratios and targets:", ""]
    lines += ratios(*routes)
    lines += ["", *notes]
    return "\n".join(lines) + "\n"


def ratios(direct: Route, proxy: Route, relay: Route, ours: Route, litellm: Route) -> list[str]:
    def run(r: Route, key: str) -> Wrk | None:
        return None if r.note else r.runs.get(key)

    d1, o1 = run(direct, "chat-1"), run(ours, "chat-1")
    d64, o64, l64 = run(direct, "chat-64"), run(ours, "chat-64"), run(litellm, "chat-64")
    p64 = run(proxy, "chat-64")
    out = []
    added: bool | None = None
    if d1 and o1:
        extra = (o1.p50_us - d1.p50_us) / 1000
        added = extra < TARGET_ADDED_P50_MS
        out.append(
            f"- llmlb added p50 at c=1 (llmlb − direct): {extra:+.3f} ms "
            f"({us(o1.p50_us)} − {us(d1.p50_us)}); target < {TARGET_ADDED_P50_MS:g} ms: "
            f"**{verdict(added)}**."
        )
    else:
        out.append(f"- llmlb added p50 at c=1: not measured: **{verdict(None)}**.")
    r64 = run(relay, "chat-64")
    if r64 and o64:
        kept = o64.rate / r64.rate
        out.append(
            f"- llmlb throughput at c=64 / the thin aiohttp relay: {kept:.2f}× "
            f"({rate(o64.rate)} / {rate(r64.rate)} req/s); target ≥ "
            f"{TARGET_SHARE_OF_RELAY:g}×: **{verdict(kept >= TARGET_SHARE_OF_RELAY)}**."
        )
    else:
        out.append(f"- llmlb throughput at c=64 / the relay: not measured: **{verdict(None)}**.")
    if o64:
        p99 = o64.p99_us / 1000
        out.append(
            f"- llmlb p99 at c=64: {p99:.1f} ms; target < {TARGET_P99_MS:g} ms: "
            f"**{verdict(p99 < TARGET_P99_MS)}**."
        )
    if d64 and o64:  # for reading only: Python's ceiling is the relay, not nginx
        text = f"{o64.rate / d64.rate:.1%} of direct ({rate(o64.rate)} / {rate(d64.rate)} req/s)"
        if p64:
            text += f"; the nginx proxy keeps {p64.rate / d64.rate:.1%}"
        out.append(f"- llmlb throughput at c=64: {text}.")
    if o64 and l64:
        times = o64.rate / l64.rate
        out.append(
            f"- llmlb throughput at c=64 / LiteLLM: {times:.1f}× ({rate(o64.rate)} / "
            f"{rate(l64.rate)} req/s); target ≥ {TARGET_TIMES_LITELLM:g}×: "
            f"**{verdict(times >= TARGET_TIMES_LITELLM)}**."
        )
    else:
        out.append(f"- llmlb throughput at c=64 / LiteLLM: not measured: **{verdict(None)}**.")
    ds, os_, ls = run(direct, "stream-1"), run(ours, "stream-1"), run(litellm, "stream-1")
    if ds and os_:
        extra = (os_.p50_us - ds.p50_us) / 1000
        text = (
            f"- Streaming, c=1: llmlb adds {extra:+.2f} ms per {CHUNKS:,}-chunk stream "
            f"({extra * 1000 / CHUNKS:+.2f} µs per chunk)"
        )
        if ls:
            text += f"; LiteLLM takes {ls.p50_us / os_.p50_us:,.0f}× llmlb's time per stream"
        out.append(text + ".")
    ms = run(ours, "messages-1")
    if os_ and ms:
        out.append(translation_line(os_.p50_us, ms.p50_us))
    return out


def translation_line(chat_us: float, messages_us: float) -> str:
    """The Anthropic translation's cost per stream against its target."""
    extra = (messages_us - chat_us) / 1000
    return (
        f"- `/v1/messages` translation, c=1: {extra:+.2f} ms per {CHUNKS:,}-chunk stream over "
        f"`/v1/chat/completions` ({us(messages_us)} − {us(chat_us)}); target ≤ "
        f"{TARGET_TRANSLATION_MS:g} ms: **{verdict(extra <= TARGET_TRANSLATION_MS)}**."
    )


# -- main ---------------------------------------------------------------------------------


def main() -> int:
    started = time.monotonic()
    ensure_tools()
    quiet = wait_for_quiet()
    load_before = os.getloadavg()[0]
    nginx_version = subprocess.run(
        ["nginx", "-v"], capture_output=True, text=True, check=False
    ).stderr.strip()
    wrk_out = subprocess.run(["wrk", "-v"], capture_output=True, text=True, check=False).stdout
    wrk_version = " ".join(wrk_out.split()[:2]) or "wrk"
    routes = [
        Route("direct to the upstream (nginx `return 200`)"),
        Route("nginx reverse proxy (keepalive pool, 1 worker) — the C floor"),
        Route("thinnest aiohttp relay (`bench/proxy/relay.py`, pooled session, uvloop)"),
        Route("llmlb (`llmlb serve --no-local-node`, upstream as an external node)"),
        Route("LiteLLM proxy (`litellm --config`, 1 worker)"),
    ]
    direct, proxy, relay, ours, litellm = routes
    notes: list[str] = []
    with tempfile.TemporaryDirectory(prefix="llmlb-proxy-bench-") as tmp, ExitStack() as stack:
        work = Path(tmp)
        work.chmod(0o755)  # nginx's worker runs as nobody when we are root
        (work / "stream.sse").write_bytes(sse_answer())
        up_port = free_port()
        upstream = f"http://127.0.0.1:{up_port}"
        values = {
            "MODELS": models_answer(MODEL),
            "STREAM_MODELS": models_answer(STREAM_MODEL),
            "CHAT": compact(CHAT_ANSWER),
        }
        stack.enter_context(nginx("upstream.conf", work, up_port, values))
        say(f"upstream nginx on {upstream}")

        direct.chat_url = f"{upstream}/v1/chat/completions"
        direct.stream_url = f"{upstream}/stream/v1/chat/completions"
        measure(direct)

        with ExitStack() as path_stack:
            port = free_port()
            path_stack.enter_context(
                nginx("reverse.conf", work, port, {"UPSTREAM_PORT": str(up_port)})
            )
            proxy.chat_url = f"http://127.0.0.1:{port}/v1/chat/completions"
            proxy.stream_url = f"http://127.0.0.1:{port}/stream/v1/chat/completions"
            measure(proxy)

        with ExitStack() as path_stack:
            add_relay(path_stack, work, upstream, relay)
            if relay.note:
                say(f"relay: {relay.note}")
            else:
                measure(relay)

        with ExitStack() as path_stack:
            add_llmlb(path_stack, work, upstream, ours)
            if ours.note:
                say(f"llmlb: {ours.note}")
            else:
                measure(ours)

        with ExitStack() as path_stack:
            took = add_litellm(path_stack, work, upstream, litellm)
            version = litellm_version()
            litellm.label = f"LiteLLM proxy {version} (`litellm --config`, 1 worker)"
            if litellm.note:
                say(f"LiteLLM: {litellm.note}")
            else:
                notes.append(f"LiteLLM {version} answered {took:.0f} s after it was started.")
                measure(litellm)
    elapsed = time.monotonic() - started
    load_after = os.getloadavg()[0]
    notes.append(
        f"Tools: {nginx_version}, {wrk_version}. Other work used {quiet:.0%} of the cores "
        f"when the run started (after waiting up to {QUIET_WAIT:.0f} s for less than "
        f"{QUIET_SHARE:.0%}); 1-min load average {load_before:.1f} then, {load_after:.1f} after "
        f"(anything else running on the 2 cores lowers every figure; compare ratios from one "
        f"run). The run took {elapsed:.0f} s."
    )
    text = report(routes, notes)
    record("proxy", text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
