"""One running llmlb per data folder: an exclusive lock file held for the process's lifetime."""

from __future__ import annotations

import hashlib
import json
import os
import sys
from pathlib import Path
from typing import IO

from app.core.errors import StartupError

LOCK_FILE = "llmlb.lock"


def instance_key(data_dir: Path) -> str:
    """A short name derived from the resolved data folder (the GUI's hand-over socket uses it)."""
    resolved = str(data_dir.expanduser().resolve())
    return "llmlb-" + hashlib.sha256(resolved.encode()).hexdigest()[:16]


def _try_lock(handle: IO[str]) -> bool:
    """Take an exclusive, non-blocking lock on the open file; False when another holds it."""
    if sys.platform == "win32":  # pragma: no cover - Windows
        import msvcrt

        handle.seek(0)  # every process locks the same byte: the first
        try:
            msvcrt.locking(handle.fileno(), msvcrt.LK_NBLCK, 1)
        except OSError:
            return False
        return True
    import fcntl

    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def running_instance(data_dir: Path) -> dict[str, int]:
    """What the process holding the lock wrote about itself ({"pid", "port"}; may be empty)."""
    try:
        info = json.loads((data_dir / LOCK_FILE).read_text())
    except (OSError, ValueError):
        return {}
    if not isinstance(info, dict):
        return {}
    return {k: v for k, v in info.items() if k in {"pid", "port"} and isinstance(v, int)}


def describe(info: dict[str, int]) -> str:
    """'pid 123, port 8080' (what is known of it)."""
    parts = [f"{k} {info[k]}" for k in ("pid", "port") if k in info]
    return ", ".join(parts) or "pid unknown"


class DataDirInUse(StartupError):
    """Another llmlb runs on this data folder."""


class DataDirLock:
    """Held while a balancer runs on a data folder; a second one on the same folder is refused.

    The kernel drops an flock when its holder dies, so a crash never leaves a stale lock; the
    file's contents (pid, port) only serve to name the running instance in the refusal.
    """

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir.expanduser().resolve()
        self._handle: IO[str] | None = None

    def acquire(self) -> None:
        """Take the lock, or raise StartupError naming the instance that holds it."""
        path = self.data_dir / LOCK_FILE
        # Opened without truncating: the holder's pid/port must survive a refused attempt.
        handle = open(path, "a+", encoding="utf-8")  # held for the lifetime
        if not _try_lock(handle):
            handle.close()
            raise DataDirInUse(
                f"llmlb is already running on the data folder {self.data_dir} "
                f"({describe(running_instance(self.data_dir))}); use that one, or give this one "
                "another --data-dir"
            )
        self._handle = handle
        self.record()

    def record(self, port: int | None = None) -> None:
        """Write who holds the lock (and, once listening, on which port)."""
        if self._handle is None:
            return
        info: dict[str, int] = {"pid": os.getpid()}
        if port is not None:
            info["port"] = port
        self._handle.seek(0)
        self._handle.truncate()
        self._handle.write(json.dumps(info))
        self._handle.flush()

    def release(self) -> None:
        """Let the next instance start (closing the file drops the lock)."""
        if self._handle is not None:
            handle, self._handle = self._handle, None
            handle.seek(0)
            handle.truncate()
            handle.close()


# What the GUI's main coroutine returns instead of an exit code when it must start again:
# with the same command line ("Restart now"), or without --connect (another server chosen).
RESTART = 75
SWITCH = 76
