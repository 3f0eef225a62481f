"""API secrets at rest: sealed with the server key, never stored in plain text.

The Binance dialect signs requests with a secret the server must read back
(HMAC needs the secret itself, not a hash). ``POST /admin/users`` makes one,
shows it once, and hands the engine only ``SecretBox.seal(secret)``: the
journal (PostgreSQL), snapshots and logs hold the sealed form, which is
useless without the server key. The key comes from ``API_SECRETS_KEY`` or a
file generated once in the data directory (``serve.secrets_key_for``); losing
it makes every stored secret unreadable (users then need new ones), so it is
backed up with the data directory (docs/operations.md).

Sealing is Fernet (``cryptography``): AES-128-CBC with an HMAC-SHA256 over
the ciphertext, so a sealed secret altered in storage fails to open rather
than opening to something else.
"""

from __future__ import annotations

import base64
import binascii
import secrets

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from trading_engine.errors import InvalidInput, TradingEngineError

__all__ = [
    "ED25519_SCHEME",
    "HMAC_SCHEME",
    "SealBroken",
    "SecretBox",
    "ed25519_public_key",
    "new_secret",
]

HMAC_SCHEME = "hmac-sha256"
"""The credential scheme of a sealed HMAC secret (``CredentialSet.scheme``)."""
ED25519_SCHEME = "ed25519"
"""The credential scheme of an Ed25519 public key (base64 of its 32 raw bytes): public,
so stored as it is; the private key never reaches the server."""


def ed25519_public_key(text: str) -> str:
    """An Ed25519 public key, PEM or base64 of its raw bytes, as base64 of its raw bytes;
    raises ``InvalidInput`` naming ``public_key``."""
    try:
        if "BEGIN PUBLIC KEY" in text:
            key = serialization.load_pem_public_key(text.encode())
        else:
            key = Ed25519PublicKey.from_public_bytes(base64.b64decode(text, validate=True))
    except (ValueError, binascii.Error, UnsupportedAlgorithm):
        raise InvalidInput("public_key", "is not an Ed25519 public key") from None
    if not isinstance(key, Ed25519PublicKey):
        raise InvalidInput("public_key", "is not an Ed25519 public key")
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return base64.b64encode(raw).decode()


class SealBroken(TradingEngineError):
    """Raised when a sealed secret does not open with the server key: it was sealed with
    another key (the key changed or was lost), or altered in storage."""

    code = "seal_broken"


def new_secret() -> str:
    """A new API secret: 64 hex digits (256 bits), as Binance's secrets look."""
    return secrets.token_hex(32)


class SecretBox:
    """Seals and opens API secrets with one server key (a Fernet key: 32 random bytes,
    URL-safe base64)."""

    def __init__(self, key: bytes | str) -> None:
        try:
            self._fernet = Fernet(key)
        except ValueError:
            raise ValueError("the server key must be 32 bytes in URL-safe base64") from None

    @staticmethod
    def new_key() -> str:
        return Fernet.generate_key().decode()

    @classmethod
    def generate(cls) -> SecretBox:
        """A box with a fresh key, for this process only: what it seals opens in no other."""
        return cls(cls.new_key())

    def seal(self, secret: str) -> str:
        return self._fernet.encrypt(secret.encode()).decode()

    def open(self, sealed: str) -> str:
        """The secret ``sealed`` holds; raises ``SealBroken``."""
        try:
            return self._fernet.decrypt(sealed.encode()).decode()
        except (InvalidToken, ValueError):
            raise SealBroken("a stored API secret does not open with the server key") from None
