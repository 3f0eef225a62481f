// The market panels of one symbol from the feed: the order book (book.SYMBOL, a snapshot
// then deltas chained by seq / prev_seq), the trade tape (trades.SYMBOL) and the ticker
// (ticker.SYMBOL). Levels stay the decimal strings the server sends, ordered exactly.

import { $, clockTime, el, noteRow, show } from "./dom.js";
import { Decimal, compareText, percent } from "./decimal.js";

const BOOK_LEVELS = 12;
const TAPE_LENGTH = 60;

export class Market {
  // onBook(levels): the book changed ({bids, asks}: [price, quantity] best first, or null).
  // onPick(price, side): a level was clicked; side is the side that would take it.
  constructor(feed, { onBook, onPick }) {
    this.feed = feed;
    this.onBook = onBook;
    this.onPick = onPick;
    this.symbol = null;
    this.book = null; // {seq, bids: Map(price -> quantity), asks}, null until a snapshot
    this.trades = []; // newest first
    this.queued = false;
  }

  channels(symbol) {
    return [`book.${symbol}`, `trades.${symbol}`, `ticker.${symbol}`];
  }

  show(symbol) {
    if (symbol === this.symbol) return;
    if (this.symbol) for (const channel of this.channels(this.symbol)) this.feed.unsubscribe(channel);
    this.symbol = symbol;
    this.book = null;
    this.trades = [];
    this.renderTicker({});
    this.changed();
    const [book, trades, ticker] = this.channels(symbol);
    this.feed.subscribe(book, (m) => this.onBookMessage(m));
    this.feed.subscribe(trades, (m) => this.onTrades(m));
    this.feed.subscribe(ticker, (m) => this.renderTicker(m));
  }

  // The book's levels, best first, as decimal strings; null before the first snapshot.
  levels() {
    if (!this.book) return null;
    return {
      bids: [...this.book.bids].sort((a, b) => compareText(b[0], a[0])),
      asks: [...this.book.asks].sort((a, b) => compareText(a[0], b[0])),
    };
  }

  onBookMessage(m) {
    if (m.type === "snapshot") {
      this.book = { seq: m.seq, bids: new Map(m.bids), asks: new Map(m.asks) };
    } else if (m.type === "delta") {
      const book = this.book;
      if (!book) return; // a resubscription's snapshot is on its way
      if (m.prev_seq !== book.seq) {
        console.warn(`book.${this.symbol}: missed a delta (${m.prev_seq} after ${book.seq})`);
        this.book = null;
        this.feed.resubscribe(`book.${this.symbol}`);
      } else {
        apply(book.bids, m.bids);
        apply(book.asks, m.asks);
        book.seq = m.seq;
      }
    } else {
      return;
    }
    this.changed();
  }

  onTrades(m) {
    if (m.type === "snapshot") {
      this.trades = m.trades.slice().reverse().slice(0, TAPE_LENGTH);
    } else if (m.type === "trade") {
      this.trades.unshift(m);
      this.trades.length = Math.min(this.trades.length, TAPE_LENGTH);
    } else {
      return;
    }
    this.changed();
  }

  // Render at most once a frame, however many messages came.
  changed() {
    if (this.queued) return;
    this.queued = true;
    requestAnimationFrame(() => {
      this.queued = false;
      this.renderBook();
      this.renderTrades();
      this.onBook(this.levels());
    });
  }

  renderBook() {
    const levels = this.levels();
    $("book-seq").textContent = this.book ? `seq ${this.book.seq}` : "";
    if (!levels) {
      $("asks").replaceChildren();
      $("bids").replaceChildren();
      $("spread").textContent = this.feed.isOpen() ? "loading..." : "offline";
      return;
    }
    const asks = withTotals(levels.asks.slice(0, BOOK_LEVELS));
    const bids = withTotals(levels.bids.slice(0, BOOK_LEVELS));
    const deepest = [asks.at(-1), bids.at(-1)]
      .filter(Boolean)
      .reduce((most, level) => (level.total.cmp(most) > 0 ? level.total : most), Decimal.of(0));
    $("asks").replaceChildren(...asks.reverse().map((l) => this.row(l, "sell", deepest)));
    $("bids").replaceChildren(...bids.map((l) => this.row(l, "buy", deepest)));
    const spread = $("spread");
    spread.replaceChildren();
    const last = this.trades[0];
    if (last) spread.append(el("span", { class: `big ${last.side}`, text: last.price }));
    const [bestAsk] = levels.asks;
    const [bestBid] = levels.bids;
    if (bestAsk && bestBid) {
      const gap = Decimal.parse(bestAsk[0]).minus(Decimal.parse(bestBid[0]));
      spread.append(el("span", { class: "muted small", text: ` spread ${gap}` }));
    } else if (!last) {
      const empty = levels.asks.length === 0 && levels.bids.length === 0;
      spread.append(el("span", { class: "muted", text: empty ? "empty book" : "no trades yet" }));
    }
  }

  row(level, side, deepest) {
    const node = el("tr", { class: `level ${side}`, title: "use this price in the ticket" }, [
      el("td", { class: side, text: level.price }),
      el("td", { text: level.quantity }),
      el("td", { class: "muted", text: level.total.toString() }),
    ]);
    // The depth bar's width is display only.
    const share = deepest.isZero() ? 0 : level.total.toNumber() / deepest.toNumber();
    node.style.setProperty("--depth", `${Math.min(100, Math.round(share * 100))}%`);
    node.addEventListener("click", () => this.onPick(level.price, side === "sell" ? "buy" : "sell"));
    return node;
  }

  renderTrades() {
    const rows = this.trades.map((t) =>
      el("tr", {}, [
        el("td", { class: t.side, text: t.price }),
        el("td", { text: t.quantity }),
        el("td", { class: "muted", text: clockTime(t.time) }),
      ]),
    );
    $("trades").replaceChildren(...(rows.length ? rows : [noteRow(3, "no trades yet")]));
  }

  renderTicker(t) {
    $("t-last").textContent = show(t.last);
    $("t-high").textContent = show(t.high_24h);
    $("t-low").textContent = show(t.low_24h);
    $("t-volume").textContent = show(t.volume_24h);
    $("t-trades").textContent = show(t.trades_24h);
    $("t-bid").textContent = show(t.best_bid);
    $("t-ask").textContent = show(t.best_ask);
    $("t-mark").textContent = show(t.mark);
    const node = $("t-change");
    const change = Decimal.parse(t.change_24h);
    node.className = "";
    if (!change) {
      node.textContent = "-";
      return;
    }
    // The price 24 h ago: open_24h, else what the last price moved from.
    const last = Decimal.parse(t.last);
    const base = Decimal.parse(t.open_24h) || (last && last.minus(change));
    const share = base ? percent(change, base) : null;
    const signed = `${change.sign() > 0 ? "+" : ""}${change}`;
    node.textContent = share || signed;
    if (share) node.append(el("span", { class: "muted small", text: ` ${signed}` }));
    node.className = change.sign() < 0 ? "sell" : change.sign() > 0 ? "buy" : "";
  }
}

function apply(levels, changes) {
  for (const [price, quantity] of changes) {
    if (Decimal.parse(quantity).isZero()) levels.delete(price);
    else levels.set(price, quantity);
  }
}

// Each level with the running total of the quantity from the best price out.
function withTotals(levels) {
  let total = Decimal.of(0);
  return levels.map(([price, quantity]) => {
    total = total.plus(Decimal.parse(quantity));
    return { price, quantity, total };
  });
}
