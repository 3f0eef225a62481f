"""Events to JSON and back: what the journal stores in its ``payload`` column.

``encode(event)`` gives ``(type name, dict)``, where the dict holds only
JSON's own values: ``str``, ``int``, ``bool``, ``None`` and nested dicts.
``decode(type name, dict)`` gives back an event equal to the original, with
every field of the type it had: enum members (not bare strings), an
``OrderSpec``, an ``Instrument``. ``dumps`` and ``loads`` turn such a dict to
canonical JSON text and back; the journal's hash chain is computed over that
text.

Rules that keep numbers exact: integers stay integers, of any size; a
``Decimal`` (only an instrument's ``tick_size`` and ``lot_size``) is written
as its decimal string; a ``float`` anywhere is refused in both directions.

``decode`` checks the shape (the type is known, every field is there and
no other) and converts the fields listed below; the kinds of the other
fields are taken as stored, since only ``encode`` writes them and the
journal's hash chain guards them. (The compiled core checks them again in
each event's constructor; the pure-Python core does not.)

Each event class is listed here with the decoders of its fields that are not
plain JSON values; a field not listed is taken as it is. A class that is not
listed cannot be encoded or decoded: ``CodecError`` says so, and
``tests/storage/test_codec.py`` fails until it is added.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from decimal import Decimal
from enum import Enum
from typing import Any, Final

import attrs

from trading_engine.core.account_events import (
    Deposited,
    InstrumentListed,
    SymbolHalted,
    SymbolResumed,
    UserCreated,
    Withdrawn,
)
from trading_engine.core.enums import (
    CancelReason,
    Liquidity,
    OrderStatus,
    OrderType,
    RejectReason,
    Side,
    StpMode,
    TimeInForce,
)
from trading_engine.core.events import (
    BookLevel,
    Journaled,
    OrderAccepted,
    OrderAmended,
    OrderCancelled,
    OrderExpired,
    OrderFilled,
    OrderReduced,
    OrderRejected,
    SelfTradePrevented,
    StopTriggered,
    Trade,
)
from trading_engine.core.instruments import Instrument, Mode
from trading_engine.core.orders import OrderSpec
from trading_engine.errors import TradingEngineError

__all__ = ["EVENT_TYPES", "CodecError", "decode", "dumps", "encode", "loads"]

JSONDict = dict[str, Any]
_Decoder = Callable[[Any], Any]


class CodecError(TradingEngineError):
    """Raised when an event cannot be encoded or a stored payload cannot be decoded.

    An unknown event type, a missing or extra field, a value of the wrong kind
    (a ``float``, an unknown enum value). Always a bug or a corrupt row.
    """

    code = "codec_error"


# ---------------------------------------------------------------- nested values

_SPEC_ENUMS: Final[Mapping[str, type[Enum]]] = {
    "side": Side,
    "type": OrderType,
    "time_in_force": TimeInForce,
    "stp": StpMode,
}
_INSTRUMENT_DECIMALS: Final = frozenset({"tick_size", "lot_size"})
_INSTRUMENT_ENUMS: Final[Mapping[str, type[Enum]]] = {"mode": Mode}
_INSTRUMENT_FIELDS: Final = tuple(field.name for field in attrs.fields(Instrument))


def _spec_to_json(spec: OrderSpec) -> JSONDict:
    return {name: _plain(value) for name, value in zip(OrderSpec._fields, spec, strict=True)}


def _spec_from_json(raw: Any) -> OrderSpec:
    fields = _expect_fields(raw, OrderSpec._fields, "OrderSpec", all_required=False)
    for name, enum in _SPEC_ENUMS.items():
        if name in fields:
            fields[name] = _enum(enum, fields[name])
    # The plain constructor, not ``OrderSpec.create``: replay takes what was
    # accepted then, even if today's rules would refuse it.
    return OrderSpec(**fields)


def _instrument_to_json(instrument: Instrument) -> JSONDict:
    return {name: _plain(getattr(instrument, name)) for name in _INSTRUMENT_FIELDS}


def _instrument_from_json(raw: Any) -> Instrument:
    fields = _expect_fields(raw, _INSTRUMENT_FIELDS, "Instrument", all_required=True)
    for name in _INSTRUMENT_DECIMALS:
        value = fields[name]
        if not isinstance(value, str):
            raise CodecError(f"Instrument.{name}: expected a decimal string, got {value!r}")
        fields[name] = Decimal(value)
    for name, enum in _INSTRUMENT_ENUMS.items():
        fields[name] = _enum(enum, fields[name])
    # The attrs constructor, not ``Instrument.create``: the values were checked
    # when the instrument was listed.
    return Instrument(**fields)


def _plain(value: Any) -> Any:
    """``value`` as JSON's own kind of value; raises ``CodecError`` for a float or an object."""
    kind = type(value)
    # Exact types first: the ids are NewTypes, so plain ``int`` and ``str`` at run time.
    if kind is str:
        if "\x00" in value:
            raise CodecError(f"cannot store {value!r}: JSON in PostgreSQL (jsonb) refuses NUL")
        return value
    if kind is int or kind is bool or value is None:
        return value
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, OrderSpec):
        return _spec_to_json(value)
    if isinstance(value, Instrument):
        return _instrument_to_json(value)
    raise CodecError(f"cannot store a {kind.__name__} ({value!r}): only exact values")


def _enum(enum: type[Enum], value: Any) -> Enum:
    try:
        return enum(value)
    except ValueError:
        raise CodecError(f"{value!r} is not a {enum.__name__}") from None


def _enum_decoder(enum: type[Enum]) -> _Decoder:
    return lambda value: _enum(enum, value)


def _expect_fields(
    raw: Any, names: tuple[str, ...], what: str, *, all_required: bool
) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise CodecError(f"{what}: expected an object, got {raw!r}")
    extra = raw.keys() - set(names)
    if extra:
        raise CodecError(f"{what}: unknown fields {sorted(extra)}")
    if all_required and len(raw) != len(names):
        raise CodecError(f"{what}: missing fields {sorted(set(names) - raw.keys())}")
    return dict(raw)


# ---------------------------------------------------------------- events

_DECODERS: Final[dict[type[Any], Mapping[str, _Decoder]]] = {
    OrderAccepted: {"spec": _spec_from_json, "status": _enum_decoder(OrderStatus)},
    OrderRejected: {"spec": _spec_from_json, "reason": _enum_decoder(RejectReason)},
    Trade: {"aggressor": _enum_decoder(Side)},
    OrderFilled: {"liquidity": _enum_decoder(Liquidity), "status": _enum_decoder(OrderStatus)},
    OrderCancelled: {"reason": _enum_decoder(CancelReason)},
    OrderExpired: {},
    OrderReduced: {"reason": _enum_decoder(CancelReason)},
    OrderAmended: {},
    StopTriggered: {},
    SelfTradePrevented: {"mode": _enum_decoder(StpMode)},
    BookLevel: {"side": _enum_decoder(Side)},
    UserCreated: {},
    Deposited: {},
    Withdrawn: {},
    InstrumentListed: {"instrument": _instrument_from_json},
    SymbolHalted: {},  # its ``reason`` is free text, not an enum
    SymbolResumed: {},
}

EVENT_TYPES: Final[Mapping[str, type[Any]]] = {cls.__name__: cls for cls in _DECODERS}
"""Every event type the codec knows, by the name stored in the journal's ``type`` column."""


def encode(event: Journaled) -> tuple[str, JSONDict]:
    """``(type name, fields)`` for ``event``; raises ``CodecError`` for an unknown type."""
    cls = type(event)
    name = cls.__name__
    if EVENT_TYPES.get(name) is not cls:
        raise CodecError(f"unknown event type {cls.__module__}.{cls.__qualname__}")
    return name, {key: _plain(value) for key, value in event.to_dict().items()}


def decode(name: str, fields: Mapping[str, Any]) -> Journaled:
    """The event of type ``name`` with ``fields``; raises ``CodecError`` if they don't fit."""
    cls = EVENT_TYPES.get(name)
    if cls is None:
        raise CodecError(f"unknown event type {name!r}")
    names: tuple[str, ...] = cls.FIELDS
    values = _expect_fields(fields, names, name, all_required=True)
    try:
        for key, decoder in _DECODERS[cls].items():
            values[key] = decoder(values[key])
        event: Journaled = cls(*(values[key] for key in names))
    except (TypeError, ValueError) as exc:
        # An enum value it doesn't know, or a value of the wrong type (which the
        # compiled core checks in every constructor).
        raise CodecError(f"{name}: {exc}") from exc
    return event


def dumps(fields: JSONDict) -> str:
    """Canonical JSON text: sorted keys, no spaces, UTF-8 kept (the hash chain's input)."""
    return _ENCODER.encode(fields)


def loads(text: str) -> JSONDict:
    """Parse JSON text of an object; raises ``CodecError`` for a float or a non-object."""
    try:
        value = _DECODER.decode(text)
    except ValueError as exc:
        raise CodecError(f"bad JSON payload: {exc}") from None
    if not isinstance(value, dict):
        raise CodecError(f"expected a JSON object, got {type(value).__name__}")
    return value


def _no_float(text: str) -> Any:
    raise CodecError(f"a number with a fraction or exponent ({text}) is not exact")


# Made once: ``json.dumps`` and ``json.loads`` with options build a new one per call.
_ENCODER: Final = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False)
_DECODER: Final = json.JSONDecoder(parse_float=_no_float, parse_constant=_no_float)
