"""Latency of GET /v0/models/hub with the Hugging Face API down and 50 registered models.

Run: `.venv/bin/python bench/hub.py` (or `make bench-hub`). A fake Hub serves 50 repos for
registration, then stops, so the balancer's popularity refresh fails the way it does when
the Hub is unreachable. Results go to docs/benchmarks.md.
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import free_port, machine, percentile, record, start_llmlb, today
from tests.fakes.fake_hub import FakeHub, FakeRepo

REQUESTS = 2000
MODELS = 50
TARGET_P99_MS = 50.0


async def run() -> dict[str, float]:
    hub = FakeHub(
        [FakeRepo(f"bench/model-{i}", {f"m{i}-Q4_K_M.gguf": b"GGUF" * 256}) for i in range(MODELS)]
    ).start()
    port = free_port()
    with tempfile.TemporaryDirectory() as tmp:
        proc = start_llmlb(
            Path(tmp), port, {"HF_ENDPOINT": hub.url, "LLMLB_ADMIN_TOKEN": "bench-hub-admin-token"}
        )
        base = f"http://127.0.0.1:{port}"
        headers = {"Authorization": "Bearer bench-hub-admin-token"}
        try:
            async with aiohttp.ClientSession(headers=headers) as http:
                for i in range(MODELS):
                    async with http.post(
                        f"{base}/v0/models/register", json={"repo": f"bench/model-{i}"}
                    ) as r:
                        assert r.status == 201, await r.text()
                hub.stop()  # from here on the Hub is unreachable
                async with http.get(f"{base}/v0/models/hub") as r:
                    hub_list = await r.json()
                assert len(hub_list) >= MODELS + 20, len(hub_list)
                for _ in range(50):  # warm up
                    async with http.get(f"{base}/v0/models/hub") as r:
                        await r.read()
                latencies = []
                for _ in range(REQUESTS):
                    started = time.perf_counter()
                    async with http.get(f"{base}/v0/models/hub") as r:
                        await r.read()
                        assert r.status == 200
                    latencies.append((time.perf_counter() - started) * 1000)

                async def worker(out: list[float]) -> None:
                    for _ in range(REQUESTS // 8):
                        started = time.perf_counter()
                        async with http.get(f"{base}/v0/models/hub") as r:
                            await r.read()
                        out.append((time.perf_counter() - started) * 1000)

                concurrent: list[float] = []
                began = time.perf_counter()
                await asyncio.gather(*(worker(concurrent) for _ in range(8)))
                rate = len(concurrent) / (time.perf_counter() - began)
        finally:
            proc.terminate()
            proc.wait(10)
    return {
        "p50": percentile(latencies, 50),
        "p99": percentile(latencies, 99),
        "c8_p50": percentile(concurrent, 50),
        "c8_p99": percentile(concurrent, 99),
        "c8_rate": rate,
        "entries": float(len(hub_list)),
    }


def main() -> int:
    r = asyncio.run(run())
    verdict = "met" if r["p99"] < TARGET_P99_MS else "MISSED"
    text = (
        "## Model Hub latency (`bench/hub.py`)\n\n"
        f"{today()} · {machine()}\n\n"
        f"`GET /v0/models/hub` answering {int(r['entries'])} entries (the catalog + "
        f"{MODELS} registered models), Hugging Face API unreachable, `llmlb serve` in its "
        f"own process, {REQUESTS} sequential requests over keep-alive, then 8 concurrent "
        "clients.\n\n"
        "| load | p50 | p99 |\n|---|---|---|\n"
        f"| 1 client | {r['p50']:.2f} ms | {r['p99']:.2f} ms |\n"
        f"| 8 clients ({r['c8_rate']:.0f} req/s) | {r['c8_p50']:.2f} ms | "
        f"{r['c8_p99']:.2f} ms |\n\n"
        f"Target: p99 under {TARGET_P99_MS:.0f} ms at 1 client (spec NFR-1 allows 500 ms): "
        f"**{verdict}**.\n"
    )
    record("hub", text)
    print(text)
    return 0 if verdict == "met" else 1


if __name__ == "__main__":
    sys.exit(main())
