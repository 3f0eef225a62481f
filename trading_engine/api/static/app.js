// The web UI at /: market data from the WebSocket feed, the account and orders over REST.
//
// Only the public API is used: /api/v1/trading/... and /api/v1/trading/ws. Prices and
// quantities stay the decimal strings the server sends, from the wire to the screen: no
// money arithmetic here (levels are ordered by an exact string comparison). Text from the
// server reaches the page through textContent only, never as HTML.
"use strict";

(() => {
  const API = "/api/v1/trading";
  const KEY_STORAGE = "trading-engine.api-key";
  const BOOK_LEVELS = 15;
  const TAPE_LENGTH = 50;
  const EVENTS_LENGTH = 20;
  const BACKOFF_MIN_MS = 500;
  const BACKOFF_MAX_MS = 15000;
  const SILENCE_MS = 15000; // heartbeats come every 5 s: this long without a message is a dead link
  const ACCOUNT_REFRESH_MS = 15000;

  const $ = (id) => document.getElementById(id);

  const state = {
    instruments: new Map(), // symbol -> the instrument from GET /symbols
    symbol: null,
    ws: null,
    backoff: BACKOFF_MIN_MS,
    retryTimer: null,
    symbolsTimer: null,
    silenceTimer: null,
    book: null, // {seq, bids: Map(price -> quantity), asks}, null until a snapshot arrives
    trades: [], // newest first
    last: null, // the last trade, for the spread row
    key: localStorage.getItem(KEY_STORAGE) || "",
    authPending: false,
    userId: null,
    accountTimer: null,
    renderQueued: false,
  };

  // ------------------------------------------------------------------ helpers

  function el(tag, props = {}, children = []) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(props)) {
      if (value === null || value === undefined) continue;
      if (name === "text") node.textContent = value;
      else if (name === "class") node.className = value;
      else node.setAttribute(name, value);
    }
    for (const child of children) node.append(child);
    return node;
  }

  function show(value) {
    return value === null || value === undefined || value === "" ? "-" : String(value);
  }

  // Exact order of two non-negative decimal strings ("30000.5" < "30001"), without floats.
  function compareDecimal(a, b) {
    let [ai, af = ""] = a.split(".");
    let [bi, bf = ""] = b.split(".");
    ai = ai.replace(/^0+/, "");
    bi = bi.replace(/^0+/, "");
    if (ai.length !== bi.length) return ai.length - bi.length;
    if (ai !== bi) return ai < bi ? -1 : 1;
    const width = Math.max(af.length, bf.length);
    af = af.padEnd(width, "0");
    bf = bf.padEnd(width, "0");
    if (af === bf) return 0;
    return af < bf ? -1 : 1;
  }

  function isZero(quantity) {
    return /^0*(\.0*)?$/.test(quantity);
  }

  function clockTimeOf(text) {
    // Feed times are Unix seconds as decimal strings, as in REST; only the clock time is shown.
    return new Date(Number(text) * 1000).toLocaleTimeString([], { hour12: false });
  }

  function timeOfSeconds(text) {
    // created_at is Unix seconds as a decimal string; only the clock time is shown.
    const date = new Date(Number(text) * 1000);
    return date.toLocaleString([], { hour12: false });
  }

  class ApiError extends Error {
    constructor(status, code, message, field) {
      super(message);
      this.status = status;
      this.code = code;
      this.field = field;
    }

    describe() {
      // Most messages already start with the field they name.
      if (!this.field || this.message.startsWith(this.field)) return this.message;
      return `${this.message} (field: ${this.field})`;
    }
  }

  // A REST call; resolves to the JSON body, or throws ApiError with the server's error shape.
  async function api(method, path, body) {
    const headers = { Accept: "application/json" };
    if (state.key) headers["X-API-Key"] = state.key;
    const init = { method, headers };
    if (body !== undefined) {
      headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    let response;
    try {
      response = await fetch(API + path, init);
    } catch (exc) {
      throw new ApiError(0, "network_error", `the server did not answer (${exc.message})`, null);
    }
    let data = null;
    try {
      data = await response.json();
    } catch {
      data = null;
    }
    if (!response.ok) {
      const error = (data && data.error) || {};
      throw new ApiError(
        response.status,
        error.code || `http_${response.status}`,
        error.message || `HTTP ${response.status} ${response.statusText}`,
        error.field || null,
      );
    }
    return data;
  }

  // ------------------------------------------------------------------ symbols

  // The listed symbols, again after each reconnect (one may have been halted meanwhile).
  async function loadSymbols() {
    clearTimeout(state.symbolsTimer); // one retry loop, however many callers
    let data;
    try {
      data = await api("GET", "/symbols");
    } catch (exc) {
      $("symbol-info").textContent = `cannot list symbols: ${exc.message}`;
      clearTimeout(state.symbolsTimer);
      state.symbolsTimer = setTimeout(loadSymbols, 2000);
      return;
    }
    state.instruments = new Map(data.symbols.map((s) => [s.symbol, s]));
    const select = $("symbol");
    select.replaceChildren(
      ...data.symbols.map((s) => el("option", { value: s.symbol, text: s.symbol })),
    );
    if (data.symbols.length === 0) {
      $("symbol-info").textContent = "no symbols listed yet (POST /admin/symbols)";
      return;
    }
    const wanted = state.symbol || decodeURIComponent(location.hash.slice(1));
    const symbol = state.instruments.has(wanted) ? wanted : data.symbols[0].symbol;
    select.value = symbol;
    if (symbol === state.symbol) renderInstrument();
    else selectSymbol(symbol);
  }

  function channelsOf(symbol) {
    return [`book.${symbol}`, `trades.${symbol}`, `ticker.${symbol}`];
  }

  function selectSymbol(symbol) {
    const previous = state.symbol;
    if (previous === symbol) return;
    if (previous) send({ op: "unsubscribe", channels: channelsOf(previous) });
    state.symbol = symbol;
    state.book = null;
    state.trades = [];
    state.last = null;
    history.replaceState(null, "", `#${encodeURIComponent(symbol)}`);
    renderInstrument();
    renderTicker({});
    queueRender();
    send({ op: "subscribe", channels: channelsOf(symbol) });
  }

  function renderInstrument() {
    const s = state.instruments.get(state.symbol);
    if (!s) return;
    const parts = [
      `${s.base_asset}/${s.quote_asset}`,
      `tick ${s.tick_size}`,
      `lot ${s.lot_size}`,
      `fees ${s.maker_fee_bps}/${s.taker_fee_bps} bps`,
    ];
    if (s.mode !== "spot") parts.push(s.mode);
    const info = $("symbol-info");
    info.textContent = parts.join(" · ");
    if (s.status === "halted") {
      info.append(el("strong", { class: "sell", text: ` HALTED: ${show(s.halt_reason)}` }));
    }
    $("base-asset").textContent = s.base_asset;
    $("quote-asset").textContent = s.quote_asset;
    renderOrderForm();
  }

  // ------------------------------------------------------------------ the socket

  function send(message) {
    if (state.ws && state.ws.readyState === WebSocket.OPEN) {
      state.ws.send(JSON.stringify(message));
    }
  }

  function setConnection(kind, text) {
    const node = $("conn");
    node.dataset.state = kind;
    node.textContent = text;
    document.body.classList.toggle("stale", kind !== "live");
  }

  function connect() {
    clearTimeout(state.retryTimer);
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    const ws = new WebSocket(`${scheme}//${location.host}${API}/ws`);
    state.ws = ws;
    setConnection("connecting", "connecting");
    ws.onopen = () => {
      if (state.ws !== ws) return;
      setConnection("live", "live");
      watchSilence(ws);
      if (state.instruments.size > 0) loadSymbols(); // else the first load is still under way
      if (state.key) {
        state.authPending = true;
        send({ op: "auth", api_key: state.key });
      }
      if (state.symbol) send({ op: "subscribe", channels: channelsOf(state.symbol) });
    };
    ws.onmessage = (event) => {
      if (state.ws !== ws) return;
      state.backoff = BACKOFF_MIN_MS; // a working link: the next drop retries quickly
      watchSilence(ws);
      onMessage(JSON.parse(event.data));
    };
    ws.onclose = (event) => {
      if (state.ws !== ws) return; // replaced on purpose
      dropped(event.reason || `closed (${event.code})`);
    };
  }

  function watchSilence(ws) {
    clearTimeout(state.silenceTimer);
    state.silenceTimer = setTimeout(() => {
      if (state.ws !== ws) return;
      ws.close();
      dropped("no heartbeat");
    }, SILENCE_MS);
  }

  // The link is gone: mark what we show as stale and retry with exponential backoff.
  function dropped(why) {
    clearTimeout(state.silenceTimer);
    state.ws = null;
    state.book = null;
    state.authPending = false;
    const delay = Math.round(state.backoff * (0.5 + Math.random() / 2));
    state.backoff = Math.min(state.backoff * 2, BACKOFF_MAX_MS);
    setConnection("offline", `offline: ${why}; retrying in ${(delay / 1000).toFixed(1)} s`);
    state.retryTimer = setTimeout(connect, delay);
    queueRender();
  }

  // A new key: start over on a fresh connection, so the orders channel is the new user's.
  function reconnectNow() {
    const ws = state.ws;
    state.ws = null;
    if (ws) ws.close();
    clearTimeout(state.silenceTimer);
    state.backoff = BACKOFF_MIN_MS;
    state.book = null;
    connect();
  }

  function onMessage(m) {
    switch (m.type) {
      case "heartbeat":
      case "pong":
      case "subscribed":
      case "unsubscribed":
        return;
      case "authenticated":
        onAuthenticated(m.user_id);
        return;
      case "error":
        onSocketError(m.error || {});
        return;
      default:
        break;
    }
    if (m.channel === "orders") {
      onOrderEvent(m);
    } else if (state.symbol && m.channel === `book.${state.symbol}`) {
      onBook(m);
    } else if (state.symbol && m.channel === `trades.${state.symbol}`) {
      onTrades(m);
    } else if (state.symbol && m.channel === `ticker.${state.symbol}`) {
      renderTicker(m);
    }
  }

  function onSocketError(error) {
    if (state.authPending) {
      // Messages are answered in order and auth goes first: this is the key's answer.
      state.authPending = false;
      state.key = ""; // kept in the field to correct, but neither stored nor sent again
      localStorage.removeItem(KEY_STORAGE);
      setKeyStatus(`The key was refused: ${show(error.message)}`, "error");
      return;
    }
    console.warn("feed error", error);
  }

  // ------------------------------------------------------------------ the book

  function onBook(m) {
    if (m.type === "snapshot") {
      state.book = { seq: m.seq, bids: new Map(m.bids), asks: new Map(m.asks) };
    } else if (m.type === "delta") {
      const book = state.book;
      if (!book) return; // a resubscription's snapshot is on its way
      if (m.prev_seq !== book.seq) {
        resyncBook(`gap: the delta follows seq ${m.prev_seq}, the book holds ${book.seq}`);
        return;
      }
      applyLevels(book.bids, m.bids);
      applyLevels(book.asks, m.asks);
      book.seq = m.seq;
    } else {
      return;
    }
    queueRender();
  }

  function applyLevels(levels, changes) {
    for (const [price, quantity] of changes) {
      if (isZero(quantity)) levels.delete(price);
      else levels.set(price, quantity);
    }
  }

  // A missed message: drop the book and ask for a fresh snapshot.
  function resyncBook(why) {
    console.warn(`book.${state.symbol}: ${why}; resubscribing`);
    state.book = null;
    const channel = `book.${state.symbol}`;
    send({ op: "unsubscribe", channels: [channel] });
    send({ op: "subscribe", channels: [channel] });
    queueRender();
  }

  function queueRender() {
    if (state.renderQueued) return;
    state.renderQueued = true;
    requestAnimationFrame(() => {
      state.renderQueued = false;
      renderBook();
      renderTrades();
    });
  }

  function renderBook() {
    const book = state.book;
    $("book-seq").textContent = book ? `seq ${book.seq}` : "";
    if (!book) {
      $("asks").replaceChildren();
      $("bids").replaceChildren();
      $("spread").textContent = state.ws ? "loading..." : "offline";
      return;
    }
    // Best prices nearest the spread: asks lowest at the bottom, bids highest on top.
    const asks = [...book.asks].sort((a, b) => compareDecimal(a[0], b[0])).slice(0, BOOK_LEVELS);
    const bids = [...book.bids].sort((a, b) => compareDecimal(b[0], a[0])).slice(0, BOOK_LEVELS);
    asks.reverse();
    const largest = [...asks, ...bids].reduce(
      (most, level) => (compareDecimal(level[1], most) > 0 ? level[1] : most),
      "0",
    );
    $("asks").replaceChildren(...asks.map((level) => bookRow(level, "sell", largest)));
    $("bids").replaceChildren(...bids.map((level) => bookRow(level, "buy", largest)));
    const spread = $("spread");
    spread.replaceChildren();
    if (state.last) {
      spread.append(el("span", { class: `big ${state.last.side}`, text: state.last.price }));
      spread.append(el("span", { class: "muted", text: " last" }));
    } else {
      const empty = asks.length === 0 && bids.length === 0;
      spread.append(el("span", { class: "muted", text: empty ? "empty book" : "no trades yet" }));
    }
  }

  function bookRow([price, quantity], side, largest) {
    const row = el("tr", { class: `level ${side}`, title: "use this price" }, [
      el("td", { class: side, text: price }),
      el("td", { text: quantity }),
    ]);
    // The depth bar's width is display only: the one place a quantity becomes a Number.
    const share = Number(quantity) / Number(largest);
    row.style.setProperty("--depth", `${Math.min(100, Math.round(share * 100))}%`);
    row.addEventListener("click", () => {
      const form = $("order-form").elements;
      form.type.value = "limit";
      form.price.value = price;
      form.side.value = side === "sell" ? "buy" : "sell"; // take the level you clicked
      renderOrderForm();
      form.quantity.focus();
    });
    return row;
  }

  // ------------------------------------------------------------------ trades and ticker

  function onTrades(m) {
    if (m.type === "snapshot") {
      state.trades = m.trades.slice().reverse().slice(0, TAPE_LENGTH);
    } else if (m.type === "trade") {
      state.trades.unshift(m);
      state.trades.length = Math.min(state.trades.length, TAPE_LENGTH);
    } else {
      return;
    }
    state.last = state.trades[0] || null;
    queueRender();
  }

  function renderTrades() {
    const rows = state.trades.map((t) =>
      el("tr", {}, [
        el("td", { class: t.side, text: t.price }),
        el("td", { text: t.quantity }),
        el("td", { class: "muted", text: clockTimeOf(t.ts) }),
      ]),
    );
    if (rows.length === 0) {
      rows.push(el("tr", {}, [el("td", { colspan: "3", class: "muted", text: "no trades yet" })]));
    }
    $("trades").replaceChildren(...rows);
  }

  function renderTicker(t) {
    $("t-last").textContent = show(t.last);
    $("t-high").textContent = show(t.high_24h);
    $("t-low").textContent = show(t.low_24h);
    $("t-volume").textContent = t.volume_24h === undefined ? "-" : `${t.volume_24h}`;
    $("t-trades").textContent = show(t.trades_24h);
    $("t-bid").textContent = show(t.best_bid);
    $("t-ask").textContent = show(t.best_ask);
    $("t-mark").textContent = show(t.mark);
    const change = $("t-change");
    change.textContent = show(t.change_24h);
    const falling = typeof t.change_24h === "string" && t.change_24h.startsWith("-");
    const rising = typeof t.change_24h === "string" && !falling && !isZero(t.change_24h);
    change.className = falling ? "sell" : rising ? "buy" : "";
  }

  // ------------------------------------------------------------------ the account

  function setKeyStatus(text, kind = "") {
    const node = $("key-status");
    node.textContent = text;
    node.className = `small ${kind || "muted"}`;
  }

  function onAuthenticated(userId) {
    state.authPending = false;
    if (!userId) {
      state.userId = null;
      setKeyStatus("The admin key acts for no one user: use a user's key to trade here.", "error");
      renderAccount();
      return;
    }
    state.userId = userId;
    setKeyStatus(`Trading as ${userId}.`, "ok");
    send({ op: "subscribe", channels: ["orders"] });
    renderAccount();
    refreshAccount();
  }

  function onOrderEvent(m) {
    const parts = [clockTimeOf(m.ts), m.event, `#${m.order_id}`, m.symbol];
    if (m.event === "OrderFilled") parts.push(`${m.quantity} @ ${m.price}, ${m.status}`);
    if (m.reason) parts.push(m.reason);
    const list = $("events");
    list.prepend(el("li", { text: parts.join(" ") }));
    while (list.children.length > EVENTS_LENGTH) list.lastChild.remove();
    refreshAccount(150);
  }

  // Balances and open orders, at most once per burst of events.
  function refreshAccount(delay = 0) {
    clearTimeout(state.accountTimer);
    state.accountTimer = setTimeout(loadAccount, delay);
  }

  async function loadAccount() {
    clearTimeout(state.accountTimer);
    const userId = state.userId;
    if (!userId) return;
    state.accountTimer = setTimeout(loadAccount, ACCOUNT_REFRESH_MS);
    const user = `/users/${encodeURIComponent(userId)}`;
    const [balances, orders] = await Promise.allSettled([
      api("GET", `${user}/balances`),
      api("GET", `${user}/orders?status=open`),
    ]);
    if (state.userId !== userId) return; // the key changed meanwhile
    if (balances.status === "fulfilled") renderBalances(balances.value.balances);
    else setKeyStatus(`Balances: ${balances.reason.message}`, "error");
    if (orders.status === "fulfilled") renderOrders(orders.value.orders);
    else setKeyStatus(`Open orders: ${orders.reason.message}`, "error");
  }

  function renderAccount() {
    if (!state.userId) {
      const none = (columns) =>
        el("tr", {}, [el("td", { colspan: columns, class: "muted", text: "-" })]);
      $("balances").replaceChildren(none("3"));
      $("orders").replaceChildren(none("10"));
      $("events").replaceChildren();
    }
    $("cancel-all").disabled = !state.userId;
    renderSubmitButton();
  }

  function renderBalances(balances) {
    const assets = Object.keys(balances).sort();
    const rows = assets.map((asset) =>
      el("tr", {}, [
        el("td", { text: asset }),
        el("td", { text: balances[asset].available }),
        el("td", { class: "muted", text: balances[asset].held }),
      ]),
    );
    if (rows.length === 0) {
      rows.push(el("tr", {}, [el("td", { colspan: "3", class: "muted", text: "no balances" })]));
    }
    $("balances").replaceChildren(...rows);
  }

  function renderOrders(orders) {
    const rows = orders.map((o) => {
      const cancel = el("button", { type: "button", class: "quiet", text: "Cancel" });
      cancel.addEventListener("click", () => cancelOrder(o.order_id, cancel));
      return el("tr", {}, [
        el("td", { text: o.order_id }),
        el("td", { text: o.symbol }),
        el("td", { class: o.side === "buy" ? "buy" : "sell", text: o.side }),
        el("td", { text: `${o.type} ${o.time_in_force}${o.reduce_only ? " reduce-only" : ""}` }),
        el("td", { text: show(o.price) }),
        el("td", { text: o.quantity }),
        el("td", { text: o.filled_quantity }),
        el("td", { text: o.status }),
        el("td", { class: "muted", text: timeOfSeconds(o.created_at) }),
        el("td", {}, [cancel]),
      ]);
    });
    if (rows.length === 0) {
      const none = el("td", { colspan: "10", class: "muted", text: "no open orders" });
      rows.push(el("tr", {}, [none]));
    }
    $("orders").replaceChildren(...rows);
  }

  function showResult(text, kind) {
    const node = $("order-result");
    node.textContent = text;
    node.className = `result small ${kind}`;
  }

  async function cancelOrder(orderId, button) {
    button.disabled = true;
    try {
      const order = await api("DELETE", `/orders/${encodeURIComponent(orderId)}`);
      showResult(`Order ${order.order_id} ${order.status}.`, "ok");
    } catch (exc) {
      showResult(`Cancel ${orderId}: ${exc.describe ? exc.describe() : exc.message}`, "error");
      button.disabled = false;
    }
    refreshAccount();
  }

  async function cancelAll() {
    const symbol = state.symbol;
    try {
      const data = await api("DELETE", `/orders?symbol=${encodeURIComponent(symbol)}`);
      showResult(`Cancelled ${data.cancelled.length} order(s) in ${symbol}.`, "ok");
    } catch (exc) {
      showResult(`Cancel all: ${exc.describe ? exc.describe() : exc.message}`, "error");
    }
    refreshAccount();
  }

  // ------------------------------------------------------------------ order entry

  function renderOrderForm() {
    const form = $("order-form").elements;
    const market = form.type.value === "market";
    form.price.disabled = market; // a market order has no price, and is always IOC
    form.time_in_force.disabled = market;
    form.post_only.disabled = market;
    if (market) form.price.value = "";
    // Reduce-only exists on margin symbols only (the API refuses it on a spot one), so
    // the box shows, and is sent, only when GET /symbols lists the symbol as margin.
    const instrument = state.instruments.get(state.symbol);
    const margin = Boolean(instrument) && instrument.mode === "margin";
    $("reduce-only").hidden = !margin;
    form.reduce_only.disabled = !margin;
    if (!margin) form.reduce_only.checked = false;
    renderSubmitButton();
  }

  function renderSubmitButton() {
    const button = $("submit");
    const form = $("order-form").elements;
    const side = form.side.value;
    const instrument = state.instruments.get(state.symbol);
    button.disabled = !state.userId || !instrument;
    button.className = state.userId ? side : "";
    button.textContent = state.userId
      ? `${side === "buy" ? "Buy" : "Sell"} ${instrument ? instrument.base_asset : ""}`
      : "Log in with an API key to trade";
  }

  async function submitOrder(event) {
    event.preventDefault();
    const form = $("order-form").elements;
    const body = {
      symbol: state.symbol,
      side: form.side.value,
      type: form.type.value,
      quantity: form.quantity.value.trim(),
    };
    if (body.type === "limit") {
      const price = form.price.value.trim();
      if (price) body.price = price; // else the server names the missing field
      body.time_in_force = form.time_in_force.value;
      if (form.post_only.checked) body.post_only = true;
    }
    if (form.reduce_only.checked && !form.reduce_only.disabled) body.reduce_only = true;
    const button = $("submit");
    button.disabled = true;
    try {
      const order = await api("POST", "/orders", body);
      const average = order.average_price ? ` at ${order.average_price} on average` : "";
      const filled = `filled ${order.filled_quantity} of ${order.quantity}${average}`;
      showResult(`Order ${order.order_id} ${order.status}: ${filled}.`, "ok");
    } catch (exc) {
      showResult(exc.describe ? exc.describe() : exc.message, "error");
    } finally {
      renderSubmitButton();
    }
    refreshAccount();
  }

  // ------------------------------------------------------------------ start

  function useKey(key) {
    state.key = key;
    state.userId = null;
    if (key) localStorage.setItem(KEY_STORAGE, key);
    else localStorage.removeItem(KEY_STORAGE);
    $("key").value = key;
    setKeyStatus(key ? "Checking the key..." : "No key: market data only.");
    renderAccount();
    reconnectNow();
  }

  function start() {
    $("key").value = state.key;
    if (state.key) setKeyStatus("Checking the key...");
    $("symbol").addEventListener("change", (event) => selectSymbol(event.target.value));
    $("key-form").addEventListener("submit", (event) => {
      event.preventDefault();
      useKey($("key").value.trim());
    });
    $("key-forget").addEventListener("click", () => useKey(""));
    const form = $("order-form");
    form.addEventListener("submit", submitOrder);
    form.addEventListener("change", renderOrderForm);
    $("cancel-all").addEventListener("click", cancelAll);
    renderOrderForm();
    renderAccount();
    renderTrades();
    loadSymbols();
    connect();
  }

  start();
})();
