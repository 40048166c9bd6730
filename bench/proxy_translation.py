"""The Anthropic translation's cost: a 1,000-chunk stream through `/v1/messages` against the
same stream through `/v1/chat/completions`, side by side on one balancer.

Run: `.venv/bin/python bench/proxy_translation.py [--runs 3] [--rounds 4] [--tree CHECKOUT]`
(about 45 s a run; `--tree` measures another checkout's balancer, e.g. the code before a change).
The upstream is `bench/proxy.py`'s nginx (its `…/stream` twin serves the prepared 1,000-chunk
`chat.completion.chunk` answer); `llmlb serve --no-local-node` has it as an external node. Each
run starts a fresh balancer, checks that `/v1/messages` carries the stream's text exactly, warms
both paths up, then alternates 4-second `wrk -t1 -c1` rounds of the two (which goes first
alternates too). Per run: the median over the rounds of (messages p50 − chat p50) per stream,
and of the balancer process's own CPU time per stream (steadier on a shared machine). Across
runs: the median and the spread. The section goes to docs/benchmarks.md and is printed.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import proxy as bp
from bench.common import ROOT, free_port, machine, record, today
from bench.proxy_ab import cpu_seconds, start

SECONDS = 4
WARMUP_SECONDS = 2
PATHS = ("chat", "messages")


@dataclass
class Run:
    """One fresh balancer's rounds: (p50 µs, balancer CPU µs per stream) by path."""

    rounds: dict[str, list[tuple[float, float]]] = field(
        default_factory=lambda: {p: [] for p in PATHS}
    )
    other_cpu: float = 0.0  # share of the cores other work took meanwhile

    def median(self, path: str, which: int) -> float:
        return statistics.median(r[which] for r in self.rounds[path])

    def added(self, which: int) -> float:
        """Median over the rounds of messages − chat (µs per stream)."""
        pairs = zip(self.rounds["messages"], self.rounds["chat"], strict=True)
        return statistics.median(m[which] - c[which] for m, c in pairs)


def one_run(tree: Path, upstream: str, data: Path, rounds: int) -> tuple[Run, str]:
    """A fresh balancer from `tree` in front of the upstream, measured; what the check saw."""
    with ExitStack() as stack:
        pid, chat_url = start(tree, data, upstream, stack)
        route = bp.Route("llmlb", chat_url=chat_url, stream_url=chat_url)
        route.messages_url = chat_url.replace("/chat/completions", "/messages")
        bp.check(route)
        urls = {"chat": route.stream_url, "messages": route.messages_url}
        for path in PATHS:
            bp.wrk(urls[path], 1, WARMUP_SECONDS, {}, stream=True, api=path)
        run = Run()
        started, (busy, ours) = time.monotonic(), bp.cpu_seconds()
        for round_ in range(rounds):
            for path in PATHS if round_ % 2 == 0 else PATHS[::-1]:
                before = cpu_seconds(pid)
                done = bp.wrk(urls[path], 1, SECONDS, {}, stream=True, api=path)
                if done.errors or not done.requests:
                    raise SystemExit(f"{path}: {done.errors} errors, {done.requests} streams")
                per_stream = (cpu_seconds(pid) - before) / done.requests * 1e6
                run.rounds[path].append((done.p50_us, per_stream))
        busy_end, ours_end = bp.cpu_seconds()
        cores = (time.monotonic() - started) * (os.cpu_count() or 1)
        run.other_cpu = max(0.0, (busy_end - busy) - (ours_end - ours)) / cores
        return run, route.checked


def report(runs: list[Run], rounds: int, checked: str) -> str:
    """The section: each run, then the median and spread of the added time."""
    added = [r.added(0) / 1000 for r in runs]
    cpu = [r.added(1) / 1000 for r in runs]
    lines = [
        "## Anthropic translation on the proxy hop (`bench/proxy_translation.py`)",
        "",
        f"{today()}, {machine()}.",
        "",
        f"Method: `bench/proxy.py`'s nginx upstream and {bp.CHUNKS:,}-chunk stream; "
        f"`llmlb serve --no-local-node` with it as an external node; per run a fresh balancer, "
        f"{rounds} alternating rounds of `wrk -t1 -c1 -d{SECONDS}s` per path (a streamed "
        "request, timed to the end of the whole stream): `/v1/chat/completions` relays the "
        "node's events, `/v1/messages` translates them into Anthropic's events. Figures per "
        "stream; medians over the rounds.",
        "",
        "| run | chat p50 | messages p50 | added p50 | chat CPU | messages CPU | added CPU "
        "| other work |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for i, r in enumerate(runs, 1):
        lines.append(
            f"| {i} | {bp.us(r.median('chat', 0))} | {bp.us(r.median('messages', 0))} | "
            f"{r.added(0) / 1000:+.2f} ms | {bp.us(r.median('chat', 1))} | "
            f"{bp.us(r.median('messages', 1))} | {r.added(1) / 1000:+.2f} ms | "
            f"{r.other_cpu:.0%} |"
        )
    ok = statistics.median(added) <= bp.TARGET_TRANSLATION_MS
    lines += [
        "",
        f"Added by the translation per {bp.CHUNKS:,}-chunk stream (messages − chat, c=1 p50): "
        f"median {statistics.median(added):+.2f} ms over {len(runs)} runs, spread "
        f"{min(added):+.2f} … {max(added):+.2f} ms; the balancer's own CPU time: median "
        f"{statistics.median(cpu):+.2f} ms, spread {min(cpu):+.2f} … {max(cpu):+.2f} ms. "
        f"Target ≤ {bp.TARGET_TRANSLATION_MS:g} ms: **{bp.verdict(ok)}**.",
        "",
        f"Answers checked before the load: {checked}.",
        "",
        "Other work: the share of the cores used by other processes during each run's "
        "rounds (this machine is shared; each figure is a difference taken within one run).",
    ]
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--no-record", action="store_true", help="print only")
    parser.add_argument("--tree", type=Path, default=ROOT, help="the checkout to run (this one)")
    args = parser.parse_args()
    bp.ensure_tools()
    runs: list[Run] = []
    checked = ""
    with tempfile.TemporaryDirectory(prefix="llmlb-translation-") as tmp, ExitStack() as stack:
        work = Path(tmp)
        work.chmod(0o755)  # nginx's worker runs as nobody when we are root
        (work / "stream.sse").write_bytes(bp.sse_answer())
        up_port = free_port()
        values = {
            "MODELS": bp.models_answer(bp.MODEL),
            "STREAM_MODELS": bp.models_answer(bp.STREAM_MODEL),
            "CHAT": bp.compact(bp.CHAT_ANSWER),
        }
        stack.enter_context(bp.nginx("upstream.conf", work, up_port, values))
        upstream = f"http://127.0.0.1:{up_port}"
        for i in range(args.runs):
            (work / f"run{i}").mkdir()
            run, checked = one_run(args.tree.resolve(), upstream, work / f"run{i}", args.rounds)
            runs.append(run)
            bp.say(
                f"run {i + 1}: added {run.added(0) / 1000:+.2f} ms p50, "
                f"{run.added(1) / 1000:+.2f} ms CPU per stream"
            )
    text = report(runs, args.rounds, checked)
    if not args.no_record:
        record("proxy-translation", text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
