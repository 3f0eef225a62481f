#!/bin/sh
# The README's 500-subscriber figure, on a fresh server of its own.
#
# Starts `trading-engine serve --demo` on 127.0.0.1:$PORT with its own data
# directory (a local durable PostgreSQL) and no rate limits, connects
# SUBSCRIBERS Node WebSocket clients to book.BTC_AIT
# (benchmarks/ws_subscribers.mjs), then sends RATE orders/s for SECONDS_
# seconds with `trading-engine loadtest`. Prints the loadtest's JSON (orders
# served, HTTP latency) and then the subscribers' JSON (deltas, seq gaps,
# delivery latency). With PROFILE=FILE, py-spy (`pip install py-spy`) records
# the server meanwhile (a flame graph; PROFILE_FORMAT=raw for collapsed
# stacks). Stops the server and removes its data at the end.
set -eu

PORT=${PORT:-8078}
RATE=${RATE:-200}
SECONDS_=${SECONDS_:-8}
SUBSCRIBERS=${SUBSCRIBERS:-500}
BIN=${BIN:-.venv/bin}

. benchmarks/serve_demo.sh
ADMIN=$(sed -n 's/^  admin key:  //p' "$DATA/serve.log")

node --experimental-websocket --no-warnings benchmarks/ws_subscribers.mjs \
    "ws://127.0.0.1:$PORT/api/v1/trading/ws" "$SUBSCRIBERS" $((SECONDS_ + 8)) \
    >"$DATA/subscribers.json" &
NODE=$!
sleep 3
if [ -n "${PROFILE:-}" ]; then
    "$BIN/py-spy" record -o "$PROFILE" -f "${PROFILE_FORMAT:-flamegraph}" --pid "$SERVER" \
        -d "$SECONDS_" >/dev/null 2>&1 &
fi
"$BIN/trading-engine" loadtest --url "$URL" --admin-key "$ADMIN" --rate "$RATE" \
    --duration "$SECONDS_" --subscribers 0
wait "$NODE"
cat "$DATA/subscribers.json"
