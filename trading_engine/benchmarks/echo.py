"""The HTTP benchmark's yardstick: a bare Quart-Trio JSON echo on Hypercorn's trio worker.

The front-end issue sets its REST target against this: what the framework
alone serves on this machine, with no engine, no database and no checks.
``python -m trading_engine.benchmarks.echo --port N`` serves ``POST /echo``
(answers 201 with the JSON body it was sent, parsed and dumped again) with
the server settings ``trading-engine serve`` uses; ``benchmarks/http_load.sh``
runs the same ``wrk`` load against it before the engine, so both figures
come from the same minutes.
"""

from __future__ import annotations

import argparse
from typing import Any

import hypercorn.trio
import trio
from quart import request
from quart_trio import QuartTrio

from trading_engine.api.http_server import server_config

__all__ = ["create_echo_app", "main"]


def create_echo_app() -> QuartTrio:
    app = QuartTrio(__name__)

    @app.post("/echo")
    async def echo() -> tuple[Any, int]:
        return await request.get_json(), 201

    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8079)
    args = parser.parse_args()
    settings = server_config(f"{args.host}:{args.port}")
    trio.run(hypercorn.trio.serve, create_echo_app(), settings)


if __name__ == "__main__":
    main()
