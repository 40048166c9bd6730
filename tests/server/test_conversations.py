"""The Playground's history API: conversations saved message by message."""

from __future__ import annotations

from tests.conftest import RunningBalancer
from tests.server.test_models_api import assert_openai_error


async def test_conversations_keep_every_message_in_order(balancer: RunningBalancer) -> None:
    status, conv = await balancer.post("/v0/conversations", {"model": "m", "params": {"t": 1}})
    assert status == 201 and conv["title"] == "New chat"
    cid = conv["id"]
    for role, text in (("user", "hi"), ("assistant", "hello")):
        status, _ = await balancer.post(
            f"/v0/conversations/{cid}/messages", {"role": role, "content": text}
        )
        assert status == 201
    await balancer.post(
        f"/v0/conversations/{cid}/messages",
        {"role": "assistant", "content": "cut", "status": "stopped", "stats": {"tokens": 3}},
    )
    status, full = await balancer.put(f"/v0/conversations/{cid}", {"title": "Greetings"})
    assert status == 200 and full["title"] == "Greetings"
    assert [(m["role"], m["content"], m["status"]) for m in full["messages"]] == [
        ("user", "hi", "done"),
        ("assistant", "hello", "done"),
        ("assistant", "cut", "stopped"),
    ]
    assert full["messages"][2]["stats"] == {"tokens": 3}
    _, listing = await balancer.get("/v0/conversations")
    assert [c["id"] for c in listing] == [cid]
    status, _ = await balancer.delete(f"/v0/conversations/{cid}")
    assert status == 204
    status, body = await balancer.get(f"/v0/conversations/{cid}")
    assert status == 404
    assert_openai_error(body, "conversation_not_found")


async def test_bad_messages_are_refused(balancer: RunningBalancer) -> None:
    _, conv = await balancer.post("/v0/conversations", {})
    for body in (
        {"role": "robot", "content": "x"},
        {"role": "user", "content": 5},
        {"role": "user", "content": "x", "status": "maybe"},
        {"role": "user", "content": "x", "attachments": "a.txt"},
    ):
        status, answer = await balancer.post(f"/v0/conversations/{conv['id']}/messages", body)
        assert status == 400
        assert_openai_error(answer)
    status, _ = await balancer.post(
        "/v0/conversations/nope/messages", {"role": "user", "content": "x"}
    )
    assert status == 404


async def test_a_role_or_status_of_the_wrong_type_is_a_400_not_a_crash(
    balancer: RunningBalancer,
) -> None:
    _, conv = await balancer.post("/v0/conversations", {})
    for body in (
        {"role": {"x": 1}, "content": "x"},
        {"role": ["user"], "content": "x"},
        {"role": "user", "content": "x", "status": {"done": True}},
        {"role": "user", "content": "x", "status": ["done"]},
    ):
        status, answer = await balancer.post(f"/v0/conversations/{conv['id']}/messages", body)
        assert status == 400, (body, answer)
        assert_openai_error(answer)
        assert answer["error"]["param"] in {"role", "status"}


async def test_text_with_a_lone_surrogate_is_a_400_not_a_crash(balancer: RunningBalancer) -> None:
    # JSON may escape half a UTF-16 pair ("\ud800"); SQLite cannot store it as UTF-8.
    status, answer = await balancer.post("/v0/conversations", {"title": "\ud800"})
    assert status == 400 and answer["error"]["param"] == "title"
    _, conv = await balancer.post("/v0/conversations", {})
    status, answer = await balancer.put(f"/v0/conversations/{conv['id']}", {"model": "a\udfffb"})
    assert status == 400 and answer["error"]["param"] == "model"
    status, answer = await balancer.post(
        f"/v0/conversations/{conv['id']}/messages", {"role": "user", "content": "\ud83d"}
    )
    assert status == 400 and answer["error"]["param"] == "content"
    status, full = await balancer.get(f"/v0/conversations/{conv['id']}")
    assert status == 200 and full["messages"] == [] and full["model"] == ""
    status, _ = await balancer.post(  # a whole pair is an emoji, and welcome
        f"/v0/conversations/{conv['id']}/messages", {"role": "user", "content": "\ud83d\ude00"}
    )
    assert status == 201
