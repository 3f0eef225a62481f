"""``python -m trading_engine.benchmarks.users URL ADMIN_KEY N``: N funded users, their keys.

Creates N users through the admin API (as ``trading-engine loadtest`` does: each
funded in both assets of ``--symbol``) and prints their API keys, one a line, for
``benchmarks/wrk_orders.lua``'s ``KEYS_FILE`` (``make_users`` in ``benchmarks/servers.sh``).
"""

from __future__ import annotations

import argparse

import httpx
import trio

from trading_engine.benchmarks.accounts import create_users

__all__ = ["main"]


async def _keys(url: str, admin_key: str, users: int, symbol: str) -> list[str]:
    base = url.rstrip("/") + "/api/v1/trading"
    async with httpx.AsyncClient(
        base_url=base, headers={"X-API-Key": admin_key}, timeout=30
    ) as api:
        return await create_users(api, users, [symbol])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url")
    parser.add_argument("admin_key")
    parser.add_argument("users", type=int)
    parser.add_argument("--symbol", default="BTC_AIT")
    args = parser.parse_args()
    for key in trio.run(_keys, args.url, args.admin_key, args.users, args.symbol):
        print(key)


if __name__ == "__main__":
    main()
