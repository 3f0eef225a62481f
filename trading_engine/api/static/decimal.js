// Exact decimal arithmetic on the API's decimal strings, with BigInt. Prices, quantities
// and amounts that are shown or sent never go through a float; only the charts' canvas
// coordinates are Numbers (Decimal.toNumber, display only).

const GRAMMAR = /^(-?)(\d+)(?:\.(\d+))?$/;
const TEN = 10n;

function pow10(n) {
  return TEN ** BigInt(n);
}

export class Decimal {
  // The value is units / 10^scale.
  constructor(units, scale) {
    this.units = units;
    this.scale = scale;
  }

  // A decimal string ("30000", "0.25", "-1.5"), or null if the text is not one. Requests take
  // the same grammar without the sign: digits, optionally a point and more digits.
  static parse(text) {
    if (typeof text !== "string") return null;
    const match = GRAMMAR.exec(text.trim());
    if (!match) return null;
    const [, sign, whole, fraction = ""] = match;
    const units = BigInt(whole + fraction);
    return new Decimal(sign ? -units : units, fraction.length);
  }

  static of(integer) {
    return new Decimal(BigInt(integer), 0);
  }

  rescale(scale) {
    if (scale < this.scale) throw new RangeError("rescale would lose digits: use round");
    return new Decimal(this.units * pow10(scale - this.scale), scale);
  }

  plus(other) {
    const scale = Math.max(this.scale, other.scale);
    return new Decimal(this.rescale(scale).units + other.rescale(scale).units, scale);
  }

  minus(other) {
    return this.plus(other.negate());
  }

  negate() {
    return new Decimal(-this.units, this.scale);
  }

  times(other) {
    return new Decimal(this.units * other.units, this.scale + other.scale);
  }

  cmp(other) {
    const scale = Math.max(this.scale, other.scale);
    const a = this.rescale(scale).units;
    const b = other.rescale(scale).units;
    return a === b ? 0 : a < b ? -1 : 1;
  }

  sign() {
    return this.units === 0n ? 0 : this.units < 0n ? -1 : 1;
  }

  isZero() {
    return this.units === 0n;
  }

  // this / other to `places` decimals, rounded half away from zero ("half") or away from
  // zero ("up", as the engine rounds a fee). Null when other is zero.
  dividedBy(other, places, mode = "half") {
    if (other.isZero()) return null;
    let numerator = this.units * pow10(other.scale + places);
    let denominator = other.units * pow10(this.scale);
    if (denominator < 0n) {
      numerator = -numerator;
      denominator = -denominator;
    }
    const quotient = numerator / denominator; // truncated toward zero
    const remainder = numerator % denominator;
    const away = numerator < 0n ? -1n : 1n;
    let units = quotient;
    if (remainder !== 0n) {
      const magnitude = remainder < 0n ? -remainder : remainder;
      if (mode === "up" || (mode === "half" && 2n * magnitude >= denominator)) units += away;
    }
    return new Decimal(units, places);
  }

  round(places, mode = "half") {
    if (places >= this.scale) return this.rescale(places);
    return this.dividedBy(Decimal.of(1), places, mode);
  }

  // The shortest text: no trailing zeros after the point ("1.50" -> "1.5").
  toString() {
    const negative = this.units < 0n;
    const digits = (negative ? -this.units : this.units).toString().padStart(this.scale + 1, "0");
    let text = digits;
    if (this.scale > 0) {
      const whole = digits.slice(0, -this.scale);
      const fraction = digits.slice(-this.scale).replace(/0+$/, "");
      text = fraction ? `${whole}.${fraction}` : whole;
    }
    return negative && text !== "0" ? `-${text}` : text;
  }

  // Exactly `places` decimals, rounded half away from zero.
  toFixed(places) {
    const rounded = this.round(places);
    const negative = rounded.units < 0n;
    const digits = (negative ? -rounded.units : rounded.units).toString().padStart(places + 1, "0");
    const text = places > 0 ? `${digits.slice(0, -places)}.${digits.slice(-places)}` : digits;
    return negative && /[1-9]/.test(text) ? `-${text}` : text;
  }

  toNumber() {
    return Number(this.toString());
  }
}

export const ZERO = Decimal.of(0);

// The decimal places of a step such as a tick size ("0.01" -> 2).
export function placesOf(step) {
  const value = Decimal.parse(step);
  return value ? value.scale : 0;
}

// Order two decimal strings exactly (for sorting book levels).
export function compareText(a, b) {
  return Decimal.parse(a).cmp(Decimal.parse(b));
}

// The percentage `part` is of `whole` to two places, signed ("+0.52%", "-1.25%", "0.00%").
export function percent(part, whole) {
  const ratio = part.times(Decimal.of(100)).dividedBy(whole, 2);
  if (ratio === null) return null;
  return `${ratio.sign() > 0 ? "+" : ""}${ratio.toFixed(2)}%`;
}
