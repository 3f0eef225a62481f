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

export REDIS_URL="redis://127.0.0.1:$REDIS_PORT/0"
start_engine "$DATA/split"
start_gateway "$GATEWAY_A" "$DATA/split"
start_gateway "$GATEWAY_B" "$DATA/split"
make_users "http://127.0.0.1:$GATEWAY_A" "$DATA/split" "$USERS" "$DATA/split-keys.txt"

half=$((CONNECTIONS / 2))
i=0
while [ $i -lt "$ROUNDS" ]; do
    i=$((i + 1))
    export KEYS_FILE="$DATA/serve-keys.txt"
    serve_rate=$(wrk_orders serve "$URL" "$CONNECTIONS" 2)
    export KEYS_FILE="$DATA/split-keys.txt"
    wrk_orders gateway-a "http://127.0.0.1:$GATEWAY_A" "$half" 1 >"$DATA/rate-a" &
    wa=$!
    wrk_orders gateway-b "http://127.0.0.1:$GATEWAY_B" "$half" 1 >"$DATA/rate-b"
    wait $wa
    awk -v s="$serve_rate" -v a="$(cat "$DATA/rate-a")" -v b="$(cat "$DATA/rate-b")" \
        'BEGIN {printf "round      two gateways %.1f req/s, serve %.1f: ratio %.2f\n",
                a + b, s, (a + b) / s}'
done
