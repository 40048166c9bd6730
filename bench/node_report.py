"""What `bench/node.py` measures and how it reports it: the method's constants, the result
types and the markdown section for docs/benchmarks.md."""

from __future__ import annotations

import os
import statistics
from dataclasses import dataclass
from typing import Any

from bench.common import machine, today

PROMPT = "hello, how are you"
NEW_TOKENS = 128
THREADS = 2
STREAMS = 4  # llama-server's -np and llmlb's slots
PARALLEL = (4, 8)  # concurrent streams measured (8: twice the slots, half of them queue)
RUNS = 5
TTFT_PAIRS = 20  # short answers, alternating balancer and node, for the added first-token time
TTFT_TOKENS = 4
WARM_TOKENS = 2  # a short answer before each timed one (see `singles`)
PER_TOKEN = "llmlb, a send per token"
TARGET_RATIO = 0.95  # single stream, llmlb / llama-server
TARGET_RATIO_4 = 0.9  # 4 streams, total tokens/s
TARGET_TTFT_ADDED_MS = 2.0  # first token, through the balancer minus direct to the node


@dataclass(frozen=True)
class Run:
    """One streamed answer, timed on the client."""

    tokens: int  # generated tokens as the engine counted them
    pieces: int  # streamed pieces that carried text
    ttft: float  # seconds from sending the request to the first text
    total: float  # seconds from sending the request to the end of the answer
    decode: float  # seconds from the first text to the last
    engine_tps: float | None = None  # decode speed the engine itself reported, if it did

    @property
    def tps(self) -> float:
        """Tokens per second over the whole request (what a client sees)."""
        return self.tokens / self.total

    @property
    def decode_tps(self) -> float:
        """Tokens per second after the first one (decode only, no prompt, no first hop)."""
        return (self.tokens - 1) / self.decode if self.decode > 0 else 0.0


@dataclass(frozen=True)
class Single:
    """Medians of the single-stream runs."""

    runs: list[Run]

    @property
    def tps(self) -> float:
        return statistics.median(r.tps for r in self.runs)

    @property
    def decode_tps(self) -> float:
        return statistics.median(r.decode_tps for r in self.runs)

    @property
    def ttft_ms(self) -> float:
        return statistics.median(r.ttft for r in self.runs) * 1000

    @property
    def token_counts(self) -> list[int]:
        return [r.tokens for r in self.runs]

    @property
    def pieces(self) -> float:
        """Streamed chunks with text per answer (median)."""
        return statistics.median(r.pieces for r in self.runs)

    @property
    def engine_tps(self) -> float | None:
        reported = [r.engine_tps for r in self.runs if r.engine_tps is not None]
        return statistics.median(reported) if len(reported) == len(self.runs) else None


@dataclass(frozen=True)
class Parallel:
    """Rounds of concurrent streams: total tokens/s, tokens per answer, first-token times."""

    rates: list[float]
    token_counts: list[int]
    ttfts: list[float]  # seconds, every stream of every round

    @property
    def tps(self) -> float:
        return statistics.median(self.rates)

    @property
    def ttft_ms(self) -> float:
        return statistics.median(self.ttfts) * 1000


def _cell(text: str) -> str:
    """`text` made safe for a markdown table cell."""
    return " ".join(text.split()).replace("|", "\\|")


def _range(single: Single) -> str:
    rates = [r.tps for r in single.runs]
    return f"{min(rates):.0f}–{max(rates):.0f}"


def counts(values: list[int]) -> str:
    """`128 ×5` for uniform counts, else the list."""
    distinct = sorted(set(values))
    if len(distinct) == 1:
        return f"{distinct[0]} ×{len(values)}"
    return ", ".join(str(v) for v in values)


def chunk_counts(res: Results) -> list[tuple[str, Single]]:
    """The single-stream results whose chunk counts the report gives, labelled."""
    found = [(label, res.singles.get(label)) for label in ("llama-server", PER_TOKEN)]
    if res.llmlb is not None:
        found.append(("llmlb", res.llmlb["balancer"]))
    return [(label, single) for label, single in found if single is not None]


def verdict(ok: bool) -> str:
    return "met" if ok else "**not met**"


@dataclass
class Results:
    """Everything the report needs."""

    n_prompt: int
    banned: list[int]
    singles: dict[str, Single]  # "llama-server" (if it ran), "llama-cpp-python"
    parallels: dict[int, dict[str, Parallel]]  # streams -> "llama-server" (if it ran)
    server_error: str
    llmlb: dict[str, Any] | None
    llmlb_reason: str
    others: tuple[float, float]  # CPU share taken by other processes / the hypervisor


SERVER_ROW = (
    "llama.cpp `llama-server -t 2 -np 4 -c 4096` (the llama.cpp vendored in"
    " llama-cpp-python 0.3.36)"
)
IN_PROCESS_ROW = "llama-cpp-python 0.3.36, `Llama.create_completion` in-process (`n_ctx` 2048)"
ENGINE_ROW = "llmlb's batched engine (`BatchedRunner`) called directly: no HTTP, no client parsing"


def report(res: Results) -> str:
    ms = "{:.1f} ms".format
    n4, n8 = PARALLEL
    server = res.singles.get("llama-server")
    server_multi = {n: res.parallels.get(n, {}).get("llama-server") for n in PARALLEL}
    in_process = res.singles["llama-cpp-python"]
    llmlb = res.llmlb
    lines = [
        "## Node decode (`bench/node.py`)",
        "",
        f"{today()}, {machine()}.",
        "",
        "Model: the generated reference llama GGUF (`tests/support/tiny_gguf.py`, f32, n_embd 512,"
        " 8 layers, n_ff 1408, 8 heads, ~25M parameters, 100 MB). Prompt"
        f' "{PROMPT}" ({res.n_prompt} tokens with BOS), {NEW_TOKENS} new tokens, greedy'
        f" (temperature 0), end-of-generation tokens {res.banned} banned by logit bias so every"
        f" answer has {NEW_TOKENS} tokens; {THREADS} threads, {STREAMS} slots (llama-server"
        f" `-np {STREAMS}`, llmlb `LLMLB_SLOTS={STREAMS}`), both with their default flash"
        f" attention (on); median of {RUNS} runs after a"
        " warm-up, the engines' runs interleaved round-robin (each timed answer right after a"
        f" {WARM_TOKENS}-token one from the same engine). Every answer is streamed; the HTTP"
        " engines are driven by the official `openai` client (`completions.create(stream=True)`).",
        "",
        f"| engine | 1 stream tok/s | {n4} streams total tok/s | {n8} streams total tok/s"
        f" | TTFT, 1 stream | TTFT, {n4} streams |",
        "|---|---|---|---|---|---|",
    ]

    def row(label: str, one: Single, multi: dict[int, Parallel], note: str = "") -> str:
        cells = [
            f"{multi[n].tps:.0f}" if n in multi else f"not measured {_cell(note)}".strip()
            for n in PARALLEL
        ]
        at4 = ms(multi[n4].ttft_ms) if n4 in multi else ""
        return f"| {label} | {one.tps:.0f} | {' | '.join(cells)} | {ms(one.ttft_ms)} | {at4} |"

    if server is not None:
        found = {n: p for n, p in server_multi.items() if p is not None}
        lines.append(row(SERVER_ROW, server, found))
    else:
        lines.append(f"| llama-server | not measured ({_cell(res.server_error)}) | | | | |")
    lines.append(
        f"| {IN_PROCESS_ROW} | {in_process.tps:.0f} | — (one sequence at a time) | — |"
        f" {ms(in_process.ttft_ms)} | |"
    )
    engine = res.singles.get("llmlb engine")
    engine_multi = {
        n: p for n in PARALLEL if (p := res.parallels.get(n, {}).get("llmlb engine")) is not None
    }
    if engine is not None:
        lines.append(row(ENGINE_ROW, engine, engine_multi))
    if llmlb is None:
        lines.append(f"| llmlb node | not measured ({_cell(res.llmlb_reason)}) | | | | |")
    else:
        lines.append(
            row(
                "llmlb local node, through the balancer (default settings: a stream's tokens"
                " gathered for up to 20 ms, `LLMLB_STREAM_INTERVAL`)",
                llmlb["balancer"],
                llmlb["parallel"],
                f"({llmlb['parallel_note']})",
            )
        )
        per_token = res.singles.get(PER_TOKEN)
        if per_token is not None:
            lines.append(
                "| llmlb local node, through the balancer, every token sent alone"
                f" (`LLMLB_STREAM_INTERVAL=0`) | {per_token.tps:.0f} | | |"
                f" {ms(per_token.ttft_ms)} | |"
            )
        direct: Single | None = llmlb["direct"]
        if direct is not None:
            lines.append(
                f"| llmlb local node, direct (`X-Balancer-Token`) | {direct.tps:.0f} | | |"
                f" {ms(direct.ttft_ms)} | |"
            )
        else:
            lines.append(
                f"| llmlb local node, direct | not measured ({_cell(llmlb['direct_note'])})"
                " | | | | |"
            )
    lines += [
        "",
        f"tok/s = answer tokens / time from sending the request to the end of the answer;"
        f" n streams = all n×{NEW_TOKENS} tokens / time from the first request to the last"
        f" answer's end ({n8} streams on {STREAMS} slots: half of them wait for a free one)."
        f" TTFT = time to the first streamed text; at {n4} streams, the median over every stream"
        " of every round (all started together).",
        "",
    ]
    decode, tokens, spread = [], [], []
    if server is not None:
        decode.append(f"llama-server {server.decode_tps:.0f}")
        tokens.append(
            f"llama-server {counts(server.token_counts)} (1 stream)"
            + "".join(
                f", {counts(m.token_counts)} ({n} streams)"
                for n, m in server_multi.items()
                if m is not None
            )
        )
        spread.append(f"llama-server {_range(server)}")
    decode.append(f"llama-cpp-python {in_process.decode_tps:.0f}")
    tokens.append(f"llama-cpp-python {counts(in_process.token_counts)} (sampling steps)")
    spread.append(f"llama-cpp-python {_range(in_process)}")
    if engine is not None:
        decode.append(f"llmlb engine alone {engine.decode_tps:.0f}")
        tokens.append(
            f"llmlb engine alone {counts(engine.token_counts)} (1 stream)"
            + "".join(f", {counts(m.token_counts)} ({n} streams)" for n, m in engine_multi.items())
        )
        spread.append(f"llmlb engine alone {_range(engine)}")
    if llmlb is not None:
        decode.append(f"llmlb {llmlb['balancer'].decode_tps:.0f}")
        tokens.append(f"llmlb {counts(llmlb['balancer'].token_counts)} (1 stream)")
        spread.append(f"llmlb {_range(llmlb['balancer'])}")
        for n, m in llmlb["parallel"].items():
            tokens[-1] += f", {counts(m.token_counts)} ({n} streams)"
        if llmlb["direct"] is not None:
            decode.append(f"llmlb direct {llmlb['direct'].decode_tps:.0f}")
            tokens.append(f"llmlb direct {counts(llmlb['direct'].token_counts)}")
    lines += [
        "Decode only (tokens after the first / first to last), tok/s: " + ", ".join(decode) + ".",
        "",
        "Tokens per answer (`usage.completion_tokens`): " + "; ".join(tokens) + ".",
        "",
        "Streamed chunks with text per single-stream answer (median): "
        + ", ".join(f"{label} {single.pieces:.0f}" for label, single in chunk_counts(res))
        + ".",
        "",
        f"Spread of the {RUNS} single-stream runs, tok/s: " + ", ".join(spread) + ".",
    ]
    if server is not None and server.engine_tps is not None:
        lines += [
            "",
            "llama-server's own decode timing (`timings.predicted_per_second`, median):"
            f" {server.engine_tps:.0f} tok/s, against {server.decode_tps:.0f} decode-only"
            " as the streaming client sees it.",
        ]
    lines += [
        "",
        f"Other work on the machine during the measurements: {res.others[0]:.0%} of the"
        f" {os.cpu_count()} cores used by other processes, {res.others[1]:.0%} stolen by the"
        " hypervisor. Anything else running slows every engine and adds noise; compare ratios"
        " from one run, not absolute figures across runs.",
        "",
        "Ratios and targets:",
        "",
    ]
    if server is not None:
        lines.append(
            f"- llama-cpp-python / llama-server, 1 stream: {in_process.tps / server.tps:.2f}"
            f" (decode only {in_process.decode_tps / server.decode_tps:.2f})."
        )
        if engine is not None:
            multi_ratios = "".join(
                f", {n} streams {engine_multi[n].tps / p.tps:.2f}"
                for n, p in server_multi.items()
                if p is not None and n in engine_multi
            )
            lines.append(
                f"- llmlb's engine alone / llama-server (served over HTTP to the same"
                f" client): 1 stream {engine.tps / server.tps:.2f}{multi_ratios}. What the"
                " engine loses on the way to a client is its HTTP serving in Python."
            )
        if llmlb is not None:
            ratio = llmlb["balancer"].tps / server.tps
            lines.append(
                f"- llmlb (through the balancer) / llama-server, 1 stream: {ratio:.2f}"
                f" (decode only {llmlb['balancer'].decode_tps / server.decode_tps:.2f}); target"
                f" ≥ {TARGET_RATIO:.2f}: {verdict(ratio >= TARGET_RATIO)}."
            )
            per_token = res.singles.get(PER_TOKEN)
            if per_token is not None:
                lines.append(
                    f"- llmlb with every token sent alone / llama-server, 1 stream:"
                    f" {per_token.tps / server.tps:.2f} (what gathering a stream's tokens"
                    " saves: one wake-up of the event loop and one event per token)."
                )
            for n in PARALLEL:
                ours, theirs = llmlb["parallel"].get(n), server_multi[n]
                if ours is None or theirs is None:
                    lines.append(f"- llmlb / llama-server, {n} streams total: not measured.")
                    continue
                ratio = ours.tps / theirs.tps
                target = f"; target ≥ {TARGET_RATIO_4:.2f}: {verdict(ratio >= TARGET_RATIO_4)}"
                lines.append(
                    f"- llmlb / llama-server, {n} streams total: {ratio:.2f}"
                    + (target if n == n4 else "")
                    + f" (TTFT {ours.ttft_ms:.1f} ms against {theirs.ttft_ms:.1f} ms)."
                )
        else:
            lines.append(
                f"- llmlb / llama-server, 1 stream: not measured; target ≥ {TARGET_RATIO:.2f}."
            )
    else:
        lines.append(f"- llama-server not measured, no ratios; target ≥ {TARGET_RATIO:.2f}.")
    if llmlb is not None and llmlb["direct"] is not None:
        runs_added = llmlb["balancer"].ttft_ms - llmlb["direct"].ttft_ms
        pairs: list[float] = llmlb["ttft_added"]
        added = statistics.median(pairs) if pairs else runs_added
        lines.append(
            f"- TTFT through the balancer − direct to the node: {added:+.2f} ms (median of"
            f" {len(pairs)} interleaved pairs of {TTFT_TOKENS}-token answers; the medians of the"
            f" {NEW_TOKENS}-token runs differ by {runs_added:+.2f} ms); target"
            f" < {TARGET_TTFT_ADDED_MS:.0f} ms: {verdict(added < TARGET_TTFT_ADDED_MS)}."
        )
    elif llmlb is not None:
        added = llmlb["balancer"].ttft_ms - in_process.ttft_ms
        lines.append(
            f"- TTFT through the balancer − direct to the node: not measured"
            f" ({llmlb['direct_note']}); through the balancer − in-process llama-cpp-python:"
            f" {added:+.2f} ms (an upper bound on what the balancer adds); target"
            f" < {TARGET_TTFT_ADDED_MS:.0f} ms."
        )
    else:
        lines.append(
            "- TTFT through the balancer − direct to the node: not measured; target"
            f" < {TARGET_TTFT_ADDED_MS:.0f} ms."
        )
    return "\n".join(lines) + "\n"
