"""How a download reads on a card or a Local row: percent, size, speed and time left while
bytes flow; the reason and the next try while it waits to retry."""

from __future__ import annotations

import time

from app.core.types import DownloadProgress
from app.core.wire import NodeModelJson
from app.ui.i18n import tr
from app.ui.widgets import human_bytes


def duration(seconds: float) -> str:
    """25 → '25 s', 200 → '3 min', 4000 → '1 h 7 min' (rounded up: never says 0 s left)."""
    whole = max(1, int(-(-seconds // 1)))
    if whole < 60:
        return tr("{n} s").format(n=whole)
    minutes = -(-whole // 60)
    if minutes < 60:
        return tr("{n} min").format(n=minutes)
    return tr("{h} h {m} min").format(h=minutes // 60, m=minutes % 60)


def progress_text(progress: DownloadProgress) -> str:
    """'43% of 484 MB · 12.3 MB/s · 25 s left'; only the share while nothing flows."""
    parts = [
        tr("{percent}% of {total}").format(
            percent=f"{progress['percent']:.0f}", total=human_bytes(progress["bytes_total"])
        )
    ]
    speed = progress.get("bytes_per_second") or 0
    if speed > 0:
        parts.append(f"{human_bytes(speed)}/s")
        left = progress.get("seconds_left")
        if left:
            parts.append(tr("{time} left").format(time=duration(left)))
    return " · ".join(parts)


def node_progress(node: NodeModelJson) -> DownloadProgress:
    """One node's report on a model as the progress a card shows."""
    total, done = node["total_bytes"], node["downloaded_bytes"]
    speed = node.get("bytes_per_second") or 0
    return {
        "percent": 100.0 * done / total if total else 0.0,
        "bytes_downloaded": done,
        "bytes_total": total,
        "bytes_per_second": speed,
        "seconds_left": -(-max(total - done, 0) // speed) if speed and total else None,
        "retry_at": node.get("retry_at"),
    }


def retry_text(reason: str, retry_at: float | None, now: float | None = None) -> str:
    """'retrying in 20 s: Hugging Face could not be reached'; the reason alone without a time."""
    if retry_at is None:
        return reason
    wait = retry_at - (time.time() if now is None else now)
    if wait < 1:
        return tr("retrying now: {reason}").format(reason=reason)
    return tr("retrying in {time}: {reason}").format(time=duration(wait), reason=reason)
