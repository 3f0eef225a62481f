"""Admin: users and API keys, deposits and withdrawals, symbols, halts, surveillance."""

from __future__ import annotations

from quart import Blueprint, Response, jsonify, request

from trading_engine.actors.answers import Alert
from trading_engine.actors.messages import Refused
from trading_engine.api.auth import authenticate, hash_key, new_key
from trading_engine.api.context import ctx
from trading_engine.api.errors import ApiError, error_response, outcome_unknown, status_of
from trading_engine.api.models import (
    Alerts,
    Ed25519Key,
    Ed25519KeyBody,
    HaltBody,
    LimitQuery,
    MoveBody,
    Movement,
    NewSymbolBody,
    NewUser,
    NewUserBody,
    SymbolOut,
    SymbolStatus,
    documented,
    validate_body,
)
from trading_engine.api.orders import _limit
from trading_engine.api.schemas import known_asset, parse_amount, render_instrument, text
from trading_engine.api.secrets import ED25519_SCHEME, HMAC_SCHEME, ed25519_public_key, new_secret
from trading_engine.core.ids import Symbol, parse_user_id
from trading_engine.core.instruments import Instrument
from trading_engine.core.numbers import format_seconds, format_units
from trading_engine.errors import InvalidInput

__all__ = ["blueprint"]

P = "/api/v1/trading"


blueprint = Blueprint("admin", __name__)


async def _admin() -> None:
    principal = await authenticate(ctx().engine, ctx().admin_key)
    if not principal.admin:
        raise ApiError(403, "forbidden", "this needs the admin key")


def _refused(result: Refused) -> Response:
    return error_response(status_of(result.code), result.code, result.message)


@blueprint.post(f"{P}/admin/users")
@documented(NewUser, 403, 409, status=201, body=NewUserBody, admin=True)
async def create_user() -> Response:
    await _admin()
    body = validate_body(await request.get_data(), NewUserBody)
    user_id = parse_user_id(body.get("user_id"))
    owner = None if body.get("owner") is None else parse_user_id(body["owner"], field="owner")
    key, secret = new_key(), new_secret()
    sealed = ((HMAC_SCHEME, ctx().box.seal(secret)),)
    result = await ctx().engine.create_user(user_id, hash_key(key), owner, sealed)
    if isinstance(result, Refused):
        if result.code == "unknown_owner":
            raise InvalidInput("owner", f"{result.message}: the owner is an existing user")
        return _refused(result)
    response = jsonify({"user_id": user_id, "owner": owner, "api_key": key, "api_secret": secret})
    response.status_code = 201
    return response


@blueprint.put(f"{P}/admin/users/<user_id>/ed25519-key")
@documented(Ed25519Key, 403, 404, body=Ed25519KeyBody, admin=True)
async def set_ed25519_key(user_id: str) -> Response:
    """Register the user's Ed25519 public key for the Binance dialect (``/api/v3``): its
    requests may then be signed with the private key instead of the API secret. A later
    key replaces it."""
    await _admin()
    body = validate_body(await request.get_data(), Ed25519KeyBody)
    user = parse_user_id(user_id)
    public_key = ed25519_public_key(body["public_key"])
    result = await ctx().engine.set_credential(user, ED25519_SCHEME, public_key)
    if isinstance(result, Refused):
        return _refused(result)
    return jsonify({"user_id": user, "public_key": public_key})


async def _move(withdraw: bool) -> Response:
    await _admin()
    body = validate_body(await request.get_data(), MoveBody)
    user_id = parse_user_id(body.get("user_id"))
    asset = text(body, "asset") or ""
    decimals = known_asset(ctx().engine.instruments(), asset)
    units = parse_amount(body.get("amount"), decimals)
    mover = ctx().engine.withdraw if withdraw else ctx().engine.deposit
    find_out = f"GET {P}/users/{user_id}/balances shows the balance"
    with outcome_unknown("the withdrawal" if withdraw else "the deposit", find_out):
        result = await mover(user_id, asset, units)
    if isinstance(result, Refused):
        return _refused(result)
    available, held = result
    return jsonify(
        {
            "user_id": user_id,
            "asset": asset,
            "available": format_units(available, decimals),
            "held": format_units(held, decimals),
        }
    )


@blueprint.post(f"{P}/admin/deposits")
@documented(Movement, 403, 404, body=MoveBody, admin=True)
async def deposit() -> Response:
    return await _move(withdraw=False)


@blueprint.post(f"{P}/admin/withdrawals")
@documented(Movement, 403, 404, 422, body=MoveBody, admin=True)
async def withdraw() -> Response:
    return await _move(withdraw=True)


@blueprint.post(f"{P}/admin/symbols")
@documented(SymbolOut, 403, 409, status=201, body=NewSymbolBody, admin=True)
async def add_symbol() -> Response:
    await _admin()
    body = validate_body(await request.get_data(), NewSymbolBody)
    instrument = Instrument.create(
        body["symbol"],
        body["base_asset"],
        body["quote_asset"],
        body["tick_size"],
        body["lot_size"],
        min_quantity=body.get("min_quantity"),
        min_notional=body.get("min_notional"),
        price_band_pct="10" if body.get("price_band_pct") is None else body["price_band_pct"],
        maker_fee_bps=_bps(body, "maker_fee_bps"),
        taker_fee_bps=_bps(body, "taker_fee_bps"),
        mode=body.get("mode") or "spot",
    )
    result = await ctx().engine.add_symbol(instrument)
    if isinstance(result, Refused):
        return _refused(result)
    response = jsonify(render_instrument(instrument, None))
    response.status_code = 201
    return response


@blueprint.post(f"{P}/admin/symbols/<symbol>/halt")
@documented(SymbolStatus, 403, 404, 409, body=HaltBody, admin=True)
async def halt(symbol: str) -> Response:
    await _admin()
    body = validate_body(await request.get_data() or b"{}", HaltBody)
    reason = text(body, "reason", required=False) or "halted by admin"
    result = await ctx().engine.halt(Symbol(symbol), reason)
    if isinstance(result, Refused):
        return _refused(result)
    return jsonify({"symbol": symbol, "status": "halted", "reason": reason})


@blueprint.post(f"{P}/admin/symbols/<symbol>/resume")
@documented(SymbolStatus, 403, 404, 409, admin=True)
async def resume(symbol: str) -> Response:
    await _admin()
    result = await ctx().engine.resume(Symbol(symbol))
    if isinstance(result, Refused):
        return _refused(result)
    return jsonify({"symbol": symbol, "status": "trading"})


@blueprint.get(f"{P}/surveillance/alerts")
@documented(Alerts, 403, query=LimitQuery, admin=True)
async def alerts() -> Response:
    await _admin()
    limit = _limit(request.args.get("limit"), 100, 1000)
    return jsonify(
        {
            "alerts": [
                _alert(a, ctx().engine.instruments()) for a in await ctx().engine.alerts(limit)
            ],
            "self_trades_prevented": await ctx().engine.self_trades_prevented(),
        }
    )


def _alert(alert: Alert, instruments: dict[Symbol, Instrument]) -> dict[str, object]:
    """An alert as the API shows anything: ids and amounts as strings, ``ts`` in seconds."""
    out: dict[str, object] = dict(alert)
    out["ts"] = format_seconds(alert["ts"])
    for name in ("taker_order_id", "maker_order_id"):
        if name in out:
            out[name] = str(out[name])
    if "trade_id" in alert:
        out["trade_id"] = f"{alert['symbol']}:{alert['trade_id']}"
    if "quantity" in alert and alert["symbol"] in instruments:
        out["quantity"] = instruments[alert["symbol"]].quantity_str(alert["quantity"])
    return out


def _bps(body: dict[str, object], name: str) -> int:
    value = body.get(name)
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int):
        raise ApiError(400, "invalid_input", f"{name}: must be an integer number of basis points")
    return value
