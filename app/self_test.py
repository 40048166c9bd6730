"""`llmlb --self-test`: start the embedded balancer headless in a temporary data dir, check
that it answers and that llama.cpp's libraries load (a broken bundle fails here), print ok."""

from __future__ import annotations

import asyncio
import json
import sys
import tempfile
import urllib.request
from pathlib import Path

from app.core.settings import Settings


async def self_test() -> int:
    """Start the embedded server headless, check its answers, print the backend and ok."""
    import llama_cpp  # loads llama.cpp's shared libraries: a broken bundle fails here

    from app.context import AppContext
    from app.node.devices import built_backend, list_devices

    llama_cpp.llama_backend_init()
    assert llama_cpp.llama_print_system_info(), "llama.cpp"
    devices = [
        f"{d.description or d.name} ({d.free_bytes / 1e9:.1f} GB free)" for d in list_devices()
    ]
    print(
        f"llama.cpp backend: {built_backend()}; devices: {', '.join(devices) or 'none (CPU)'}",
        file=sys.stderr,
    )

    with tempfile.TemporaryDirectory(prefix="llmlb-self-test-") as tmp:
        settings = Settings.from_env(data_dir=Path(tmp), port=0, local_node=False)
        ctx = AppContext(settings)
        await ctx.start()
        try:
            base, token = ctx.base_url, ctx.admin_token

            def get(path: str) -> object:
                req = urllib.request.Request(
                    base + path, headers={"Authorization": f"Bearer {token}"}
                )
                with urllib.request.urlopen(req, timeout=10) as resp:
                    return json.loads(resp.read())

            models = await asyncio.to_thread(get, "/v1/models")
            hub = await asyncio.to_thread(get, "/v0/models/hub")
            assert isinstance(models, dict) and models.get("object") == "list", models
            assert ctx.balancer is not None
            assert isinstance(hub, list) and len(hub) == len(ctx.balancer.catalog), "catalog"
        finally:
            await ctx.stop()
    print("ok")
    return 0
