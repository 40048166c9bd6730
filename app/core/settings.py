"""Every setting declared once (key, default, type, description) and resolved from env/CLI."""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from app.core.paths import default_data_dir

DEFAULT_PORT = 32768
# `llmlb node` serves the LAN (other machines' balancers call it) on the port after ours.
DEFAULT_NODE_PORT = DEFAULT_PORT + 1
ALL_INTERFACES = "0.0.0.0"  # what "serve the LAN" binds to, for the balancer and a node alike
DEFAULT_NODE_HOST = ALL_INTERFACES
# Defaults that signatures outside Settings also need (node config, download, registry):
# declared here once, so a changed default reaches every one of them.
DEFAULT_IDLE_UNLOAD_TTL = 1800.0
DEFAULT_DOWNLOAD_READ_TIMEOUT = 30.0
DEFAULT_NODE_OFFLINE_AFTER = 30.0
# The engine's defaults, which EngineOptions and the batched runner take from here too.
DEFAULT_CONTEXT_SIZE = 0  # what each model was trained for, within the memory left
DEFAULT_SLOTS = 4
DEFAULT_FLASH_ATTN = True
DEFAULT_STREAM_INTERVAL = 0.02
DEFAULT_GPU_LAYERS = "auto"  # as many layers as fit the GPU's free memory
DEFAULT_QUEUE_LIMIT = 256
DEFAULT_QUEUE_WAIT = 120.0


@dataclass(frozen=True)
class Settings:
    """The settings in force; each field's metadata carries its description and env var."""

    host: str = field(
        default="127.0.0.1",
        metadata={"help": "address the balancer listens on (loopback unless you serve the LAN)"},
    )
    tls: bool = field(
        default=False,
        metadata={
            "help": "serve HTTPS with a certificate the balancer makes (kept in the data dir); "
            "nodes pin it when they join",
            "env": "LLMLB_TLS",
        },
    )
    balancer_fingerprint: str = field(
        default="",
        metadata={
            "help": "a node's pin of its balancer's TLS certificate (SHA-256, as GET "
            "/v0/cluster shows it): any other certificate is refused, even at the first join",
            "env": "LLMLB_BALANCER_FINGERPRINT",
        },
    )
    join_token: str = field(
        # Read when Settings is made, like the data dir: a balancer made in-process (tests, the
        # GUI) takes it from the environment as `llmlb serve` does.
        default_factory=lambda: os.environ.get("LLMLB_JOIN_TOKEN", ""),
        repr=False,  # a secret: never in a log line or a traceback
        metadata={
            "help": "the cluster join token nodes present to join (a balancer without one "
            "makes its own; the app shows it in Settings, GET /v0/cluster too)",
            "env": "LLMLB_JOIN_TOKEN",
        },
    )
    origins: str = field(
        default="",
        metadata={
            "help": "browser origins (comma-separated; `scheme://host:*` for any port, `*` for "
            "all) whose web pages may call the endpoint, beside pages served from this machine",
            "env": "LLMLB_ORIGINS",
        },
    )
    port: int = field(
        default=DEFAULT_PORT, metadata={"help": "port of the OpenAI-compatible endpoint"}
    )
    data_dir: Path = field(
        default_factory=default_data_dir,
        metadata={"help": "folder for the database, logs and model files", "env": "LLMLB_DATA_DIR"},
    )
    local_node: bool = field(
        default=True, metadata={"help": "run a llama.cpp node inside this process"}
    )
    hf_timeout: float = field(
        default=10.0,
        metadata={
            "help": "seconds to wait for Hugging Face before giving up on a call",
            "env": "LLMLB_HF_TIMEOUT",
        },
    )
    hub_info_ttl: float = field(
        default=600.0,
        metadata={
            "help": "seconds Hugging Face downloads/likes stay cached",
            "env": "LLMLB_HUB_INFO_TTL",
        },
    )
    idle_unload_ttl: float = field(
        default=DEFAULT_IDLE_UNLOAD_TTL,
        metadata={
            "help": "seconds an unused model stays loaded in memory",
            "env": "LLMLB_IDLE_UNLOAD_TTL",
        },
    )
    context_size: int = field(
        default=DEFAULT_CONTEXT_SIZE,
        metadata={
            "help": "tokens of context per conversation (0: what each model was trained for, "
            "within the memory left after its weights)",
            "env": "LLMLB_CONTEXT_SIZE",
        },
    )
    threads: int = field(
        default_factory=lambda: max(1, (os.cpu_count() or 2) - 1),
        metadata={
            "help": "CPU threads llama.cpp decodes with (default: all cores but one, so "
            "the app and the balancer stay responsive)",
            "env": "LLMLB_THREADS",
        },
    )
    slots: int = field(
        default=DEFAULT_SLOTS,
        metadata={
            "help": "requests a loaded model decodes together (continuous batching; 0: one "
            "at a time through llama-cpp-python's high-level API)",
            "env": "LLMLB_SLOTS",
        },
    )
    flash_attn: bool = field(
        default=DEFAULT_FLASH_ATTN,
        metadata={
            "help": "flash attention, as llama-server uses by default (faster; off: a batched "
            "greedy answer is token-for-token the answer alone)",
            "env": "LLMLB_FLASH_ATTN",
        },
    )
    stream_interval: float = field(
        default=DEFAULT_STREAM_INTERVAL,
        metadata={
            "help": "seconds a streamed answer gathers tokens before sending them on (the "
            "first token goes at once; 0: every token alone, at more CPU cost per token)",
            "env": "LLMLB_STREAM_INTERVAL",
        },
    )
    model_memory: float = field(
        default=0.0,
        metadata={
            "help": "GB of RAM this node's loaded models may take in all (0: whatever the "
            "machine has free); a model that does not fit unloads the least recently used "
            "idle one first",
            "env": "LLMLB_MODEL_MEMORY",
        },
    )
    gpu_layers: str = field(
        default=DEFAULT_GPU_LAYERS,
        metadata={
            "help": "layers offloaded to the GPU: auto (as many as fit its free memory), "
            "all, or a number (0: the CPU only)",
            "env": "LLMLB_GPU_LAYERS",
        },
    )
    rpc_servers: str = field(
        default="",
        metadata={
            "help": "llama.cpp RPC servers (host:port, comma-separated; each runs "
            "ggml-rpc-server) this node offloads layers to, as if they were GPUs",
            "env": "LLMLB_RPC_SERVERS",
        },
    )
    download_read_timeout: float = field(
        default=DEFAULT_DOWNLOAD_READ_TIMEOUT,
        metadata={
            "help": "seconds without a byte before a download counts as stalled",
            "env": "LLMLB_DOWNLOAD_STALL_TIMEOUT",
        },
    )
    node_offline_after: float = field(
        default=DEFAULT_NODE_OFFLINE_AFTER,
        metadata={
            "help": "seconds without a heartbeat before a node counts as offline",
            "env": "LLMLB_NODE_OFFLINE_AFTER",
        },
    )
    queue_limit: int = field(
        default=DEFAULT_QUEUE_LIMIT,
        metadata={
            "help": "requests that may wait per model when every node is busy (429 past it)",
            "env": "LLMLB_QUEUE_LIMIT",
        },
    )
    queue_wait: float = field(
        default=DEFAULT_QUEUE_WAIT,
        metadata={
            "help": "seconds a queued request waits for a node before a 504",
            "env": "LLMLB_QUEUE_WAIT",
        },
    )
    upstream_deadline: float = field(
        default=1800.0,
        metadata={
            "help": "seconds one request to a node may take in all, a streamed answer included "
            "(a node that trickles bytes cannot hold a request longer)",
            "env": "LLMLB_UPSTREAM_DEADLINE",
        },
    )
    model_aliases: str = field(
        default="",
        metadata={
            "help": "other names for models served here, as comma-separated pattern=model "
            "(`*` matches anything), e.g. `claude-*=qwen3-8b` so that Claude Code's own model "
            "names reach a local model; a name that is a model here is never aliased",
            "env": "LLMLB_MODEL_ALIASES",
        },
    )
    catalog_path: Path | None = field(
        default=None,
        metadata={
            "help": "curated catalog file (defaults to the shipped one)",
            "env": "LLMLB_CATALOG",
        },
    )

    @classmethod
    def from_env(cls, **overrides: Any) -> Settings:
        """Defaults, then environment variables, then explicit overrides (the CLI's)."""
        values: dict[str, Any] = {}
        for f in fields(cls):
            env = f.metadata.get("env")
            if env and os.environ.get(env):
                values[f.name] = _convert(f.type, os.environ[env])
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)

    @staticmethod
    def help(name: str) -> str:
        """The one description of a setting, for the CLI help and the Settings page."""
        return str(_field(name).metadata.get("help", ""))

    @staticmethod
    def cli_help(name: str) -> str:
        """The description with the environment variable that also sets it (for --help)."""
        env = _field(name).metadata.get("env")
        return f"{Settings.help(name)} (env {env})" if env else Settings.help(name)


def parse_gpu_layers(text: str) -> int | None:
    """LLMLB_GPU_LAYERS as llama.cpp counts: None for auto, -1 for all, else the number."""
    value = text.strip().lower()
    if value in ("", "auto"):
        return None
    if value == "all":
        return -1
    try:
        number = int(value)
    except ValueError:
        raise ValueError(
            f"LLMLB_GPU_LAYERS={text!r}: use auto, all or a number of layers"
        ) from None
    if number < -1:
        raise ValueError(f"LLMLB_GPU_LAYERS={text!r}: use auto, all or a number of layers")
    return number


def _field(name: str) -> Any:
    for f in fields(Settings):
        if f.name == name:
            return f
    raise KeyError(name)


def _convert(kind: Any, raw: str) -> Any:
    text = str(kind)
    if "Path" in text:
        return Path(raw).expanduser()
    if "float" in text:
        return float(raw)
    if "int" in text:
        return int(raw)
    if "bool" in text:
        return raw.strip().lower() in {"1", "true", "yes", "on"}
    return raw
