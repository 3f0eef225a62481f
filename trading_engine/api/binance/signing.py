"""Keys and signatures: who sends a request of the dialect, and whether they signed it.

``X-MBX-APIKEY`` carries the user's API key (the same key ``X-API-Key`` carries
on ``/api/v1``). A signed request also carries ``timestamp`` (milliseconds),
optionally ``recvWindow`` (milliseconds with up to three decimals, at most 60000,
default 5000), and ``signature``
over the total parameters: the query string, then the form body, as sent,
less the ``signature`` pair itself. The signature is either the hex
HMAC-SHA256 of that text with the user's API secret (``api/secrets.py``,
compared in constant time), or the base64 Ed25519 signature of it by the
private key whose public key the user registered.

Order of the checks, as Binance's: the key (-2014 malformed, -2015 unknown,
both 401), the parameters present (-1102), the time (-1021: older than
``recvWindow`` or more than 1 s ahead of the server), then the signature
(-1022). Nothing about the key or secret appears in an error.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import time

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from quart import g, request

from trading_engine.api.auth import hash_key
from trading_engine.api.binance.errors import BAD_SIGNATURE, BinanceError
from trading_engine.api.binance.params import Params, raw_params, request_body
from trading_engine.api.context import ctx
from trading_engine.api.secrets import ED25519_SCHEME, HMAC_SCHEME
from trading_engine.core.ids import UserId

__all__ = [
    "MAX_RECV_WINDOW",
    "api_user",
    "check_signature",
    "key_user",
    "signed",
]

MAX_RECV_WINDOW = 60_000
_DEFAULT_RECV_WINDOW = 5_000
_AHEAD_MS = 1_000
_SIGNED = ("timestamp", "recvWindow", "signature")


async def key_user() -> UserId | None:
    """The user of the request's ``X-MBX-APIKEY``, or None (no key, or not a key)."""
    if "binance_user" in g:
        user: UserId | None = g.binance_user
        return user
    key = request.headers.get("X-MBX-APIKEY")
    user = None
    if key and _well_formed(key):
        user = await ctx().engine.user_by_key(hash_key(key))
    g.binance_user = user
    return user


def _well_formed(key: str) -> bool:
    """Whether ``key`` could be a key at all: printable ASCII with no space, at most 128."""
    return key.isascii() and key.isprintable() and " " not in key and len(key) <= 128


async def api_user() -> UserId:
    """The user of the request's API key; raises -2014 (no key, or not a key's format) or
    -2015 (no such key), both 401."""
    key = request.headers.get("X-MBX-APIKEY")
    if not key or not _well_formed(key):
        raise BinanceError(401, -2014, "API-key format invalid.")
    user = await key_user()
    if user is None:
        raise BinanceError(401, -2015, "Invalid API-key, IP, or permissions for action.")
    return user


async def signed(allowed: tuple[str, ...]) -> tuple[UserId, Params]:
    """The user of a signed request and its parameters (``allowed`` plus the signing ones);
    raises the dialect's errors, in the order the module's docstring gives."""
    user = await api_user()
    query, body = request.query_string, await request_body()
    params = Params(raw_params(query, body), (*allowed, *_SIGNED))
    signature = params.need("signature")
    timestamp = params.integer("timestamp", required=True)
    assert timestamp is not None
    window = _recv_window(params)
    now_us = time.time_ns() // 1_000
    if timestamp * 1_000 > now_us + _AHEAD_MS * 1_000:
        raise BinanceError(
            400, -1021, "Timestamp for this request was 1000ms ahead of the server's time."
        )
    if now_us - timestamp * 1_000 > window:
        raise BinanceError(400, -1021, "Timestamp for this request is outside of the recvWindow.")
    payload = _unsigned(query) + _unsigned(body)
    await check_signature(user, payload, signature)
    return user, params


def _recv_window(params: Params) -> int:
    """``recvWindow`` in microseconds: milliseconds with up to three decimals (``6000.346``),
    at most 60000 (-1131), 5000 if not sent."""
    window = params.decimal("recvWindow")
    if window is None:
        return _DEFAULT_RECV_WINDOW * 1_000
    micros = window * 1_000
    if micros != micros.to_integral_value():
        raise BinanceError(400, -1100, "Illegal characters found in parameter 'recvWindow'.")
    if window > MAX_RECV_WINDOW:
        raise BinanceError(400, -1131, f"recvWindow must be less than {MAX_RECV_WINDOW}.")
    return int(micros)


def _unsigned(raw: bytes) -> bytes:
    """The parameters as sent, less the ``signature`` pair."""
    return b"&".join(part for part in raw.split(b"&") if not part.startswith(b"signature="))


async def check_signature(user: UserId, payload: bytes, signature: str) -> None:
    """Raise -1022 unless ``signature`` signs ``payload`` with one of ``user``'s credentials."""
    credentials = await ctx().engine.credentials(user)
    sealed = credentials.get(HMAC_SCHEME)
    if sealed is not None and len(signature) == 64:
        secret = ctx().box.open(sealed)
        expected = hmac.new(secret.encode(), payload, hashlib.sha256).hexdigest()
        if hmac.compare_digest(expected.encode(), signature.lower().encode()):
            return
    public = credentials.get(ED25519_SCHEME)
    if public is not None and _ed25519_ok(public, payload, signature):
        return
    raise BinanceError(400, -1022, BAD_SIGNATURE)


def _ed25519_ok(public: str, payload: bytes, signature: str) -> bool:
    try:
        key = Ed25519PublicKey.from_public_bytes(base64.b64decode(public, validate=True))
        key.verify(base64.b64decode(signature, validate=True), payload)
    except (InvalidSignature, ValueError, binascii.Error):
        return False
    return True
