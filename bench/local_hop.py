"""What the in-process local node saves: event-loop CPU per streamed token, in-process vs HTTP.

Run: `.venv/bin/python bench/local_hop.py [--rounds N] [--interval SECONDS]` (about a minute).
One `AppContext` (balancer + local node, as `llmlb serve` runs them) on its own event-loop
thread in this process, the reference model (`tests/support/tiny_gguf.py`, ~25M parameters)
served from a fake Hugging Face Hub, 2 llama.cpp threads. The same streamed `/v1/completions`
(128 tokens, end-of-generation banned, greedy) is sent through the balancer N times in each of
two ways, interleaved round-robin after a warm-up:

  in-process: the balancer's `Upstream` for the local node is the in-process adapter (default);
  over HTTP:  the adapter detached (`Dispatcher.detach_local`), so the balancer calls the same
              node's own HTTP app on the same loop, as it would a node on the LAN.

For each answer: tok/s as the client sees it, and the CPU time of the event-loop thread alone
(`pthread_getcpuclockid`; llama.cpp decodes on threads of its own and the client runs on the
main thread, so neither is counted) per token. Medians are printed; nothing is written.
`--interval` is `LLMLB_STREAM_INTERVAL` (default 0.02 s; 0 sends every token alone).
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.context import AppContext
from app.core.settings import Settings
from app.local_upstream import LocalUpstream
from bench.llama_server import CACHE_ROOT
from tests.fakes.fake_hub import FakeHub, FakeRepo
from tests.support.tiny_gguf import REFERENCE_BENCH_CONFIG, write_llama_gguf

MODEL_FILE = "ref-25m-F32.gguf"
REPO = "bench/ref-25m"
ADMIN = "bench-local-hop-admin-token"
TOKENS = 128
PROMPT = "hello, how are you"


class Served:
    """The app on its own loop thread; `call` runs a coroutine there and waits for it."""

    def __init__(self, settings: Settings) -> None:
        self.loop = asyncio.new_event_loop()
        self.ctx = AppContext(settings)
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.call(self.ctx.start())
        assert self.thread.ident is not None
        self.clock = time.pthread_getcpuclockid(self.thread.ident)

    def call(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(300)

    def loop_cpu(self) -> float:
        """CPU seconds the event-loop thread has used."""
        return time.clock_gettime(self.clock)

    def in_process(self, on: bool) -> None:
        async def switch() -> None:
            node, b = self.ctx.local_node, self.ctx.balancer
            assert node is not None and b is not None
            if on:
                b.dispatcher.attach_local(node.url, LocalUpstream(node.models))
            else:
                b.dispatcher.detach_local(node.url)

        self.call(switch())

    def close(self) -> None:
        self.call(self.ctx.stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


def request(port: int, method: str, path: str, body: Any = None) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    headers = {"Authorization": f"Bearer {ADMIN}", "Content-Type": "application/json"}
    conn.request(method, path, json.dumps(body) if body is not None else None, headers)
    response = conn.getresponse()
    data = response.read()
    conn.close()
    return response.status, data


def stream(port: int, name: str, bias: dict[str, int]) -> tuple[int, float]:
    """One streamed answer: (completion tokens, seconds to its end)."""
    body = {
        "model": name,
        "prompt": PROMPT,
        "max_tokens": TOKENS,
        "temperature": 0,
        "stream": True,
        "stream_options": {"include_usage": True},
        "logit_bias": bias,
    }
    started = time.perf_counter()
    status, data = request(port, "POST", "/v1/completions", body)
    elapsed = time.perf_counter() - started
    assert status == 200 and data.rstrip().endswith(b"data: [DONE]"), data[-300:]
    usage = [e for e in data.split(b"\n\n") if b'"usage"' in e and b'"choices": []' in e]
    tokens = json.loads(usage[-1][len(b"data: ") :])["usage"]["completion_tokens"]
    return int(tokens), elapsed


def banned_ids(path: Path) -> list[int]:
    import llama_cpp

    llm = llama_cpp.Llama(model_path=str(path), vocab_only=True, verbose=False)
    vocab = llama_cpp.llama_model_get_vocab(llm.model)
    ids = [t for t in range(llm.n_vocab()) if llama_cpp.llama_vocab_is_eog(vocab, t)]
    llm.close()
    return ids


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--interval", type=float, default=0.02)
    args = parser.parse_args()
    model = CACHE_ROOT / MODEL_FILE
    if not model.exists():
        write_llama_gguf(model, **REFERENCE_BENCH_CONFIG)
    bias = {str(t): -100 for t in banned_ids(model)}
    hub = FakeHub([FakeRepo(REPO, {MODEL_FILE: model.read_bytes()})]).start()
    with tempfile.TemporaryDirectory(prefix="llmlb-local-hop-") as tmp:
        os.environ.update({"HF_ENDPOINT": hub.url, "HF_HOME": str(Path(tmp) / "hf")})
        os.environ["LLMLB_ADMIN_TOKEN"] = ADMIN
        settings = Settings(
            host="127.0.0.1",
            port=0,
            data_dir=Path(tmp) / "data",
            threads=2,
            stream_interval=args.interval,
        )
        served = Served(settings)
        try:
            port = served.ctx.port
            status, answer = request(port, "POST", "/v0/models/register", {"repo": REPO})
            assert status == 201, answer
            name = json.loads(answer)["name"]
            deadline = time.monotonic() + 180
            while name.encode() not in request(port, "GET", "/v1/models")[1]:
                assert time.monotonic() < deadline, "the model never became ready"
                time.sleep(0.5)
            results: dict[str, list[tuple[float, float]]] = {"in-process": [], "over HTTP": []}
            for round_ in range(args.rounds + 1):
                for mode, runs in results.items():
                    served.in_process(mode == "in-process")
                    cpu = served.loop_cpu()
                    tokens, seconds = stream(port, name, bias)
                    used = served.loop_cpu() - cpu
                    if round_:  # the first round warms up
                        runs.append((tokens / seconds, used / tokens * 1e6))
            print(f"{args.rounds} rounds, {TOKENS} tokens, stream interval {args.interval} s")
            for mode, runs in results.items():
                tps = statistics.median(r[0] for r in runs)
                cpu_us = statistics.median(r[1] for r in runs)
                print(f"{mode:>11}: {tps:6.1f} tok/s, event loop {cpu_us:6.1f} µs CPU per token")
            local, remote = (statistics.median(r[1] for r in results[m]) for m in results)
            print(f"in-process / over HTTP, loop CPU per token: {local / remote:.2f}")
        finally:
            served.close()
            hub.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
