#!/bin/sh
# What the gateway hop adds to a REST order at low load (docs/scaling.md): the same orders
# through `serve` and through a gateway, in turn, in the same run.
#
# Starts a redis-server on $REDIS_PORT, a fresh `trading-engine serve --demo` on $PORT (no
# Redis: the one-process default) and `trading-engine engine --demo` with one
# `trading-engine gateway` on $GATEWAY (REDIS_URL), each engine its own durable local
# PostgreSQL, no rate limits. Then ROUNDS (3) rounds of: RATE (20) orders/s offered for
# SECONDS_ (10) to serve, then the same to the gateway (crossing buys of demo_alice and
# sells of demo_bob at one price, evenly spread, one `hey -c 1 -q 10` per 10/s). Prints
# one JSON object per run (its "path" and round; p50 to p99.9 in ms over every order
# answered 201), and per round the gateway's p50 less serve's beside the floor: twice a
# Redis PING's p50 from an idle client at the same pace (trading_engine/benchmarks/redis_idle.py).
set -eu

PORT=${PORT:-8423}
REDIS_PORT=${REDIS_PORT:-8424}
GATEWAY=${GATEWAY:-8425}
RATE=${RATE:-20}
SECONDS_=${SECONDS_:-10}
ROUNDS=${ROUNDS:-3}
BIN=${BIN:-.venv/bin}

BENCH=gateway-hop
. benchmarks/servers.sh
need hey
start_redis "$REDIS_PORT"
serve_demo "$PORT"
SERVE_ALICE=$(sed -n 's/^  demo_alice key: //p' "$DATA/serve.log")
SERVE_BOB=$(sed -n 's/^  demo_bob key: //p' "$DATA/serve.log")
export REDIS_URL="redis://127.0.0.1:$REDIS_PORT/0"
start_engine "$DATA/split"
start_gateway "$GATEWAY" "$DATA/split"
ALICE=$(demo_key_of "$DATA/split" demo_alice)
BOB=$(demo_key_of "$DATA/split" demo_bob)

# measure PATH ROUND URL KEY_BUY KEY_SELL: one run; prints its JSON, keeps its p50
measure() {
    rm -f "$DATA"/run-*.csv
    order_stream "$3" "$4" "$5" "$RATE" "$SECONDS_" "$DATA/run"
    "$BIN/python" -m trading_engine.benchmarks.hey_summary "$SECONDS_" "$DATA"/run-*.csv |
        sed "s/^{/{\"path\": \"$1\", \"round\": $2, /" | tee "$DATA/$1.json"
}

# The floor: two Redis round trips from idle processes (trading_engine/benchmarks/redis_idle.py)
"$BIN/python" -m trading_engine.benchmarks.redis_idle "$REDIS_URL" \
    --gap "$("$BIN/python" -c "print(1 / $RATE)")" | tee "$DATA/floor.json"

i=0
while [ $i -lt "$ROUNDS" ]; do
    i=$((i + 1))
    measure serve $i "$URL" "$SERVE_ALICE" "$SERVE_BOB"
    measure gateway $i "http://127.0.0.1:$GATEWAY" "$ALICE" "$BOB"
    "$BIN/python" -c "import json, sys
serve, gateway, floor = (json.load(open(f'$DATA/{p}.json')) for p in ('serve', 'gateway', 'floor'))
print(json.dumps({'round': $i, 'hop_p50_ms': round(gateway['p50_ms'] - serve['p50_ms'], 2),
                  'floor_ms': floor['floor_ms']}))"
done
