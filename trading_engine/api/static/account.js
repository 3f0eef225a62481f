// The user's side of the page, once a key is accepted: balances, open orders (amend,
// cancel), order history and fills (from the read tables, a page at a time), and the
// events of the `orders` channel (its orders', lists' and algorithms').

import { api, describe, query } from "./api.js";
import { $, clockTime, dateTime, el, noteRow, setStatus, show, tabs } from "./dom.js";

const EVENTS_LENGTH = 50;
const PAGE = 20;
const REFRESH_MS = 15000;
const PAGE_REFRESH_MS = 3000; // the first page of a history tab shown, as the tables catch up

// One paged table from a history route: `next` of a full page is the `before` of the next.
class Pager {
  constructor(name, path, render) {
    this.name = name;
    this.path = path; // (userId) -> the route
    this.render = render; // (items) -> rows
    this.pages = [null]; // the `before` of each page seen, the first page's null
    this.next = null;
    this.userId = null;
    this.loads = 0; // only the latest load renders: a page turn outruns a refresh
    $(`${name}-newer`).addEventListener("click", () => this.turn(-1));
    $(`${name}-older`).addEventListener("click", () => this.turn(+1));
  }

  reset(userId) {
    this.userId = userId;
    this.loads += 1; // drop any load under way
    this.pages = [null];
    this.next = null;
    $(this.name).replaceChildren(noteRow(10, userId ? "loading..." : "-"));
    this.buttons();
  }

  turn(step) {
    if (step > 0 && this.next) this.pages.push(this.next);
    else if (step < 0 && this.pages.length > 1) this.pages.pop();
    this.load();
  }

  buttons() {
    $(`${this.name}-newer`).disabled = this.pages.length <= 1;
    $(`${this.name}-older`).disabled = !this.next;
    $(`${this.name}-page`).textContent = this.userId ? `page ${this.pages.length}` : "";
  }

  async load() {
    const userId = this.userId;
    if (!userId) return;
    const before = this.pages.at(-1);
    const load = ++this.loads;
    try {
      const data = await api("GET", `${this.path(userId)}${query({ limit: PAGE, before })}`);
      if (load !== this.loads) return;
      const items = data[this.name === "history" ? "orders" : "trades"];
      this.next = data.next;
      const rows = this.render(items);
      $(this.name).replaceChildren(...(rows.length ? rows : [noteRow(10, "nothing yet")]));
    } catch (exc) {
      if (load !== this.loads) return;
      $(this.name).replaceChildren(noteRow(10, describe(exc)));
    }
    this.buttons();
  }
}

export class Account {
  constructor(feed, { symbol }) {
    this.feed = feed;
    this.symbol = symbol; // () -> the symbol shown
    this.userId = null;
    this.tab = "open";
    this.seqs = {}; // per symbol, the seq the orders snapshot is as of
    this.algosSeq = -1; // the $algos seq the orders snapshot is as of
    this.timer = null;
    this.pageTimer = null;
    this.editing = null; // the order id whose amend row is open
    this.history = new Pager("history", (u) => `/users/${u}/history/orders`, historyRows);
    this.fills = new Pager("fills", (u) => `/users/${u}/history/trades`, fillRows);
    tabs($("account-tabs"), "tab", (tab) => this.showTab(tab));
    $("cancel-all").addEventListener("click", () => this.cancelAll());
    feed.subscribe("orders", (m) => this.onOrders(m));
    this.signedOut();
  }

  signedOut() {
    this.userId = null;
    clearTimeout(this.timer);
    this.editing = null;
    const none = (columns) => noteRow(columns, "-");
    $("balances").replaceChildren(none(3));
    $("orders").replaceChildren(none(10));
    $("events").replaceChildren();
    this.history.reset(null);
    this.fills.reset(null);
    $("cancel-all").disabled = true;
    setStatus($("account-result"), "");
  }

  signedIn(userId) {
    this.signedOut();
    this.userId = userId;
    const path = encodeURIComponent(userId);
    this.history.reset(path);
    this.fills.reset(path);
    $("cancel-all").disabled = false;
    this.refresh();
  }

  showTab(tab) {
    this.tab = tab;
    for (const name of ["open", "history", "fills", "events"]) {
      $(`tab-${name}`).hidden = name !== tab;
    }
    $("cancel-all").hidden = tab !== "open";
    clearInterval(this.pageTimer);
    const pager = { history: this.history, fills: this.fills }[tab];
    if (!pager) return;
    pager.load();
    this.pageTimer = setInterval(() => {
      if (pager.pages.length === 1) pager.load();
    }, PAGE_REFRESH_MS);
  }

  // The orders channel: its snapshot is what is working (not an event); each `order` or
  // `list` update past the snapshot's seq for its symbol, and each `algo` update past its
  // `algos_seq`, is an event.
  onOrders(m) {
    if (m.type === "snapshot") {
      this.seqs = m.seqs || {};
      this.algosSeq = m.algos_seq ?? -1;
      this.renderOrders(m.orders || []);
      return;
    }
    const describe = { order: describeEvent, list: describeList, algo: describeAlgo }[m.type];
    if (!describe) return;
    const seen = m.type === "algo" ? this.algosSeq : this.seqs[m.symbol];
    if (m.seq <= (seen ?? -1)) return; // already in the snapshot
    const list = $("events");
    list.prepend(el("li", { text: describe(m) }));
    while (list.children.length > EVENTS_LENGTH) list.lastChild.remove();
    this.refresh(150);
  }

  // Balances, open orders and the history page shown, at most once per burst of events.
  refresh(delay = 0) {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.load(), delay);
  }

  async load() {
    clearTimeout(this.timer);
    const userId = this.userId;
    if (!userId) return;
    this.timer = setTimeout(() => this.load(), REFRESH_MS);
    const user = `/users/${encodeURIComponent(userId)}`;
    const [balances, orders] = await Promise.allSettled([
      api("GET", `${user}/balances`),
      api("GET", `${user}/orders${query({ status: "open" })}`),
    ]);
    if (this.userId !== userId) return; // the key changed meanwhile
    if (balances.status === "fulfilled") this.renderBalances(balances.value.balances);
    else setStatus($("account-result"), `Balances: ${describe(balances.reason)}`, "error");
    if (orders.status === "fulfilled") this.renderOrders(orders.value.orders);
    else setStatus($("account-result"), `Open orders: ${describe(orders.reason)}`, "error");
    // The read tables trail the engine by about 0.1 s.
    if (this.tab === "history") setTimeout(() => this.history.load(), 300);
    if (this.tab === "fills") setTimeout(() => this.fills.load(), 300);
  }

  renderBalances(balances) {
    const rows = Object.keys(balances)
      .sort()
      .map((asset) =>
        el("tr", {}, [
          el("td", { text: asset }),
          el("td", { text: balances[asset].available }),
          el("td", { class: "muted", text: balances[asset].held }),
        ]),
      );
    $("balances").replaceChildren(...(rows.length ? rows : [noteRow(3, "no balances")]));
  }

  renderOrders(orders) {
    if (this.editing && orders.some((o) => o.order_id === this.editing)) return; // don't yank it
    this.editing = null;
    const rows = orders.map((o) => this.orderRow(o));
    $("orders").replaceChildren(...(rows.length ? rows : [noteRow(10, "no open orders")]));
  }

  orderRow(o) {
    const amend = el("button", { type: "button", class: "quiet", text: "Amend" });
    const cancel = el("button", { type: "button", class: "quiet", text: "Cancel" });
    const row = el("tr", { "data-order-id": o.order_id }, [
      el("td", { text: o.order_id }),
      el("td", { text: o.symbol }),
      el("td", { class: o.side === "buy" ? "buy" : "sell", text: o.side }),
      el("td", { text: kindOf(o) }),
      el("td", { class: "price", text: priceOf(o) }),
      el("td", { class: "quantity", text: o.quantity }),
      el("td", { text: o.filled_quantity }),
      el("td", { class: "opt", text: o.status }),
      el("td", { class: "opt muted", text: dateTime(o.created_at) }),
      el("td", {}, [el("div", { class: "actions" }, [amend, cancel])]),
    ]);
    amend.addEventListener("click", () => this.startAmend(row, o));
    cancel.addEventListener("click", () => this.cancel(o.order_id, cancel));
    return row;
  }

  // Amend in place: the price (if the order has one) and the total quantity.
  startAmend(row, o) {
    this.editing = o.order_id;
    const input = (name, value) =>
      el("input", {
        name,
        value: value || "",
        type: "text",
        inputmode: "decimal",
        autocomplete: "off",
        "aria-label": `new ${name}`,
      });
    const price = o.price ? input("price", o.price) : null;
    const quantity = input("quantity", o.quantity);
    if (price) row.querySelector(".price").replaceChildren(price);
    row.querySelector(".quantity").replaceChildren(quantity);
    const save = el("button", { type: "button", class: "quiet", text: "Save" });
    const back = el("button", { type: "button", class: "quiet", text: "Back" });
    row.querySelector(".actions").replaceChildren(save, back);
    back.addEventListener("click", () => {
      this.editing = null;
      this.refresh();
    });
    save.addEventListener("click", async () => {
      const body = {};
      if (price && price.value.trim() !== o.price) body.price = price.value.trim();
      if (quantity.value.trim() !== o.quantity) body.quantity = quantity.value.trim();
      save.disabled = true;
      try {
        const order = await api("PATCH", `/orders/${encodeURIComponent(o.order_id)}`, body);
        setStatus(
          $("account-result"),
          `Order ${order.order_id} amended: ${show(order.price)} x ${order.quantity}.`,
          "ok",
        );
        this.editing = null;
      } catch (exc) {
        setStatus($("account-result"), `Amend ${o.order_id}: ${describe(exc)}`, "error");
        save.disabled = false;
        return;
      }
      this.refresh();
    });
    (price || quantity).focus();
  }

  async cancel(orderId, button) {
    button.disabled = true;
    try {
      const order = await api("DELETE", `/orders/${encodeURIComponent(orderId)}`);
      setStatus($("account-result"), `Order ${order.order_id} ${order.status}.`, "ok");
    } catch (exc) {
      setStatus($("account-result"), `Cancel ${orderId}: ${describe(exc)}`, "error");
      button.disabled = false;
    }
    this.refresh();
  }

  async cancelAll() {
    const symbol = this.symbol();
    try {
      const data = await api("DELETE", `/orders${query({ symbol })}`);
      setStatus($("account-result"), `Cancelled ${data.cancelled.length} in ${symbol}.`, "ok");
    } catch (exc) {
      setStatus($("account-result"), `Cancel all: ${describe(exc)}`, "error");
    }
    this.refresh();
  }
}

function kindOf(o) {
  const flags = [o.post_only ? "post-only" : "", o.reduce_only ? "reduce-only" : ""];
  return [o.type.replaceAll("_", "-"), o.time_in_force, ...flags].filter(Boolean).join(" ");
}

function priceOf(o) {
  if (o.stop_price && o.price) return `${o.price} (stop ${o.stop_price})`;
  if (o.stop_price) return `stop ${o.stop_price}`;
  return show(o.price);
}

// One order event in words: "12:00:01 BTC_AIT #7 filled 0.1 @ 30000 (partially_filled)".
function describeEvent(m) {
  const what = {
    OrderAccepted: "accepted",
    OrderRejected: "rejected",
    OrderFilled: "filled",
    OrderCancelled: "cancelled",
    OrderExpired: "expired",
    OrderAmended: "amended",
    StopTriggered: "triggered",
  };
  const parts = [clockTime(m.ts), m.symbol, `#${m.order_id}`, what[m.event] || m.event];
  if (m.event === "OrderFilled") parts.push(`${m.quantity} @ ${m.price} (${m.status})`);
  if (m.reason) parts.push(`(${m.reason})`);
  return parts.join(" ");
}

// An order list's event: "12:00:01 BTC_AIT list 3 placed (otoco)", "... list 3 done".
function describeList(m) {
  const parts = [clockTime(m.ts), m.symbol, `list ${m.list_id}`];
  if (m.event === "OrderListPlaced") parts.push(`placed (${m.list_type})`);
  else if (m.event === "OrderDeferred") parts.push(`#${m.order_id} waits (pending_new)`);
  else parts.push(m.status);
  return parts.join(" ");
}

// An algorithm's event: "12:00:01 BTC_AIT algo 2 slice 1: #9 filled 0.0025", "... completed".
function describeAlgo(m) {
  const parts = [clockTime(m.ts), m.symbol, `algo ${m.algo_id}`];
  if (m.event === "AlgoStarted") {
    parts.push(`started (${m.algo_type} ${m.side} ${m.quantity} in ${m.slices} slices)`);
  } else if (m.event === "AlgoSliceDone") {
    const child = m.order_id ? `#${m.order_id} filled ${m.child_filled_quantity}` : "no order";
    parts.push(`slice ${m.slice + 1}: ${child}`);
  } else {
    parts.push(m.reason && m.reason !== m.status ? `${m.status} (${m.reason})` : m.status);
  }
  return parts.join(" ");
}

function historyRows(orders) {
  return orders.map((o) =>
    el("tr", {}, [
      el("td", { text: o.order_id }),
      el("td", { text: o.symbol }),
      el("td", { class: o.side === "buy" ? "buy" : "sell", text: o.side }),
      el("td", { text: kindOf(o) }),
      el("td", { text: priceOf(o) }),
      el("td", { text: o.quantity }),
      el("td", { text: o.filled_quantity }),
      el("td", { class: "opt", text: show(o.average_price) }),
      el("td", { class: `status ${o.status}`, text: o.reason ? `${o.status} (${o.reason})` : o.status }),
      el("td", { class: "opt muted", text: dateTime(o.updated_at) }),
    ]),
  );
}

function fillRows(fills) {
  return fills.map((f) =>
    el("tr", {}, [
      el("td", { class: "muted", text: dateTime(f.time) }),
      el("td", { text: f.symbol }),
      el("td", { class: f.side === "buy" ? "buy" : "sell", text: f.side }),
      el("td", { text: f.price }),
      el("td", { text: f.quantity }),
      el("td", { text: f.fee }),
      el("td", { class: "opt", text: f.role }),
      el("td", { class: "opt muted", text: `#${f.order_id}` }),
      el("td", { class: "opt muted", text: f.settlement_status }),
    ]),
  );
}
