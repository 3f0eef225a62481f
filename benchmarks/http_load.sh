#!/bin/sh
# `make loadtest`: the HTTP figures of docs/performance.md, on a fresh server of its own.
#
# Starts `trading-engine serve --demo` on 127.0.0.1:$PORT with its own data
# directory (a local durable PostgreSQL) and no rate limits, then runs, one
# after the other, against the demo users' keys:
#   1. wrk -t2 -c64: as many crossing orders as the server takes (throughput);
#   2. hey at a fixed rate: RATE orders/s offered for SECONDS, half buys from
#      one user and half sells from the other, for the latency at that rate.
#      hey's workers keep in step, so the orders come in bursts of 20;
#   3. the same at SPREAD_RATE orders/s (160 by default; SPREAD_RATE=0 skips
#      it), spread evenly: SPREAD_RATE/10 one-worker hey processes of 10
#      orders/s, each started 1/SPREAD_RATE s after the one before, their
#      per-request CSVs summed up by trading_engine.benchmarks.hey_summary.
# wrk and hey come from Debian (installed here if missing). Stops the server
# and removes its data at the end.
set -eu

PORT=${PORT:-8077}
RATE=${RATE:-500}
SECONDS_=${SECONDS_:-10}
BIN=${BIN:-.venv/bin}

BENCH=loadtest
. benchmarks/servers.sh
need wrk hey
if [ "${ECHO:-1}" != 0 ]; then
    ECHO_PORT=${ECHO_PORT:-8079}
    start_echo "$ECHO_PORT"
    echo "== yardstick: wrk -t2 -c64 -d${SECONDS_}s against a bare Quart-Trio JSON echo"
    ECHO_ONLY=1 wrk -t2 -c64 -d"${SECONDS_}s" --latency -s benchmarks/wrk_orders.lua \
        "http://127.0.0.1:$ECHO_PORT" | grep -E "Requests/sec|Latency|50%|99%|Non-2xx|Socket errors"
    kill "$ECHO_PID"; wait "$ECHO_PID" 2>/dev/null || true
fi

serve_demo "$PORT"
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
HEY_PIDS=""
for side in buy sell; do
    key=$KEY_A
    [ "$side" = sell ] && key=$KEY_B
    body=$(order_body "$side")
    hey -z "${SECONDS_}s" -c $WORKERS -q $PER_WORKER -m POST -T application/json \
        -H "X-API-Key: $key" -d "$body" "$URL/api/v1/trading/orders" >"$DATA/hey-$side.txt" &
    HEY_PIDS="$HEY_PIDS $!"
done
# shellcheck disable=SC2086
wait $HEY_PIDS
for side in buy sell; do
    echo "-- $side"
    grep -E "Requests/sec|Average|50%|90%|99%|responses" "$DATA/hey-$side.txt"
done

SPREAD_RATE=${SPREAD_RATE:-160}
if [ "$SPREAD_RATE" -gt 0 ]; then
    echo "== hey: ${SPREAD_RATE} orders/s offered for ${SECONDS_}s, spread evenly"
    GAP=$(awk -v r="$SPREAD_RATE" 'BEGIN { printf "%.4f", 1 / r }')
    HEY_PIDS=""
    i=0
    while [ $i -lt $((SPREAD_RATE / 10)) ]; do
        side=buy key=$KEY_A
        [ $((i % 2)) = 1 ] && side=sell key=$KEY_B
        body=$(order_body "$side")
        hey -o csv -z "${SECONDS_}s" -c 1 -q 10 -m POST -T application/json \
            -H "X-API-Key: $key" -d "$body" "$URL/api/v1/trading/orders" >"$DATA/spread-$i.csv" &
        HEY_PIDS="$HEY_PIDS $!"
        i=$((i + 1))
        sleep "$GAP"
    done
    # shellcheck disable=SC2086
    wait $HEY_PIDS
    "$BIN/python" -m trading_engine.benchmarks.hey_summary "$SECONDS_" "$DATA"/spread-*.csv
fi
