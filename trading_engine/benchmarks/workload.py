"""Read the seeded order streams of ``shared/workloads/gen_orders.py``.

Format (one operation a line, after a header)::

    op,order_id,user_id,side,type,price,qty
    N,17,342,B,L,100012,35      new: side B|S, type L (GTC) | I (IOC) | M (market)
    C,9,,,,,                    cancel order 9 (a no-op if it no longer rests)
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from pathlib import Path
from typing import NamedTuple

from trading_engine.errors import InvalidInput

__all__ = ["Op", "read_ops", "trade_digest"]


class Op(NamedTuple):
    """One parsed line: ``kind`` is ``N`` (new) or ``C`` (cancel)."""

    kind: str
    order_id: int
    user_id: str
    side: str
    type: str
    price: int
    quantity: int


def read_ops(path: Path) -> list[Op]:
    """Parse a workload file; raises ``InvalidInput`` naming the line of a malformed one."""
    ops: list[Op] = []
    with path.open(encoding="utf-8") as lines:
        header = next(lines, "").strip()
        if header != "op,order_id,user_id,side,type,price,qty":
            raise InvalidInput("file", f"{path}: not an order stream (header {header!r})")
        for number, line in enumerate(lines, start=2):
            op = _parse(line)
            if op is None:
                raise InvalidInput("file", f"{path}:{number}: malformed line {line!r}")
            ops.append(op)
    return ops


def _parse(line: str) -> Op | None:
    fields = line.rstrip("\n").split(",")
    if len(fields) != 7:
        return None
    kind, oid, user, side, typ, price, qty = fields
    try:
        if kind == "C":
            return Op("C", int(oid), "", "", "", 0, 0)
        if kind == "N" and side in ("B", "S") and typ in ("L", "I", "M"):
            return Op("N", int(oid), user, side, typ, int(price), int(qty))
    except ValueError:
        return None
    return None


def trade_digest(trades: Iterable[tuple[int, int, int, int]]) -> str:
    """sha256 over ``maker,taker,price,qty`` lines, in trade order, as the generator defines."""
    h = hashlib.sha256()
    for maker, taker, price, quantity in trades:
        h.update(f"{maker},{taker},{price},{quantity}\n".encode())
    return h.hexdigest()
