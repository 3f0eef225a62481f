# Sourced by the load scripts: start the servers they measure. Needs BIN.

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
# 127.0.0.1:PORT in the background, with DATA_DIR (a local durable PostgreSQL) and the
# environment plus NAME=VALUE..., its output to LOG; sets SERVER (its pid) and waits for
# its banner (the demo keys), 60 s at most.
start_server() {
    log=$1 port=$2 dir=$3
    shift 3
    claim_port "$port"
    env "$@" "$BIN/trading-engine" serve --demo --host 127.0.0.1 --port "$port" \
        --data-dir "$dir" >"$log" 2>&1 &
    SERVER=$!
    i=0
    until grep -q "demo_bob key" "$log" 2>/dev/null; do
        i=$((i + 1))
        if [ $i -gt 120 ] || ! kill -0 "$SERVER" 2>/dev/null; then
            cat "$log"; echo "the server did not start"; exit 1
        fi
        sleep 0.5
    done
}
