"""A request's parameters as Binance reads them: the query string, then a form body
(a parameter sent in both is the query string's).

Each route names the parameters it reads; one it does not is -1104, a
repeated one -1101, an empty one -1105, a missing mandatory one -1102.
Numbers are parsed as ``Decimal`` or ``int`` from their text, never floats.
"""

from __future__ import annotations

from collections.abc import Collection
from decimal import Decimal
from urllib.parse import parse_qsl

from quart import request

from trading_engine.api.binance.errors import BinanceError, empty, illegal, mandatory

__all__ = ["Params", "raw_params", "request_body"]

_MAX_INT = (1 << 63) - 1


async def request_body() -> bytes:
    """The request's body as bytes (a form body, as Binance's signed requests send it)."""
    data = await request.get_data()
    return data if isinstance(data, bytes) else data.encode()


def raw_params(query: bytes, body: bytes) -> list[tuple[str, str]]:
    """The pairs of the query string, then those of the form body whose names the query
    string has not (a parameter sent in both is the query string's, as Binance reads it;
    one repeated within either is left for ``Params``'s -1101); raises -1100 for bytes
    that are not UTF-8 text."""
    pairs = _pairs(query)
    sent = {name for name, _ in pairs}
    return pairs + [(name, value) for name, value in _pairs(body) if name not in sent]


def _pairs(part: bytes) -> list[tuple[str, str]]:
    if not part:
        return []
    try:
        return parse_qsl(part.decode(), keep_blank_values=True, errors="strict")
    except (ValueError, UnicodeDecodeError):
        raise BinanceError(400, -1100, "Illegal characters found in a parameter.") from None


class Params:
    """The parameters of one request, each read at most once by name."""

    def __init__(self, pairs: list[tuple[str, str]], allowed: Collection[str]) -> None:
        self._values: dict[str, str] = {}
        for name, value in pairs:
            if name in self._values:
                raise BinanceError(400, -1101, "Duplicate values for a parameter detected.")
            self._values[name] = value
        unknown = sorted(set(self._values) - set(allowed))
        if unknown:
            raise BinanceError(
                400, -1104,
                f"Not all sent parameters were read; read {len(self._values) - len(unknown)} "
                f"parameter(s) but was sent {len(self._values)}.",
            )  # fmt: skip

    @classmethod
    async def of_request(cls, allowed: Collection[str]) -> Params:
        return cls(raw_params(request.query_string, await request_body()), allowed)

    def part(self, names: dict[str, str]) -> Params:
        """The parameters ``names`` maps (the request's name to the one the part reads it
        as), as a request of their own: an order list's leg (``abovePrice`` as ``price``)."""
        pairs = [(inner, self._values[outer]) for outer, inner in names.items()
                 if outer in self._values]  # fmt: skip
        return Params(pairs, names.values())

    def has(self, name: str) -> bool:
        return name in self._values

    def text(self, name: str, *, required: bool = False, max_length: int = 128) -> str | None:
        value = self._values.get(name)
        if value is None:
            if required:
                raise mandatory(name)
            return None
        if value == "":
            raise empty(name)
        if len(value) > max_length or not value.isprintable():
            raise illegal(name)
        return value

    def need(self, name: str) -> str:
        value = self.text(name, required=True)
        assert value is not None
        return value

    def integer(
        self, name: str, *, required: bool = False, low: int = 0, high: int = _MAX_INT
    ) -> int | None:
        value = self.text(name, required=required)
        if value is None:
            return None
        if not (value.isascii() and value.lstrip("-").isdigit()) or len(value) > 20:
            raise illegal(name)
        number = int(value)
        if not low <= number <= high:
            raise BinanceError(400, -1130, f"Data sent for parameter '{name}' is not valid.")
        return number

    def decimal(self, name: str) -> Decimal | None:
        """A decimal string as the client wrote it (plain digits and one point)."""
        value = self.text(name)
        if value is None:
            return None
        if self.places(name) is None:
            raise illegal(name)
        return Decimal(value)

    def places(self, name: str) -> int | None:
        """How many decimals ``name`` has as the client wrote it, trailing zeros not
        counted (``1.50`` has 1); None if it is absent or not a plain decimal (digits and
        one point), which ``decimal`` refuses."""
        value = self.text(name)
        if value is None or not value.isascii() or not value.replace(".", "", 1).isdigit():
            return None
        exponent = Decimal(value).normalize().as_tuple().exponent
        assert isinstance(exponent, int)  # a plain decimal is finite
        return max(-exponent, 0)

    def choice(self, name: str, options: Collection[str], *, code: int = -1100) -> str | None:
        value = self.text(name)
        if value is not None and value not in options:
            raise BinanceError(400, code, f"Invalid {name}.")
        return value

    def limit(self, default: int, cap: int) -> int:
        value = self.integer("limit", low=1)
        return default if value is None else min(value, cap)
