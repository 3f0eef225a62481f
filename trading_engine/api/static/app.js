// The web UI at /: the entry module. It lists the symbols, keeps the API key, and wires the
// modules together: feed.js (the WebSocket), book.js (book, tape, ticker), charts.js
// (candles, depth), ticket.js (order entry) and account.js (balances, orders, history).
// Only the public API is used: REST under /api/v1/trading and its WebSocket feed.

import { api, apiKey, describe, setApiKey } from "./api.js";
import { $, el, setStatus, show, tabs } from "./dom.js";
import { Decimal } from "./decimal.js";
import { Feed } from "./feed.js";
import { Market } from "./book.js";
import { Charts } from "./charts.js";
import { Ticket } from "./ticket.js";
import { Account } from "./account.js";

const instruments = new Map(); // symbol -> the instrument from GET /symbols
let symbol = null;
let symbolsTimer = null;

const feed = new Feed({
  onState(kind, text) {
    const node = $("conn");
    node.dataset.state = kind;
    node.textContent = text;
    document.body.classList.toggle("stale", kind !== "live");
    if (kind === "live" && instruments.size > 0) loadSymbols(); // one may have been halted
  },
  onAuth(userId) {
    if (!userId) {
      keyStatus("The admin key acts for no one user: use a user's key to trade here.", "error");
      account.signedOut();
      ticket.signedIn(null);
      return;
    }
    keyStatus(`Trading as ${userId}.`, "ok");
    if (account.userId === userId) account.refresh(); // a reconnect: keep what is shown
    else account.signedIn(userId);
    ticket.signedIn(userId);
  },
  onAuthError(error) {
    setApiKey(""); // kept in the field to correct, but neither stored nor sent again
    feed.key = "";
    keyStatus(`The key was refused: ${show(error.message)}`, "error");
  },
});
const charts = new Charts(feed);
const market = new Market(feed, {
  onBook: (levels) => {
    charts.depth(levels);
    ticket.renderEstimate();
  },
  onPick: (price, side) => ticket.pick(price, side),
});
const ticket = new Ticket({
  levels: () => market.levels(),
  onPlaced: () => account.refresh(),
});
const account = new Account(feed, { symbol: () => symbol });

function keyStatus(text, kind = "") {
  setStatus($("key-status"), text, kind);
}

// The listed symbols, again after each reconnect.
async function loadSymbols() {
  clearTimeout(symbolsTimer); // one retry loop, however many callers
  let data;
  try {
    data = await api("GET", "/symbols");
  } catch (exc) {
    $("symbol-info").textContent = `cannot list symbols: ${describe(exc)}`;
    symbolsTimer = setTimeout(loadSymbols, 2000);
    return;
  }
  instruments.clear();
  for (const s of data.symbols) instruments.set(s.symbol, s);
  const select = $("symbol");
  select.replaceChildren(...data.symbols.map((s) => el("option", { value: s.symbol, text: s.symbol })));
  if (data.symbols.length === 0) {
    $("symbol-info").textContent = "no symbols listed yet (POST /admin/symbols)";
    return;
  }
  const wanted = symbol || decodeURIComponent(location.hash.slice(1));
  const chosen = instruments.has(wanted) ? wanted : data.symbols[0].symbol;
  select.value = chosen;
  selectSymbol(chosen);
}

function selectSymbol(name) {
  const instrument = instruments.get(name);
  if (!instrument) return;
  const changed = name !== symbol;
  symbol = name;
  if (changed) history.replaceState(null, "", `#${encodeURIComponent(name)}`);
  renderInstrument(instrument);
  market.show(name);
  charts.show(name, instrument);
  if (changed) ticket.show(instrument);
}

function renderInstrument(s) {
  const rate = (bps) => `${Decimal.of(bps).dividedBy(Decimal.of(100), 2)}%`;
  const parts = [
    `${s.base_asset}/${s.quote_asset}`,
    `tick ${s.tick_size}`,
    `lot ${s.lot_size}`,
    `fees maker ${rate(s.maker_fee_bps)} taker ${rate(s.taker_fee_bps)}`,
  ];
  if (s.mode !== "spot") parts.push(s.mode);
  const info = $("symbol-info");
  info.textContent = parts.join(" · ");
  if (s.status === "halted") {
    info.append(el("strong", { class: "sell", text: ` HALTED: ${show(s.halt_reason)}` }));
  }
}

function useKey(key) {
  setApiKey(key);
  $("key").value = key;
  keyStatus(key ? "Checking the key..." : "No key: market data only.");
  account.signedOut();
  ticket.signedIn(null);
  feed.useKey(key);
}

function start() {
  $("key").value = apiKey();
  if (apiKey()) keyStatus("Checking the key...");
  $("symbol").addEventListener("change", (event) => selectSymbol(event.target.value));
  $("key-form").addEventListener("submit", (event) => {
    event.preventDefault();
    useKey($("key").value.trim());
  });
  $("key-forget").addEventListener("click", () => useKey(""));
  tabs($("intervals"), "interval", (interval) => charts.setInterval(interval));
  feed.key = apiKey();
  feed.connect();
  charts.start();
  loadSymbols();
}

start();
