"""API keys: the admin key from ``EXCHANGE_API_KEY``, user keys stored hashed.

Every request but public market data and health carries ``X-API-Key``. A
user key acts only as its user (another ``user_id`` is 403); the admin key
may act for anyone. No key or an unknown key is 401.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

import attrs
from quart import g, request

from trading_engine.actors.facade import Engine
from trading_engine.api.errors import ApiError
from trading_engine.core.ids import UserId
from trading_engine.errors import InvalidInput

__all__ = ["Principal", "authenticate", "hash_key", "known_user", "new_key", "user_for"]


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def new_key() -> str:
    return "te_" + secrets.token_urlsafe(24)


@attrs.frozen
class Principal:
    user_id: UserId | None
    admin: bool

    @property
    def bucket(self) -> str:
        """The caller's rate-limit bucket: never the key itself, which would then sit in
        Redis's key names (``te:rl:...``) for anyone who can read them."""
        return "admin" if self.admin else f"user:{self.user_id}"

    def acting_for(self, user_id: object) -> UserId:
        """The user a request acts for; raises 403 unless it is the caller or an admin."""
        if not isinstance(user_id, str) or not user_id:
            if self.user_id is None:
                raise InvalidInput("user_id", "is required (the admin key acts for no one)")
            return self.user_id
        if not self.admin and user_id != self.user_id:
            raise ApiError(403, "forbidden", "this key may only act for its own user")
        return UserId(user_id)


async def authenticate(engine: Engine, admin_key: str) -> Principal:
    """The request's caller, looked up once per request; raises a 401 ``ApiError``."""
    key = request.headers.get("X-API-Key")
    if not key:
        raise ApiError(401, "unauthenticated", "missing X-API-Key header")
    known: Principal | None = g.get("principal")
    if known is None:
        known = g.principal = await principal_for(engine, admin_key, key)
    return known


async def principal_for(engine: Engine, admin_key: str, key: str) -> Principal:
    if hmac.compare_digest(key.encode(), admin_key.encode()):
        return Principal(None, admin=True)
    user_id = await engine.user_by_key(hash_key(key))
    if user_id is None:
        raise ApiError(401, "unauthenticated", "unknown API key")
    return Principal(user_id, admin=False)


async def known_user(engine: Engine, admin_key: str, user_id: object) -> UserId:
    """The user a per-user request reads or acts on, as ``Principal.acting_for`` says.

    Raises a 404 ``unknown_user`` if the admin key names a user who does not exist
    (a user key names only its own user, which does).
    """
    return await user_for(engine, await authenticate(engine, admin_key), user_id)


async def user_for(engine: Engine, principal: Principal, user_id: object) -> UserId:
    """``known_user`` for a caller already known (a WebSocket connection's)."""
    user = principal.acting_for(user_id)
    if principal.admin and not await engine.user_exists(user):
        raise ApiError(404, "unknown_user", f"no user {user}")
    return user
