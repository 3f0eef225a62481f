// The order ticket: every order type of POST /orders (limit, market, stop, stop-limit,
// take-profit, take-profit-limit, trailing stop and trailing stop-limit, trailing by a
// price distance or in basis points; a market order
// sized in the quote asset; an iceberg limit order showing a slice),
// each time in force (GTD with a time), post-only, reduce-only on margin symbols, a
// bracket (an OTOCO order list: a limit order, then a take-profit and a stop-loss on the
// other side once it has filled; an OTO with one of them), an OCO (a limit order or a stop
// on the same side), and an estimate of the price, notional and fee before
// sending, in exact decimals.

import { api, describe } from "./api.js";
import { $, el, setStatus } from "./dom.js";
import { Decimal, placesOf } from "./decimal.js";

const HOUR_MS = 3600 * 1000;
const BPS = Decimal.parse("0.0001");

// What each type takes: a limit price, a stop price, and the times in force it allows.
const TYPES = {
  limit: { price: true, stop: false, tifs: ["GTC", "IOC", "FOK", "GTD"] },
  market: { price: false, stop: false, quote: true, tifs: ["IOC", "FOK"] }, // never rests
  stop: { price: false, stop: true, tifs: ["GTC", "IOC", "GTD"] },
  stop_limit: { price: true, stop: true, tifs: ["GTC", "IOC", "GTD"] },
  take_profit: { price: false, stop: true, tifs: ["GTC", "IOC", "GTD"] },
  take_profit_limit: { price: true, stop: true, tifs: ["GTC", "IOC", "GTD"] },
  trailing_stop: { price: false, stop: false, trail: true, tifs: ["GTC", "IOC", "GTD"] },
  trailing_stop_limit: {
    price: false, stop: false, trail: true, offset: true, tifs: ["GTC", "IOC", "GTD"],
  },
};

export class Ticket {
  // levels(): the book's levels best first ({bids, asks}), or null.
  // onPlaced(): an order was accepted.
  constructor({ levels, onPlaced }) {
    this.levels = levels;
    this.onPlaced = onPlaced;
    this.instrument = null;
    this.userId = null;
    this.lastList = null; // the list box ticked last: a bracket and an OCO exclude each other
    this.form = $("order-form");
    this.form.addEventListener("submit", (event) => this.submit(event));
    this.form.addEventListener("input", () => this.render());
    this.form.addEventListener("change", () => this.render());
    this.render();
  }

  get fields() {
    return this.form.elements;
  }

  // A new symbol: its assets and rules, and no message about the last one's order.
  show(instrument) {
    this.instrument = instrument;
    for (const node of this.form.querySelectorAll(".quote-asset")) {
      node.textContent = instrument.quote_asset;
    }
    $("base-asset").textContent = instrument.base_asset;
    setStatus($("order-result"), "");
    this.render();
  }

  signedIn(userId) {
    this.userId = userId;
    this.render();
  }

  // A clicked book level: a limit order that takes it.
  pick(price, side) {
    const f = this.fields;
    if (!TYPES[f.type.value].price) f.type.value = "limit";
    f.price.value = price;
    f.side.value = side;
    this.render();
    f.quantity.focus();
  }

  render() {
    const f = this.fields;
    const type = TYPES[f.type.value];
    $("row-price").hidden = !type.price;
    $("row-stop-price").hidden = !type.stop;
    $("row-quote").hidden = !type.quote;
    $("row-trail").hidden = !type.trail;
    $("row-activation").hidden = !type.trail;
    $("row-offset").hidden = !type.offset;
    // A quote-sized market order sends its quote amount instead of a quantity (IOC only).
    const quoted = Boolean(type.quote) && f.quote_quantity.value.trim() !== "";
    $("row-quantity").hidden = quoted;
    if (quoted) f.time_in_force.value = "IOC";
    for (const option of f.time_in_force.options) option.disabled = !type.tifs.includes(option.value);
    if (!type.tifs.includes(f.time_in_force.value)) f.time_in_force.value = type.tifs[0];
    const gtd = f.time_in_force.value === "GTD";
    $("row-expire").hidden = !gtd;
    if (gtd && !$("expire").value) $("expire").value = localInput(new Date(Date.now() + HOUR_MS));
    const resting = f.type.value === "limit" && ["GTC", "GTD"].includes(f.time_in_force.value);
    f.post_only.disabled = !resting;
    $("row-display").hidden = !resting; // an iceberg rests: limit, GTC or GTD
    if (!resting) f.post_only.checked = false;
    $("post-only").classList.toggle("off", !resting);
    // Reduce-only exists on margin symbols only (the API refuses it on a spot one).
    const margin = Boolean(this.instrument) && this.instrument.mode === "margin";
    // A bracket or an OCO goes with a limit order on a spot symbol (order lists are spot
    // only); one or the other.
    const bracketable = f.type.value === "limit" && !margin;
    $("bracket").hidden = $("oco").hidden = !bracketable;
    if (!bracketable) f.bracket.checked = f.oco.checked = false;
    if (f.bracket.checked && f.oco.checked) {
      if (this.lastList === "oco") f.oco.checked = false;
      else f.bracket.checked = false;
    }
    this.lastList = f.bracket.checked ? "bracket" : f.oco.checked ? "oco" : null;
    $("row-tp").hidden = $("row-sl").hidden = !f.bracket.checked;
    $("row-oco").hidden = !f.oco.checked;
    $("reduce-only").hidden = !margin;
    f.reduce_only.disabled = !margin;
    if (!margin) f.reduce_only.checked = false;
    this.renderEstimate();
    this.renderButton();
  }

  renderButton() {
    const button = $("submit");
    const side = this.fields.side.value;
    const instrument = this.instrument;
    button.disabled = !this.userId || !instrument;
    button.className = this.userId ? side : "";
    button.textContent = this.userId
      ? `${side === "buy" ? "Buy" : "Sell"} ${instrument ? instrument.base_asset : ""}`
      : "Log in with an API key to trade";
  }

  // Price, notional, fee and total of the order as it stands, or nothing until it parses.
  renderEstimate() {
    const node = $("estimate");
    node.replaceChildren();
    const estimate = this.estimate();
    if (!estimate) return;
    for (const [term, value, kind] of estimate) {
      node.append(el("dt", { text: term }), el("dd", { class: kind || "", text: value }));
    }
  }

  estimate() {
    const f = this.fields;
    const s = this.instrument;
    const quantity = Decimal.parse(f.quantity.value);
    if (!s || !$("row-quote").hidden && f.quote_quantity.value.trim()) return null;
    if (TYPES[f.type.value].trail) return null; // its price is not known until it triggers
    if (!quantity || quantity.isZero()) return null;
    const quote = s.quote_asset;
    const buy = f.side.value === "buy";
    const book = this.levels();
    const opposite = book ? (buy ? book.asks : book.bids) : [];
    const rows = [];
    let price = null;
    let notional = null;
    let taker = true;
    if (f.type.value === "market") {
      const walk = sweep(opposite, quantity);
      if (walk.filled.isZero()) return [["Estimate", "the book has no liquidity to take", "error"]];
      notional = walk.notional;
      price = notional.dividedBy(walk.filled, placesOf(s.tick_size) + 2);
      rows.push(["Avg price", `≈ ${price} ${quote}`]);
      if (walk.filled.cmp(quantity) < 0) {
        rows.push(["Fills", `${walk.filled} of ${quantity} now; IOC cancels the rest`, "error"]);
      }
    } else {
      const limit = Decimal.parse(f.price.value);
      const stop = Decimal.parse(f.stop_price.value);
      const atStop = !TYPES[f.type.value].price;
      price = atStop ? stop : limit;
      if (!price) return null;
      notional = price.times(quantity);
      if (f.type.value === "limit") {
        // It takes liquidity if it crosses the best opposite price; else it rests (maker).
        const best = opposite.length ? Decimal.parse(opposite[0][0]) : null;
        const crosses = best !== null && (buy ? price.cmp(best) >= 0 : price.cmp(best) <= 0);
        taker = crosses && !f.post_only.checked;
        if (crosses && f.post_only.checked) {
          rows.push(["Post only", "crosses the book: the engine rejects it", "error"]);
        }
      }
      rows.push([atStop ? "At stop" : "Price", `${price} ${quote}`]);
    }
    const bps = taker ? s.taker_fee_bps : s.maker_fee_bps;
    const fee = notional.times(Decimal.of(bps)).times(BPS); // exact: the engine rounds up a unit
    const rate = Decimal.of(bps).dividedBy(Decimal.of(100), 2);
    rows.push(["Notional", `${notional} ${quote}`]);
    rows.push([`Fee (${taker ? "taker" : "maker"} ${rate}%)`, `${fee} ${quote}`]);
    const total = buy ? notional.plus(fee) : notional.minus(fee);
    rows.push([buy ? "Total cost" : "Net proceeds", `${total} ${quote}`, buy ? "sell" : "buy"]);
    return rows;
  }

  body() {
    const f = this.fields;
    const type = TYPES[f.type.value];
    const body = {
      symbol: this.instrument.symbol,
      side: f.side.value,
      type: f.type.value,
      quantity: f.quantity.value.trim(),
      time_in_force: f.time_in_force.value,
    };
    if (type.quote && f.quote_quantity.value.trim()) {
      delete body.quantity;
      body.quote_quantity = f.quote_quantity.value.trim();
    }
    // An empty field is left out: the server names what is missing.
    if (type.price && f.price.value.trim()) body.price = f.price.value.trim();
    if (type.stop && f.stop_price.value.trim()) body.stop_price = f.stop_price.value.trim();
    for (const [name, wanted] of [
      ["trailing_delta", type.trail], ["activation_price", type.trail], ["limit_offset", type.offset],
    ]) {
      if (wanted && f[name].value.trim()) body[name] = f[name].value.trim();
    }
    // A distance in basis points is an integer (anything else is sent as typed, for the
    // server to name).
    if (body.trailing_delta !== undefined && f.trailing_unit.value === "bps") {
      const bps = body.trailing_delta;
      delete body.trailing_delta;
      body.trailing_bps = /^[0-9]{1,6}$/.test(bps) ? Number(bps) : bps;
    }
    if (body.time_in_force === "GTD") {
      const until = new Date($("expire").value);
      if (!Number.isNaN(until.getTime())) body.expire_time = String(Math.floor(until / 1000));
    }
    if (f.post_only.checked && !f.post_only.disabled) body.post_only = true;
    if (!$("row-display").hidden && f.display_quantity.value.trim()) {
      body.display_quantity = f.display_quantity.value.trim();
    }
    if (f.reduce_only.checked && !f.reduce_only.disabled) body.reduce_only = true;
    return body;
  }

  // The ticket's order list. A bracket: this order, then the take-profit and the
  // stop-loss on the other side for the same quantity, GTC (an otoco; an oto with only one
  // of the two prices). An OCO: this order, or a stop on the same side at the OCO stop
  // price. An empty price is left out (the server names it).
  listBody() {
    const f = this.fields;
    const working = this.body();
    const stopAt = (leg, price) => (price ? { ...leg, stop_price: price } : leg);
    if (f.oco.checked) {
      const stopLeg = { ...working, type: "stop", time_in_force: "GTC" };
      delete stopLeg.price;
      delete stopLeg.post_only;
      delete stopLeg.display_quantity;
      delete stopLeg.expire_time;
      return { type: "oco", orders: [working, stopAt(stopLeg, f.oco_stop.value.trim())] };
    }
    const exit = {
      symbol: working.symbol,
      side: working.side === "buy" ? "sell" : "buy",
      quantity: working.quantity,
      time_in_force: "GTC",
    };
    const takeProfit = { ...exit, type: "limit" };
    const stopLoss = stopAt({ ...exit, type: "stop" }, f.sl_price.value.trim());
    const tp = f.tp_price.value.trim();
    if (tp) takeProfit.price = tp;
    if (tp && !stopLoss.stop_price) return { type: "oto", orders: [working, takeProfit] };
    if (!tp && stopLoss.stop_price) return { type: "oto", orders: [working, stopLoss] };
    return { type: "otoco", orders: [working, takeProfit, stopLoss] };
  }

  async submitList() {
    const list = await api("POST", "/order-lists", this.listBody());
    const name = { otoco: "Bracket", oto: "Bracket", oco: "OCO" }[list.type];
    const [first, ...rest] = list.orders;
    const others = list.type === "oco" ? "stop" : list.type === "oto" ? "then" : "take-profit and stop-loss";
    setStatus(
      $("order-result"),
      `${name} ${list.list_id} ${list.status}: order ${first.order_id} ${first.status}, ` +
        `${others} ${rest[0].status}.`,
      "ok",
    );
    this.onPlaced();
  }

  async submit(event) {
    event.preventDefault();
    if (!this.instrument) return;
    const button = $("submit");
    button.disabled = true;
    try {
      if (this.fields.bracket.checked || this.fields.oco.checked) {
        await this.submitList();
        return;
      }
      const order = await api("POST", "/orders", this.body());
      const average = order.average_price ? ` at ${order.average_price} on average` : "";
      const filled = `filled ${order.filled_quantity} of ${order.quantity}${average}`;
      setStatus($("order-result"), `Order ${order.order_id} ${order.status}: ${filled}.`, "ok");
      this.onPlaced();
    } catch (exc) {
      setStatus($("order-result"), describe(exc), "error");
    } finally {
      this.renderButton();
    }
  }
}

// Take `quantity` from `levels` (best first): what it fills and what that costs.
function sweep(levels, quantity) {
  let left = quantity;
  let notional = Decimal.of(0);
  for (const [price, size] of levels) {
    if (left.isZero()) break;
    const available = Decimal.parse(size);
    const take = available.cmp(left) < 0 ? available : left;
    notional = notional.plus(Decimal.parse(price).times(take));
    left = left.minus(take);
  }
  return { filled: quantity.minus(left), notional };
}

// A Date as a datetime-local input's value, in the browser's time zone.
function localInput(date) {
  const pad = (n) => String(n).padStart(2, "0");
  return (
    `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}` +
    `T${pad(date.getHours())}:${pad(date.getMinutes())}:${pad(date.getSeconds())}`
  );
}
