"""The desktop app's own settings file (port, bind, data dir...), outside the data dir."""

from __future__ import annotations

import json
import logging
import os
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import platformdirs

from app.core.settings import DEFAULT_IDLE_UNLOAD_TTL, DEFAULT_PORT

log = logging.getLogger(__name__)


@dataclass
class DesktopConfig:
    """What the Settings page edits; most of it applies at the next start."""

    port: int = DEFAULT_PORT
    serve_lan: bool = False
    data_dir: str = ""  # empty: the platform's default
    idle_unload_ttl: float = DEFAULT_IDLE_UNLOAD_TTL
    language: str = "system"  # system / en / ja
    start_at_login: bool = False
    server_url: str = ""  # empty: this computer; else the remote balancer the app manages

    @staticmethod
    def path() -> Path:
        """Where the file lives (LLMLB_CONFIG_DIR overrides, for tests and portable setups)."""
        base = os.environ.get("LLMLB_CONFIG_DIR") or platformdirs.user_config_dir("llmlb")
        return Path(base) / "settings.json"

    @classmethod
    def load(cls) -> DesktopConfig:
        """The saved settings, or defaults when there are none or the file is unreadable."""
        try:
            data = json.loads(cls.path().read_text(encoding="utf-8"))
        except FileNotFoundError:
            return cls()
        except (OSError, ValueError) as exc:
            log.warning("ignoring unreadable settings file %s: %s", cls.path(), exc)
            return cls()
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})

    def save(self) -> None:
        """Write atomically (a crash never leaves half a file)."""
        path = self.path()
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(asdict(self), indent=2), encoding="utf-8")
        os.replace(tmp, path)

    def as_dict(self) -> dict[str, object]:
        """The values, for comparison."""
        return asdict(self)


AUTOSTART = """[Desktop Entry]
Type=Application
Name=llmlb
Exec={command}
X-GNOME-Autostart-enabled=true
"""


def set_start_at_login(enabled: bool, command: str) -> Path:
    """Add or remove the XDG autostart entry (Linux desktops)."""
    base = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config")
    entry = base / "autostart" / "llmlb.desktop"
    if enabled:
        entry.parent.mkdir(parents=True, exist_ok=True)
        entry.write_text(AUTOSTART.format(command=command), encoding="utf-8")
    elif entry.exists():
        entry.unlink()
    return entry
