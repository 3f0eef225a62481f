#!/bin/sh
# `make loadtest`: the README's HTTP figures, on a fresh server of its own.
#
# Starts `trading-engine serve --demo` on 127.0.0.1:$PORT with its own data
# directory (a local durable PostgreSQL) and no rate limits, then runs, one
# after the other, against the demo users' keys:
#   1. wrk -t2 -c64: as many crossing orders as the server takes (throughput);
#   2. hey at a fixed rate: RATE orders/s offered for SECONDS, half buys from
#      one user and half sells from the other, for the latency at that rate.
# wrk and hey come from Debian (installed here if missing). Stops the server
# and removes its data at the end.
set -eu

PORT=${PORT:-8077}
RATE=${RATE:-500}
SECONDS_=${SECONDS_:-10}
BIN=${BIN:-.venv/bin}

if ! command -v wrk >/dev/null || ! command -v hey >/dev/null; then
    echo "installing wrk and hey"
    apt-get update -qq && apt-get install -y -qq wrk hey >/dev/null
fi

. benchmarks/serve_demo.sh
KEY_A=$(sed -n 's/^  demo_alice key: //p' "$DATA/serve.log")
KEY_B=$(sed -n 's/^  demo_bob key: //p' "$DATA/serve.log")
export KEY_A KEY_B

echo "== wrk -t2 -c64 -d${SECONDS_}s (as fast as it goes)"
wrk -t2 -c64 -d"${SECONDS_}s" --latency -s benchmarks/wrk_orders.lua "$URL" \
    | grep -E "Requests/sec|Latency|50%|99%|Non-2xx|Socket errors"

echo "== hey: ${RATE} orders/s offered for ${SECONDS_}s"
HALF=$((RATE / 2))
WORKERS=10
PER_WORKER=$((HALF / WORKERS))
PIDS=""
for side in buy sell; do
    key=$KEY_A
    [ "$side" = sell ] && key=$KEY_B
    body="{\"symbol\":\"BTC_AIT\",\"side\":\"$side\",\"type\":\"limit\",\"quantity\":\"0.001\",\"price\":\"30000\"}"
    hey -z "${SECONDS_}s" -c $WORKERS -q $PER_WORKER -m POST -T application/json \
        -H "X-API-Key: $key" -d "$body" "$URL/api/v1/trading/orders" >"$DATA/hey-$side.txt" &
    PIDS="$PIDS $!"
done
# shellcheck disable=SC2086
wait $PIDS
for side in buy sell; do
    echo "-- $side"
    grep -E "Requests/sec|Average|50%|90%|99%|responses" "$DATA/hey-$side.txt"
done
