"""JSON to engine types and back: decimal strings out, exact decimals in.

Requests accept decimal strings or JSON numbers for prices, quantities and
amounts, parsed as ``Decimal`` (never through float); unknown fields,
wrong types and off-grid values are 400s that name the field. The order
bodies are parsed into typed fields in ``bodies.py``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from decimal import Decimal
from typing import Any

from trading_engine import wire
from trading_engine.api.errors import ApiError
from trading_engine.core.algos import algo_id_of
from trading_engine.core.enums import OrderType, RejectReason, Side
from trading_engine.core.events import Trade
from trading_engine.core.ids import OrderId, Symbol, UserId
from trading_engine.core.instruments import DEFAULT_ASSET_DECIMALS, Instrument
from trading_engine.core.numbers import (
    format_decimal,
    format_seconds,
    format_units,
    parse_decimal,
    to_units,
)
from trading_engine.core.risk import Figure, Rejection, Unit
from trading_engine.core.views import OrderView
from trading_engine.errors import InvalidInput, OffGridError

__all__ = [
    "load_json",
    "plain_number",
    "render_fill",
    "render_fills",
    "render_instrument",
    "render_order",
    "render_rejections",
    "render_sent",
]


def _no_constant(name: str) -> Any:
    raise InvalidInput("body", f"{name} is not a number")


def plain_number(literal: str) -> Decimal:
    """A JSON number with a fraction, from its literal, exactly; one with an exponent is
    refused, as the decimal strings are (``core.numbers.GRAMMAR``)."""
    if "e" in literal or "E" in literal:
        raise InvalidInput("body", f"the number {literal} has an exponent: write it plainly")
    return Decimal(literal)


MAX_JSON_DEPTH = 8
"""How deeply a request's JSON may nest objects and arrays (the deepest the API reads is 3)."""


def load_json(raw: bytes | str, allowed: set[str] | None = None) -> dict[str, Any]:
    """A JSON object with numbers as ``Decimal`` or ``int``; raises ``InvalidInput``.

    Refused: malformed JSON, anything but an object, nesting deeper than
    ``MAX_JSON_DEPTH``, and text that is not Unicode (a lone surrogate such as
    ``"\\ud800"``, which JSON can spell but no UTF-8 can carry).
    """
    try:
        value = json.loads(raw or b"null", parse_float=plain_number, parse_constant=_no_constant)
    except RecursionError:
        raise InvalidInput("body", f"nests deeper than {MAX_JSON_DEPTH} levels") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidInput("body", f"malformed JSON: {exc}") from None
    if not isinstance(value, dict):
        raise InvalidInput("body", "must be a JSON object")
    _check_tree(value)
    if allowed is not None:
        unknown = sorted(set(value) - allowed)
        if unknown:
            raise InvalidInput(unknown[0], "is not a known field")
    return value


def _check_tree(root: dict[str, Any]) -> None:
    """Raise ``InvalidInput`` if ``root`` nests too deeply or holds text that is not Unicode."""
    level: list[Any] = [root]
    depth = 1
    while level:
        if depth > MAX_JSON_DEPTH:
            raise InvalidInput("body", f"nests deeper than {MAX_JSON_DEPTH} levels")
        below: list[Any] = []
        for node in level:
            items = node.items() if isinstance(node, dict) else enumerate(node)
            for key, value in items:
                for part in (key, value):
                    if isinstance(part, str) and not part.isascii():
                        _check_unicode(part)
                if isinstance(value, dict | list):
                    below.append(value)
        level = below
        depth += 1


def _check_unicode(value: str) -> None:
    try:
        value.encode()
    except UnicodeEncodeError:
        raise InvalidInput("body", "holds text that is not valid Unicode") from None


def text(body: Mapping[str, Any], name: str, *, required: bool = True) -> str | None:
    value = body.get(name)
    if value is None:
        if required:
            raise InvalidInput(name, "is required")
        return None
    if not isinstance(value, str) or not value or len(value) > 64 or "\x00" in value:
        raise InvalidInput(name, "must be a non-empty string of at most 64 characters")
    return value


def render_order(
    view: OrderView, instrument: Instrument, trades: tuple[Trade, ...] = ()
) -> dict[str, Any]:
    """An order as the API shows it: prices and quantities as decimal strings."""
    algo_id = algo_id_of(view.client_order_id)
    return {
        "order_id": str(view.order_id),
        "client_order_id": view.client_order_id,
        "algo_id": None if algo_id is None else str(algo_id),
        "list_id": str(view.list_id) if view.list_id else None,
        "user_id": view.user_id,
        "symbol": view.symbol,
        "side": str(view.side),
        "type": str(view.type),
        "time_in_force": str(view.time_in_force),
        "price": instrument.price_str(view.price) if view.price else None,
        "stop_price": instrument.price_str(view.stop_price) if view.stop_price else None,
        "protection_price": (
            instrument.price_str(view.protection_price) if view.protection_price else None
        ),
        "trailing_delta": (
            instrument.price_str(view.trailing_delta) if view.trailing_delta else None
        ),
        "trailing_bps": view.trailing_bps or None,
        "activation_price": (
            instrument.price_str(view.activation_price) if view.activation_price else None
        ),
        "limit_offset": (
            instrument.price_str(view.limit_offset)
            if view.type is OrderType.TRAILING_STOP_LIMIT
            else None
        ),
        "quantity": instrument.quantity_str(view.quantity),
        "display_quantity": (
            instrument.quantity_str(view.display_quantity) if view.display_quantity else None
        ),
        "hidden_quantity": (
            instrument.quantity_str(view.hidden) if view.display_quantity else None
        ),
        "quote_quantity": (
            format_units(view.quote_quantity, instrument.quote_decimals)
            if view.quote_quantity
            else None
        ),
        "filled_quantity": instrument.quantity_str(view.filled),
        "remaining_quantity": instrument.quantity_str(view.remaining),
        "average_price": wire.average_price(instrument, view.notional, view.filled),
        "status": str(view.status),
        "reason": view.reason,
        "post_only": view.post_only,
        "reduce_only": view.reduce_only,
        "created_at": format_seconds(view.created_ts),
        "updated_at": format_seconds(view.updated_ts),
        "trades": [render_fill(t, instrument, view.order_id) for t in trades],
    }


def render_sent(name: str, value: object, instrument: Instrument) -> str:
    """A field of a new order as its client sent it, for a message (``ClientIdReused``):
    a price or quantity as a decimal string, a time in seconds, "none" for a price or
    time not given."""
    if value is None or (name in _PRICED and value == 0):
        return "none"
    if isinstance(value, bool):
        return "true" if value else "false"
    if name in _PRICED and isinstance(value, int):
        return instrument.price_str(value)
    if name in ("quantity", "display_quantity") and isinstance(value, int):
        return instrument.quantity_str(value) if value else "none"
    if name == "quote_quantity" and isinstance(value, int):
        return format_units(value, instrument.quote_decimals) if value else "none"
    if name == "expire_time" and isinstance(value, int):
        return format_seconds(value)
    return str(value)


_PRICED = frozenset({"price", "stop_price", "trailing_delta", "activation_price", "limit_offset"})
"""The fields of an order in ticks."""

_WHY: dict[RejectReason, str] = {
    RejectReason.BELOW_MIN_QUANTITY: "quantity {quantity} is below the minimum {min_quantity}",
    RejectReason.BELOW_MIN_NOTIONAL: (
        "notional {notional} {asset} is below the minimum {min_notional} {asset}"
    ),
    RejectReason.OUTSIDE_PRICE_BAND: (
        "price {price} is outside the band {low} to {high} around the reference price {reference}"
    ),
    RejectReason.ABOVE_MAX_ORDER_SIZE: "quantity {quantity} is above the largest order, "
    "{max_order_size}",
    RejectReason.ABOVE_MAX_POSITION: (
        "the position {position} would reach {projected_position} with this order and the "
        "open orders on its side, beyond {max_position_size} either way"
    ),
    RejectReason.TOO_MANY_OPEN_ORDERS: "{open_orders} orders are open, at most "
    "{max_open_orders} may be",
    RejectReason.INSUFFICIENT_FUNDS: "needs {needed} {asset}, {available} {asset} available",
    RejectReason.INSUFFICIENT_MARGIN: (
        "needs {needed} {asset} of margin, {available} {asset} available"
    ),
    RejectReason.REDUCE_ONLY_WOULD_INCREASE: (
        "the position is {position}: a reduce-only order must be on its other side"
    ),
}
"""Each reason's figures in words; a reason without figures is shown by its name alone."""


def render_rejections(
    rejections: Sequence[Rejection], instrument: Instrument, decimals: Callable[[str], int]
) -> tuple[str, dict[str, dict[str, str]]]:
    """Every reason of a rejection, with its figures in words, joined for a message; and
    the figures per reason (those that have any) as decimal strings, with the ``asset``
    of money figures. ``decimals`` gives an asset's decimal places."""
    parts: list[str] = []
    figures: dict[str, dict[str, str]] = {}
    for rejection in rejections:
        reason = str(rejection.reason)
        shown: dict[str, str] = {}
        for figure in rejection.figures:
            shown[figure.name] = _figure(figure, instrument, decimals)
            if figure.unit is Unit.MONEY:
                shown["asset"] = figure.asset
        if shown and rejection.reason in _WHY:
            figures[reason] = shown
            parts.append(f"{reason} ({_WHY[rejection.reason].format(**shown)})")
        else:
            parts.append(reason)
    return "; ".join(parts), figures


def _figure(figure: Figure, instrument: Instrument, decimals: Callable[[str], int]) -> str:
    value = figure.value
    if figure.unit is Unit.PRICE:
        return instrument.price_str(value)
    if figure.unit is Unit.QUANTITY:
        return ("-" if value < 0 else "") + instrument.quantity_str(abs(value))
    if figure.unit is Unit.MONEY:
        return format_units(value, decimals(figure.asset))
    return str(value)


def render_fill(trade: Trade, instrument: Instrument, order_id: OrderId) -> dict[str, Any]:
    """One side of a trade, the side of ``order_id``, as its owner sees it: their order,
    role, side and fee, never the other side's (its order, user or fee), as history
    shows a fill (``api/history.py``)."""
    maker = trade.maker_order_id == order_id
    aggressor = trade.aggressor
    side = aggressor if not maker else (Side.SELL if aggressor is Side.BUY else Side.BUY)
    return {
        "trade_id": f"{trade.symbol}:{trade.trade_id}",
        "symbol": trade.symbol,
        "order_id": str(order_id),
        "role": "maker" if maker else "taker",
        "side": str(side),
        "price": instrument.price_str(trade.price),
        "quantity": instrument.quantity_str(trade.quantity),
        "fee": format_units(
            trade.maker_fee if maker else trade.taker_fee, instrument.quote_decimals
        ),
        "time": format_seconds(trade.ts),
    }


def render_fills(trade: Trade, instrument: Instrument, user_id: UserId) -> list[dict[str, Any]]:
    """``user_id``'s sides of a trade: one, or both for a trade with themselves."""
    mine = [trade.maker_order_id] if trade.maker_user_id == user_id else []
    if trade.taker_user_id == user_id:
        mine.append(trade.taker_order_id)
    return [render_fill(trade, instrument, order_id) for order_id in mine]


def render_instrument(instrument: Instrument, halted: str | None) -> dict[str, Any]:
    return {
        "symbol": instrument.symbol,
        "base_asset": instrument.base_asset,
        "quote_asset": instrument.quote_asset,
        "tick_size": format_decimal(instrument.tick_size),
        "lot_size": format_decimal(instrument.lot_size),
        "min_quantity": instrument.quantity_str(instrument.min_quantity),
        "price_band_pct": format_decimal(Decimal(instrument.price_band_bps) / 100),
        "maker_fee_bps": instrument.maker_fee_bps,
        "taker_fee_bps": instrument.taker_fee_bps,
        "mode": str(instrument.mode),
        "status": "halted" if halted else "trading",
        "halt_reason": halted,
    }


def asset_decimals(instruments: Mapping[Symbol, Instrument], asset: str) -> int:
    """The decimal places of ``asset``'s minor unit, from any instrument that trades it."""
    decimals = _listed_decimals(instruments, asset)
    return DEFAULT_ASSET_DECIMALS if decimals is None else decimals


def _listed_decimals(instruments: Mapping[Symbol, Instrument], asset: str) -> int | None:
    for instrument in instruments.values():
        if instrument.base_asset == asset:
            return instrument.base_decimals
        if instrument.quote_asset == asset:
            return instrument.quote_decimals
    return None


def instrument_of(
    instruments: Mapping[Symbol, Instrument], symbol: str, *, field: str | None = None
) -> Instrument:
    """The listed instrument ``symbol``; raises a 404 ``symbol_unknown`` (naming ``field``
    when the symbol came in a body or query field), wherever a symbol is named."""
    instrument = instruments.get(Symbol(symbol))
    if instrument is None:
        raise ApiError(404, "symbol_unknown", f"no symbol {symbol!r}", field=field)
    return instrument


def known_asset(instruments: Mapping[Symbol, Instrument], asset: str) -> int:
    """The decimal places of a listed asset's minor unit (one a listed symbol trades);
    raises a 404 ``asset_unknown`` naming the field ``asset``."""
    decimals = _listed_decimals(instruments, asset)
    if decimals is not None:
        return decimals
    raise ApiError(
        404, "asset_unknown", f"no asset {asset!r}: list a symbol that trades it first",
        field="asset",
    )  # fmt: skip


def parse_amount(raw: object, decimals: int, *, field: str = "amount") -> int:
    """A positive amount of an asset in its minor units; raises ``InvalidInput``."""
    value = parse_decimal(raw, field=field)
    if value <= 0:
        raise InvalidInput(field, "must be positive")
    try:
        return to_units(value, Decimal(10) ** -decimals, field=field)
    except OffGridError:
        raise InvalidInput(field, f"has more than {decimals} decimal places") from None
