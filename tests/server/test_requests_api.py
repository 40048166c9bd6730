"""The request history through the API: what each request sent and got back (a stream as the
answer its client read), capped and marked when cut; pages newest first; filters; errors."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from app.server.bodies import BODY_CAP
from tests.conftest import RunningBalancer
from tests.node.conftest import register_ready, served
from tests.server.test_models_api import assert_openai_error

# Fixtures this module uses.
__all__ = ["served"]


async def newest(b: RunningBalancer) -> dict[str, Any]:
    """The newest request's detail."""
    status, rows = await b.get("/v0/requests?limit=1")
    assert status == 200, rows
    status, detail = await b.get(f"/v0/requests/{rows[0]['id']}")
    assert status == 200, detail
    return dict(detail)


async def test_a_chat_and_a_streamed_chat_are_read_back_as_sent_and_answered(
    served: RunningBalancer,
) -> None:
    model = await register_ready(served)
    sent = json.dumps(
        {"model": model, "messages": [{"role": "user", "content": "héllo"}], "max_tokens": 5},
        ensure_ascii=False,
    ).encode()
    async with served.http.post(
        served.url + "/v1/chat/completions",
        data=sent,
        headers={"Content-Type": "application/json"},
    ) as r:
        assert r.status == 200
        answer = await r.json()
    detail = await newest(served)
    assert detail["request_body"] == sent.decode()  # byte for byte as the client sent it
    assert detail["request_truncated"] is False and detail["response_truncated"] is False
    assert json.loads(detail["response_body"]) == answer
    assert detail["status"] == 200 and detail["stream"] is False
    assert detail["node_id"] == r.headers["x-llmlb-node"]
    assert detail["node_name"]  # the node is known: its name for the detail pane

    streamed = {
        "model": model,
        "messages": [{"role": "user", "content": "tell me more"}],
        "max_tokens": 8,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    text, finish, usage = "", None, None
    async with served.http.post(served.url + "/v1/chat/completions", json=streamed) as r:
        assert r.status == 200
        async for line in r.content:
            payload = line.decode().strip()
            if not payload.startswith("data: {"):
                continue
            event = json.loads(payload[6:])
            usage = event.get("usage") or usage
            for choice in event["choices"]:
                text += choice["delta"].get("content") or ""
                finish = choice.get("finish_reason") or finish
    assert text
    detail = await newest(served)
    assert json.loads(detail["request_body"]) == streamed
    stored = json.loads(detail["response_body"])
    assert stored["llmlb_assembled"] is True and stored["object"] == "chat.completion"
    [choice] = stored["choices"]
    assert choice["message"]["content"] == text  # the text the client received, whole
    assert choice["finish_reason"] == finish
    assert stored["usage"] == usage
    assert detail["stream"] is True and detail["response_truncated"] is False

    # The node filter: this node's requests only, another node's none.
    status, mine = await served.get(f"/v0/requests?node={detail['node_id']}")
    assert status == 200 and len(mine) == 2
    assert {row["node_id"] for row in mine} == {detail["node_id"]}
    status, none = await served.get("/v0/requests?node=someone-else")
    assert status == 200 and none == []


async def test_concurrent_streams_and_their_plain_twins_each_keep_their_own_answer(
    served: RunningBalancer,
) -> None:
    """Six streams and six plain chats at once, each asking for an answer of its own length:
    every stored answer is the one its own client read (no capture takes another request's
    buffers), a stream's assembled into one message."""
    model = await register_ready(served)

    async def chat(n: int, stream: bool) -> str:
        body = {
            "model": model,
            "messages": [{"role": "user", "content": f"story number {n}"}],
            "max_tokens": 2 + n + (6 if stream else 0),  # twelve answers of twelve lengths
            "stream": stream,
        }
        async with served.http.post(served.url + "/v1/chat/completions", json=body) as r:
            assert r.status == 200
            if not stream:
                return str((await r.json())["choices"][0]["message"]["content"])
            text = ""
            async for line in r.content:
                payload = line.decode().strip()
                if payload.startswith("data: {"):
                    for choice in json.loads(payload[6:])["choices"]:
                        text += choice["delta"].get("content") or ""
            return text

    asked = [(n, stream) for n in range(6) for stream in (True, False)]
    read = dict(zip(asked, await asyncio.gather(*(chat(n, s) for n, s in asked)), strict=True))
    status, rows = await served.get("/v0/requests?limit=12")
    assert status == 200 and len(rows) == 12
    stored: dict[tuple[int, bool], str] = {}
    for row in rows:
        status, detail = await served.get(f"/v0/requests/{row['id']}")
        assert status == 200, detail
        prompt = json.loads(detail["request_body"])["messages"][0]["content"]
        answer = json.loads(detail["response_body"])
        key = (int(prompt.removeprefix("story number ")), detail["stream"])
        stored[key] = answer["choices"][0]["message"]["content"]
        assert answer.get("llmlb_assembled", False) is detail["stream"]
    assert stored == read
    assert len(set(read.values())) == 12  # all different: a mix-up could not go unseen


async def test_another_apis_request_and_stream_are_kept_as_its_client_saw_them(
    served: RunningBalancer,
) -> None:
    model = await register_ready(served)
    sent = {
        "model": model,
        "max_tokens": 5,
        "stream": True,
        "messages": [{"role": "user", "content": "hi"}],
    }
    async with served.http.post(served.url + "/v1/messages", json=sent) as r:
        assert r.status == 200
        received = (await r.read()).decode()
    assert "event: message_stop" in received
    detail = await newest(served)
    assert detail["endpoint"] == "/v1/messages"
    assert json.loads(detail["request_body"]) == sent  # Anthropic's, not the translation
    assert detail["response_body"] == received  # its events as sent, not assembled
    assert detail["response_truncated"] is False


async def test_a_body_over_the_cap_is_cut_and_marked_and_our_error_is_the_answer(
    balancer: RunningBalancer,
) -> None:
    head = b'{"model": "nope", "messages": [{"role": "user", "content": "'
    # 3-byte characters placed so that the cut at BODY_CAP falls inside one.
    pad = b"x" * ((BODY_CAP - len(head) - 1) % 3)
    sent = head + pad + "あ".encode() * (BODY_CAP // 3) + b'"}]}'
    async with balancer.http.post(
        balancer.url + "/v1/chat/completions",
        data=sent,
        headers={"Content-Type": "application/json"},
    ) as r:
        assert r.status == 404
        told = await r.json()
    detail = await newest(balancer)
    kept = detail["request_body"].encode()
    assert detail["request_truncated"] is True
    assert BODY_CAP - 3 < len(kept) <= BODY_CAP and sent.startswith(kept)  # whole characters
    assert json.loads(detail["response_body"]) == told  # what the balancer answered
    assert detail["response_truncated"] is False
    assert detail["node_id"] is None and detail["node_name"] is None


async def test_pages_go_back_newest_first_and_filter_by_model(balancer: RunningBalancer) -> None:
    for i in range(5):
        status, _ = await balancer.post(
            "/v1/chat/completions", {"model": f"m{i % 2}", "messages": []}, headers={}
        )
        assert status == 404
    status, first = await balancer.get("/v0/requests?limit=2")
    assert status == 200 and [r["model"] for r in first] == ["m0", "m1"]
    status, second = await balancer.get(f"/v0/requests?limit=2&before={first[-1]['id']}")
    assert [r["model"] for r in second] == ["m0", "m1"]
    status, third = await balancer.get(f"/v0/requests?limit=2&before={second[-1]['id']}")
    assert [r["model"] for r in third] == ["m0"]
    ids = [r["id"] for r in first + second + third]
    assert ids == sorted(ids, reverse=True) and len(set(ids)) == 5
    status, rows = await balancer.get("/v0/requests?model=m1")
    assert [r["id"] for r in rows] == [ids[1], ids[3]]
    row = rows[0]
    assert {"tokens_in", "tokens_out", "generation_ms", "client"} <= set(row)
    status, rows = await balancer.get("/v0/requests?before=0")
    assert status == 200 and rows == []


async def test_an_unknown_or_malformed_id_is_an_openai_error(balancer: RunningBalancer) -> None:
    status, body = await balancer.post("/v1/chat/completions", {"model": "x"}, headers={})
    assert status == 404
    for path in ("/v0/requests/999999", "/v0/requests/99999999999999999999999999"):
        status, body = await balancer.get(path)
        assert status == 404, (path, body)
        assert_openai_error(body)
    for path in ("/v0/requests/abc", "/v0/requests/-1", "/v0/requests/1.5"):
        status, body = await balancer.get(path)
        assert status == 400, (path, body)
        assert assert_openai_error(body)["param"] == "request_id"
    for query in ("before=abc", "limit=ten", "before=1e3"):
        status, body = await balancer.get(f"/v0/requests?{query}")
        assert status == 400, (query, body)
        assert assert_openai_error(body)["param"] == query.split("=")[0]
    status, rows = await balancer.get("/v0/requests?before=99999999999999999999999999")
    assert status == 200 and len(rows) == 1  # beyond any id: from the newest
    status, rows = await balancer.get("/v0/requests?before=-99999999999999999999999999")
    assert status == 200 and rows == []
