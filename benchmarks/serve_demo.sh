# Sourced by the load scripts: a fresh `trading-engine serve --demo` on
# 127.0.0.1:$PORT with its own data directory (a local durable PostgreSQL) and
# no rate limits. Sets DATA (a temporary directory, removed on exit with the
# server stopped), SERVER (its pid) and URL, and waits until it listens. With
# KEEPLOG=FILE the server's output is copied there at the end. Defines order_body.
URL="http://127.0.0.1:$PORT"

# order_body SIDE: the load scripts' order, a limit order of 0.001 BTC_AIT at 30000.
order_body() {
    echo "{\"symbol\":\"BTC_AIT\",\"side\":\"$1\",\"type\":\"limit\",\"quantity\":\"0.001\",\"price\":\"30000\"}"
}
DATA=$(mktemp -d /tmp/loadtest-XXXXXX)
chmod 755 "$DATA"
cleanup() {
    [ -n "${SERVER:-}" ] && kill "$SERVER" 2>/dev/null && wait "$SERVER" 2>/dev/null || true
    [ -z "${KEEPLOG:-}" ] || cp "$DATA/serve.log" "$KEEPLOG"
    rm -rf "$DATA"
}
trap cleanup EXIT INT TERM

. benchmarks/servers.sh
start_server "$DATA/serve.log" "$PORT" "$DATA/engine" RATE_LIMIT_PER_SEC=0
