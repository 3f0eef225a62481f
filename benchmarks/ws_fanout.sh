#!/bin/sh
# The 500-subscriber figure of docs/performance.md, on a fresh server of its own.
#
# Starts `trading-engine serve --demo` on 127.0.0.1:$PORT with its own data
# directory (a local durable PostgreSQL) and no rate limits, connects
# SUBSCRIBERS Node WebSocket clients to book.BTC_AIT
# (benchmarks/ws_subscribers.mjs), then sends RATE orders/s for SECONDS_
# seconds: with `trading-engine loadtest` (20 users, prices around the mid),
# or with ORDERS=hey, Debian's `hey` (half buys of demo_alice, half sells of
# demo_bob at one price, as `make loadtest` does), which needs far less CPU
# than the Python client on the same two cores. With WARMUP=N, hey sends the
# same rate for N seconds first, and the subscribers neither count nor time
# the deltas of those N seconds. With SERVER_WARMUP=N, hey sends the same rate
# for N seconds before the subscribers connect (the server warm, the
# connections new). Prints one JSON object for
# the orders (served per second, HTTP latency), then the subscribers' (deltas,
# seq gaps, delivery latency). With PROFILE=FILE, py-spy (`pip install
# py-spy`) records the server meanwhile (a flame graph; PROFILE_FORMAT=raw for
# collapsed stacks). Stops the server and removes its data at the end.
set -eu

PORT=${PORT:-8078}
RATE=${RATE:-200}
SECONDS_=${SECONDS_:-8}
SUBSCRIBERS=${SUBSCRIBERS:-500}
ORDERS=${ORDERS:-loadtest}
WARMUP=${WARMUP:-0}
SERVER_WARMUP=${SERVER_WARMUP:-0}
BIN=${BIN:-.venv/bin}

BENCH=ws-fanout
. benchmarks/servers.sh
need hey
serve_demo "$PORT"
ADMIN=$(sed -n 's/^  admin key:  //p' "$DATA/serve.log")

# hey SECONDS: RATE orders/s for SECONDS, half buys of demo_alice, half sells of
# demo_bob at one price; prints one JSON object (p50 and p99: the larger half's).
hey_orders() {
    HEY_PIDS=""
    for user in demo_alice demo_bob; do
        side=buy
        [ $user = demo_bob ] && side=sell
        key=$(sed -n "s/^  $user key: //p" "$DATA/serve.log")
        body=$(order_body "$side")
        hey -z "${1}s" -c 10 -q $((RATE / 20)) -m POST -T application/json \
            -H "X-API-Key: $key" -d "$body" "$URL/api/v1/trading/orders" >"$DATA/hey-$side.txt" &
        HEY_PIDS="$HEY_PIDS $!"
    done
    # shellcheck disable=SC2086
    wait $HEY_PIDS
    cat "$DATA"/hey-*.txt | awk -v s="$1" '
        / 50% in/ { p50 = p50 > $3 ? p50 : $3 }
        / 99% in/ { p99 = p99 > $3 ? p99 : $3 }
        /\[201\]/ { ok += $2 }
        END { printf "{\"orders\": %d, \"orders_per_sec\": %d, \"p50_ms\": %.1f, \"p99_ms\": %.1f}\n",
              ok, ok / s, p50 * 1000, p99 * 1000 }'
}

if [ "$SERVER_WARMUP" -gt 0 ]; then
    hey_orders "$SERVER_WARMUP" >/dev/null
fi
node --experimental-websocket --no-warnings benchmarks/ws_subscribers.mjs \
    "ws://127.0.0.1:$PORT/api/v1/trading/ws" "$SUBSCRIBERS" $((SECONDS_ + WARMUP + 8)) "$WARMUP" \
    >"$DATA/subscribers.json" &
NODE=$!
sleep 3
if [ "$WARMUP" -gt 0 ]; then
    hey_orders "$WARMUP" >/dev/null
fi
if [ -n "${PROFILE:-}" ]; then
    "$BIN/py-spy" record -o "$PROFILE" -f "${PROFILE_FORMAT:-flamegraph}" --pid "$SERVER" \
        -d "$SECONDS_" >/dev/null 2>&1 &
fi
if [ "$ORDERS" = hey ]; then
    hey_orders "$SECONDS_"
else
    "$BIN/trading-engine" loadtest --url "$URL" --admin-key "$ADMIN" --rate "$RATE" \
        --duration "$SECONDS_" --subscribers 0
fi
wait "$NODE"
cat "$DATA/subscribers.json"
