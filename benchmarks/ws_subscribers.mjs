// Many WebSocket subscribers to one book, in Node (far lighter per socket than Python).
// node --experimental-websocket benchmarks/ws_subscribers.mjs URL N SECONDS [WARMUP]
// Deltas within WARMUP seconds (engine time) of the first one are received and
// checked for gaps but neither counted nor timed. Prints one JSON object:
// - deltas: delta messages received (all subscribers); seq_gaps: deltas whose prev_seq
//   was not the last seq held; delivery_p50_ms / p99: the engine's event time (the
//   message's ts) to arrival, per message (same machine, same clock).
// - book_updates: distinct book seqs any subscriber saw; complete: subscribers whose
//   chain from their snapshot reached the newest seq seen; update_p50_ms / p99: per
//   subscriber and per book update, from that update's engine time to the arrival of
//   the message that carried it. A merged delta carries only its newest ts, so an
//   update inside it is timed by the ts another subscriber received it with (an update
//   that reached every subscriber merged is not counted); merged: deltas that carried
//   more than one such update (a connection that fell behind, api/conflate.py).
const [url = "ws://127.0.0.1:8000/api/v1/trading/ws", n = "500", seconds = "10", warmup = "0"] =
  process.argv.slice(2);
let measureFrom = null; // engine time (ns) from which deltas count
const latencies = [];
let gaps = 0;
let deltas = 0;
let open = 0;
const sockets = [];
const tsOfSeq = new Map(); // book seq -> engine time (ms), from unmerged deltas
const received = []; // per subscriber: [prev_seq, seq, arrival ms, ...] flattened
const lastSeq = [];
// A connection refused or failed before it opened (a listen backlog overflowing while
// thousands connect at once) is tried again, up to 20 times, 0.2 s apart.
const connect = (i, mine, tries) => {
  const ws = new WebSocket(url);
  sockets[i] = ws;
  let opened = false;
  ws.onopen = () => {
    opened = true;
    open++;
    ws.send(JSON.stringify({ op: "subscribe", channels: ["book.BTC_AIT"] }));
  };
  ws.onclose = () => {
    if (!opened && tries < 20) setTimeout(() => connect(i, mine, tries + 1), 200);
  };
  ws.onmessage = (event) => {
    const now = Date.now();
    const data = JSON.parse(event.data);
    for (const message of Array.isArray(data) ? data : [data]) {
      if (message.type === "snapshot") lastSeq[i] = message.seq;
      else if (message.type === "delta") {
        if (lastSeq[i] !== null && message.prev_seq !== lastSeq[i]) gaps++;
        lastSeq[i] = message.seq;
        const sentMs = Number(message.ts) * 1000; // ts: Unix seconds as a decimal string
        measureFrom ??= sentMs + Number(warmup) * 1000;
        if (sentMs < measureFrom) continue;
        deltas++;
        latencies.push(now - sentMs);
        if (!tsOfSeq.has(message.seq)) tsOfSeq.set(message.seq, sentMs);
        mine.push(message.prev_seq, message.seq, now);
      }
    }
  };
};
for (let i = 0; i < Number(n); i++) {
  const mine = [];
  received.push(mine);
  lastSeq.push(null);
  connect(i, mine, 0);
}
const pct = (values, p) =>
  values.length
    ? Math.round(values[Math.min(values.length - 1, Math.floor(p * values.length))] * 10) / 10
    : 0;
setTimeout(() => {
  latencies.sort((a, b) => a - b);
  const seqs = [...tsOfSeq.keys()].sort((a, b) => a - b);
  const newest = seqs.length ? seqs[seqs.length - 1] : null;
  const updates = [];
  let merged = 0;
  for (const mine of received) {
    // The book seqs inside (prev_seq, seq] of each message, by binary search in seqs.
    for (let k = 0; k < mine.length; k += 3) {
      const [prev, seq, arrival] = [mine[k], mine[k + 1], mine[k + 2]];
      let lo = 0;
      let hi = seqs.length;
      while (lo < hi) {
        const mid = (lo + hi) >> 1;
        if (seqs[mid] <= prev) lo = mid + 1;
        else hi = mid;
      }
      let covered = 0;
      for (let j = lo; j < seqs.length && seqs[j] <= seq; j++) {
        updates.push(arrival - tsOfSeq.get(seqs[j]));
        covered++;
      }
      if (covered > 1) merged++;
    }
  }
  updates.sort((a, b) => a - b);
  const complete = lastSeq.filter((s) => s !== null && s === newest).length;
  console.log(JSON.stringify({ subscribers: Number(n), connected: open, deltas, seq_gaps: gaps,
    delivery_p50_ms: pct(latencies, 0.5), delivery_p99_ms: pct(latencies, 0.99),
    book_updates: seqs.length, complete, update_p50_ms: pct(updates, 0.5),
    update_p99_ms: pct(updates, 0.99), merged }));
  for (const ws of sockets) ws.close();
  process.exit(0);
}, Number(seconds) * 1000);
