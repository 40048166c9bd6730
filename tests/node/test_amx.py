"""A quantized model answers on a CPU that advertises AMX but traps it (this machine's VM).

Without the check in app/node/engine/amx.py, `llmlb serve` dies of SIGILL at the first token
of any Q8_0/Q4 model on such a machine; elsewhere the same tests simply show the quantized
model answering. Each llmlb runs in its own process, so a crash is a failed test, not a dead
test run.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from app.node.engine import amx
from tests.fakes.fake_hub import FakeHub, FakeRepo
from tests.node.test_rpc_device import TOKEN, call, doctor, registered_and_ready, serve
from tests.support.tiny_gguf import write_llama_gguf

pytestmark = pytest.mark.slow
REPO = "tiny/q8-gguf"
FILE = "tiny-q8-Q8_0.gguf"


def test_the_probe_model_is_the_one_tiny_gguf_writes(tmp_path: Path) -> None:
    # The shipped file is not an opaque blob: these arguments write it byte for byte.
    written = write_llama_gguf(tmp_path / "probe.gguf", **amx.PROBE_MODEL_ARGS)
    assert written.read_bytes() == amx.PROBE_MODEL.read_bytes()


def test_a_child_killed_by_sigill_counts_as_trapped_and_other_failures_do_not() -> None:
    die = "import os, signal; os.kill(os.getpid(), signal.{})"
    assert amx.probe_dies([sys.executable, "-c", die.format("SIGILL")])
    assert not amx.probe_dies([sys.executable, "-c", die.format("SIGKILL")])  # the OOM killer
    assert not amx.probe_dies([sys.executable, "-c", "raise SystemExit(3)"])
    assert not amx.probe_dies([sys.executable, "-c", "pass"])


def test_a_quantized_model_answers_and_the_doctor_says_what_amx_does(tmp_path: Path) -> None:
    q8 = write_llama_gguf(tmp_path / "q8.gguf", dtype="q8_0", name="tiny-q8").read_bytes()
    hub = FakeHub([FakeRepo(REPO, {FILE: q8})]).start()
    data = tmp_path / "d"
    proc = serve(data, hub, tmp_path / "serve.log")
    try:
        registered_and_ready(proc, REPO, timeout=60)
        body = {"model": REPO, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 8}
        answer = call(proc, "/v1/chat/completions", body)
        assert answer["choices"][0]["message"]["content"]
        assert proc.poll() is None  # alive: no SIGILL
    finally:
        proc.terminate()
        proc.wait(timeout=20)
        hub.stop()
    log = (tmp_path / "serve.log").read_text()
    code, report = doctor(data)
    assert code == 0, report
    if not amx.advertised():
        assert report["cpu_amx"] == "not advertised"
    elif report["cpu_amx"] == "trapped: off":
        assert "advertises AMX but traps its instructions" in log
    else:
        assert report["cpu_amx"] == "works"
    assert TOKEN not in log
    assert os.environ.get(amx.PROBE_ENV) is None  # the child's variable stays in the child
