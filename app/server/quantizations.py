"""GET /v0/models/hub/{model_id}/quantizations: the quantizations a catalog model offers.

The catalog names one file per model; its Hugging Face repo usually holds the same model in
other quantizations, which `POST /v0/models/register {"model_id": "<id>:<QUANT>"}` registers.
This lists those the balancer can register (their file named like the catalog's own), with
each one's size and memory estimate, so the Hub can offer the choice. One Hub call per model,
kept for a while: the Hub page asks for every card it shows.
"""

from __future__ import annotations

import time

from aiohttp import web

from app.core.catalog import CatalogEntry
from app.core.errors import NotFound, UserFacingError
from app.core.hf import RepoFileInfo, hf_endpoint
from app.core.wire import JsonObject
from app.server.registration import detect_quantization
from app.server.state import balancer

routes = web.RouteTableDef()
CACHE_SECONDS = 600.0  # the same as the Hub's popularity figures
_cache: dict[tuple[str, str], tuple[float, list[JsonObject]]] = {}


@routes.get("/v0/models/hub/{model_id}/quantizations")
async def quantizations(request: web.Request) -> web.Response:
    """The catalog model's quantizations, the catalog's own first; 404 for an unknown id, the
    Hub's failure (502/504) when it cannot be asked."""
    state = balancer(request)
    model_id = request.match_info["model_id"].lower()
    entry = state.catalog.get(model_id)
    if entry is None:
        raise NotFound(f"'{model_id}' is not in the catalog", param="model_id")
    key = (hf_endpoint(), model_id)
    cached = _cache.get(key)
    if cached is not None and time.monotonic() - cached[0] < CACHE_SECONDS:
        return web.json_response(cached[1])
    listing = await state.registry.hf.repo_listing(entry.repo)
    offered = offered_quantizations(entry, listing.files)
    _cache[key] = (time.monotonic(), offered)
    return web.json_response(offered)


def offered_quantizations(entry: CatalogEntry, files: list[RepoFileInfo]) -> list[JsonObject]:
    """What registering `<id>:<QUANT>` would fetch, per quantization the repo holds."""
    default = (entry.quantization or "").upper()
    out: list[JsonObject] = [_variant(entry, default, entry.size_bytes, True)] if default else []
    if not default:
        return out
    for f in sorted(files, key=lambda f: f.size):
        quant = detect_quantization(f.name)
        if quant is None or quant == default or "mmproj" in f.name.lower():
            continue
        try:
            if entry.filename_for(quant) != f.name:
                continue  # another model's file in the same repo, or a shard
        except UserFacingError:
            continue
        if f.size > 0 and all(v["quantization"] != quant for v in out):
            out.append(_variant(entry, quant, f.size, False))
    listed = {f.name: f.size for f in files}
    if listed.get(entry.recommended_filename):  # the Hub's exact size beats the catalog's
        out[0] = _variant(entry, default, listed[entry.recommended_filename], True)
    return out


def _variant(entry: CatalogEntry, quant: str, size: int, default: bool) -> JsonObject:
    return {
        "quantization": quant,
        "size_bytes": size,
        # Scaled from the catalog's own estimate, as registration scales it.
        "required_memory_bytes": int(entry.required_memory_bytes * size / entry.size_bytes),
        "default": default,
    }
