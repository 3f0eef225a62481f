#!/bin/sh
# REST orders through two gateways against one `serve`, in the same run (docs/scaling.md).
#
# Starts a redis-server on $REDIS_PORT, a fresh `trading-engine serve --demo` on $PORT
# (no Redis: the one-process default), and `trading-engine engine --demo` with two
# `trading-engine gateway`s on $GATEWAY_A and $GATEWAY_B (REDIS_URL; each engine its
# own durable local PostgreSQL; no rate limits), makes $USERS funded users on each
# engine, then runs $ROUNDS rounds of: wrk -t2 -c$CONNECTIONS against serve, then two
# wrk -t1 -c$((CONNECTIONS / 2)) at once, one a gateway, their rates added. Each line:
# requests/s, p50, p99 (of each wrk), non-2xx answers; each round ends with the ratio.
set -eu

PORT=${PORT:-8410}
REDIS_PORT=${REDIS_PORT:-8411}
GATEWAY_A=${GATEWAY_A:-8412}
GATEWAY_B=${GATEWAY_B:-8413}
SECONDS_=${SECONDS_:-10}
USERS=${USERS:-100}
CONNECTIONS=${CONNECTIONS:-32}
ROUNDS=${ROUNDS:-3}
BIN=${BIN:-.venv/bin}

BENCH=gateways
. benchmarks/servers.sh
need wrk
start_redis "$REDIS_PORT"
serve_demo "$PORT"
make_users "$URL" "$DATA/engine" "$USERS" "$DATA/serve-keys.txt"

export REDIS_URL="redis://127.0.0.1:$REDIS_PORT/0" RATE_LIMIT_PER_SEC=0
mkdir -p "$DATA/split"
"$BIN/trading-engine" engine --demo --data-dir "$DATA/split" >"$DATA/engine.log" 2>&1 &
PIDS="$PIDS $!"
i=0
until grep -q "trading engine running" "$DATA/engine.log" 2>/dev/null; do
    i=$((i + 1)); [ $i -le 120 ] || { cat "$DATA/engine.log"; echo "no engine"; exit 1; }
    sleep 0.5
done
for port in "$GATEWAY_A" "$GATEWAY_B"; do
    claim_port "$port"
    "$BIN/trading-engine" gateway --port "$port" --data-dir "$DATA/split" \
        >"$DATA/gateway-$port.log" 2>&1 &
    PIDS="$PIDS $!"
    wait_port "$port"
done
sleep 1  # the gateways read the engine's heartbeat
make_users "http://127.0.0.1:$GATEWAY_A" "$DATA/split" "$USERS" "$DATA/split-keys.txt"

# run NAME URL CONNECTIONS THREADS: one wrk; prints its line to stderr, its rate to stdout
run() {
    out=$(wrk -t"$4" -c"$3" -d"${SECONDS_}s" --latency -s benchmarks/wrk_orders.lua "$2")
    echo "$out" | awk -v name="$1" '
        /Requests\/sec/ {rate = $2} $1 == "50%" {p50 = $2} $1 == "99%" {p99 = $2}
        /Non-2xx/ {bad = $NF}
        END {printf "%-10s %8.1f req/s  p50 %-8s p99 %-9s non-2xx %d\n",
             name, rate, p50, p99, bad}' >&2
    echo "$out" | awk '/Requests\/sec/ {print $2}'
}

half=$((CONNECTIONS / 2))
i=0
while [ $i -lt "$ROUNDS" ]; do
    i=$((i + 1))
    export KEYS_FILE="$DATA/serve-keys.txt"
    serve_rate=$(run serve "$URL" "$CONNECTIONS" 2)
    export KEYS_FILE="$DATA/split-keys.txt"
    run gateway-a "http://127.0.0.1:$GATEWAY_A" "$half" 1 >"$DATA/rate-a" &
    wa=$!
    run gateway-b "http://127.0.0.1:$GATEWAY_B" "$half" 1 >"$DATA/rate-b"
    wait $wa
    awk -v s="$serve_rate" -v a="$(cat "$DATA/rate-a")" -v b="$(cat "$DATA/rate-b")" \
        'BEGIN {printf "round      two gateways %.1f req/s, serve %.1f: ratio %.2f\n",
                a + b, s, (a + b) / s}'
done
