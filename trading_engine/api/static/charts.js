// The candlestick chart (candles.SYMBOL.INTERVAL from the feed) and the depth chart
// (cumulative bids and asks of the book), drawn with TradingView's Lightweight Charts,
// served by the engine itself (lightweight-charts.mjs, from the npm package that
// package-lock.json pins). Canvas coordinates are Numbers: display only; the legends show
// the server's decimal strings.

import { $, el } from "./dom.js";
import { Decimal, placesOf } from "./decimal.js";

export const INTERVALS = ["1m", "5m", "1h", "1d"];

function cssColor(name) {
  return getComputedStyle(document.documentElement).getPropertyValue(name).trim();
}

function layout() {
  return {
    layout: {
      background: { type: "solid", color: cssColor("--panel") },
      textColor: cssColor("--muted"),
      fontSize: 11,
      attributionLogo: false, // the page's footer credits TradingView, as its license asks
    },
    grid: {
      vertLines: { color: cssColor("--grid") },
      horzLines: { color: cssColor("--grid") },
    },
    rightPriceScale: { borderColor: cssColor("--line") },
    autoSize: true,
  };
}

// Axis labels in the browser's time zone (the library's own are UTC).
function tickMark(seconds, type) {
  const date = new Date(seconds * 1000);
  switch (type) {
    case 0:
      return String(date.getFullYear());
    case 1:
      return date.toLocaleDateString([], { month: "short" });
    case 2:
      return String(date.getDate());
    default:
      return date.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", hour12: false });
  }
}

export class Charts {
  constructor(feed) {
    this.feed = feed;
    this.lib = null;
    this.symbol = null;
    this.instrument = null;
    this.interval = INTERVALS[0];
    this.channel = null;
    this.candles = new Map(); // start (seconds) -> the candle as the feed sent it
    this.last = null; // the newest candle's start
  }

  // Load the library and make the charts; without it the page works on, with a note.
  async start() {
    try {
      this.lib = await import("./lightweight-charts.mjs");
    } catch (exc) {
      for (const id of ["candle-chart", "depth-chart"]) {
        $(id).replaceChildren(
          el("p", { class: "muted small pad", text: "Charts unavailable: run make install." }),
        );
      }
      console.warn("charts:", exc.message);
      return;
    }
    const { AreaSeries, CandlestickSeries, HistogramSeries, LineType } = this.lib;
    const buy = cssColor("--buy");
    const sell = cssColor("--sell");

    this.candleChart = this.lib.createChart($("candle-chart"), {
      ...layout(),
      timeScale: {
        borderColor: cssColor("--line"),
        timeVisible: true,
        secondsVisible: false,
        rightOffset: 3,
        barSpacing: 9,
        maxBarSpacing: 28, // a few candles spread out, but not into slabs
        tickMarkFormatter: tickMark,
      },
      localization: {
        timeFormatter: (seconds) =>
          new Date(seconds * 1000).toLocaleString([], { hour12: false }),
      },
    });
    this.candleSeries = this.candleChart.addSeries(CandlestickSeries, {
      upColor: buy,
      downColor: sell,
      borderVisible: false,
      wickUpColor: buy,
      wickDownColor: sell,
    });
    this.volumeSeries = this.candleChart.addSeries(HistogramSeries, {
      priceScaleId: "volume",
      priceFormat: { type: "volume" },
      lastValueVisible: false,
      priceLineVisible: false,
    });
    this.candleChart.priceScale("volume").applyOptions({ scaleMargins: { top: 0.8, bottom: 0 } });
    this.candleChart.priceScale("right").applyOptions({ scaleMargins: { top: 0.1, bottom: 0.25 } });
    this.candleChart.subscribeCrosshairMove((param) => {
      this.legend(param && param.time !== undefined ? this.candles.get(param.time) : null);
    });

    this.depthChart = this.lib.createOptionsChart($("depth-chart"), {
      ...layout(),
      timeScale: { borderColor: cssColor("--line") },
      handleScroll: false,
      handleScale: false,
    });
    const area = (color) => ({
      lineColor: color,
      topColor: `${color}66`,
      bottomColor: `${color}0d`,
      lineWidth: 2,
      lineType: LineType.WithSteps,
      priceFormat: { type: "volume" },
      lastValueVisible: false,
      priceLineVisible: false,
      // Depth starts from nothing: the vertical scale always shows zero.
      autoscaleInfoProvider: (original) => {
        const info = original();
        if (info && info.priceRange) info.priceRange.minValue = 0;
        return info;
      },
    });
    this.bidSeries = this.depthChart.addSeries(AreaSeries, area(buy));
    this.askSeries = this.depthChart.addSeries(AreaSeries, area(sell));
    if (this.symbol) this.subscribe();
  }

  show(symbol, instrument) {
    const changed = symbol !== this.symbol;
    this.symbol = symbol;
    this.instrument = instrument;
    if (changed) this.subscribe();
  }

  setInterval(interval) {
    if (interval === this.interval) return;
    this.interval = interval;
    this.subscribe();
  }

  // Follow the candles of the symbol and interval shown, from a fresh snapshot.
  subscribe() {
    if (this.channel) this.feed.unsubscribe(this.channel);
    this.channel = null;
    this.candles.clear();
    this.last = null;
    this.legend(null);
    if (!this.lib || !this.symbol) return;
    const tick = this.instrument ? this.instrument.tick_size : "0.01";
    const priceFormat = { type: "price", precision: placesOf(tick), minMove: Number(tick) };
    this.candleSeries.applyOptions({ priceFormat });
    this.depthChart.applyOptions({ localization: { precision: placesOf(tick) } });
    this.candleSeries.setData([]);
    this.volumeSeries.setData([]);
    const channel = `candles.${this.symbol}.${this.interval}`;
    this.channel = channel;
    this.feed.subscribe(channel, (m) => this.onCandles(m));
  }

  onCandles(m) {
    if (m.channel !== this.channel) return;
    if (m.type === "snapshot") {
      this.candles = new Map(m.candles.map((c) => [c.start, c]));
      this.last = m.candles.length ? m.candles.at(-1).start : null;
      this.candleSeries.setData(m.candles.map(bar));
      this.volumeSeries.setData(m.candles.map((c) => this.volumeBar(c)));
      this.candleChart.timeScale().fitContent();
    } else if (m.type === "candle") {
      const known = this.candles.has(m.start);
      this.candles.set(m.start, m);
      if (this.last === null || m.start >= this.last) {
        this.last = m.start;
        this.candleSeries.update(bar(m));
        this.volumeSeries.update(this.volumeBar(m));
      } else if (known) {
        this.candleSeries.update(bar(m), true);
        this.volumeSeries.update(this.volumeBar(m), true);
      } else {
        // A late trade opened an older period: redraw from the candles held.
        const all = [...this.candles.values()].sort((a, b) => a.start - b.start);
        this.candleSeries.setData(all.map(bar));
        this.volumeSeries.setData(all.map((c) => this.volumeBar(c)));
      }
    } else {
      return;
    }
    this.legend(null);
  }

  volumeBar(c) {
    const up = Decimal.parse(c.close).cmp(Decimal.parse(c.open)) >= 0;
    const color = cssColor(up ? "--buy" : "--sell");
    return { time: c.start, value: Number(c.volume), color: `${color}55` };
  }

  // The hovered candle's figures, else the newest one's, exactly as the server sent them.
  legend(candle) {
    const node = $("candle-legend");
    const shown = candle || (this.last !== null ? this.candles.get(this.last) : null);
    node.replaceChildren();
    if (!this.symbol) return;
    node.append(el("strong", { text: `${this.symbol} ${this.interval}` }));
    if (!shown) {
      node.append(el("span", { class: "muted", text: " no trades in this interval yet" }));
      return;
    }
    const up = Decimal.parse(shown.close).cmp(Decimal.parse(shown.open)) >= 0;
    for (const [label, value] of [
      ["O", shown.open],
      ["H", shown.high],
      ["L", shown.low],
      ["C", shown.close],
      ["V", shown.volume],
    ]) {
      node.append(el("span", { class: "muted", text: ` ${label} ` }));
      node.append(el("span", { class: label === "V" ? "" : up ? "buy" : "sell", text: value }));
    }
  }

  // The book's cumulative depth: bids summed from the best bid down, asks from the best ask
  // up, both drawn over price.
  depth(levels) {
    const node = $("depth-legend");
    if (!this.lib) return;
    if (!levels) {
      this.bidSeries.setData([]);
      this.askSeries.setData([]);
      node.textContent = "";
      return;
    }
    const bids = cumulative(levels.bids).reverse(); // ascending price, as the chart needs
    const asks = cumulative(levels.asks);
    this.bidSeries.setData(bids.map(point));
    this.askSeries.setData(asks.map(point));
    this.depthChart.timeScale().fitContent();
    const base = this.instrument ? this.instrument.base_asset : "";
    const bidTotal = bids.length ? bids[0].total : Decimal.of(0);
    const askTotal = asks.length ? asks.at(-1).total : Decimal.of(0);
    node.replaceChildren(
      el("span", { class: "buy", text: `bids ${bidTotal} ${base}` }),
      el("span", { class: "muted", text: " · " }),
      el("span", { class: "sell", text: `asks ${askTotal} ${base}` }),
    );
  }
}

function bar(c) {
  return {
    time: c.start,
    open: Number(c.open),
    high: Number(c.high),
    low: Number(c.low),
    close: Number(c.close),
  };
}

function cumulative(levels) {
  let total = Decimal.of(0);
  return levels.map(([price, quantity]) => {
    total = total.plus(Decimal.parse(quantity));
    return { price, total };
  });
}

function point(level) {
  return { time: Number(level.price), value: level.total.toNumber() };
}
