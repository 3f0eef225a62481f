// Many WebSocket subscribers to one book, in Node (far lighter per socket than Python).
// node --experimental-websocket benchmarks/ws_subscribers.mjs URL N SECONDS
// Prints one JSON object: deltas received, seq gaps, delivery latency percentiles
// (the engine's event time to arrival; same machine, same clock).
const [url = "ws://127.0.0.1:8000/api/v1/trading/ws", n = "500", seconds = "10"] =
  process.argv.slice(2);
const latencies = [];
let gaps = 0;
let deltas = 0;
let open = 0;
const sockets = [];
for (let i = 0; i < Number(n); i++) {
  const ws = new WebSocket(url);
  let last = null;
  ws.onopen = () => {
    open++;
    ws.send(JSON.stringify({ op: "subscribe", channels: ["book.BTC_AIT"] }));
  };
  ws.onmessage = (event) => {
    const message = JSON.parse(event.data);
    if (message.type === "snapshot") last = message.seq;
    else if (message.type === "delta") {
      if (last !== null && message.prev_seq !== last) gaps++;
      last = message.seq;
      deltas++;
      latencies.push(Date.now() - message.ts / 1e6);
    }
  };
  sockets.push(ws);
}
setTimeout(() => {
  latencies.sort((a, b) => a - b);
  const pct = (p) => latencies.length ? latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))] : 0;
  console.log(JSON.stringify({ subscribers: Number(n), connected: open, deltas, seq_gaps: gaps,
    delivery_p50_ms: Math.round(pct(0.5) * 10) / 10, delivery_p99_ms: Math.round(pct(0.99) * 10) / 10 }));
  for (const ws of sockets) ws.close();
  process.exit(0);
}, Number(seconds) * 1000);
