"""Create N funded users on a running server and print their API keys, one a line.

    python benchmarks/funded_users.py URL ADMIN_KEY N > keys.txt

Each gets 10,000,000 AIT and 1,000 BTC: enough for every order of
`redis_penalty.sh`'s runs. The user ids carry the time, so a second call on
the same server adds new users.
"""

from __future__ import annotations

import sys
import time

import httpx


def main(url: str, admin_key: str, count: int) -> None:
    stamp = int(time.time() * 1000)
    with httpx.Client(
        base_url=url.rstrip("/") + "/api/v1/trading", headers={"X-API-Key": admin_key}, timeout=30
    ) as api:
        for index in range(count):
            user = f"u{stamp}_{index}"
            created = api.post("/admin/users", json={"user_id": user})
            created.raise_for_status()
            for asset, amount in (("AIT", "10000000"), ("BTC", "1000")):
                api.post(
                    "/admin/deposits", json={"user_id": user, "asset": asset, "amount": amount}
                ).raise_for_status()
            print(created.json()["api_key"])


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]))
