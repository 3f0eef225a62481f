"""Merging book deltas that wait for one WebSocket connection into one.

When a connection falls behind by several messages, consecutive ``delta``s
of the same book become one delta: ``prev_seq`` of the first, ``seq`` and
``ts`` of the last, and for each price level its latest quantity. The chain
of ``seq`` and ``prev_seq`` stays unbroken, the book a client builds is the
same, and a client that reads slowly has less to read. Other messages keep
their order and are never merged. A connection that keeps up gets every
delta as it was published (``api/feed.py`` merges only for one that is
behind).
"""

from __future__ import annotations

import json
from typing import Any

__all__ = ["conflate"]


def conflate(texts: list[str]) -> list[str]:
    """The messages to send for ``texts`` (in order), with runs of book deltas merged."""
    if len(texts) < 2:
        return texts
    out: list[str] = []
    pending: dict[str, Any] | None = None
    merged = 0
    for text in texts:
        message = json.loads(text) if '"type":"delta"' in text else None
        if (
            message is not None
            and pending is not None
            and (message["channel"] == pending["channel"] and message["prev_seq"] == pending["seq"])
        ):
            _merge_levels(pending, message)
            merged += 1
            continue
        if pending is not None:
            out.append(json.dumps(pending, separators=(",", ":")) if merged else pending["_text"])
            pending = None
            merged = 0
        if message is not None:
            message["_text"] = text
            pending = message
        else:
            out.append(text)
    if pending is not None:
        out.append(json.dumps(pending, separators=(",", ":")) if merged else pending["_text"])
    return out


def _merge_levels(into: dict[str, Any], later: dict[str, Any]) -> None:
    into.pop("_text", None)
    for side in ("bids", "asks"):
        levels = dict(into[side])
        levels.update(later[side])
        into[side] = [[price, quantity] for price, quantity in levels.items()]
    into["seq"] = later["seq"]
    into["ts"] = later.get("ts", into.get("ts"))
