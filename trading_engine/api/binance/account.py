"""The signed user's account: balances, commissions, trades; and listen keys."""

from __future__ import annotations

import time
from decimal import Decimal
from typing import Any

from quart import Response, current_app, jsonify

from trading_engine.api.binance.errors import BinanceError
from trading_engine.api.binance.history import Selection, my_trades
from trading_engine.api.binance.listen_keys import ListenKeys
from trading_engine.api.binance.params import Params
from trading_engine.api.binance.signing import api_user, signed
from trading_engine.api.binance.symbols import fixed, instrument_for
from trading_engine.api.context import ctx
from trading_engine.api.schemas import asset_decimals
from trading_engine.core.instruments import Instrument

__all__ = ["register"]

_BPS = Decimal(10_000)


def _rate(bps: int) -> str:
    return fixed(Decimal(bps) / _BPS, 8)


def _rates(instrument: Instrument) -> dict[str, str]:
    return {
        "maker": _rate(instrument.maker_fee_bps),
        "taker": _rate(instrument.taker_fee_bps),
        "buyer": _rate(0),
        "seller": _rate(0),
    }


async def get_account() -> Response:
    """Balances (``free`` = available, ``locked`` = held) and commissions. Fees are per
    symbol here; the account-wide ones are the highest any listed symbol charges."""
    user, params = await signed(("omitZeroBalances",))
    omit = params.choice("omitZeroBalances", ("true", "false")) == "true"
    instruments = ctx().engine.instruments()
    balances = []
    for asset, (available, held) in sorted((await ctx().engine.balances(user)).items()):
        if omit and not available and not held:
            continue
        places = asset_decimals(instruments, asset)
        balances.append(
            {
                "asset": asset,
                "free": fixed(Decimal(available).scaleb(-places), places),
                "locked": fixed(Decimal(held).scaleb(-places), places),
            }
        )
    maker = max((i.maker_fee_bps for i in instruments.values()), default=0)
    taker = max((i.taker_fee_bps for i in instruments.values()), default=0)
    return jsonify(
        {
            "makerCommission": maker,
            "takerCommission": taker,
            "buyerCommission": 0,
            "sellerCommission": 0,
            "commissionRates": {
                "maker": _rate(maker),
                "taker": _rate(taker),
                "buyer": _rate(0),
                "seller": _rate(0),
            },
            "canTrade": True,
            "canWithdraw": False,
            "canDeposit": False,
            "brokered": False,
            "requireSelfTradePrevention": False,
            "preventSor": False,
            "updateTime": time.time_ns() // 1_000_000,
            "accountType": "SPOT",
            "balances": balances,
            "permissions": ["SPOT"],
            "uid": 0,
        }
    )


async def get_commission() -> Response:
    _, params = await signed(("symbol",))
    instrument = instrument_for(ctx().engine.instruments(), params.need("symbol"))
    zero = {"maker": _rate(0), "taker": _rate(0), "buyer": _rate(0), "seller": _rate(0)}
    return jsonify(
        {
            "symbol": params.need("symbol"),
            "standardCommission": _rates(instrument),
            "specialCommission": zero,
            "taxCommission": zero,
            "discount": {
                "enabledForAccount": False,
                "enabledForSymbol": False,
                "discountAsset": None,
                "discount": _rate(0),
            },
        }
    )


async def get_my_trades() -> Response:
    """The user's fills in ``symbol`` from the whole history (``history.my_trades``), by
    trade ``id`` ascending."""
    user, params = await signed(("symbol", "orderId", "startTime", "endTime", "fromId", "limit"))
    instrument = instrument_for(ctx().engine.instruments(), params.need("symbol"))
    order_id = params.integer("orderId")
    chosen = Selection(params, "fromId")
    timed = chosen.start is not None or chosen.end is not None
    if timed and (chosen.from_id is not None or order_id is not None):
        raise BinanceError(400, -1128, "Combination of optional parameters invalid.")
    return jsonify(await my_trades(user, instrument, order_id, chosen, params.limit(500, 1000)))


async def get_rate_limit_order() -> Response:
    """The order rate limits: none of their own here (orders take from the request
    buckets, which answer -1003), so an empty list."""
    await signed(())
    return jsonify([])


def _listen_keys() -> ListenKeys:
    keys: ListenKeys = current_app.config[ListenKeys.CONFIG_KEY]
    return keys


async def post_listen_key() -> Response:
    user = await api_user()
    await Params.of_request(())
    return jsonify({"listenKey": _listen_keys().create(user)})


async def _with_listen_key(keep: bool) -> Response:
    user = await api_user()
    params = await Params.of_request(("listenKey",))
    key = params.need("listenKey")
    keys = _listen_keys()
    done = keys.keep_alive(key, user) if keep else keys.close(key, user)
    if not done:
        raise BinanceError(400, -1125, "This listenKey does not exist.")
    return jsonify({})


async def put_listen_key() -> Response:
    return await _with_listen_key(keep=True)


async def delete_listen_key() -> Response:
    return await _with_listen_key(keep=False)


def register(add: Any) -> None:
    add("GET", "account", get_account)
    add("GET", "account/commission", get_commission)
    add("GET", "myTrades", get_my_trades)
    add("GET", "rateLimit/order", get_rate_limit_order)
    add("POST", "userDataStream", post_listen_key)
    add("PUT", "userDataStream", put_listen_key)
    add("DELETE", "userDataStream", delete_listen_key)
