"""Who may call what: the admin token on /v0, API keys on /v1."""

from __future__ import annotations

from tests.conftest import RunningBalancer
from tests.server.test_models_api import assert_openai_error


async def test_management_needs_the_admin_token(balancer: RunningBalancer) -> None:
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic abc"}):
        status, body = await balancer.get("/v0/models/hub", headers=headers)
        assert status == 401
        assert_openai_error(body, "invalid_api_key")
        status, body = await balancer.post(
            "/v0/models/register", {"model_id": "qwen3"}, headers=headers
        )
        assert status == 401
    _, registered = await balancer.get("/v0/models")
    assert registered == []


async def test_admin_token_comes_from_the_environment(tmp_path, monkeypatch) -> None:
    from app.context import AppContext
    from tests.conftest import balancer_settings

    monkeypatch.setenv("LLMLB_ADMIN_TOKEN", "my-own-admin-token-2026")
    ctx = AppContext(balancer_settings(tmp_path / "d"))
    await ctx.start()
    try:
        assert ctx.admin_token == "my-own-admin-token-2026"
        assert not (tmp_path / "d" / "admin_token").exists()
    finally:
        await ctx.stop()


async def test_generated_admin_token_is_private_and_stable(tmp_path) -> None:
    from app.context import AppContext
    from tests.conftest import balancer_settings

    tokens = []
    for _ in range(2):
        ctx = AppContext(balancer_settings(tmp_path / "d"))
        await ctx.start()
        tokens.append((ctx.admin_token, ctx.admin_token_created))
        await ctx.stop()
    assert tokens[0][0] == tokens[1][0]
    assert [created for _, created in tokens] == [True, False]
    assert (tmp_path / "d" / "admin_token").stat().st_mode & 0o777 == 0o600


async def test_v1_is_open_on_loopback_until_a_key_exists(balancer: RunningBalancer) -> None:
    status, _ = await balancer.get("/v1/models", headers={})
    assert status == 200

    status, key = await balancer.post("/v0/api-keys", {"name": "editor"})
    assert status == 201 and key["key"].startswith("sk-llmlb-")
    _, keys = await balancer.get("/v0/api-keys")
    assert [k["name"] for k in keys] == ["editor"]
    assert "key" not in keys[0] and key["key"] not in str(keys)  # shown once, stored hashed

    status, body = await balancer.get("/v1/models", headers={})
    assert status == 401
    assert_openai_error(body, "invalid_api_key")
    status, _ = await balancer.get("/v1/models", headers={"Authorization": "Bearer sk-nope"})
    assert status == 401
    status, _ = await balancer.get("/v1/models", headers={"Authorization": f"Bearer {key['key']}"})
    assert status == 200

    status, _ = await balancer.delete(f"/v0/api-keys/{key['id']}")
    assert status == 204
    status, _ = await balancer.delete(f"/v0/api-keys/{key['id']}")
    assert status == 404
    status, _ = await balancer.get("/v1/models", headers={})
    assert status == 200  # no key left: open again on loopback


async def test_beyond_loopback_v1_always_needs_a_key(balancer: RunningBalancer) -> None:
    balancer.ctx.balancer.auth.loopback_only = False  # as when bound to the LAN
    status, body = await balancer.get("/v1/models", headers={})
    assert status == 401
    assert "API key is required" in body["error"]["message"]
    status, _ = await balancer.get("/v1/models", headers=balancer.admin)
    assert status == 200


async def test_api_key_names_are_checked(balancer: RunningBalancer) -> None:
    for body in ({}, {"name": ""}, {"name": 5}, {"name": "x" * 101}):
        status, answer = await balancer.post("/v0/api-keys", body)
        assert status == 400
        assert_openai_error(answer)
