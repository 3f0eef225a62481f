"""The codec's reference path: events to JSON values and back, and canonical text.

``encode`` and ``decode`` are driven by one list, ``EVENT_KINDS``: each event
class with the kinds of its fields that are not integers. ``dumps`` and
``loads`` turn the values to canonical JSON text and back. The fast paths
(``writers.py``, ``readers.py``) are made from the same list, and fall back on
this one for whatever they do not expect.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from decimal import Decimal
from enum import Enum
from json.encoder import encode_basestring
from typing import Any, Final

import attrs

from trading_engine.core.account_events import (
    CancelAllAfterFired,
    CancelAllAfterSet,
    CredentialSet,
    Deposited,
    InstrumentListed,
    Liquidated,
    MarginSettled,
    Posted,
    SymbolHalted,
    SymbolResumed,
    UserCreated,
    Withdrawn,
)
from trading_engine.core.algos import (
    AlgoSliceDone,
    AlgoStarted,
    AlgoStatus,
    AlgoStatusChanged,
    AlgoType,
)
from trading_engine.core.enums import (
    CancelReason,
    Liquidity,
    ListStatus,
    ListType,
    OrderStatus,
    OrderType,
    RejectReason,
    Side,
    StpMode,
    TimeInForce,
)
from trading_engine.core.events import (
    BookLevel,
    IcebergRefilled,
    Journaled,
    OrderAccepted,
    OrderAmended,
    OrderCancelled,
    OrderDeferred,
    OrderExpired,
    OrderFilled,
    OrderListPlaced,
    OrderListUpdated,
    OrderReduced,
    OrderRejected,
    SelfTradePrevented,
    StopMoved,
    StopTriggered,
    Trade,
)
from trading_engine.core.instruments import Instrument, Mode
from trading_engine.core.orders import OrderSpec
from trading_engine.errors import TradingEngineError

__all__ = [
    "ENCODER",
    "EVENT_KINDS",
    "EVENT_TYPES",
    "SPEC_KINDS",
    "CodecError",
    "FieldKinds",
    "Kind",
    "decode",
    "dumps",
    "encode",
    "entries_text",
    "enums_of",
    "instrument_to_json",
    "loads",
]

JSONDict = dict[str, Any]
_Decoder = Callable[[Any], Any]


class CodecError(TradingEngineError):
    """Raised when an event cannot be encoded or a stored payload cannot be decoded.

    An unknown event type, a missing or extra field, a value of the wrong kind
    (a ``float``, an unknown enum value). Always a bug or a corrupt row.
    """

    code = "codec_error"


# ---------------------------------------------------------------- field kinds


class Kind(Enum):
    """What a field holds when it is not an integer (an enum class stands for its members)."""

    TEXT = "a str: an id, a symbol, an asset, free text"
    OPTIONAL_TEXT = "a str or None"
    OPTIONAL_INT = "an int or None"
    BOOL = "a bool"
    SPEC = "an OrderSpec"
    INSTRUMENT = "an Instrument"
    ENTRIES = "ledger entries: a tuple of (account, asset, amount) triples"


FieldKinds = Mapping[str, Kind | type[Enum]]
"""A class's fields that are not integers, in field order; every other field is an ``int``."""

SPEC_KINDS: Final[FieldKinds] = {
    "user_id": Kind.TEXT,
    "side": Side,
    "type": OrderType,
    "time_in_force": TimeInForce,
    "post_only": Kind.BOOL,
    "stp": StpMode,
    "client_order_id": Kind.OPTIONAL_TEXT,
    "expire_time": Kind.OPTIONAL_INT,
    "reduce_only": Kind.BOOL,
}
"""A spec's fields that are not integers. A field added to ``OrderSpec`` later has a
default, which both decoders give a payload written before it (``reduce_only``)."""

_TEXT: Final = Kind.TEXT
EVENT_KINDS: Final[Mapping[type[Any], FieldKinds]] = {
    OrderAccepted: {"symbol": _TEXT, "spec": Kind.SPEC, "status": OrderStatus},
    OrderRejected: {"symbol": _TEXT, "spec": Kind.SPEC, "reason": RejectReason},
    Trade: {"symbol": _TEXT, "aggressor": Side, "maker_user_id": _TEXT, "taker_user_id": _TEXT},
    OrderFilled: {"symbol": _TEXT, "user_id": _TEXT, "liquidity": Liquidity, "status": OrderStatus},
    OrderCancelled: {"symbol": _TEXT, "user_id": _TEXT, "reason": CancelReason},
    OrderExpired: {"symbol": _TEXT, "user_id": _TEXT},
    OrderReduced: {"symbol": _TEXT, "user_id": _TEXT, "reason": CancelReason},
    OrderAmended: {"symbol": _TEXT, "user_id": _TEXT, "priority_kept": Kind.BOOL},
    StopTriggered: {"symbol": _TEXT, "user_id": _TEXT},
    StopMoved: {"symbol": _TEXT, "user_id": _TEXT},
    IcebergRefilled: {"symbol": _TEXT, "user_id": _TEXT},
    SelfTradePrevented: {"symbol": _TEXT, "user_id": _TEXT, "mode": StpMode},
    BookLevel: {"symbol": _TEXT, "side": Side},
    OrderListPlaced: {"symbol": _TEXT, "user_id": _TEXT, "kind": ListType},
    OrderDeferred: {"symbol": _TEXT, "spec": Kind.SPEC},
    OrderListUpdated: {"symbol": _TEXT, "user_id": _TEXT, "status": ListStatus},
    UserCreated: {"user_id": _TEXT, "owner": Kind.OPTIONAL_TEXT, "api_key_hash": _TEXT},
    CredentialSet: {"user_id": _TEXT, "scheme": _TEXT, "credential": _TEXT},
    Deposited: {"user_id": _TEXT, "asset": _TEXT},
    Withdrawn: {"user_id": _TEXT, "asset": _TEXT},
    InstrumentListed: {"instrument": Kind.INSTRUMENT},
    SymbolHalted: {"symbol": _TEXT, "reason": _TEXT},  # free text, not an enum
    SymbolResumed: {"symbol": _TEXT},
    MarginSettled: {"symbol": _TEXT, "user_id": _TEXT},
    Liquidated: {"user_id": _TEXT, "symbol": _TEXT},
    CancelAllAfterSet: {"user_id": _TEXT, "cancel_at": Kind.OPTIONAL_INT},
    CancelAllAfterFired: {"user_id": _TEXT},
    Posted: {"posting_id": _TEXT, "kind": _TEXT, "entries": Kind.ENTRIES},
    AlgoStarted: {"user_id": _TEXT, "symbol": _TEXT, "kind": AlgoType, "side": Side},
    AlgoSliceDone: {"user_id": _TEXT, "symbol": _TEXT},
    AlgoStatusChanged: {"user_id": _TEXT, "symbol": _TEXT, "status": AlgoStatus, "reason": _TEXT},
}


def enums_of(kinds: FieldKinds) -> dict[str, type[Enum]]:
    return {name: kind for name, kind in kinds.items() if not isinstance(kind, Kind)}


# ---------------------------------------------------------------- nested values

_SPEC_ENUMS: Final[Mapping[str, type[Enum]]] = enums_of(SPEC_KINDS)
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


def _entry(item: Any, container: type[tuple[Any, ...]] | type[list[Any]]) -> tuple[str, str, int]:
    """One ledger entry, checked: a ``container`` of exactly (str, str, int)."""
    if not isinstance(item, container) or len(item) != 3:
        raise CodecError(f"a ledger entry must be [account, asset, amount], not {item!r}")
    account, asset, amount = item
    if type(account) is not str or type(asset) is not str or type(amount) is not int:
        raise CodecError(f"a ledger entry must be [str, str, int], not {item!r}")
    return account, asset, amount


def _entries_to_json(entries: tuple[tuple[str, str, int], ...]) -> list[list[Any]]:
    """``[[account, asset, amount], ...]``; raises ``CodecError`` unless each is (str, str, int)."""
    out: list[list[Any]] = []
    for entry in entries:
        account, asset, amount = _entry(entry, tuple)
        out.append([_plain(account), _plain(asset), amount])
    return out


def _entries_from_json(raw: Any) -> tuple[tuple[str, str, int], ...]:
    if not isinstance(raw, list):
        raise CodecError(f"entries: expected a list, got {raw!r}")
    return tuple(_entry(item, list) for item in raw)


def entries_text(entries: object) -> str:
    """The JSON text of ledger entries, as ``dumps(_entries_to_json(...))`` writes it.

    Raises ``TypeError`` (or ``ValueError`` for a wrong length) for anything
    else, which sends the event down the reference path.
    """
    if type(entries) is not tuple:
        raise TypeError(f"expected a tuple of entries, got {entries!r}")
    parts = []
    for account, asset, amount in entries:
        if type(amount) is not int:
            raise TypeError(f"expected an int amount, got {amount!r}")
        parts.append(f"[{encode_basestring(account)},{encode_basestring(asset)},{amount}]")
    return f"[{','.join(parts)}]"


def instrument_to_json(instrument: Instrument) -> JSONDict:
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
        return instrument_to_json(value)
    if kind is tuple:
        return _entries_to_json(value)
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


def _decoders(kinds: FieldKinds) -> dict[str, _Decoder]:
    decoders: dict[str, _Decoder] = {}
    for name, kind in kinds.items():
        if kind is Kind.SPEC:
            decoders[name] = _spec_from_json
        elif kind is Kind.INSTRUMENT:
            decoders[name] = _instrument_from_json
        elif kind is Kind.ENTRIES:
            decoders[name] = _entries_from_json
        elif not isinstance(kind, Kind):
            decoders[name] = _enum_decoder(kind)
    return decoders


_DECODERS: Final[dict[type[Any], Mapping[str, _Decoder]]] = {
    cls: _decoders(kinds) for cls, kinds in EVENT_KINDS.items()
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
    return ENCODER.encode(fields)


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
ENCODER: Final = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False)
_DECODER: Final = json.JSONDecoder(parse_float=_no_float, parse_constant=_no_float)
