"""Two rounds of `bench/node.py` beside its decode round: a long conversation's follow-up turn,
and a realistic-size Q8_0 model; llmlb against `llama-server`, interleaved, medians.

Run one alone: `.venv/bin/python bench/node.py --round long` (or `--round q8`); plain
`bench/node.py` (`make bench-node`) runs them after the decode round. `--threads N` sets
each engine's threads here (default 2, as the decode round): on a machine busy with other
work, 1 spares the engines the stalls of ggml's thread barrier (see docs/benchmarks.md).

long: the reference model's shape with a 16,384-token trained context (f32, ~25M parameters).
  Each engine first answers one user message of about 8k tokens (16 tokens); then, RUNS_LONG
  times after a warm-up, interleaved round-robin, the same conversation plus its own answer
  plus a new short user message (a different one each time), and we time the first token of
  that follow-up. llama-server gets `-c 65536 -np 4` (each of its 4 slots holds 16k) and
  `cache_prompt: true`; llmlb sizes its context to the model (LLMLB_CONTEXT_SIZE unset).
q8: a generated ~0.52B-parameter llama in Q8_0 (`Q8_BENCH_CONFIG`, ~0.55 GB): 1, 4 and 8
  streams of Q8_NEW_TOKENS greedy tokens, as the decode round measures them.

Where this machine advertises AMX but traps its tile instructions, every llama.cpp here
dies of SIGILL on a Q8_0 model; then both engines run with `bench/no_amx.c` preloaded (see
there), and the section says so.
"""

from __future__ import annotations

import collections
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar, cast

from openai import OpenAI

from bench.common import free_port, machine, record, start_llmlb, stop, today
from bench.llama_server import CACHE_ROOT, ensure_llama_server
from bench.node import (
    CpuWatch,
    _drain,
    _wait_until_listed,
    llama_server,
    openai_client,
    openai_run,
    parallel_round,
    vocab_facts,
)
from bench.node_report import PARALLEL, STREAMS, THREADS, WARM_TOKENS
from tests.fakes.fake_hub import FakeHub, FakeRepo
from tests.support.tiny_gguf import (
    Q8_BENCH_CONFIG,
    REFERENCE_BENCH_CONFIG,
    build_vocab,
    write_llama_gguf,
)

R = TypeVar("R")
LONG_FILE = "ref-25m-16k-F32.gguf"
LONG_REPO = "bench/ref-25m-16k"
LONG_CONTEXT = 16384  # the model's trained context
LONG_PROMPT_TOKENS = 8192  # the first user message
LONG_SERVER_CTX = 65536  # llama-server -c with -np 4: 16k per slot
FIRST_TOKENS = 16  # the first answer
FOLLOW_TOKENS = 4  # the follow-up's answer (only its first token is timed)
RUNS_LONG = 7
TARGET_LONG = 1.1  # llmlb follow-up TTFT / llama-server's, at most

Q8_FILE = "ref-500m-Q8_0.gguf"
Q8_REPO = "bench/ref-500m-q8"
Q8_SERVER_CTX = 8192  # llama-server -c with -np 4: 2048 per slot, the model's trained context
Q8_NEW_TOKENS = 32
RUNS_Q8 = 5
TARGET_Q8 = 1.0  # llmlb tok/s / llama-server's, at least
NO_AMX_SOURCE = Path(__file__).with_name("no_amx.c")
NO_AMX = CACHE_ROOT / "no_amx.so"


def say(message: str) -> None:
    print(f"[node bench] {message}", file=sys.stderr, flush=True)


def interleave(engines: dict[str, Callable[[], R]], runs: int) -> dict[str, list[R]]:
    """A warm-up of each engine, then `runs` rounds of one measurement each, in rotating
    order, so that a slow spell of the machine hits every engine alike."""
    for measure in engines.values():
        measure()
    names = list(engines)
    done: dict[str, list[R]] = {name: [] for name in names}
    for i in range(runs):
        shift = i % len(names)
        for name in names[shift:] + names[:shift]:
            done[name].append(engines[name]())
    return done


def spread(values: list[float], unit: str = "", scale: float = 1.0, digits: int = 0) -> str:
    """'median (min–max)' of `values`."""
    m, lo, hi = (v * scale for v in (statistics.median(values), min(values), max(values)))
    return f"{m:.{digits}f}{unit} ({lo:.{digits}f}–{hi:.{digits}f})"


def load_note() -> str:
    one, five, _ = os.getloadavg()
    return f"load average {one:.1f} (1 min) / {five:.1f} (5 min)"


# -- llmlb served from a fake Hub ---------------------------------------------------------


@contextmanager
def served_llmlb(
    model: Path, repo: str, env: dict[str, str], threads: int = THREADS
) -> Iterator[tuple[str, str]]:
    """`llmlb serve` with its local node, `model` registered from a fake Hub as `repo` and
    listed; yields (base URL, model name)."""
    hub = FakeHub([FakeRepo(repo, {model.name: model.read_bytes()})]).start()
    try:
        with tempfile.TemporaryDirectory(prefix="llmlb-node-bench-") as tmp, ExitStack() as stack:
            full = {
                "HF_ENDPOINT": hub.url,
                "LLMLB_ADMIN_TOKEN": "bench-node-admin-token",
                "HF_HOME": str(Path(tmp) / "hf"),
                "HF_HUB_DISABLE_TELEMETRY": "1",
                "LLMLB_THREADS": str(threads),
                "LLMLB_SLOTS": str(STREAMS),
                **env,
            }
            port = free_port()
            proc = start_llmlb(Path(tmp) / "data", port, full, local_node=True)
            stack.callback(stop, proc)
            tail: collections.deque[str] = collections.deque(maxlen=20)
            threading.Thread(target=_drain, args=(proc.stderr, tail), daemon=True).start()
            base = f"http://127.0.0.1:{port}"
            try:
                name = _wait_until_listed(base, proc, repo)
            except Exception as exc:
                raise RuntimeError(f"{exc}; llmlb log: {' / '.join(tail)[-600:]}") from exc
            yield base, name
    finally:
        hub.stop()


# -- long: a long conversation's follow-up --------------------------------------------------


@dataclass
class Conversation:
    """One engine's long conversation: the first turn, then follow-ups timed to first token."""

    label: str
    client: OpenAI
    model: str
    bias: dict[str, int]
    extra: dict[str, Any]
    messages: list[dict[str, str]]
    asked: int = 0
    first_ttft: float = 0.0
    timings: list[dict[str, float]] = field(default_factory=list)  # llama-server's own

    def _chat(self, messages: list[dict[str, str]], max_tokens: int) -> tuple[float, str]:
        started = time.perf_counter()
        first = 0.0
        text = []
        stream = self.client.chat.completions.create(
            model=self.model,
            messages=cast(Any, messages),
            max_tokens=max_tokens,
            temperature=0,
            stream=True,
            extra_body={"logit_bias": self.bias, **self.extra},
        )
        for chunk in stream:
            timings = (chunk.model_extra or {}).get("timings")
            if isinstance(timings, dict) and "cache_n" in timings:
                self.timings.append({k: float(v) for k, v in timings.items()})
            if chunk.choices and chunk.choices[0].delta.content:
                if not first:
                    first = time.perf_counter()
                text.append(chunk.choices[0].delta.content)
        if not first:
            raise RuntimeError(f"{self.label}: the answer carried no text")
        return first - started, "".join(text)

    def start(self, long_text: str) -> None:
        """The first turn: the long user message and the engine's own answer to it."""
        self._chat([{"role": "user", "content": "hi"}], 2)  # loaded
        self.messages = [{"role": "user", "content": long_text}]
        self.first_ttft, answer = self._chat(self.messages, FIRST_TOKENS)
        self.messages.append({"role": "assistant", "content": answer})

    def follow_up(self) -> float:
        """The conversation plus a new short user message; seconds to its first token."""
        self.asked += 1
        words = ("model", "question", "world", "answer", "word", "time", "help")
        message = f"tell me more about the {words[self.asked % len(words)]}, part {self.asked}"
        return self._chat([*self.messages, {"role": "user", "content": message}], FOLLOW_TOKENS)[0]


def long_model() -> Path:
    path = CACHE_ROOT / LONG_FILE
    if not path.exists():
        say(f"writing the long-context model to {path}")
        write_llama_gguf(path, **{**REFERENCE_BENCH_CONFIG, "context_length": LONG_CONTEXT})
    return path


def long_text(model: Path, n_tokens: int) -> tuple[str, int]:
    """Words of the model's vocabulary making about `n_tokens` tokens, and their count."""
    import llama_cpp

    tokens, _, _ = build_vocab()
    words = [t[1:] for t in tokens if t.startswith("\u2581") and t[1:].isalpha() and len(t) > 3]
    rng = random.Random(15)
    llm = llama_cpp.Llama(model_path=str(model), vocab_only=True, verbose=False)
    try:
        picked = [rng.choice(words) for _ in range(n_tokens)]
        text = " ".join(picked)
        count = len(llm.tokenize(text.encode()))
        while count > n_tokens:  # trim to at most n_tokens
            picked = picked[: len(picked) - (count - n_tokens)]
            text = " ".join(picked)
            count = len(llm.tokenize(text.encode()))
    finally:
        llm.close()
    return text, count


def long_round(threads: int = THREADS) -> int:
    """The long-conversation round: the `node-long` section of docs/benchmarks.md."""
    model = long_model()
    banned, _ = vocab_facts(model)
    bias = {str(t): -100 for t in banned}
    text, n_text = long_text(model, LONG_PROMPT_TOKENS)
    say(f"long round: a {n_text}-token first message, {load_note()}")
    started_load = load_note()
    with ExitStack() as stack:
        log = stack.enter_context(tempfile.TemporaryFile())
        binary = ensure_llama_server()
        server = stack.enter_context(
            llama_server(binary, model, log, ctx=LONG_SERVER_CTX, threads=threads)
        )
        base, name = stack.enter_context(served_llmlb(model, LONG_REPO, {}, threads))
        ref = Conversation("llama-server", openai_client(server), "ref", bias, {}, [])
        ref.extra = {"cache_prompt": True}
        ours = Conversation("llmlb", openai_client(f"{base}/v1"), name, bias, {}, [])
        context = _llmlb_context(base, name)
        for conv in (ref, ours):
            conv.start(text)
            say(f"    {conv.label}: first turn, TTFT {conv.first_ttft * 1000:.0f} ms")
        with CpuWatch() as watch:
            follow_ups = {"llama-server": ref.follow_up, "llmlb": ours.follow_up}
            measured = interleave(follow_ups, RUNS_LONG)
    for label, ttfts in measured.items():
        say(f"    {label}: follow-up TTFT {spread(ttfts, ' ms', 1000, 1)}")
    ratio = statistics.median(measured["llmlb"]) / statistics.median(measured["llama-server"])
    verdict = "met" if ratio <= TARGET_LONG else f"missed by {ratio / TARGET_LONG - 1:.0%}"
    own = ref.timings[3:]  # the follow-ups' (after the loading, first-turn and warm-up answers)

    def median_of(key: str) -> float:
        return statistics.median(t.get(key, 0.0) for t in own) if own else 0.0

    lines = [
        "## Long conversation, follow-up turn (`bench/node.py --round long`)",
        "",
        f"{today()}, {machine()}; {started_load} at the start, {load_note()} at the end"
        f" (other engineers' tests were running); other processes used {watch.result[0]:.0%}"
        " of the cores during the timed runs.",
        "",
        f"Model: the reference model's shape (f32, ~25M parameters) with a {LONG_CONTEXT:,}"
        f"-token trained context (`context_length={LONG_CONTEXT}`), {model.name}. Turn 1: one"
        f" user message of {n_text:,} tokens (words of the model's vocabulary), a"
        f" {FIRST_TOKENS}-token answer. Follow-up: the same conversation, the engine's own"
        " answer, and a new short user message (a different one each time, about 12 tokens);"
        f" {FOLLOW_TOKENS} answer tokens, end-of-generation banned, greedy, chat completions"
        f" streamed through the `openai` client. A warm-up, then {RUNS_LONG} follow-ups per"
        " engine, interleaved round-robin; median (min–max)."
        f" {threads} thread{'s' if threads > 1 else ''}, 4 slots each:"
        f" `llama-server -t {threads} -np 4 -c {LONG_SERVER_CTX}` (each slot holds"
        f" {LONG_SERVER_CTX // 4:,} tokens in a KV stream of its own, no `--kv-unified`;"
        " its default prompt cache, `cache_prompt: true` sent); llmlb with"
        " `LLMLB_CONTEXT_SIZE` unset, its context sized to the model"
        f" ({context}).",
        "",
        "| engine | turn 1 TTFT (8k prompt, cold) | follow-up TTFT, median (min–max) |",
        "|---|---|---|",
        f"| llama-server | {ref.first_ttft * 1000:,.0f} ms | "
        f"{spread(measured['llama-server'], ' ms', 1000, 1)} |",
        f"| llmlb (through the balancer) | {ours.first_ttft * 1000:,.0f} ms | "
        f"{spread(measured['llmlb'], ' ms', 1000, 1)} |",
        "",
        "llama-server's own timings of the follow-ups (medians): "
        f"{median_of('cache_n'):.0f} prompt tokens taken from its cache (`cache_n`),"
        f" {median_of('prompt_n'):.0f} evaluated (`prompt_n`) in {median_of('prompt_ms'):.0f} ms"
        " (`prompt_ms`).",
        "",
        f"Ratio llmlb / llama-server, follow-up TTFT: {ratio:.2f}; target ≤ {TARGET_LONG}:"
        f" **{verdict}**.",
    ]
    section = "\n".join(lines)
    record("node-long", section)
    print(section)
    return 0


def _llmlb_context(base: str, name: str) -> str:
    """The context llmlb reports for `name` in `/v1/models`."""
    from bench.node import _http_json

    _, listing = _http_json("GET", f"{base}/v1/models")
    for item in listing.get("data", []) if isinstance(listing, dict) else []:
        if isinstance(item, dict) and item.get("id") == name:
            return f"`/v1/models` context_length {item.get('context_length')}"
    return "`/v1/models` does not say"


# -- q8: a realistic-size Q8_0 model --------------------------------------------------------


def q8_model() -> Path:
    path = CACHE_ROOT / Q8_FILE
    if not path.exists():
        say(f"writing the 0.5B Q8_0 model to {path} (about 30 s)")
        write_llama_gguf(path, **Q8_BENCH_CONFIG)
    return path


def parameters(config: dict[str, Any]) -> int:
    """Parameters of a `write_llama_gguf` model with this configuration."""
    n_vocab = len(build_vocab()[0])
    e, f, layers = config["n_embd"], config["n_ff"], config["n_layer"]
    kv = e // config["n_head"] * config.get("n_head_kv", config["n_head"])
    block = e * e * 2 + e * kv * 2 + 3 * e * f + 2 * e
    return int(layers * block + 2 * n_vocab * e + e)


def amx_env(model: Path) -> dict[str, str]:
    """{} when llama.cpp runs `model` here; else the LD_PRELOAD that keeps it off AMX."""
    probe = [sys.executable, "-c", _PROBE, str(model)]
    if subprocess.run(probe, capture_output=True, timeout=300, check=False).returncode == 0:
        return {}
    if not NO_AMX.exists() or NO_AMX.stat().st_mtime < NO_AMX_SOURCE.stat().st_mtime:
        compiler = shutil.which("cc") or shutil.which("gcc") or "cc"
        command = [compiler, "-O2", "-shared", "-fPIC", "-o", str(NO_AMX), str(NO_AMX_SOURCE)]
        subprocess.run([*command, "-ldl"], check=True)
    env = {"LD_PRELOAD": str(NO_AMX)}
    if subprocess.run(probe, env={**os.environ, **env}, timeout=300, check=False).returncode:
        raise RuntimeError("llama.cpp cannot run the Q8_0 model here, even without AMX")
    return env


_PROBE = """
import sys, llama_cpp
llm = llama_cpp.Llama(model_path=sys.argv[1], n_ctx=64, n_threads=2, verbose=False)
llm.create_completion("hello", max_tokens=1)
"""


def q8_round(threads: int = THREADS) -> int:
    """The realistic-size round: the `node-q8` section of docs/benchmarks.md."""
    model = q8_model()
    banned, n_prompt = vocab_facts(model)
    bias = {str(t): -100 for t in banned}
    env = amx_env(model)
    if env:
        say(f"    llama.cpp dies of SIGILL in its AMX kernels here: both engines get {env}")
    started_load = load_note()
    with ExitStack() as stack:
        log = stack.enter_context(tempfile.TemporaryFile())
        binary = ensure_llama_server()
        server = stack.enter_context(llama_server(binary, model, log, Q8_SERVER_CTX, env, threads))
        base, name = stack.enter_context(served_llmlb(model, Q8_REPO, env, threads))
        clients = {
            "llama-server": [openai_client(server) for _ in range(max(PARALLEL))],
            "llmlb": [openai_client(f"{base}/v1") for _ in range(max(PARALLEL))],
        }
        models = {"llama-server": "ref", "llmlb": name}

        def single(label: str) -> Callable[[], float]:
            def run() -> float:
                openai_run(clients[label][0], models[label], bias, WARM_TOKENS)
                done = openai_run(clients[label][0], models[label], bias, Q8_NEW_TOKENS)
                if done.tokens != Q8_NEW_TOKENS:
                    raise RuntimeError(f"{label} answered {done.tokens} tokens")
                detail[label].append((done.ttft, done.decode_tps))
                return done.tps

            return run

        def many(label: str, n: int) -> Callable[[], float]:
            def run() -> float:
                tps, counts, _ = parallel_round(
                    clients[label][:n], models[label], bias, Q8_NEW_TOKENS
                )
                if set(counts) != {Q8_NEW_TOKENS}:
                    raise RuntimeError(f"{label} answered {counts} tokens")
                return tps

            return run

        figures: dict[int, dict[str, list[float]]] = {}
        detail: dict[str, list[tuple[float, float]]] = {label: [] for label in models}
        with CpuWatch() as watch:
            for n in (1, *PARALLEL):
                say(f"q8 round: {n} stream(s), interleaved")
                engines = {label: single(label) if n == 1 else many(label, n) for label in models}
                figures[n] = interleave(engines, RUNS_Q8)
                for label, tps in figures[n].items():
                    say(f"    {label}: {spread(tps, ' tok/s', digits=1)}")
    size = model.stat().st_size / 1e9
    rows, ratios = [], []
    for label in ("llama-server", "llmlb"):
        cells = [spread(figures[n][label], digits=1) for n in figures]
        timed = detail[label][1:]  # the warm-up's left out, as in `interleave`
        cells.append(spread([t[0] for t in timed], " ms", 1000))
        cells.append(spread([t[1] for t in timed], digits=1))
        rows.append(f"| {label} | " + " | ".join(cells) + " |")
    for n in figures:
        r = statistics.median(figures[n]["llmlb"]) / statistics.median(figures[n]["llama-server"])
        verdict = "met" if r >= TARGET_Q8 else f"missed by {1 - r / TARGET_Q8:.0%}"
        ratios.append(f"- {n} stream{'s' if n > 1 else ''}: {r:.2f} ({verdict})")
    amx = (
        "This machine advertises AMX, and llama.cpp (llama-server and llmlb's llama-cpp-python,"
        " both built with its native CPU flags) dies of SIGILL on `tilezero` in"
        " `tinygemm_kernel_amx<block_q8_0>` as soon as it runs a Q8_0 matrix product: the"
        " hypervisor grants the AMX permission but traps the instructions. Both engines ran"
        " with `bench/no_amx.c` preloaded (`LD_PRELOAD`), which refuses that permission, so"
        ' ggml says "AMX is not ready to be used!" and uses its AVX-512 kernels.'
        if env
        else "llama.cpp ran the Q8_0 model here as built (no AMX workaround needed)."
    )
    lines = [
        "## Realistic-size model, Q8_0 (`bench/node.py --round q8`)",
        "",
        f"{today()}, {machine()}; {started_load} at the start, {load_note()} at the end;"
        f" other processes used {watch.result[0]:.0%} of the cores during the runs.",
        "",
        f"Model: a generated llama in Q8_0 (`Q8_BENCH_CONFIG`: n_embd {Q8_BENCH_CONFIG['n_embd']},"
        f" {Q8_BENCH_CONFIG['n_layer']} layers, n_ff {Q8_BENCH_CONFIG['n_ff']},"
        f" {Q8_BENCH_CONFIG['n_head']} heads, {parameters(Q8_BENCH_CONFIG) / 1e9:.2f}B"
        f" parameters, {size:.2f} GB, quantized with `gguf.quants`), {model.name}; every token"
        " reads all of it, so decode is memory-bound as with a real small model. Prompt"
        f' "hello, how are you" ({n_prompt} tokens), {Q8_NEW_TOKENS} new tokens, greedy,'
        f" end-of-generation banned; {threads} thread{'s' if threads > 1 else ''}, 4 slots"
        f" (`llama-server -t {threads} -np 4 -c"
        f" {Q8_SERVER_CTX}`, llmlb `LLMLB_SLOTS=4`); completions streamed through the `openai`"
        f" client. A warm-up, then {RUNS_Q8} runs per engine and stream count, interleaved"
        " round-robin; median (min–max); 1 stream: each timed answer right after a 2-token one.",
        "",
        amx,
        "",
        "| engine | 1 stream tok/s | 4 streams total tok/s | 8 streams total tok/s"
        " | TTFT, 1 stream | decode only, 1 stream tok/s |",
        "|---|---|---|---|---|---|",
        *rows,
        "",
        f"Ratios llmlb / llama-server (target ≥ {TARGET_Q8}):",
        "",
        *ratios,
        "",
        "tok/s = answer tokens / time from sending the request to the end of the answer;"
        " n streams = all tokens / time from the first request to the last answer's end;"
        " decode only = tokens after the first / time from the first to the last.",
    ]
    section = "\n".join(lines)
    record("node-q8", section)
    print(section)
    return 0
