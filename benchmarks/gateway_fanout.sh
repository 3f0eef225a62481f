#!/bin/sh
# Issue 27's fan-out target: SUBSCRIBERS (2,000) WebSocket clients of book.BTC_AIT spread
# evenly over two gateways of one engine (docs/scaling.md), receiving RATE (200) orders/s.
#
# Starts a redis-server on $REDIS_PORT, `trading-engine engine --demo` (a durable local
# PostgreSQL of its own) and two `trading-engine gateway`s on $GATEWAY_A and $GATEWAY_B,
# no rate limits. Connects SUBSCRIBERS / 2 Node clients to each gateway, one Node process
# per gateway (benchmarks/ws_subscribers.mjs), then offers RATE orders/s for WARMUP +
# SECONDS_ seconds, half of them through each gateway (buys of demo_alice at 30000, sells
# of demo_bob at SELL_PRICE, 30001: nothing trades, so every commit changes the book and
# is one delta). The subscribers
# check every delta's prev_seq and time the deltas after the first WARMUP seconds, from
# the delta's engine time (`ts`, set when the order matched, before its commit and the
# publish) to their receipt. Prints one JSON object for the orders, one per client process
# (its gateway in "gateway"), then the summary: subscribers connected, seq gaps, those
# whose chain reached the newest seq, book updates per second, and the larger of the two
# processes' delivery p50 and p99.
set -eu

REDIS_PORT=${REDIS_PORT:-8420}
GATEWAY_A=${GATEWAY_A:-8421}
GATEWAY_B=${GATEWAY_B:-8422}
RATE=${RATE:-200}
SECONDS_=${SECONDS_:-10}
WARMUP=${WARMUP:-2}
SUBSCRIBERS=${SUBSCRIBERS:-2000}
SELL_PRICE=${SELL_PRICE:-30001}
export MAX_OPEN_ORDERS=${MAX_OPEN_ORDERS:-1000000}  # the orders rest: no cap per user
BIN=${BIN:-.venv/bin}

BENCH=gateway-fanout
. benchmarks/servers.sh
need hey
start_redis "$REDIS_PORT"
export REDIS_URL="redis://127.0.0.1:$REDIS_PORT/0"
start_engine "$DATA/split"
start_gateway "$GATEWAY_A" "$DATA/split"
start_gateway "$GATEWAY_B" "$DATA/split"
ALICE=$(demo_key_of "$DATA/split" demo_alice)
BOB=$(demo_key_of "$DATA/split" demo_bob)

subscribe "$SUBSCRIBERS" $((SECONDS_ + WARMUP + 10)) "$WARMUP" "$GATEWAY_A" "$GATEWAY_B"
order_stream "http://127.0.0.1:$GATEWAY_A" "$ALICE" "$BOB" $((RATE / 2)) \
    $((SECONDS_ + WARMUP)) "$DATA/orders-a" &
ORDERS_A=$!
order_stream "http://127.0.0.1:$GATEWAY_B" "$ALICE" "$BOB" $((RATE / 2)) \
    $((SECONDS_ + WARMUP)) "$DATA/orders-b"
wait "$ORDERS_A"
"$BIN/python" -m trading_engine.benchmarks.hey_summary $((SECONDS_ + WARMUP)) "$DATA"/orders-*.csv
subscribed "$SECONDS_"
