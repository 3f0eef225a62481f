#!/bin/sh
# REST single orders against the bare echo, side by side (docs/performance.md, "REST single orders").
#
# Starts the bare Quart-Trio JSON echo (trading_engine/benchmarks/echo.py) on
# $ECHO_PORT and a fresh `trading-engine serve --demo` on $PORT (its own durable
# local PostgreSQL, no rate limits; both by benchmarks/servers.sh), creates $USERS funded
# users (trading_engine.benchmarks.users), then runs $ROUNDS rounds of, one after
# the other: wrk -t2 -c$CONNECTIONS -d$SECONDS_ against the echo, then the same
# against POST /api/v1/trading/orders rotating over the users' keys
# (benchmarks/wrk_orders.lua with KEYS_FILE). Each line: requests/s, p50, p99,
# non-2xx answers, and the CPU time the server process took per request (all its
# threads; /proc), a figure the other work on the machine disturbs less than
# the rate. Each round ends with the ratio of the orders' rate to the echo's.
set -eu

PORT=${PORT:-8076}
ECHO_PORT=${ECHO_PORT:-8075}
SECONDS_=${SECONDS_:-10}
USERS=${USERS:-100}
CONNECTIONS=${CONNECTIONS:-32}
ROUNDS=${ROUNDS:-3}
BIN=${BIN:-.venv/bin}

BENCH=rest-orders
. benchmarks/servers.sh
need wrk
start_echo "$ECHO_PORT"
serve_demo "$PORT"
make_users "$URL" "$DATA/engine" "$USERS" "$DATA/keys.txt"
export KEYS_FILE="$DATA/keys.txt"

# one NAME PID URL: one wrk run (NAME echo: to /echo); prints its line, leaves the rate in RATE_
one() {
    if [ "$1" = echo ]; then export ECHO_ONLY=1; else unset ECHO_ONLY; fi
    before=$(awk '{print $14 + $15}' "/proc/$2/stat")
    out=$(wrk -t2 -c"$CONNECTIONS" -d"${SECONDS_}s" --latency -s benchmarks/wrk_orders.lua "$3")
    after=$(awk '{print $14 + $15}' "/proc/$2/stat")
    RATE_=$(echo "$out" | awk '/Requests\/sec/ {print $2}')
    echo "$out" | awk -v name="$1" -v ticks=$((after - before)) -v hz="$(getconf CLK_TCK)" '
        /requests in/ {n = $1} /Requests\/sec/ {rate = $2} $1 == "50%" {p50 = $2}
        $1 == "99%" {p99 = $2} /Non-2xx/ {bad = $NF}
        END {printf "%-7s %8.1f req/s  p50 %-8s p99 %-9s non-2xx %d  cpu %d us/req\n",
             name, rate, p50, p99, bad, ticks / hz * 1e6 / n}'
}

i=0
while [ $i -lt "$ROUNDS" ]; do
    i=$((i + 1))
    one echo "$ECHO_PID" "http://127.0.0.1:$ECHO_PORT"
    echo_rate=$RATE_
    one orders "$SERVER" "$URL"
    awk -v o="$RATE_" -v e="$echo_rate" 'BEGIN {printf "round   orders / echo = %.2f\n", o / e}'
done
