"""Registration: what a `POST /v0/models/register` body names, resolved into a ModelRecord
(a catalog entry, or a Hugging Face repo's GGUF file and its shards)."""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping

from app.core.catalog import Catalog, CatalogEntry
from app.core.errors import BadRequest, UserFacingError
from app.core.hf import HfClient, RepoFileInfo, endpoint_hosts
from app.core.hf_refs import check_filename, parse_hf_reference
from app.core.types import ModelFile, ModelRecord
from app.server.gguf_probe import read_meta
from app.server.http import optional_str

log = logging.getLogger(__name__)

MEMORY_FACTOR = 1.5  # required memory ≈ file size × 1.5 (weights + KV cache + buffers)
_SHARD_RE = re.compile(r"-(\d{5})-of-(\d{5})\.gguf$", re.IGNORECASE)
_QUANT_RE = re.compile(
    r"(?<![A-Za-z0-9])(I?Q\d(?:_K)?(?:_[A-Z0-9]+)*|BF16|F16|F32|MXFP4)(?=[-_.]|$)", re.IGNORECASE
)
# A projector's precision, best first: what llama.cpp's own repos publish as the default.
_PROJECTOR_ORDER = ("F16", "BF16", "Q8_0", "F32")
MAX_PROJECTOR_PROBES = 3


def detect_quantization(filename: str) -> str | None:
    """The quantization named in a GGUF file name (Q4_K_M, IQ3_XS, F16...), upper-cased."""
    stem = filename.rsplit("/", 1)[-1]
    stem = _SHARD_RE.sub(".gguf", stem)
    matches = _QUANT_RE.findall(stem[: -len(".gguf")] if stem.lower().endswith(".gguf") else stem)
    return matches[-1].upper() if matches else None


async def resolve(
    body: Mapping[str, object], catalog: Catalog, hf: HfClient, warnings: list[str]
) -> ModelRecord:
    """The record a registration body names: `{model_id}` or `{repo, filename?,
    display_name?}`; 400 with the reason when it names nothing usable."""
    model_id = optional_str(body, "model_id")
    repo = optional_str(body, "repo")
    if (model_id is None) == (repo is None):
        raise BadRequest(
            "give either 'model_id' (a catalog id) or 'repo' (a Hugging Face repo or URL)"
        )
    if model_id is not None:
        return await _from_catalog(model_id.strip(), catalog, hf)
    assert repo is not None
    return await _from_repo(
        repo,
        optional_str(body, "filename"),
        optional_str(body, "display_name"),
        catalog,
        hf,
        warnings,
    )


async def _from_catalog(model_id: str, catalog: Catalog, hf: HfClient) -> ModelRecord:
    base_id, _, quant = model_id.partition(":")
    entry = catalog.get(base_id.lower())
    if entry is None:
        raise BadRequest(
            f"'{base_id}' is not in the catalog; register other models by 'repo'",
            param="model_id",
            code="model_not_found",
        )
    if not quant or (entry.quantization and quant.upper() == entry.quantization.upper()):
        return _catalog_record(entry, await _hub_files(hf, entry.repo))
    filename = entry.filename_for(quant)
    listing = await hf.repo_listing(entry.repo)
    found = {f.name: f for f in listing.files}
    if filename not in found:
        offered = sorted(
            q
            for f in listing.files
            if f.name.lower().endswith(".gguf")
            if (q := detect_quantization(f.name))
        )
        raise BadRequest(
            f"'{entry.repo}' has no {quant.upper()} file ({filename}); "
            f"quantizations there: {', '.join(offered) or 'none'}",
            param="model_id",
            code="quantization_not_found",
        )
    file = found[filename]
    memory = int(entry.required_memory_bytes * file.size / entry.size_bytes)
    return ModelRecord(
        name=f"{entry.id}:{quant.upper()}",
        repo=entry.repo,
        filename=filename,
        source="catalog",
        display_name=f"{entry.name} ({quant.upper()})",
        size_bytes=file.size,
        required_memory_bytes=memory,
        catalog_id=entry.id,
        quantization=quant.upper(),
        sha256=file.sha256,
        context_length=entry.context_length,
        capabilities=entry.capabilities,
        files=(ModelFile(file.name, file.size, file.sha256), *_catalog_projector(entry, found)),
    )


async def _from_repo(
    text: str,
    filename: str | None,
    display_name: str | None,
    catalog: Catalog,
    hf: HfClient,
    warnings: list[str],
) -> ModelRecord:
    ref = parse_hf_reference(text, endpoint_hosts())
    if filename is not None:
        filename = check_filename(filename.strip())
    if filename and ref.filename and filename != ref.filename:
        raise BadRequest("the URL names one file and 'filename' another", param="filename")
    filename = filename or ref.filename
    if filename and not filename.lower().endswith(".gguf"):
        raise BadRequest(f"'{filename}' is not a GGUF file", param="filename")
    listing = await hf.repo_listing(ref.repo_id, ref.revision)
    ggufs = [f for f in listing.files if f.name.lower().endswith(".gguf")]
    chosen = _choose_gguf(ref.repo_id, ggufs, filename)
    files = _with_shards(chosen, ggufs)
    entry = _catalog_match(catalog, ref.repo_id, chosen.name)
    if entry is not None:
        return _catalog_record(entry, {f.name: f for f in listing.files if f.size > 0})
    capabilities = await _capabilities(hf, ref.repo_id, ref.revision, chosen, warnings)
    if "TextGeneration" in capabilities:
        projector = await _projector(hf, ref.repo_id, ref.revision, chosen, ggufs)
        if projector is not None:  # downloaded beside the weights, like a shard
            files.append(projector)
            capabilities += ("Vision",)
    size = sum(f.size for f in files)
    quant = detect_quantization(chosen.name)
    warnings.append("required memory is an estimate (1.5 × the file size)")
    return ModelRecord(
        name=ref.repo_id.lower(),
        repo=ref.repo_id,
        filename=chosen.name,
        source="url",
        display_name=(display_name or "").strip() or ref.repo_id.split("/", 1)[1],
        size_bytes=size,
        required_memory_bytes=int(size * MEMORY_FACTOR),
        revision=ref.revision,
        quantization=quant,
        sha256=chosen.sha256,
        capabilities=capabilities,
        files=tuple(ModelFile(f.name, f.size, f.sha256) for f in files),
    )


async def _capabilities(
    hf: HfClient, repo: str, revision: str | None, chosen: RepoFileInfo, warnings: list[str]
) -> tuple[str, ...]:
    """What the model does, from its GGUF header (pooling type, architecture), read from the
    Hub before any node has the file; not from words in its name."""
    meta = await read_meta(hf, repo, chosen.name, revision)
    if meta is not None and meta.architecture == "clip":
        raise BadRequest(
            f"'{chosen.name}' is an image projector (mmproj), not a model; register the "
            "model's own GGUF and its projector comes with it",
            param="filename",
            code="projector_not_model",
        )
    found = meta.capabilities() if meta is not None else None
    if found is None:
        warnings.append(
            f"the header of {chosen.name} could not be read; registered as a text model"
        )
        return ("TextGeneration",)
    return found


async def _projector(
    hf: HfClient, repo: str, revision: str | None, chosen: RepoFileInfo, ggufs: list[RepoFileInfo]
) -> RepoFileInfo | None:
    """The repo's image projector (an `mmproj` GGUF whose header has a vision encoder), in the
    precision llama.cpp's own repos default to; None when it has none."""

    def rank(f: RepoFileInfo) -> tuple[bool, int, str]:
        # A repo holding several models keeps each one's projector in its folder.
        elsewhere = f.name.rpartition("/")[0] != chosen.name.rpartition("/")[0]
        quant = detect_quantization(f.name)
        order = _PROJECTOR_ORDER.index(quant) if quant in _PROJECTOR_ORDER else 9
        return elsewhere, order, f.name

    candidates = sorted((f for f in ggufs if "mmproj" in f.name.lower()), key=rank)
    for f in candidates[:MAX_PROJECTOR_PROBES]:
        meta = await read_meta(hf, repo, f.name, revision)
        if meta is not None and meta.is_vision_projector():
            return f
    return None


def _catalog_projector(
    entry: CatalogEntry, hub: Mapping[str, RepoFileInfo]
) -> tuple[ModelFile, ...]:
    """The catalog entry's projector file, when it has one (as the Hub lists it, if it does)."""
    if entry.mmproj_filename is None or entry.mmproj_size_bytes is None:
        return ()
    listed = hub.get(entry.mmproj_filename)
    if listed is not None:
        return (ModelFile(listed.name, listed.size, listed.sha256),)
    return (ModelFile(entry.mmproj_filename, entry.mmproj_size_bytes),)


def _catalog_match(catalog: Catalog, repo_id: str, filename: str) -> CatalogEntry | None:
    for entry in catalog.entries:
        if entry.repo.lower() == repo_id.lower() and entry.recommended_filename == filename:
            return entry
    return None


async def _hub_files(hf: HfClient, repo: str) -> dict[str, RepoFileInfo]:
    """The repo's files as the Hub lists them now (exact sizes and sha256), by name; none
    when the Hub cannot say, and the catalog's own figures then stand."""
    try:
        listing = await hf.repo_listing(repo)
    except UserFacingError as exc:
        log.info("registering %s with the catalog's figures: %s", repo, exc.message)
        return {}
    return {f.name: f for f in listing.files if f.size > 0}


def _catalog_record(entry: CatalogEntry, hub: Mapping[str, RepoFileInfo]) -> ModelRecord:
    """A catalog model's record. Some entries' sizes are rounded (4,920,000,000), and the
    node checks a download's size exactly, so the Hub's size and sha256 win when known; the
    memory estimate scales with the size."""
    listed = hub.get(entry.recommended_filename)
    size = listed.size if listed is not None else entry.size_bytes
    memory = int(entry.required_memory_bytes * size / entry.size_bytes)
    sha256 = listed.sha256 if listed is not None else None
    return ModelRecord(
        name=entry.id,
        repo=entry.repo,
        filename=entry.recommended_filename,
        source="catalog",
        display_name=entry.name,
        size_bytes=size,
        required_memory_bytes=memory,
        catalog_id=entry.id,
        quantization=entry.quantization,
        sha256=sha256,
        context_length=entry.context_length,
        capabilities=entry.capabilities,
        files=(
            ModelFile(entry.recommended_filename, size, sha256),
            *_catalog_projector(entry, hub),
        ),
    )


def _choose_gguf(repo_id: str, ggufs: list[RepoFileInfo], filename: str | None) -> RepoFileInfo:
    if filename is not None:
        for f in ggufs:
            if f.name == filename:
                return f
        names = ", ".join(sorted(f.name for f in ggufs)[:20]) or "none"
        raise BadRequest(
            f"'{repo_id}' has no file '{filename}'; its GGUF files: {names}",
            param="filename",
            code="file_not_found",
        )
    # A model is one file or the first shard of a split; projectors are not models.
    candidates = [
        f
        for f in ggufs
        if "mmproj" not in f.name.lower()
        and (not (m := _SHARD_RE.search(f.name)) or int(m.group(1)) == 1)
    ]
    if not candidates:
        raise BadRequest(
            f"'{repo_id}' has no GGUF model file; llmlb runs GGUF models (llama.cpp)",
            param="repo",
            code="no_gguf",
        )
    if len(candidates) > 1:
        names = ", ".join(sorted(f.name for f in candidates)[:20])
        raise BadRequest(
            f"'{repo_id}' has {len(candidates)} GGUF files; pick one with 'filename': {names}",
            param="filename",
            code="filename_required",
        )
    return candidates[0]


def _with_shards(chosen: RepoFileInfo, ggufs: list[RepoFileInfo]) -> list[RepoFileInfo]:
    match = _SHARD_RE.search(chosen.name)
    if not match:
        return [chosen]
    prefix = chosen.name[: match.start()]
    total = match.group(2)
    shards = [
        f for f in ggufs if f.name.startswith(prefix) and f.name.endswith(f"-of-{total}.gguf")
    ]
    return sorted(shards, key=lambda f: f.name)
