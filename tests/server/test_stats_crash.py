"""After a crash the dashboard's series still count every request the history kept: a real
`llmlb serve` killed with SIGKILL and started again shows in `/v0/stats` the requests that
`/v0/requests` lists, though the minute they fell in was never written."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from tests.test_main import free_port, llmlb, start_serving

pytestmark = pytest.mark.slow
TOKEN = "stats-crash-test-token"


def serve(data: Path, port: int) -> subprocess.Popen[str]:
    env = {**os.environ, "LLMLB_ADMIN_TOKEN": TOKEN}
    command = llmlb("serve", "--no-local-node", "--port", str(port), "--data-dir", str(data))
    return start_serving(command, port, env)


def call(port: int, path: str, body: object = None) -> tuple[int, Any]:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}{path}",
        method="POST" if body is not None else "GET",
        data=json.dumps(body).encode() if body is not None else None,
        headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_a_crash_loses_no_request_from_the_dashboards_series(tmp_path: Path) -> None:
    data = tmp_path / "data"
    port = free_port()
    proc = serve(data, port)
    try:
        for n in range(5):
            chat = {"model": f"absent-{n}", "messages": [{"role": "user", "content": "hi"}]}
            assert call(port, "/v1/chat/completions", chat)[0] == 404
        status, listed = call(port, "/v0/requests")  # the history is on disk once listed
        assert status == 200 and len(listed) == 5
    finally:
        proc.send_signal(signal.SIGKILL)  # the open minute dies with the process
        proc.wait()
    port = free_port()
    proc = serve(data, port)
    try:
        status, stats = call(port, "/v0/stats?range=1h")
        assert status == 200, stats
        assert stats["totals"]["requests"] == 5
        assert sum(b["requests"] for b in stats["buckets"]) == 5
        status, listed = call(port, "/v0/requests")
        assert len(listed) == 5  # nothing was counted twice, nor written twice
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=20)
    assert "took back 5 requests" in err
    port = free_port()
    proc = serve(data, port)  # after a clean stop there is nothing to take back
    try:
        status, stats = call(port, "/v0/stats?range=1h")
        assert stats["totals"]["requests"] == 5
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=20)
    assert "took back" not in err
