"""The proxy hop, two versions side by side: balancer CPU per request, old tree against new.

Run: `.venv/bin/python bench/proxy_ab.py OLD_TREE [NEW_TREE] [--rounds N]` (a checkout each,
e.g. `git worktree add --detach /tmp/old COMMIT`; NEW_TREE defaults to this one; about
25 s a round). Single runs of `bench/proxy.py` swing by ±20 % on a shared VM; here both
versions run at once as `llmlb serve --no-local-node` in front of one nginx upstream (the
one `bench/proxy.py` uses), and 4-second wrk rounds alternate between them (which goes first
alternates too) at c=1, c=64 and 8 streams. The figure is the balancer process's own CPU
time (utime + stime from /proc) per request, median over the rounds, and req/s. Run it once
with the same tree on both sides to see the noise floor. Nothing is written to
docs/benchmarks.md: the lines are printed.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import proxy as bp
from bench.common import ROOT, free_port, stop

LOADS = (("c=1", 1, False), ("c=64", 64, False), ("8 streams", 8, True))
SECONDS = 4
TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of one process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def poll(ready: Callable[[], bool], why: str, timeout: float = 30) -> None:
    """Wait until `ready()`, or stop the bench saying `why`."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            if ready():
                return
        except OSError:  # not listening yet
            pass
        if time.monotonic() > deadline:
            raise SystemExit(why)
        time.sleep(0.1)


def start(tree: Path, data: Path, upstream: str, stack: ExitStack) -> tuple[int, str]:
    """`llmlb serve` from `tree`, with the upstream as two external nodes: (pid, chat URL)."""
    port, token = free_port(), secrets.token_urlsafe(24)
    command = [sys.executable, "-m", "app", "serve", "--no-local-node", "--port", str(port)]
    proc = subprocess.Popen(
        [*command, "--data-dir", str(data)],
        cwd=tree,
        env={**os.environ, "LLMLB_ADMIN_TOKEN": token},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    stack.callback(stop, proc)  # not stop_group: this child runs in our own session
    base = f"http://127.0.0.1:{port}"
    poll(lambda: bp.request(f"{base}/health")[0] == 200, f"{tree} did not start")
    admin = {"Authorization": f"Bearer {token}"}
    for name, url in (("nginx", upstream), ("nginx-stream", upstream + "/stream")):
        body = {"name": name, "base_url": url}
        status, _, raw = bp.request(f"{base}/v0/nodes/external", body, admin)
        if status != 201:
            raise SystemExit(f"{tree}: POST /v0/nodes/external answered {status} {raw[:200]!r}")

    def listed() -> bool:
        status, _, raw = bp.request(f"{base}/v1/models")
        return status == 200 and len(json.loads(raw).get("data", [])) >= 2

    poll(listed, f"{tree} did not list the upstream's models")
    return proc.pid, f"{base}/v1/chat/completions"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("old", type=Path)
    parser.add_argument("new", type=Path, nargs="?", default=ROOT)
    parser.add_argument("--rounds", type=int, default=8)
    args = parser.parse_args()
    bp.ensure_tools()
    trees = {"old": args.old.resolve(), "new": args.new.resolve()}
    with tempfile.TemporaryDirectory(prefix="llmlb-proxy-ab-") as tmp, ExitStack() as stack:
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
        running: dict[str, tuple[int, str]] = {}
        for label, tree in trees.items():
            (work / label).mkdir()
            running[label] = start(tree, work / label, upstream, stack)
            bp.wrk(running[label][1], 16, 2, {})  # warm-up
        results: dict[tuple[str, str], list[tuple[float, float]]] = {}
        for round_ in range(args.rounds):
            for load, conns, stream in LOADS:
                order = list(trees) if round_ % 2 == 0 else list(trees)[::-1]
                for label in order:
                    pid, url = running[label]
                    before = cpu_seconds(pid)
                    run = bp.wrk(url, conns, SECONDS, {}, stream=stream)
                    per_request = (cpu_seconds(pid) - before) / max(run.requests, 1) * 1e6
                    results.setdefault((label, load), []).append((run.rate, per_request))
    print(f"old {trees['old']}, new {trees['new']}, {args.rounds} rounds of {SECONDS} s")
    for load, _, _ in LOADS:
        old, new = results[("old", load)], results[("new", load)]
        cpu_old = statistics.median(r[1] for r in old)
        cpu_new = statistics.median(r[1] for r in new)
        rate_old = statistics.median(r[0] for r in old)
        rate_new = statistics.median(r[0] for r in new)
        print(
            f"{load}: balancer CPU per request {cpu_old:.0f} → {cpu_new:.0f} µs "
            f"(×{cpu_new / cpu_old:.2f}); {rate_old:,.0f} → {rate_new:,.0f} req/s "
            f"(×{rate_new / rate_old:.2f})"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
