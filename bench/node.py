"""Decode speed of the local node, against llama.cpp's own server, on the reference model.

Run: `.venv/bin/python bench/node.py` (`make bench-node`): the decode round below, then the
long-conversation round and the 0.5B Q8_0 round of `bench/node_rounds.py`; `--round decode`,
`--round long` or `--round q8` runs one alone (repeatable). The decode round generates the
~25M-parameter reference model (`tests/support/tiny_gguf.py`, f32, about 100 MB) into
`~/.cache/llmlb-bench/`, builds or reuses `llama-server` (`bench/llama_server.py`, cached in
the same folder), then measures, each with 2 threads and 4 slots, a prompt of a few tokens
and 128 new greedy tokens:

  (a) `llama-server -m model -t 2 -np 4 -c 4096`, one stream;
  (b) llama-cpp-python's `Llama.create_completion`, in this process, one stream;
  (c) `llama-server` with 4 and 8 parallel streams (total tokens/s, first-token times);
  (d) `measure_llmlb`: llmlb serving the model on its local node (registered from a fake
      Hugging Face Hub): one stream, 4 and 8 streams through the balancer, one stream direct to
      the node (its URL from `/v0/models` or `/v0/nodes`, its `X-Balancer-Token` from the data dir
      the bench gave llmlb), and the first-token time the balancer adds, from interleaved
      pairs of short answers; and one stream from a second `llmlb serve` that sends every
      token alone (`LLMLB_STREAM_INTERVAL=0`), to show what gathering a stream's tokens saves;
  (e) llmlb's batched engine (`BatchedRunner`) called directly, in a child process of its
      own: 1, 4 and 8 streams, the engine alone, to tell its speed from what serving it over
      HTTP costs.

End-of-generation tokens are banned (logit bias), so every answer has exactly 128 tokens; the
counts are checked and reported. Every figure is the median of 5 runs after a warm-up. The
single-stream runs of all engines are interleaved round-robin (all engines stay loaded, idle
when not measured), so a slow spell of the machine hits every engine alike and the ratios
hold even when the absolute figures drift. The HTTP engines are all driven by the official
`openai` client, streaming, so the client's own cost is the same for each. If llmlb cannot
serve the model (yet), its rows say why and everything else is still measured. The section
goes to docs/benchmarks.md and is printed.
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import gc
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Coroutine, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import IO, Any, TypeVar

import numpy as np
import numpy.typing as npt
from openai import OpenAI

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.node.engine.batched import BatchedRunner
from app.node.engine.types import Delta, Finished, Sampling
from bench.common import free_port, record, start_llmlb, stop
from bench.llama_server import CACHE_ROOT, ensure_llama_server
from bench.node_report import (
    NEW_TOKENS,
    PARALLEL,
    PER_TOKEN,
    PROMPT,
    RUNS,
    STREAMS,
    THREADS,
    TTFT_PAIRS,
    TTFT_TOKENS,
    WARM_TOKENS,
    Parallel,
    Results,
    Run,
    Single,
    report,
)
from tests.fakes.fake_hub import FakeHub, FakeRepo
from tests.support.tiny_gguf import REFERENCE_BENCH_CONFIG, write_llama_gguf

MODEL_FILE = "ref-25m-F32.gguf"
REPO = "bench/ref-25m"
SERVER_CTX = 4096  # llama-server -c: all slots together
READY_TIMEOUT = 120.0
REQUEST_TIMEOUT = 120.0
PER_TOKEN_ENV = {"LLMLB_STREAM_INTERVAL": "0"}  # every token its own event (default: gathered)
ADMIN_TOKEN = "bench-node-admin-token"
LOG_ALARMS = ("ERROR", "WARNING", "CRITICAL", "Traceback", "Error:")
R = TypeVar("R")
Engine = Callable[[int], Run]  # one streamed answer of at most that many tokens
Round = tuple[float, list[int], list[float]]  # parallel streams: total tok/s, tokens, TTFTs
QUIET_SHARE = 0.10  # a measurement is redone when other work took more of the cores than this
ATTEMPTS = 2
QUIET_WAIT = 60.0


def say(message: str) -> None:
    print(f"[node bench] {message}", file=sys.stderr, flush=True)


# -- measurements -------------------------------------------------------------------------


def rounds(engines: dict[str, Callable[[], R]]) -> dict[str, list[R]]:
    """A warm-up of each engine, then RUNS rounds of one measurement of each, in rotating
    order, so that a slow spell of the machine hits every engine alike."""
    for measure in engines.values():
        measure()
    names = list(engines)
    done: dict[str, list[R]] = {name: [] for name in names}
    for i in range(RUNS):
        shift = i % len(names)
        for name in names[shift:] + names[:shift]:
            done[name].append(engines[name]())
    return done


def singles(engines: dict[str, Engine]) -> dict[str, Single]:
    """Single-stream rounds; each timed answer follows a short one from the same engine, so
    its first token is not slowed by the engine that ran before (caches, sleeping threads)."""

    def warmed(engine: Engine) -> Callable[[], Run]:
        return lambda: (engine(WARM_TOKENS), engine(NEW_TOKENS))[1]

    measured = rounds({name: warmed(engine) for name, engine in engines.items()})
    return {name: Single(runs) for name, runs in measured.items()}


def parallels(engines: dict[str, Callable[[], Round]]) -> dict[str, Parallel]:
    return {
        name: Parallel(
            [r[0] for r in done], [c for r in done for c in r[1]], [t for r in done for t in r[2]]
        )
        for name, done in rounds(engines).items()
    }


def at(n: int, engines: dict[str, Callable[[int], Round]]) -> dict[str, Callable[[], Round]]:
    """The engines' rounds of `n` streams."""
    return {name: (lambda f=f: f(n)) for name, f in engines.items()}  # type: ignore[misc]


def openai_client(base_url: str, headers: dict[str, str] | None = None) -> OpenAI:
    return OpenAI(
        base_url=base_url,
        api_key="x",
        max_retries=0,
        timeout=REQUEST_TIMEOUT,
        default_headers=headers,
    )


def openai_run(
    client: OpenAI, model: str, bias: dict[str, int], max_tokens: int = NEW_TOKENS
) -> Run:
    """One streamed `/v1/completions` answer through the official client."""
    started = time.perf_counter()
    first = last = 0.0
    pieces = 0
    usage: int | None = None
    engine_tps: float | None = None
    stream = client.completions.create(
        model=model,
        prompt=PROMPT,
        max_tokens=max_tokens,
        temperature=0,
        stream=True,
        stream_options={"include_usage": True},
        extra_body={"logit_bias": bias},
    )
    for chunk in stream:
        now = time.perf_counter()
        if chunk.usage is not None:
            usage = chunk.usage.completion_tokens
        timings = (chunk.model_extra or {}).get("timings")
        if isinstance(timings, dict) and "predicted_per_second" in timings:
            engine_tps = float(timings["predicted_per_second"])  # llama-server reports this
        if chunk.choices and chunk.choices[0].text:
            if not pieces:
                first = now
            last = now
            pieces += 1
    ended = time.perf_counter()
    if not pieces:
        raise RuntimeError("the answer carried no text")
    tokens = usage if usage is not None else pieces
    return Run(tokens, pieces, first - started, ended - started, last - first, engine_tps)


def parallel_round(
    clients: list[OpenAI], model: str, bias: dict[str, int], max_tokens: int = NEW_TOKENS
) -> Round:
    """len(clients) streams started together: (total tokens/s, tokens and first-token time of
    each answer)."""
    barrier = threading.Barrier(len(clients))
    spans: list[tuple[float, float, int, float] | BaseException | None] = [None] * len(clients)

    def worker(i: int) -> None:
        barrier.wait()
        began = time.perf_counter()
        try:
            run = openai_run(clients[i], model, bias, max_tokens)
            spans[i] = (began, began + run.total, run.tokens, run.ttft)
        except BaseException as exc:  # reported below
            spans[i] = exc

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(len(clients))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    done: list[tuple[float, float, int, float]] = []
    for span in spans:
        if not isinstance(span, tuple):
            raise RuntimeError(f"a parallel stream failed: {span!r}")
        done.append(span)
    elapsed = max(d[1] for d in done) - min(d[0] for d in done)
    counts = [d[2] for d in done]
    return sum(counts) / elapsed, counts, [d[3] for d in done]


# -- the model ----------------------------------------------------------------------------


def reference_model() -> Path:
    """The reference model, (re)generated into the cache (deterministic, a few seconds)."""
    path = CACHE_ROOT / MODEL_FILE
    say(f"writing the reference model to {path}")
    write_llama_gguf(path, **REFERENCE_BENCH_CONFIG)
    return path


def vocab_facts(path: Path) -> tuple[list[int], int]:
    """End-of-generation token ids (EOS, EOT, ...) and the prompt's length in tokens."""
    import llama_cpp

    llm = llama_cpp.Llama(model_path=str(path), vocab_only=True, verbose=False)
    vocab = llama_cpp.llama_model_get_vocab(llm.model)
    ids = [t for t in range(llm.n_vocab()) if llama_cpp.llama_vocab_is_eog(vocab, t)]
    n_prompt = len(llm.tokenize(PROMPT.encode()))
    llm.close()
    return ids, n_prompt


# -- (a) and (c): llama-server -------------------------------------------------------------


@contextmanager
def llama_server(
    binary: Path,
    model: Path,
    log: IO[bytes],
    ctx: int = SERVER_CTX,
    env: dict[str, str] | None = None,
    threads: int = THREADS,
) -> Iterator[str]:
    """`llama-server` on a free port, waited for until its model is loaded; yields its /v1.

    `ctx` is its `-c` (all slots together); `env` is added to its environment."""
    port = free_port()
    command = [str(binary), "-m", str(model), "-t", str(threads), "-np", str(STREAMS)]
    command += ["-c", str(ctx), "--port", str(port)]
    say("$ " + " ".join(command))
    proc = subprocess.Popen(
        command, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})}
    )
    try:
        deadline = time.monotonic() + READY_TIMEOUT
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"llama-server exited with {proc.returncode}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"llama-server did not load the model in {READY_TIMEOUT:.0f} s")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as r:
                    if r.status == 200:
                        break
            except (OSError, urllib.error.HTTPError):
                pass
            time.sleep(0.2)
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        stop(proc, 10)


def llama_server_log_tail(log: IO[bytes]) -> str:
    log.seek(0)
    return "\n".join(log.read().decode(errors="replace").strip().splitlines()[-15:])


# -- (b): llama-cpp-python in-process ------------------------------------------------------


class InProcess:
    """llama-cpp-python's `Llama` in this process; `run()` streams one answer."""

    def __init__(self, model: Path, banned: list[int]) -> None:
        from llama_cpp import Llama

        self.llm = Llama(model_path=str(model), n_threads=THREADS, n_ctx=2048, verbose=False)
        self.banned = np.array(banned, dtype=np.intc)

    def run(self, max_tokens: int = NEW_TOKENS) -> Run:
        """`create_completion` streamed; tokens are counted where they are sampled."""
        from llama_cpp import LogitsProcessorList

        sampled = 0

        # The same thing `logit_bias` does, in one processor that also counts samplings.
        def ban(_ids: npt.NDArray[np.intc], scores: npt.NDArray[np.single]) -> Any:
            nonlocal sampled
            sampled += 1
            scores[self.banned] = -np.inf
            return scores

        started = time.perf_counter()
        first = last = 0.0
        pieces = 0
        for chunk in self.llm.create_completion(
            PROMPT,
            max_tokens=max_tokens,
            temperature=0,
            stream=True,
            logits_processor=LogitsProcessorList([ban]),
        ):
            now = time.perf_counter()
            if chunk["choices"][0]["text"]:  # type: ignore[index]
                if not pieces:
                    first = now
                last = now
                pieces += 1
        ended = time.perf_counter()
        return Run(sampled, pieces, first - started, ended - started, last - first)

    def close(self) -> None:
        self.llm.close()
        gc.collect()


# -- (e): llmlb's batched engine in-process -------------------------------------------------


class EngineProcess:
    """`InProcessBatched` in a child process of its own, driven over its stdin and stdout.

    Two llama.cpp engines in one process share OpenMP's worker threads, and OpenMP throttles
    its spinning when there are more threads than cores: with llmlb's engine loaded beside it,
    llama-cpp-python's figure here fell by a third. So each engine gets its own process.
    """

    def __init__(self, model: Path, banned: list[int]) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, __file__, "--engine-worker", str(model), json.dumps(banned)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        self._ask({})  # loaded

    def _ask(self, message: dict[str, int]) -> dict[str, Any]:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(json.dumps(message) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"the engine process exited ({self.proc.wait()})")
        answer: dict[str, Any] = json.loads(line)
        return answer

    def run(self, max_tokens: int = NEW_TOKENS) -> Run:
        return Run(**self._ask({"run": max_tokens}))

    def parallel(self, n: int) -> Round:
        answer = self._ask({"parallel": n})
        return answer["tps"], answer["counts"], answer["ttfts"]

    def close(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()  # the worker's cue to unload and exit
        stop(self.proc, terminate=False)


def engine_worker(model: str, banned: str) -> int:
    """The child side of `EngineProcess`: one JSON answer line per JSON request line."""
    engine = InProcessBatched(Path(model), json.loads(banned))
    try:
        for line in sys.stdin:
            request = json.loads(line)
            answer: dict[str, Any] = {}
            if "run" in request:
                answer = dataclasses.asdict(engine.run(request["run"]))
            elif "parallel" in request:
                tps, counts, ttfts = engine.parallel(request["parallel"])
                answer = {"tps": tps, "counts": counts, "ttfts": ttfts}
            print(json.dumps(answer), flush=True)
    finally:
        engine.close()
    return 0


class InProcessBatched:
    """llmlb's `BatchedRunner` in this process, on its own event loop thread (uvloop, as
    `llmlb serve`): the engine alone, without HTTP, the balancer or a client's parsing."""

    def __init__(self, model: Path, banned: list[int]) -> None:
        try:
            import uvloop

            self.loop: asyncio.AbstractEventLoop = uvloop.new_event_loop()
        except ImportError:
            self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.runner = BatchedRunner(
            "ref", model, n_slots=STREAMS, ctx_per_slot=SERVER_CTX // STREAMS, n_threads=THREADS
        )
        self.bias = {t: -100.0 for t in banned}
        self.tokens: list[int] = self._call(self.runner.text_prompt(PROMPT))

    def _call(self, coro: Coroutine[Any, Any, R]) -> R:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result()

    def run(self, max_tokens: int = NEW_TOKENS) -> Run:
        """One answer, timed from the call to its Finished."""
        return self._call(self._run(max_tokens))

    def parallel(self, n: int) -> Round:
        """`n` answers started together: (total tokens/s, tokens and TTFT of each)."""
        return self._call(self._parallel(n))

    async def _parallel(self, n: int) -> Round:
        started = time.perf_counter()
        runs = await asyncio.gather(*(self._run(NEW_TOKENS) for _ in range(n)))
        counts = [r.tokens for r in runs]
        return sum(counts) / (time.perf_counter() - started), counts, [r.ttft for r in runs]

    async def _run(self, max_tokens: int) -> Run:
        sampling = Sampling(max_tokens=max_tokens, temperature=0.0, logit_bias=self.bias)
        started = time.perf_counter()
        first = last = 0.0
        pieces = tokens = 0
        async for item in self.runner.stream(list(self.tokens), sampling, threading.Event()):
            now = time.perf_counter()
            if isinstance(item, Delta) and item.text:
                if not pieces:
                    first = now
                last = now
                pieces += 1
            elif isinstance(item, Finished):
                tokens = item.completion_tokens
        ended = time.perf_counter()
        return Run(tokens, pieces, first - started, ended - started, last - first)

    def close(self) -> None:
        self._call(self.runner.close())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()
        gc.collect()


# -- (d): llmlb, local node through the balancer --------------------------------------------


class NotMeasured(Exception):
    """llmlb could not be measured; the message says why."""


def _http_json(method: str, url: str, body: dict[str, Any] | None = None) -> tuple[int, Any]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(
        url,
        data=data,
        method=method,
        headers={"Authorization": f"Bearer {ADMIN_TOKEN}", "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            status, raw = response.status, response.read()
    except urllib.error.HTTPError as exc:
        status, raw = exc.code, exc.read()
    try:
        return status, json.loads(raw or b"null")
    except ValueError:
        return status, raw.decode(errors="replace")


def _openai_base(url: str) -> str:
    url = url.rstrip("/")
    return url if url.endswith("/v1") else url + "/v1"


def _node_target(base: str, name: str, data_dir: Path) -> tuple[str, dict[str, str]] | str:
    """The node's own /v1 URL and the headers it wants, or why it cannot be reached directly.

    The URL comes from the model's node entries in `/v0/models` or, failing that, from the
    `/v0/nodes` entry of a node that has the model ready. A node answers only its balancer
    (`X-Balancer-Token`); the local node keeps that token in the data dir we gave llmlb.
    """
    _, models = _http_json("GET", f"{base}/v0/models")
    url: str | None = None
    node_ids: set[str] = set()
    for item in models if isinstance(models, list) else []:
        if not isinstance(item, dict) or item.get("id") != name:
            continue
        for node in item.get("nodes") or []:
            if not isinstance(node, dict):
                continue
            node_ids.add(str(node.get("node_id")))
            for key in ("url", "node_url", "base_url"):
                value = node.get(key)
                if url is None and isinstance(value, str) and value.startswith("http"):
                    url = value
    if url is None:
        _, nodes = _http_json("GET", f"{base}/v0/nodes")
        for node in nodes if isinstance(nodes, list) else []:
            if not isinstance(node, dict) or not isinstance(node.get("url"), str):
                continue
            ready = any(
                isinstance(m, dict) and m.get("name") == name and m.get("state") == "ready"
                for m in node.get("models") or []
            )
            if ready or str(node.get("id")) in node_ids:
                url = node["url"]
                break
    if not url:
        return "neither /v0/models nor /v0/nodes names the node's URL"
    for identity in sorted(data_dir.rglob("node.json")):
        try:
            token = json.loads(identity.read_text()).get("balancer_token")
        except (OSError, ValueError, AttributeError):
            continue
        if isinstance(token, str) and token:
            return _openai_base(url), {"X-Balancer-Token": token}
    return f"no balancer token found in the data dir for {url}"


def _drain(stream: IO[bytes] | None, tail: collections.deque[str]) -> None:
    """Read the server's stderr so it never blocks on a full pipe; keep the last lines."""
    if stream is None:
        return
    for line in iter(stream.readline, b""):
        tail.append(line.decode(errors="replace").rstrip())


def _short(text: Any, limit: int = 300) -> str:
    flat = " ".join(str(text).split())
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


def measure_llmlb(
    model_path: Path,
    reasons: list[str] | None = None,
    references: dict[str, Engine] | None = None,
    parallel_references: dict[str, Callable[[int], Round]] | None = None,
) -> dict[str, Any] | None:
    """llmlb serving `model_path` on its local node: 1 stream, PARALLEL streams, first-token
    time.

    `references` (one streamed answer each) and `parallel_references` (one round of n parallel
    streams each) are other engines, already loaded, measured in the same interleaved rounds.
    Returns `{"name", "balancer": Single, "direct": Single | None, "direct_note": str,
    "parallel": {n: Parallel}, "parallel_note": str, "ttft_added": [ms, ...],
    "references": {label: Single}, "parallel_references": {n: {label: Parallel}}}`, or None
    when llmlb cannot serve the model; then the reason is appended to `reasons` (and printed).
    """
    try:
        return _measure_llmlb(model_path, references or {}, parallel_references or {})
    except NotMeasured as exc:
        reason = str(exc)
    except Exception as exc:  # the node is young: any failure is a finding, not a crash
        reason = f"{type(exc).__name__}: {_short(exc)}"
    say(f"llmlb not measured: {reason}")
    if reasons is not None:
        reasons.append(reason)
    return None


def _measure_llmlb(
    model_path: Path,
    references: dict[str, Engine],
    parallel_references: dict[str, Callable[[int], Round]],
) -> dict[str, Any]:
    hub = FakeHub([FakeRepo(REPO, {MODEL_FILE: model_path.read_bytes()})]).start()
    try:
        with tempfile.TemporaryDirectory(prefix="llmlb-node-bench-") as tmp, ExitStack() as stack:
            env = {
                "HF_ENDPOINT": hub.url,
                "LLMLB_ADMIN_TOKEN": ADMIN_TOKEN,
                "HF_HOME": str(Path(tmp) / "hf"),  # keep the user's Hugging Face cache clean
                "HF_HUB_DISABLE_TELEMETRY": "1",
                "LLMLB_THREADS": str(THREADS),  # as llama-server's -t (the default leaves one core)
                "LLMLB_SLOTS": str(STREAMS),  # as llama-server's -np (and llmlb's default)
                "LLMLB_CONTEXT_SIZE": str(SERVER_CTX // STREAMS),  # per slot, as llama-server
            }
            say(f"(d) llmlb serve with its local node, {PER_TOKEN}")
            per_token = _served_engine(stack, Path(tmp) / "per-token", env, PER_TOKEN_ENV)
            if isinstance(per_token, str):
                say(f"    not measured: {per_token}")
            else:
                references = {**references, PER_TOKEN: per_token}
            say("(d) llmlb serve with its local node, default settings")
            port = free_port()
            try:
                proc = start_llmlb(Path(tmp) / "data", port, env, local_node=True)
            except RuntimeError as exc:
                raise NotMeasured(_short(exc)) from exc
            stack.callback(stop, proc)
            tail: collections.deque[str] = collections.deque(maxlen=20)
            drain = threading.Thread(target=_drain, args=(proc.stderr, tail), daemon=True)
            drain.start()
            try:
                return _measure_served(
                    f"http://127.0.0.1:{port}",
                    proc,
                    Path(tmp) / "data",
                    references,
                    parallel_references,
                )
            except NotMeasured as exc:
                worrying = [line for line in tail if any(w in line for w in LOG_ALARMS)]
                log = " / ".join(worrying)[-400:]
                raise NotMeasured(f"{exc}" + (f"; llmlb log: {log}" if log else "")) from exc
            finally:
                stop(proc)
                drain.join(5)
    finally:
        hub.stop()


def _served_engine(
    stack: ExitStack, data_dir: Path, env: dict[str, str], settings: dict[str, str]
) -> Engine | str:
    """Another `llmlb serve` with these settings, the model ready and loaded, as a single-stream
    engine (stopped when `stack` closes); or why it could not be had."""
    port = free_port()
    try:
        proc = start_llmlb(data_dir, port, {**env, **settings}, local_node=True)
    except RuntimeError as exc:
        return _short(exc)
    stack.callback(stop, proc)
    threading.Thread(
        target=_drain, args=(proc.stderr, collections.deque(maxlen=1)), daemon=True
    ).start()
    base = f"http://127.0.0.1:{port}"
    try:
        name = _wait_until_listed(base, proc)
        client = openai_client(f"{base}/v1")
        openai_run(client, name, BIAS)  # the node loads the model on first use
    except Exception as exc:
        return _short(exc)
    return lambda n: openai_run(client, name, BIAS, max_tokens=n)


def _wait_until_listed(base: str, proc: subprocess.Popen[bytes], repo: str = REPO) -> str:
    """Register the model and wait until `/v1/models` lists it; returns its name."""
    status, answer = _http_json("POST", f"{base}/v0/models/register", {"repo": repo})
    if status != 201 or not isinstance(answer, dict):
        raise NotMeasured(f"registration answered HTTP {status}: {_short(answer)}")
    name = str(answer.get("name") or repo.lower())
    say(f"    registered as '{name}', waiting until /v1/models lists it")
    deadline = time.monotonic() + READY_TIMEOUT
    while True:
        if proc.poll() is not None:
            raise NotMeasured(f"llmlb exited with {proc.returncode} while loading the model")
        status, listing = _http_json("GET", f"{base}/v1/models")
        data = listing.get("data") if isinstance(listing, dict) else None
        if status == 200 and any(isinstance(m, dict) and m.get("id") == name for m in data or []):
            return name
        if time.monotonic() > deadline:
            _, models = _http_json("GET", f"{base}/v0/models")
            state = [
                {k: m.get(k) for k in ("id", "status", "nodes")}
                for m in (models if isinstance(models, list) else [])
                if isinstance(m, dict)
            ]
            raise NotMeasured(
                f"/v1/models did not list '{name}' within {READY_TIMEOUT:.0f} s "
                f"(/v0/models: {_short(state)})"
            )
        time.sleep(0.5)


def _measure_served(
    base: str,
    proc: subprocess.Popen[bytes],
    data_dir: Path,
    references: dict[str, Engine],
    parallel_references: dict[str, Callable[[int], Round]],
) -> dict[str, Any]:
    name = _wait_until_listed(base, proc)
    bias = dict(BIAS)
    client = openai_client(f"{base}/v1")
    try:
        first = openai_run(client, name, bias)  # the node loads the model on first use
    except Exception as exc:
        raise NotMeasured(f"inference through the balancer failed: {_short(exc)}") from exc
    say(f"    ready; first answer {first.tokens} tokens in {first.total * 1000:.0f} ms")
    engines: dict[str, Engine] = {
        **references,
        "llmlb": lambda n: openai_run(client, name, bias, max_tokens=n),
    }
    node_client: OpenAI | None = None
    target = _node_target(base, name, data_dir)
    if isinstance(target, str):
        direct_note = target
    else:
        node_url, headers = target
        direct_note = node_url
        try:
            node_client = openai_client(node_url, headers)
            openai_run(node_client, name, bias, max_tokens=TTFT_TOKENS)
            direct_client = node_client
            engines["llmlb direct"] = lambda n: openai_run(direct_client, name, bias, max_tokens=n)
        except Exception as exc:
            node_client = None
            direct_note = f"direct to {node_url} failed: {_short(exc, 160)}"
    say("    1 stream, interleaved: " + ", ".join(engines))
    try:
        measured = singles(engines)
    except Exception as exc:
        raise NotMeasured(f"a single-stream run failed: {_short(exc)}") from exc
    for label, single in measured.items():
        say(f"    {label}: {single.tps:.0f} tok/s, TTFT {single.ttft_ms:.1f} ms")

    multi: dict[int, Parallel] = {}
    multi_note = ""
    parallel_measured: dict[int, dict[str, Parallel]] = {}
    clients = [openai_client(f"{base}/v1") for _ in range(max(PARALLEL))]
    with_llmlb: dict[str, Callable[[int], Round]] = {
        **parallel_references,
        "llmlb": lambda n: parallel_round(clients[:n], name, bias),
    }
    for n in PARALLEL:
        say(f"    {n} streams, interleaved: " + ", ".join(with_llmlb))
        try:
            measured_n = parallels(at(n, with_llmlb))
            multi[n] = measured_n.pop("llmlb")
            say(f"    llmlb: {multi[n].tps:.0f} tok/s in total, TTFT {multi[n].ttft_ms:.1f} ms")
        except Exception as exc:
            multi_note = f"failed: {_short(exc, 160)}"
            measured_n = parallels(at(n, parallel_references))
        parallel_measured[n] = measured_n

    ttft_added: list[float] = []
    if node_client is not None:
        # What the balancer adds to the first token: interleaved pairs of short answers.
        for i in range(TTFT_PAIRS + 2):
            via = openai_run(client, name, bias, max_tokens=TTFT_TOKENS).ttft
            own = openai_run(node_client, name, bias, max_tokens=TTFT_TOKENS).ttft
            if i >= 2:  # the first pairs warm up
                ttft_added.append((via - own) * 1000)
        say(f"    first-token time added by the balancer: {statistics.median(ttft_added):+.2f} ms")
    return {
        "name": name,
        "balancer": measured.pop("llmlb"),
        "direct": measured.pop("llmlb direct", None),
        "direct_note": direct_note,
        "parallel": multi,
        "parallel_note": multi_note,
        "ttft_added": ttft_added,
        "references": measured,
        "parallel_references": parallel_measured,
    }


BIAS: dict[str, int] = {}  # filled in by main(): end-of-generation ids -> -100


class CpuWatch:
    """CPU time spent outside this process and its children while the block ran.

    `result` is (share of all cores used by other processes, share stolen by the hypervisor).
    Our children count whether still running (read from /proc) or already waited for.
    """

    def __enter__(self) -> CpuWatch:
        self._start = self._snapshot()
        self.result = (0.0, 0.0)
        return self

    def __exit__(self, *exc: object) -> None:
        end = self._snapshot()
        wall, busy, steal, ours = (b - a for a, b in zip(self._start, end, strict=True))
        capacity = wall * (os.cpu_count() or 1)
        if capacity > 0:
            self.result = (max(0.0, busy - ours) / capacity, steal / capacity)

    @staticmethod
    def _snapshot() -> tuple[float, float, float, float]:
        try:
            fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
        except (OSError, ValueError):
            fields = [0] * 8
        user, nice, system, _idle, _iowait, irq, softirq, steal = (fields + [0] * 8)[:8]
        hz = os.sysconf("SC_CLK_TCK")
        own = resource.getrusage(resource.RUSAGE_SELF)
        kids = resource.getrusage(resource.RUSAGE_CHILDREN)
        ours = own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime
        ours += CpuWatch._live_children() / hz
        busy = (user + nice + system + irq + softirq) / hz
        return time.monotonic(), busy, steal / hz, ours

    @staticmethod
    def _live_children() -> int:
        """Clock ticks used so far by our running children (and the children they reaped)."""
        me = str(os.getpid())
        ticks = 0
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except (OSError, IndexError):
                continue
            # fields[0] is the state, [1] the parent pid, [11:15] utime stime cutime cstime
            if len(fields) > 14 and fields[1] == me:
                ticks += sum(int(v) for v in fields[11:15])
        return ticks


def wait_until_quiet(limit: float = QUIET_WAIT) -> None:
    """Wait (up to `limit` seconds) for 2 s in which other processes use little CPU."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        with CpuWatch() as watch:
            time.sleep(2)
        if watch.result[0] + watch.result[1] <= QUIET_SHARE / 2:
            return
        say(f"    the machine is busy ({watch.result[0]:.0%} of the cores used elsewhere), waiting")
    say(f"    still busy after {limit:.0f} s, measuring anyway")


def undisturbed(label: str, measure: Callable[[], R]) -> tuple[R, tuple[float, float]]:
    """`measure()` on a quiet machine, done again (up to ATTEMPTS) when other work disturbed it.

    Returns the least disturbed result and its CpuWatch share (other processes, steal).
    """
    best: tuple[R, tuple[float, float]] | None = None
    for attempt in range(1, ATTEMPTS + 1):
        wait_until_quiet()
        with CpuWatch() as watch:
            result = measure()
        share = watch.result
        if best is None or sum(share) < sum(best[1]):
            best = (result, share)
        if sum(share) <= QUIET_SHARE:
            break
        say(
            f"{label}: other work took {share[0]:.0%} of the cores during attempt {attempt};"
            + (" measuring again" if attempt < ATTEMPTS else " keeping the least disturbed")
        )
    assert best is not None
    return best


def main(argv: list[str] | None = None) -> int:
    """The rounds asked for on the command line (all of them by default)."""
    import argparse

    from bench import node_rounds

    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument(
        "--round",
        action="append",
        choices=("decode", "long", "q8"),
        help="run only this round (repeatable): decode (the reference model), long (a long "
        "conversation's follow-up, bench/node_rounds.py), q8 (a 0.5B Q8_0 model); default all",
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=THREADS,
        help=f"threads of each engine in the long and q8 rounds (default {THREADS}); on a "
        "machine busy with other work, 1 spares them the stalls of a thread barrier",
    )
    args = parser.parse_args(argv)
    chosen = args.round or ["decode", "long", "q8"]
    status = 0
    if "decode" in chosen:
        status |= decode_round()
    if "long" in chosen:
        status |= node_rounds.long_round(args.threads)
    if "q8" in chosen:
        status |= node_rounds.q8_round(args.threads)
    return status


def decode_round() -> int:
    """The decode round on the reference model: the `node-decode` section."""
    model = reference_model()
    banned, n_prompt = vocab_facts(model)
    BIAS.update({str(t): -100 for t in banned})
    say(f"end-of-generation ids {banned}, prompt {n_prompt} tokens")

    with ExitStack() as stack:
        log = stack.enter_context(tempfile.TemporaryFile())
        references: dict[str, Engine] = {}
        parallel_references: dict[str, Callable[[int], Round]] = {}
        server_error = ""
        try:
            binary = ensure_llama_server()
            base = stack.enter_context(llama_server(binary, model, log))
            client = openai_client(base)
            clients = [openai_client(base) for _ in range(max(PARALLEL))]
            references["llama-server"] = lambda n: openai_run(client, "ref-25m", BIAS, max_tokens=n)
            parallel_references["llama-server"] = lambda n: parallel_round(
                clients[:n], "ref-25m", BIAS
            )
        except Exception as exc:
            server_error = f"{type(exc).__name__}: {_short(exc, 200)}"
            say(f"llama-server not measured: {server_error}\n{llama_server_log_tail(log)}")
        in_process = InProcess(model, banned)
        stack.callback(in_process.close)
        references["llama-cpp-python"] = in_process.run
        engine = EngineProcess(model, banned)
        stack.callback(engine.close)
        references["llmlb engine"] = engine.run
        parallel_references["llmlb engine"] = engine.parallel

        reasons: list[str] = []

        def measure() -> tuple[
            dict[str, Any] | None, dict[str, Single], dict[int, dict[str, Parallel]]
        ]:
            reasons.clear()
            llmlb = measure_llmlb(model, reasons, references, parallel_references)
            if llmlb is not None:
                return llmlb, llmlb["references"], llmlb["parallel_references"]
            say("1 stream, interleaved: " + ", ".join(references))
            one = singles(references)
            say(f"{PARALLEL} streams: " + ", ".join(parallel_references))
            return None, one, {n: parallels(at(n, parallel_references)) for n in PARALLEL}

        (llmlb, one, many), others = undisturbed("the measurements", measure)

    text = report(
        Results(n_prompt, banned, one, many, server_error, llmlb, "; ".join(reasons), others)
    )
    record("node-decode", text)
    print(text)
    return 0


if __name__ == "__main__":
    if sys.argv[1:2] == ["--engine-worker"]:
        raise SystemExit(engine_worker(*sys.argv[2:4]))
    raise SystemExit(main())
