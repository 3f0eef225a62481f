"""The Binance-compatible spot dialect under ``/api/v3``, so that ccxt's ``binance``
class (and what is built on it) trades here with configuration only.

A second front end to the same engine as ``/api/v1/trading``: every route
translates names, numbers and errors, then sends the same commands and reads
the same views; the rules (grids, bands, funds, limits) stay in the engine
and ``api/schemas.order_request``. Modules:

- ``symbols``: ``BTC_AIT`` as ``BTCAIT``, numbers as padded decimal strings;
- ``params``: the query string and form body, read as Binance reads them;
- ``errors``: ``{"code", "msg"}`` with Binance's codes and statuses;
- ``signing``: ``X-MBX-APIKEY``, ``timestamp``/``recvWindow``, HMAC or Ed25519;
- ``public``: ping, time, exchangeInfo and market data;
- ``account``, ``trading``, ``lists``: balances, orders, order lists and trades of the
  signed user;
- ``listen_keys``: the user data stream's listen keys;
- ``streams``: the market streams at ``/ws`` and ``/stream`` (``payloads``
  translates our channels), and the routes of the user data stream
  (``user_stream``, ``reports``) at ``/ws/<listenKey>`` and ``/ws-api/v3``;
  ``connection`` serves each such WebSocket.

Rate limits come from the app's limiter (``LIMITER``), the same buckets as
``/api/v1``: a request takes one token from its user's bucket (a valid
``X-MBX-APIKEY``), else its address's, and an empty bucket is -1003 with 429
and ``Retry-After``. Every answer says the weight the bucket's key used this
minute (``X-MBX-USED-WEIGHT-1M``), an order's also the orders it placed in 10
seconds and a day (``X-MBX-ORDER-COUNT-10S``, ``-1D``): counted beside the
bucket, in Redis with ``REDIS_URL`` (``storage/limits.py``). A WebSocket upgrade takes
one token from its address's bucket and a place among the address's connections
(``api/ws_guard.py``), refused as -1003 with 429 (``connection.refuse_upgrade``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from quart import Blueprint, Response, current_app, g, request
from quart_schema import hide
from quart_trio import QuartTrio

from trading_engine.actors.mailbox import EngineBusy
from trading_engine.api.binance import account, lists, public, streams, trading
from trading_engine.api.binance.errors import BinanceError, binance_error_of
from trading_engine.api.binance.listen_keys import ListenKeys
from trading_engine.api.binance.signing import key_user
from trading_engine.api.limits import retry_after
from trading_engine.storage.limits import Limiter, Usage

__all__ = ["PREFIX", "install"]

PREFIX = "/api/v3"

blueprint = Blueprint("binance", __name__, url_prefix=PREFIX)


def _add(method: str, path: str, handler: Callable[[], Awaitable[Response]]) -> None:
    endpoint = f"{method.lower()}_{path.replace('/', '_')}"
    blueprint.add_url_rule(f"/{path}", endpoint, hide(handler), methods=[method])


public.register(_add)
account.register(_add)
trading.register(_add)
lists.register(_add)


_PLACES_ORDERS = {
    ("POST", "order"): 1, ("POST", "order/cancelReplace"): 1, ("POST", "orderList/oco"): 2,
    ("POST", "orderList/oto"): 2, ("POST", "orderList/otoco"): 3,
}  # fmt: skip
"""The routes whose requests count as orders (``X-MBX-ORDER-COUNT-*``), and as how many
(a list's members), as Binance's."""


@blueprint.before_request
async def _rate_limit() -> Response | None:
    limiter: Limiter | None = current_app.config.get("LIMITER")
    if limiter is None:
        return None
    user = await key_user()
    bucket = f"user:{user}" if user is not None else f"ip:{request.remote_addr}"
    path = request.path.removeprefix(PREFIX + "/")
    orders = _PLACES_ORDERS.get((request.method, path), 0)
    wait, usage = await limiter.take_counted(bucket, 1, orders)
    g.binance_usage = (usage, bool(orders))
    if wait <= 0:
        return None
    response = BinanceError(
        429, -1003, "Too many requests; current request rate is over the limit. Please use "
        "the WebSocket streams for live updates to avoid polling the API.",
    ).response()  # fmt: skip
    response.headers["Retry-After"] = retry_after(wait)
    return response


@blueprint.after_request
async def _usage_headers(response: Response) -> Response:
    """Binance's usage headers: the weight (one a request) this UTC minute, on every
    answer, and the orders in these 10 seconds and this UTC day, on an order's."""
    usage: tuple[Usage, bool] | None = g.get("binance_usage")
    if usage is not None:
        counts, placed = usage
        response.headers["X-MBX-USED-WEIGHT-1M"] = str(counts.weight_1m)
        if placed:
            response.headers["X-MBX-ORDER-COUNT-10S"] = str(counts.orders_10s)
            response.headers["X-MBX-ORDER-COUNT-1D"] = str(counts.orders_1d)
    return response


@blueprint.errorhandler(Exception)
async def _error(exc: Exception) -> Response:
    error = binance_error_of(exc)
    path = request.path.removeprefix(PREFIX + "/")
    if isinstance(exc, EngineBusy) and (request.method, path) in _PLACES_ORDERS:
        # A symbol's inbox is full: to an order, Binance's answer for too many new orders,
        # which ccxt (DDoSProtection) and bots back off from and resend.
        error = BinanceError(429, -1015, "Too many new orders.")
    if error.status >= 500 and error.status != 503:
        current_app.logger.exception("unexpected error", exc_info=exc)
    response = error.response()
    if error.status == 429:
        response.headers.setdefault("Retry-After", "1")
    return response


def install(app: QuartTrio) -> None:
    """Register the dialect's routes and keep its listen keys (``ListenKeys``) in the
    app's config, where the user data stream finds them."""
    app.config[ListenKeys.CONFIG_KEY] = ListenKeys()
    app.register_blueprint(blueprint)
    app.register_blueprint(streams.blueprint)
