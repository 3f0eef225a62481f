"""The order bodies, each parsed once from its JSON into typed fields (msgspec Structs).

``POST /orders``, ``PATCH /orders/{id}``, ``POST /risk/check`` and the orders of a batch
or a WebSocket op are read here: one pass of msgspec's decoder turns the request's
bytes into a Struct whose enums are enums, whose ids kept their rule and whose prices,
quantities and times are ``ExactDecimal``: parsed from the decimal string or the JSON
number's own text by ``core.numbers.parse_decimal`` (``GRAMMAR``), never through a float
(a JSON number with a fraction reaches ``parse_decimal`` as a ``Decimal`` of its literal;
one with an exponent is refused, as ``load_json`` refuses it). The same Structs are the
OpenAPI document's request schemas (``schema_of``).

Errors are the API's 400s naming the field (``orders.2.price`` within a batch). A body
that does not parse is read again by ``load_json`` to say why, so that malformed JSON,
nesting deeper than ``MAX_JSON_DEPTH``, text that is not Unicode and an unknown field of
the body itself are reported as for every other body, and before any other fault; only
a refused request pays for that second reading.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping
from decimal import Decimal
from functools import cache
from typing import Annotated, Any, TypeVar

import msgspec

from trading_engine.actors.messages import OrderRequest
from trading_engine.api.schemas import instrument_of, load_json, plain_number
from trading_engine.core.enums import ListType, OrderType, Side, StpMode, TimeInForce
from trading_engine.core.ids import (
    CLIENT_ORDER_ID_PATTERN,
    CLIENT_ORDER_ID_RULE,
    USER_ID_PATTERN,
    USER_ID_RULE,
    ClientOrderId,
    Symbol,
    UserId,
)
from trading_engine.core.instruments import Instrument
from trading_engine.core.numbers import parse_decimal
from trading_engine.errors import InvalidInput

__all__ = [
    "MAX_BATCH",
    "AmendBody",
    "ExactDecimal",
    "ListBody",
    "OrderBatchBody",
    "OrderBody",
    "RiskCheckBody",
    "convert_body",
    "decode_body",
    "order_request",
    "schema_of",
]

S = TypeVar("S", bound=msgspec.Struct)

MAX_BATCH = 100
"""Orders in one batch, and orders one batch cancels."""
_NS = 1_000_000_000
_TEXT_RULE = "must be a non-empty string of at most 64 characters"


class ExactDecimal(Decimal):
    """A price, quantity, amount or time as the client sent it, exactly: a decimal string
    or a JSON number that keeps to ``core.numbers.GRAMMAR`` (non-negative, at most 20
    digits before the point and 18 after)."""

    __slots__ = ()


DECIMAL_SCHEMA: dict[str, Any] = {
    "anyOf": [{"type": "string", "examples": ["30000.5"]}, {"type": "number"}],
    "description": "a decimal string or a JSON number (parsed exactly, never as float)",
}

Name = Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
UserIdIn = Annotated[str, msgspec.Meta(pattern=f"^{USER_ID_PATTERN}$")]
ClientOrderIdIn = Annotated[str, msgspec.Meta(pattern=f"^{CLIENT_ORDER_ID_PATTERN}$")]
_ACTING_FOR = msgspec.Meta(description="whom to act for (admin key only)")
_UNIX_SECONDS = msgspec.Meta(description="Unix seconds, for GTD")


class OrderBody(msgspec.Struct, forbid_unknown_fields=True, kw_only=True, frozen=True):
    """A new order."""

    user_id: Annotated[UserIdIn | None, _ACTING_FOR] = None
    symbol: Name
    side: Side
    type: OrderType
    quantity: Annotated[
        ExactDecimal | None,
        msgspec.Meta(description="in the base asset; required unless quote_quantity is given"),
    ] = None
    display_quantity: Annotated[
        ExactDecimal | None,
        msgspec.Meta(
            description=(
                "a limit GTC or GTD order, below its quantity: an iceberg, which shows slices "
                "of this size in the book and market data and hides the rest"
            )
        ),
    ] = None
    quote_quantity: Annotated[
        ExactDecimal | None,
        msgspec.Meta(
            description=(
                "a market order on a spot symbol, instead of quantity: the most of the quote "
                "asset to spend (buy) or receive (sell), fees included, filling whole lots; a "
                "buy holds exactly this much"
            )
        ),
    ] = None
    price: ExactDecimal | None = None
    stop_price: ExactDecimal | None = None
    trailing_delta: Annotated[
        ExactDecimal | None,
        msgspec.Meta(
            description=(
                "trailing_stop and trailing_stop_limit: the stop price's distance from the best "
                "trade price since the order was armed (or trailing_bps)"
            )
        ),
    ] = None
    trailing_bps: Annotated[
        int | None,
        msgspec.Meta(description="instead of trailing_delta: the distance in basis points"),
    ] = None
    activation_price: Annotated[
        ExactDecimal | None,
        msgspec.Meta(
            description=(
                "a trailing stop is armed only once a trade reaches it in the order's favour "
                "(a sell at or above, a buy at or below); armed at once if absent"
            )
        ),
    ] = None
    limit_offset: Annotated[
        ExactDecimal | None,
        msgspec.Meta(
            description=(
                "trailing_stop_limit: its limit price's distance beyond the stop price when it "
                "triggers (below for a sell, above for a buy)"
            )
        ),
    ] = None
    time_in_force: TimeInForce | None = None
    expire_time: Annotated[ExactDecimal | None, _UNIX_SECONDS] = None
    post_only: bool | None = None
    client_order_id: ClientOrderIdIn | None = None
    stp: StpMode | None = None
    reduce_only: Annotated[
        bool,
        msgspec.Meta(
            description=(
                "margin symbols only (400 on a spot symbol): the order may only reduce the "
                "position; rejected (reduce_only_would_increase) when flat or on its side, "
                "accepted for at most the position's size, and cut or cancelled (reason "
                "reduce_only) if the position shrinks while it rests"
            )
        ),
    ] = False


class AmendBody(msgspec.Struct, forbid_unknown_fields=True, kw_only=True, frozen=True):
    """A new price and/or quantity for a resting order."""

    price: ExactDecimal | None = None
    quantity: ExactDecimal | None = None


class RiskCheckBody(msgspec.Struct, forbid_unknown_fields=True, kw_only=True, frozen=True):
    """An order to check against the risk rules without placing it."""

    user_id: UserIdIn | None = None
    order: OrderBody


class OrderBatchBody(msgspec.Struct, forbid_unknown_fields=True, kw_only=True, frozen=True):
    """Up to 100 orders of one user, placed in the order given.

    For the document: the route reads the orders one by one (``convert_body``), so that
    a bad order is its own item's 400, not the batch's."""

    user_id: Annotated[UserIdIn | None, _ACTING_FOR] = None
    orders: Annotated[list[OrderBody], msgspec.Meta(min_length=1, max_length=MAX_BATCH)]


class ListBody(msgspec.Struct, forbid_unknown_fields=True, kw_only=True, frozen=True):
    """A new order list: its orders, each a complete order's body, on one symbol (``oco``:
    the take-profit leg, then the stop-loss leg; ``oto``: the working order, then the
    pending one; ``otoco``: the working order, the take-profit leg, the stop-loss leg)."""

    user_id: Annotated[UserIdIn | None, _ACTING_FOR] = None
    type: ListType
    orders: Annotated[list[OrderBody], msgspec.Meta(min_length=2, max_length=3)]


def _dec_hook(kind: type, value: Any) -> Any:
    if kind is ExactDecimal:
        try:
            return ExactDecimal(parse_decimal(value, field="-"))
        except InvalidInput as exc:  # msgspec names the field: see _explain
            raise ValueError(exc.message.removeprefix("-: ")) from None
    raise NotImplementedError(kind)


def _schema_hook(kind: type) -> dict[str, Any]:
    if kind is ExactDecimal:
        return dict(DECIMAL_SCHEMA)
    raise NotImplementedError(kind)


@cache
def _decoder(struct: type[S]) -> msgspec.json.Decoder[S]:
    return msgspec.json.Decoder(struct, dec_hook=_dec_hook, float_hook=plain_number)


def decode_body(raw: bytes | str, struct: type[S]) -> S:
    """``raw``, a request's body, parsed once into ``struct``; raises ``InvalidInput``
    naming the first field at fault (see the module's docstring)."""
    try:
        body: S = _decoder(struct).decode(raw)
    except msgspec.ValidationError as exc:
        read = load_json(raw)  # its faults come first, as for every body
        raise _unknown_field(read, struct, "") or _explain(exc, "") from None
    except (msgspec.DecodeError, RecursionError) as exc:
        load_json(raw)  # says why: malformed, too deep, not Unicode, not an object
        raise InvalidInput("body", f"malformed JSON: {exc}") from None
    return body


def convert_body(item: object, struct: type[S], *, at: str = "") -> S:
    """``item``, already read from JSON by ``load_json`` (numbers as ``int`` or
    ``Decimal``), checked into ``struct`` as ``decode_body`` checks a body; its fields
    named under ``at`` (``orders.2``). Raises ``InvalidInput``."""
    if isinstance(item, dict) and (unknown := _unknown_field(item, struct, at)) is not None:
        raise unknown
    try:
        body: S = msgspec.convert(item, struct, dec_hook=_dec_hook)
    except msgspec.ValidationError as exc:
        raise _explain(exc, at) from None
    return body


def _unknown_field(body: Mapping[str, Any], struct: type[S], at: str) -> InvalidInput | None:
    unknown = sorted(set(body) - set(struct.__struct_fields__))
    if not unknown:
        return None
    return InvalidInput(".".join(filter(None, (at, unknown[0]))), "is not a known field")


_ERROR = re.compile(r"(?s)(?P<message>.*?)(?: - at `\$(?P<path>[^`]*)`)?")
_NAMED = re.compile(r"Object (?P<what>contains unknown|missing required) field `(?P<name>[^`]*)`")


def _explain(exc: msgspec.ValidationError, at: str) -> InvalidInput:
    """msgspec's message, as the API's 400: the field by its dotted path under ``at``, and
    the rule it breaks in the API's words."""
    matched = _ERROR.fullmatch(str(exc))
    assert matched is not None, "the pattern matches any text"
    message, path = matched["message"], matched["path"] or ""
    parts = [at, *re.findall(r"[^.\[\]]+", path)]
    named = _NAMED.fullmatch(message)
    if named is not None:
        said = "is not a known field" if named["what"] == "contains unknown" else "is required"
        return InvalidInput(".".join(filter(None, [*parts, named["name"]])), said)
    if not path:  # the body, or the order within a larger message, is not an object
        return InvalidInput(at or "body", "must be an object" if at else "must be a JSON object")
    return InvalidInput(".".join(filter(None, parts)), _RULES.get(parts[-1], message))


def _one_of(kind: type[enum.Enum]) -> str:
    return "must be one of " + ", ".join(str(member.value) for member in kind)


_RULES: dict[str, str] = {
    "symbol": _TEXT_RULE,
    "side": _one_of(Side),
    "type": _one_of(OrderType),
    "time_in_force": _one_of(TimeInForce),
    "stp": _one_of(StpMode),
    "post_only": "must be true or false",
    "reduce_only": "must be true or false",
    "user_id": f"must be {USER_ID_RULE}",
    "client_order_id": f"must be {CLIENT_ORDER_ID_RULE}",
    "order": "must be an object",
    "orders": f"must be a list of 1 to {MAX_BATCH} orders",
}
"""The rule a field breaks, in the words the API uses for it wherever it is named
(``schemas.text``, ``schemas.choice``); a decimal's fault is ``parse_decimal``'s own."""


def order_request(
    body: OrderBody, instruments: Mapping[Symbol, Instrument], user_id: UserId
) -> OrderRequest:
    """The engine's ``OrderRequest`` for ``body``: prices and quantities on the symbol's
    grids; raises ``InvalidInput`` (off the grid, not positive, a missing price) or an
    ``ApiError`` 404 for an unknown symbol."""
    if "\x00" in body.symbol:
        raise InvalidInput("symbol", _TEXT_RULE)
    instrument = instrument_of(instruments, body.symbol, field="symbol")
    quantity = quote_quantity = 0
    if body.quote_quantity is not None:
        if body.quantity is not None:
            raise InvalidInput("quote_quantity", "is instead of quantity: send one of them")
        if body.type is not OrderType.MARKET:
            raise InvalidInput("quote_quantity", "is only for a market order")
        quote_quantity = instrument.quote_to_units(body.quote_quantity, field="quote_quantity")
    elif body.quantity is None:
        raise InvalidInput("quantity", "is required")
    else:
        quantity = instrument.quantity_to_lots(body.quantity)
    if body.trailing_bps is not None and body.trailing_bps <= 0:
        raise InvalidInput("trailing_bps", "must be a positive integer number of basis points")
    display_quantity = 0
    if body.display_quantity is not None:
        display_quantity = instrument.quantity_to_lots(
            body.display_quantity, field="display_quantity"
        )
    price = 0 if body.price is None else instrument.price_to_ticks(body.price)
    stop_price = 0
    if body.stop_price is not None:
        stop_price = instrument.price_to_ticks(body.stop_price, field="stop_price")
    expire_time = None if body.expire_time is None else int(body.expire_time * _NS)
    client_order_id = body.client_order_id
    return OrderRequest(
        user_id=user_id,
        symbol=instrument.symbol,
        side=body.side,
        type=body.type,
        quantity=quantity,
        price=price,
        stop_price=stop_price,
        time_in_force=body.time_in_force or TimeInForce.GTC,
        post_only=bool(body.post_only),
        stp=body.stp or StpMode.CANCEL_NEWEST,
        client_order_id=None if client_order_id is None else ClientOrderId(client_order_id),
        expire_time=expire_time,
        reduce_only=body.reduce_only,
        quote_quantity=quote_quantity,
        trailing_delta=_ticks(body.trailing_delta, "trailing_delta", instrument),
        trailing_bps=body.trailing_bps or 0,
        activation_price=_ticks(body.activation_price, "activation_price", instrument),
        limit_offset=_ticks(body.limit_offset, "limit_offset", instrument, zero=True),
        display_quantity=display_quantity,
    )


def _ticks(raw: Decimal | None, name: str, instrument: Instrument, *, zero: bool = False) -> int:
    """A price or price distance in ticks, 0 if absent; raises ``InvalidInput`` unless on
    the tick grid and positive (or zero, with ``zero``)."""
    if raw is None or (zero and raw == 0):
        return 0
    return instrument.price_to_ticks(raw, field=name)


def schema_of(struct: type[msgspec.Struct]) -> tuple[dict[str, Any], dict[str, Any]]:
    """``struct``'s JSON Schema for the OpenAPI document, and the schemas it refers to
    (its enums and nested bodies), keyed by name as ``#/components/schemas/{name}``."""
    _, components = msgspec.json.schema_components(
        [struct], schema_hook=_schema_hook, ref_template="#/components/schemas/{name}"
    )
    return components.pop(struct.__name__), components
