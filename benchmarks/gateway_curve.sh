#!/bin/sh
# K gateways (K = 1, 2, 3) against one engine on loopback: how REST orders and the
# WebSocket fan-out grow with K on this machine (docs/scaling.md).
#
# Starts a redis-server on $REDIS_PORT, `trading-engine engine --demo` (a durable local
# PostgreSQL of its own) and three `trading-engine gateway`s on $GATEWAY_1..3, no rate
# limits, and makes $USERS funded users. For each K, using the first K gateways:
# - REST: wrk posting orders of the users' keys, rotating, for SECONDS_, CONNECTIONS (30)
#   split evenly over the K gateways (one wrk -t1 each, at once); their rates added.
# - fan-out: SUBSCRIBERS (600) Node clients of book.BTC_AIT spread evenly over the K
#   gateways (one Node process per gateway), while RATE (120) orders/s are offered for
#   WARMUP + SECONDS_, spread over the K gateways (buys of demo_alice at 30000, sells of
#   demo_bob at SELL_PRICE, 30001: nothing trades, so every commit changes the book); the
#   deltas after WARMUP are timed from their engine time to receipt.
# Prints, per K, each wrk's line, the orders' JSON and the subscribers' JSON lines, then
# one summary line: {"gateways": K, "rest_orders_per_sec", "fanout_orders_per_sec",
# "book_updates_per_sec", "subscribers", "seq_gaps", "delivery_p50_ms", "delivery_p99_ms"}.
set -eu

REDIS_PORT=${REDIS_PORT:-8426}
GATEWAY_1=${GATEWAY_1:-8427}
GATEWAY_2=${GATEWAY_2:-8428}
GATEWAY_3=${GATEWAY_3:-8429}
SECONDS_=${SECONDS_:-10}
WARMUP=${WARMUP:-2}
USERS=${USERS:-100}
CONNECTIONS=${CONNECTIONS:-30}
SUBSCRIBERS=${SUBSCRIBERS:-600}
RATE=${RATE:-120}
SELL_PRICE=${SELL_PRICE:-30001}
export MAX_OPEN_ORDERS=${MAX_OPEN_ORDERS:-1000000}  # the orders rest: no cap per user
BIN=${BIN:-.venv/bin}

BENCH=gateway-curve
. benchmarks/servers.sh
need wrk hey
start_redis "$REDIS_PORT"
export REDIS_URL="redis://127.0.0.1:$REDIS_PORT/0"
start_engine "$DATA/split"
for port in "$GATEWAY_1" "$GATEWAY_2" "$GATEWAY_3"; do
    start_gateway "$port" "$DATA/split"
done
make_users "http://127.0.0.1:$GATEWAY_1" "$DATA/split" "$USERS" "$DATA/keys.txt"
export KEYS_FILE="$DATA/keys.txt"
ALICE=$(demo_key_of "$DATA/split" demo_alice)
BOB=$(demo_key_of "$DATA/split" demo_bob)

for k in 1 2 3; do
    ports=$(echo "$GATEWAY_1 $GATEWAY_2 $GATEWAY_3" | cut -d" " -f1-$k)
    echo "== $k gateway(s): $ports"
    WRKS=""
    for port in $ports; do
        wrk_orders "gw-$port" "http://127.0.0.1:$port" $((CONNECTIONS / k)) 1 \
            >"$DATA/rate-$port" &
        WRKS="$WRKS $!"
    done
    # shellcheck disable=SC2086
    wait $WRKS
    rest=$(cat "$DATA"/rate-* | awk '{s += $1} END {printf "%.1f", s}')
    rm -f "$DATA"/rate-* "$DATA"/orders-*.csv
    # shellcheck disable=SC2086
    subscribe "$SUBSCRIBERS" $((SECONDS_ + WARMUP + 10)) "$WARMUP" $ports
    HEYS=""
    for port in $ports; do
        order_stream "http://127.0.0.1:$port" "$ALICE" "$BOB" $((RATE / k)) \
            $((SECONDS_ + WARMUP)) "$DATA/orders-$port" &
        HEYS="$HEYS $!"
    done
    # shellcheck disable=SC2086
    wait $HEYS
    "$BIN/python" -m trading_engine.benchmarks.hey_summary $((SECONDS_ + WARMUP)) \
        "$DATA"/orders-*.csv | tee "$DATA/orders.json"
    subscribed "$SECONDS_" >"$DATA/subscribers.txt"  # not in a pipe: it waits for NODES
    cat "$DATA/subscribers.txt"
    "$BIN/python" -c "import json
orders = json.load(open('$DATA/orders.json'))
fan = json.loads(open('$DATA/subscribers.txt').read().splitlines()[-1])
print(json.dumps({'gateways': $k, 'rest_orders_per_sec': $rest,
    'fanout_orders_per_sec': orders['orders_per_sec'],
    'book_updates_per_sec': fan['book_updates_per_sec'], 'subscribers': fan['connected'],
    'seq_gaps': fan['seq_gaps'], 'delivery_p50_ms': fan['delivery_p50_ms'],
    'delivery_p99_ms': fan['delivery_p99_ms']}))"
done
