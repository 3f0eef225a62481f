"""The API's request and response models: one source for validation and the OpenAPI document.

The order bodies (a new order, an amend, a risk check, a batch) are msgspec Structs
in ``bodies.py``, parsed once into typed fields. The other request bodies (admin,
settlement) are read with ``load_json`` (numbers as ``Decimal`` or ``int``, never
float), checked against their model here, and then parsed into engine types from the
same dict. A model failure is a 400 in the error shape, naming the first offending
field (an unknown field first). Prices, quantities and amounts are decimal strings or
JSON numbers; the models check only that, and leave the exact parsing, the grids and
the ranges to ``schemas.py`` and the instruments.

``documented`` attaches the models, the error responses and the security requirement
to a route for quart-schema's OpenAPI 3.1 document (``/api/v1/openapi.json``).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from decimal import Decimal
from typing import Annotated, Any, Literal, TypeVar

import msgspec
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PlainValidator,
    StrictInt,
    StrictStr,
    ValidationError,
    WithJsonSchema,
)
from quart_schema import (
    document_querystring,
    document_request,
    document_response,
    security_scheme,
)

from trading_engine.api.bodies import DECIMAL_SCHEMA, MAX_BATCH
from trading_engine.api.schemas import load_json
from trading_engine.core.algos import MAX_SLICES, AlgoStatus, AlgoType
from trading_engine.core.dead_man import MAX_TIMEOUT_MS
from trading_engine.core.enums import ListStatus, ListType, OrderType, Side, TimeInForce
from trading_engine.core.ids import (
    USER_ID_PATTERN,
    USER_ID_RULE,
)
from trading_engine.errors import InvalidInput

__all__ = ["REQUIRED_ROLE", "ROLE_ATTRIBUTE", "documented", "validate_body"]

F = TypeVar("F", bound=Callable[..., Any])


def _decimal_like(value: object) -> object:
    if isinstance(value, bool) or not isinstance(value, str | int | Decimal):
        raise ValueError("must be a decimal string or a number")  # noqa: TRY004
    return value


# A price, quantity or amount as it arrives: a decimal string or a JSON number (read as
# ``Decimal`` or ``int``). The value passes through unchanged for ``schemas.py`` to parse.
DecimalIn = Annotated[
    str | int | Decimal,
    PlainValidator(_decimal_like),
    WithJsonSchema(DECIMAL_SCHEMA),
]
Name = Annotated[StrictStr, Field(min_length=1, max_length=64)]


def _matching(pattern: str, rule: str) -> Callable[[object], object]:
    """A check that a string matches ``pattern``: a 400 stating ``rule`` if it does not."""
    compiled = re.compile(pattern)

    def check(value: object) -> object:
        if not isinstance(value, str) or not compiled.fullmatch(value):
            raise ValueError(f"must be {rule}")
        return value

    return check


UserIdIn = Annotated[
    str,
    PlainValidator(_matching(USER_ID_PATTERN, USER_ID_RULE)),
    WithJsonSchema({"type": "string", "pattern": f"^{USER_ID_PATTERN}$"}),
]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _timeout_ms(value: object) -> object:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_TIMEOUT_MS:
        raise ValueError(
            f"must be an integer number of milliseconds from 0 (disarm) to {MAX_TIMEOUT_MS} "
            "(one day)"
        )
    return value


TimeoutMsIn = Annotated[
    int,
    PlainValidator(_timeout_ms),
    WithJsonSchema(
        {
            "type": "integer",
            "minimum": 0,
            "maximum": MAX_TIMEOUT_MS,
            "description": "milliseconds from now; 0 disarms the switch",
        }
    ),
]


class CancelAllAfterBody(_Body):
    """Arm the dead man's switch: unless called again within ``timeout_ms``, every open
    order of the user is cancelled, in every symbol; 0 disarms it."""

    user_id: UserIdIn | None = Field(None, description="whose switch (admin key only)")
    timeout_ms: TimeoutMsIn


class NewUserBody(_Body):
    user_id: UserIdIn
    owner: UserIdIn | None = None


class MoveBody(_Body):
    """A deposit or withdrawal."""

    user_id: UserIdIn
    asset: Name
    amount: DecimalIn


class NewSymbolBody(_Body):
    symbol: Name
    base_asset: Name
    quote_asset: Name
    tick_size: DecimalIn
    lot_size: DecimalIn
    min_quantity: DecimalIn | None = None
    min_notional: DecimalIn | None = None
    price_band_pct: DecimalIn | None = None
    maker_fee_bps: StrictInt | None = None
    taker_fee_bps: StrictInt | None = None
    mode: Name | None = None


class Ed25519KeyBody(_Body):
    public_key: StrictStr = Field(
        max_length=400,
        description="an Ed25519 public key: PEM (SubjectPublicKeyInfo), or base64 of its "
        "32 raw bytes",
    )


class HaltBody(_Body):
    reason: Name | None = None


class SettleBody(_Body):
    trade_ids: list[StrictStr] = Field(max_length=1000)


def validate_body(raw: bytes | str, model: type[BaseModel]) -> dict[str, Any]:
    """The body as a dict (numbers exact) once ``model`` accepts it; raises ``InvalidInput``."""
    return check_body(load_json(raw), model)


def check_body(body: Any, model: type[BaseModel], *, at: str = "") -> dict[str, Any]:
    """``body`` once ``model`` accepts it; raises ``InvalidInput`` naming the first field at
    fault, under ``at`` (``orders.2.price`` for an order in a batch)."""
    try:
        model.model_validate(body)
    except ValidationError as exc:
        errors = sorted(exc.errors(), key=lambda e: e["type"] != "extra_forbidden")
        first = errors[0]
        field = ".".join([*([at] if at else []), *(str(part) for part in first["loc"])])
        message = {"extra_forbidden": "is not a known field", "missing": "is required"}.get(
            first["type"], str(first["msg"]).removeprefix("Value error, ")
        )
        raise InvalidInput(field or "body", message) from None
    assert isinstance(body, dict)
    return body


# Responses.


class FillOut(BaseModel):
    """One side of a trade, as its owner sees it: never the other side's order or fee."""

    trade_id: str
    symbol: str
    order_id: str = Field(description="the owner's order")
    role: str = Field(description="maker or taker")
    side: Side = Field(description="the owner's side")
    price: str
    quantity: str
    fee: str = Field(description="in the quote asset; negative: a rebate")
    time: str


class OrderFields(BaseModel):
    """What every view of an order has: decimal strings, times as Unix seconds."""

    order_id: str
    client_order_id: str | None
    symbol: str
    side: Side
    type: OrderType
    time_in_force: TimeInForce
    price: str | None = Field(
        description=(
            "the limit price the client sent (limit, stop_limit, take_profit_limit); null for none"
        )
    )
    stop_price: str | None = Field(
        description=(
            "stop and take-profit orders: the trade price that triggers them (a stop when the "
            "price moves against the order: a buy at or above, a sell at or below; a "
            "take-profit when it moves in its favour: a sell at or above, a buy at or below); "
            "a trailing stop's current one, null until armed"
        )
    )
    protection_price: str | None = Field(
        description=(
            "market, stop and take_profit orders: the worst price the order may trade at, the "
            "edge of the price band that the engine set (around the reference price, or the "
            "stop price) and that a buy's hold covers; null for orders with a limit price"
        )
    )
    quantity: str = Field(
        description="a quote-sized market order's: the most lots it may fill (the engine's cap)"
    )
    quote_quantity: str | None = Field(
        description="a quote-sized market order's quote amount; null for any other"
    )
    display_quantity: str | None = Field(None, description="an iceberg's slice size, else null")
    hidden_quantity: str | None = Field(
        None, description="an iceberg's remainder that the book does not show now, else null"
    )
    trailing_delta: str | None = Field(None, description="a trailing stop's, else null")
    trailing_bps: int | None = Field(None, description="a trailing stop's, else null")
    activation_price: str | None = Field(None, description="a trailing stop's, else null")
    limit_offset: str | None = Field(None, description="a trailing stop-limit's, else null")
    list_id: str | None = Field(
        None, description="the order list (POST /order-lists) it belongs to; null for none"
    )
    algo_id: str | None = Field(
        description="the algorithm (POST /algos) that sent it as a child order; null for none"
    )
    filled_quantity: str
    remaining_quantity: str
    average_price: str | None
    status: str
    reason: str | None
    reduce_only: bool
    post_only: bool
    created_at: str
    updated_at: str


class Order(OrderFields):
    """An order as the engine holds it, and its fills."""

    user_id: str
    trades: list[FillOut] = Field(
        description="its fills, oldest first: those that filled_quantity counts"
    )


class ErrorDetail(BaseModel):
    model_config = ConfigDict(extra="allow")

    code: str
    message: str
    field: str | None = Field(None, description="the request field at fault, for 400s")
    reasons: list[str] | None = Field(None, description="every reason, for a rejected order")
    figures: dict[str, dict[str, str]] | None = Field(
        None,
        description=(
            "rejected: per reason that has any, the figures that show why, as decimal strings "
            "(outside_price_band: price, low, high, reference; insufficient_funds and "
            "insufficient_margin: asset, needed, available; below_min_quantity: quantity, "
            "min_quantity; below_min_notional: asset, notional, min_notional; "
            "above_max_order_size: quantity, max_order_size; above_max_position: position, "
            "projected_position, max_position_size; too_many_open_orders: open_orders, "
            "max_open_orders; reduce_only_would_increase: position)"
        ),
    )
    order: Order | None = Field(None, description="the rejected order, when one was recorded")
    order_id: str | None = Field(
        None, description="client_order_id_reused: the order that has the client_order_id"
    )
    differs: list[str] | None = Field(
        None,
        description=(
            "client_order_id_reused: each field of the resend that differs from the "
            "original's (symbol, side, type, quantity, price, stop_price, time_in_force, "
            "expire_time, post_only, stp, reduce_only)"
        ),
    )


class ErrorResponse(BaseModel):
    """An error: 400 bad input, 401/403 authentication, 404 unknown, 409 conflict, 422
    rejected, 429 rate limited, 503 halted or unavailable."""

    error: ErrorDetail


class OrderList(BaseModel):
    orders: list[Order]


class CancelledList(BaseModel):
    cancelled: list[Order]


class CancelBatchBody(_Body):
    """Up to 100 of the caller's orders to cancel, by id or by client order id."""

    user_id: UserIdIn | None = Field(None, description="whose orders (admin key only)")
    order_ids: list[StrictStr] | None = Field(None, max_length=MAX_BATCH)
    client_order_ids: list[StrictStr] | None = Field(None, max_length=MAX_BATCH)


class BatchItem(BaseModel):
    """One item's answer: its status and either the order or the error, as the single
    route (``POST /orders``, ``DELETE /orders/{id}``) would have answered it."""

    status: int
    data: Order | None = None
    error: ErrorDetail | None = None


class BatchResults(BaseModel):
    results: list[BatchItem] = Field(description="one per item, in the order given")


class FillList(BaseModel):
    trades: list[FillOut]


class PublicTrade(BaseModel):
    """A trade on the public tape: no order ids, users or fees, which are the parties' own."""

    trade_id: str
    symbol: str
    price: str
    quantity: str
    side: Side = Field(description="the aggressor's (taker's) side")
    time: str


class PublicTradeList(BaseModel):
    trades: list[PublicTrade]


class BalanceOut(BaseModel):
    available: str
    held: str


class Balances(BaseModel):
    """A user's balances by asset, as decimal strings."""

    user_id: str
    balances: dict[str, BalanceOut]


class RiskLimits(BaseModel):
    enabled: bool
    max_order_size: str | None
    max_position_size: str | None
    max_open_orders: int | None


class MarginPosition(BaseModel):
    quantity: str
    entry_price: str | None
    mark_price: str | None
    liquidation_price: str | None


class MarginAsset(BaseModel):
    collateral: str
    equity: str
    maintenance: str
    requirement: str
    margin_held: str
    margin_ratio: str | None


class MarginProfile(BaseModel):
    positions: dict[str, MarginPosition]
    assets: dict[str, MarginAsset]


class ArmedSwitch(BaseModel):
    """A dead man's switch that is armed."""

    timeout_ms: int = Field(description="the timeout it was last armed with")
    cancel_at: str = Field(description="when the user's open orders are cancelled (Unix seconds)")


class CancelAllAfter(BaseModel):
    """The user's dead man's switch as set now."""

    user_id: str
    timeout_ms: int
    now: str = Field(description="the engine's time when it was set (Unix seconds)")
    cancel_at: str | None = Field(
        description=(
            "when every open order of the user is cancelled unless the switch is set again "
            "before (Unix seconds, now + timeout_ms); null once disarmed (timeout_ms 0)"
        )
    )


class RiskProfile(BaseModel):
    user_id: str
    balances: dict[str, BalanceOut]
    positions: dict[str, str]
    limits: RiskLimits
    margin: MarginProfile | None
    cancel_all_after: ArmedSwitch | None = Field(
        description=(
            "the user's dead man's switch (POST /orders/cancel-all-after) while armed, else null"
        )
    )


class Hold(BaseModel):
    asset: str
    amount: str


class RiskCheck(BaseModel):
    """Whether the order would pass the pre-trade checks: every failing reason, with the
    message and the figures a rejection of it would give, and the hold it needs."""

    allowed: bool
    reasons: list[str]
    message: str | None = Field(description="as a rejection's; null when allowed")
    figures: dict[str, dict[str, str]] = Field(
        description="per failing reason that has any, its figures, as a rejection shows them"
    )
    hold: Hold | None


class SymbolOut(BaseModel):
    """An instrument and its trading status."""

    symbol: str
    base_asset: str
    quote_asset: str
    tick_size: str
    lot_size: str
    min_quantity: str
    price_band_pct: str
    maker_fee_bps: int
    taker_fee_bps: int
    mode: str
    status: Literal["trading", "halted"]
    halt_reason: str | None


class Symbols(BaseModel):
    symbols: list[SymbolOut]


class OrderBook(BaseModel):
    """Aggregated depth: ``[price, quantity]`` levels, best first."""

    symbol: str
    seq: int
    bids: list[tuple[str, str]]
    asks: list[tuple[str, str]]


class Candle(BaseModel):
    start: int
    open: str
    high: str
    low: str
    close: str
    volume: str
    quote_volume: str
    trades: int


class Candles(BaseModel):
    symbol: str
    interval: str
    candles: list[Candle]


class Ticker(BaseModel):
    model_config = ConfigDict(extra="allow")

    seq: int


class Health(BaseModel):
    status: str


class Ready(BaseModel):
    status: str
    symbols: int


class NewUser(BaseModel):
    user_id: str
    owner: str | None
    api_key: str
    api_secret: str = Field(
        description="signs requests to the Binance-compatible /api/v3 (HMAC-SHA256, with "
        "`X-MBX-APIKEY: <api_key>`); shown once, stored only sealed with the server key"
    )


class Ed25519Key(BaseModel):
    user_id: str
    public_key: str = Field(description="base64 of the key's 32 raw bytes")


class Movement(BaseModel):
    user_id: str
    asset: str
    available: str
    held: str


class SymbolStatus(BaseModel):
    symbol: str
    status: Literal["trading", "halted"]
    reason: str | None = None


class Alerts(BaseModel):
    alerts: list[dict[str, Any]]
    self_trades_prevented: dict[str, int]
    """Per user: how many of their orders self-trade prevention stopped."""


class Settlement(BaseModel):
    """A trade's settlement status. ``price`` and ``quantity`` are null only for a
    trade settled beyond ``KEEP_SETTLED_TRADES`` ago on an engine without read tables."""

    model_config = ConfigDict(extra="allow")

    symbol: str
    price: str | None
    quantity: str | None


class SettleResult(BaseModel):
    model_config = ConfigDict(extra="allow")


# Query strings.


class LimitQuery(BaseModel):
    limit: int | None = Field(None, ge=1, description="at most this many (capped at 1000)")


class ListLookupQuery(BaseModel):
    list_client_id: str = Field(description="the list_client_id the list was placed with")
    user_id: str | None = Field(None, description="whose list (admin key only)")


class UserOrdersQuery(LimitQuery):
    status: Literal["open", "all"] | None = None


class CancelAllQuery(BaseModel):
    user_id: str | None = None
    symbol: str | None = None


class DepthQuery(BaseModel):
    depth: int | None = Field(None, ge=1, description="levels per side (capped at 1000)")


class TradesQuery(LimitQuery):
    symbol: str


class CandlesQuery(LimitQuery):
    interval: str | None = None


REQUIRED_ROLE = "x-required-role"
"""The OpenAPI extension that names the role a route needs: ``admin`` (the admin key
only; a user's key is 403) or ``user`` (a user's key, acting for its own user, or the
admin key, acting for anyone). Public routes have none (and ``security: []``)."""
ROLE_ATTRIBUTE = "_trading_engine_required_role"
"""Where ``documented`` leaves a route's role and its description for the document."""
_ADMIN_ONLY = "Needs the admin key (role admin): a user's key is answered 403 forbidden."


# Order lists (``api/order_lists.py``).


class OrderListOut(BaseModel):
    """An order list and its orders, in the order they were given."""

    list_id: str
    type: ListType
    status: ListStatus = Field(
        description=(
            "open; done (an OCO leg traded or triggered and the other was cancelled, an oto's "
            "pending order was placed, an otoco's pair placed and resolved); cancelled (a "
            "member ended unfilled first, or the list was cancelled); rejected (a pending "
            "member was rejected when its turn came)"
        )
    )
    symbol: str
    user_id: str
    list_client_id: str | None = Field(
        description="the client's id for the list (POST /order-lists), null for none"
    )
    orders: list[Order] = Field(
        description=(
            "each with list_id; a member that waits for the working order to fill has "
            "status pending_new and is not in the book"
        )
    )
    created_at: str
    updated_at: str


# Algorithms (``api/algos.py``).


class AlgoBody(_Body):
    """A new execution algorithm: ``twap`` or ``vwap``."""

    user_id: UserIdIn | None = Field(None, description="whom to act for (admin key only)")
    type: AlgoType
    symbol: Name
    side: Side
    quantity: DecimalIn = Field(description="the parent quantity, on the lot grid")
    duration_s: DecimalIn = Field(
        description="seconds the schedule lasts: above 0, whole nanoseconds, at most 366 days"
    )
    slices: StrictInt = Field(
        ge=1,
        le=MAX_SLICES,
        description=(
            "how many slices, due at equal intervals from the start (the first at once); "
            "a twap's must each be at least one lot and the symbol's minimum quantity"
        ),
    )
    limit_price: DecimalIn | None = Field(
        None,
        description=(
            "each child a limit IOC at this price; without it, a market order bounded by "
            "the price band"
        ),
    )
    participation: DecimalIn | None = Field(
        None,
        description=(
            "vwap only: the share of the volume others traded since the previous slice "
            "that each slice takes, above 0 and at most 1 (default 0.1)"
        ),
    )


class Algo(BaseModel):
    """An execution algorithm and its progress: decimal strings, times as Unix seconds."""

    algo_id: str
    type: AlgoType
    status: AlgoStatus
    reason: str | None = Field(
        description=(
            "why it is paused (symbol_halted: SYMBOL) or failed (insufficient_funds, "
            "schedule_ended, rejected: REASONS, crashed: ...), or cancelled; null otherwise"
        )
    )
    user_id: str
    symbol: str
    side: Side
    quantity: str
    filled_quantity: str
    remaining_quantity: str
    average_price: str | None
    limit_price: str | None
    duration_s: str
    slices: int
    slices_done: int
    participation: str | None = Field(description="vwap only; null for twap")
    children: list[str] = Field(description="its child orders' ids, in the order sent")
    created_at: str
    updated_at: str


class AlgoList(BaseModel):
    algos: list[Algo]


def documented(
    ok: type[BaseModel],
    *errors: int,
    status: int = 200,
    body: type[BaseModel] | type[msgspec.Struct] | None = None,
    query: type[BaseModel] | None = None,
    public: bool = False,
    admin: bool = False,
    access: str | None = None,
    also: Iterable[tuple[int, type[BaseModel]]] = (),
) -> Callable[[F], F]:
    """Document a route: its body, query, success response, error responses, security and
    required role (``admin``: the admin key only; otherwise, unless ``public``, any key).
    ``access`` says in words what each role may do with it, for its description."""

    def decorate(func: F) -> F:
        if not public:
            role = "admin" if admin else "user"
            setattr(func, ROLE_ATTRIBUTE, (role, _ADMIN_ONLY if admin else access))
        func = document_response(ok, status)(func)
        for code, model in also:
            func = document_response(model, code)(func)
        for code in sorted({400, 429, 503, *errors, *(() if public else (401,))}):
            func = document_response(ErrorResponse, code)(func)
        if body is not None:
            func = document_request(body)(func)
        if query is not None:
            func = document_querystring(query)(func)
        if public:
            func = security_scheme([])(func)
        return func

    return decorate
