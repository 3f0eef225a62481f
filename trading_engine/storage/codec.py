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

Each event class is listed here with the kinds of its fields that are not
integers (an enum, a ``str``, an ``OrderSpec``, ...); the decoders follow from
them. A class that is not listed cannot be encoded or decoded: ``CodecError``
says so, and ``tests/storage/test_codec.py`` fails until it is added.

``decode_text(type name, text)`` is ``loads`` then ``decode`` in one step,
and recovery's hot path: per class a msgspec decoder made once from the same
list parses the text straight into typed fields (refusing a float for an int,
an int for a bool, an unknown enum value, a missing or extra field), several
times faster than the reference path, which it falls back on for whatever it
refuses, so that the answer (an event or ``CodecError``) is always the same.

``encode_text(event)`` is ``encode`` then ``dumps`` in one step, and the
journal's hot path: per class it runs a writer made once from that list, one
f-string with the keys sorted in advance, enums as their JSON text, strings
through ``json``'s own C escaper. Its text is the reference path's, character
for character; a value that the writer does not expect (a float, a NUL, an
object) sends the event down the reference path, which stores it or refuses
it exactly as before.
"""

from __future__ import annotations

import json
import keyword
from collections.abc import Callable, Mapping
from decimal import Decimal
from enum import Enum
from json.encoder import encode_basestring
from typing import Any, Final

import attrs
import msgspec

from trading_engine.core.account_events import (
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
from trading_engine.core.ids import Symbol
from trading_engine.core.instruments import Instrument, Mode
from trading_engine.core.orders import OrderSpec
from trading_engine.errors import TradingEngineError

__all__ = [
    "EVENT_TYPES",
    "CodecError",
    "decode",
    "decode_text",
    "dumps",
    "encode",
    "encode_text",
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


class _Kind(Enum):
    """What a field holds when it is not an integer (an enum class stands for its members)."""

    TEXT = "a str: an id, a symbol, an asset, free text"
    OPTIONAL_TEXT = "a str or None"
    OPTIONAL_INT = "an int or None"
    BOOL = "a bool"
    SPEC = "an OrderSpec"
    INSTRUMENT = "an Instrument"
    ENTRIES = "ledger entries: a tuple of (account, asset, amount) triples"


_FieldKinds = Mapping[str, _Kind | type[Enum]]
"""A class's fields that are not integers, in field order; every other field is an ``int``."""

_SPEC_KINDS: Final[_FieldKinds] = {
    "user_id": _Kind.TEXT,
    "side": Side,
    "type": OrderType,
    "time_in_force": TimeInForce,
    "post_only": _Kind.BOOL,
    "stp": StpMode,
    "client_order_id": _Kind.OPTIONAL_TEXT,
    "expire_time": _Kind.OPTIONAL_INT,
    "reduce_only": _Kind.BOOL,
}
"""A spec's fields that are not integers. A field added to ``OrderSpec`` later has a
default, which both decoders give a payload written before it (``reduce_only``)."""

_TEXT: Final = _Kind.TEXT
_EVENT_KINDS: Final[Mapping[type[Any], _FieldKinds]] = {
    OrderAccepted: {"symbol": _TEXT, "spec": _Kind.SPEC, "status": OrderStatus},
    OrderRejected: {"symbol": _TEXT, "spec": _Kind.SPEC, "reason": RejectReason},
    Trade: {"symbol": _TEXT, "aggressor": Side, "maker_user_id": _TEXT, "taker_user_id": _TEXT},
    OrderFilled: {"symbol": _TEXT, "user_id": _TEXT, "liquidity": Liquidity, "status": OrderStatus},
    OrderCancelled: {"symbol": _TEXT, "user_id": _TEXT, "reason": CancelReason},
    OrderExpired: {"symbol": _TEXT, "user_id": _TEXT},
    OrderReduced: {"symbol": _TEXT, "user_id": _TEXT, "reason": CancelReason},
    OrderAmended: {"symbol": _TEXT, "user_id": _TEXT, "priority_kept": _Kind.BOOL},
    StopTriggered: {"symbol": _TEXT, "user_id": _TEXT},
    SelfTradePrevented: {"symbol": _TEXT, "user_id": _TEXT, "mode": StpMode},
    BookLevel: {"symbol": _TEXT, "side": Side},
    UserCreated: {"user_id": _TEXT, "owner": _Kind.OPTIONAL_TEXT, "api_key_hash": _TEXT},
    Deposited: {"user_id": _TEXT, "asset": _TEXT},
    Withdrawn: {"user_id": _TEXT, "asset": _TEXT},
    InstrumentListed: {"instrument": _Kind.INSTRUMENT},
    SymbolHalted: {"symbol": _TEXT, "reason": _TEXT},  # free text, not an enum
    SymbolResumed: {"symbol": _TEXT},
    MarginSettled: {"symbol": _TEXT, "user_id": _TEXT},
    Liquidated: {"user_id": _TEXT, "symbol": _TEXT},
    Posted: {"posting_id": _TEXT, "kind": _TEXT, "entries": _Kind.ENTRIES},
}


def _enums(kinds: _FieldKinds) -> dict[str, type[Enum]]:
    return {name: kind for name, kind in kinds.items() if not isinstance(kind, _Kind)}


# ---------------------------------------------------------------- nested values

_SPEC_ENUMS: Final[Mapping[str, type[Enum]]] = _enums(_SPEC_KINDS)
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


def _entries_text(entries: object) -> str:
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


def _decoders(kinds: _FieldKinds) -> dict[str, _Decoder]:
    decoders: dict[str, _Decoder] = {}
    for name, kind in kinds.items():
        if kind is _Kind.SPEC:
            decoders[name] = _spec_from_json
        elif kind is _Kind.INSTRUMENT:
            decoders[name] = _instrument_from_json
        elif kind is _Kind.ENTRIES:
            decoders[name] = _entries_from_json
        elif not isinstance(kind, _Kind):
            decoders[name] = _enum_decoder(kind)
    return decoders


_DECODERS: Final[dict[type[Any], Mapping[str, _Decoder]]] = {
    cls: _decoders(kinds) for cls, kinds in _EVENT_KINDS.items()
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


# ---------------------------------------------------------------- the fast path to text


def encode_text(event: Journaled) -> tuple[str, str]:
    """``(type name, canonical JSON text)``: ``dumps`` of ``encode``, several times faster.

    The text is the reference path's, character for character. Raises what
    ``encode`` and ``dumps`` raise: ``CodecError`` for an unknown type, a
    float, a NUL or an object.
    """
    try:
        return _WRITERS[type(event)](event)
    except (LookupError, TypeError, ValueError):
        # A type the codec does not know (refused by the reference path), or a
        # value of a kind the writer does not expect: a float, a NUL, an object
        # (refused too), or an odd but storable one such as a plain ``str`` in
        # an enum field (kept by it, exactly as before).
        name, fields = encode(event)
        return name, dumps(fields)


_Writer = Callable[[Any], tuple[str, str]]


def _constructors_check_types() -> bool:
    """Whether the events' constructors refuse a value of the wrong type.

    The compiled core's do (a float for an int, an int for a bool, a str for
    an enum) and turn a bool given for an int into that int; the pure-Python
    core's take anything.
    """
    try:
        BookLevel(1, 1, Symbol("X_Y"), Side.BUY, 0.5, 1)  # type: ignore[arg-type]
    except TypeError:
        return True
    return False


def _not_a_bool(value: object) -> str:
    raise TypeError(f"expected a bool, got {value!r}")


def _instrument_text(instrument: object) -> str:
    # Once per listing: the reference path, nested.
    if type(instrument) is not Instrument:
        raise TypeError(f"expected an Instrument, got {instrument!r}")
    return dumps(_instrument_to_json(instrument))


class _HasNul(ValueError):
    """Raised by a writer whose text holds an escaped NUL: the reference path decides."""


_ENUM_TEXT: Final[Mapping[Enum, str]] = {
    member: _ENCODER.encode(member.value)
    for kinds in (_SPEC_KINDS, *_EVENT_KINDS.values())
    for enum in _enums(kinds).values()
    for member in enum
}
"""Every member of every enum that a field holds, to its JSON text: ``Side.BUY`` to ``"buy"``."""

_VALUE: Final[Mapping[_Kind, str]] = {
    _Kind.TEXT: "_text({})",
    _Kind.OPTIONAL_TEXT: '"null" if {0} is None else _text({0})',
    _Kind.OPTIONAL_INT: '"null" if {0} is None else {0}',
    _Kind.BOOL: '"true" if {0} is True else "false" if {0} is False else _not_a_bool({0})',
    _Kind.SPEC: "_spec({})",
    _Kind.INSTRUMENT: "_instrument({})",
    _Kind.ENTRIES: "_entries({})",
}
"""The Python expression that gives the JSON text of a field, for each kind but int and enum."""


def _make_writer(
    cls: type[Any], fields: tuple[str, ...], kinds: _FieldKinds, *, typed: bool
) -> Callable[[Any], Any]:
    """The writer of ``cls``: an event's gives ``(type name, text)``, a named tuple's the text.

    Made from source, as ``attrs`` and ``dataclasses`` make ``__init__``: an
    f-string with the keys sorted in advance and one expression per field is
    about twice as fast as any loop over the fields. For ``BookLevel``::

        def write_BookLevel(v, /):
            text = f'{{"price":{v.price},...,"side":{_enum(v.side)},...,"ts":{v.ts}}}'
            if "\\u0000" in text: raise _HasNul
            return 'BookLevel', text

    A NUL comes out of the escaper as ``\\u0000``; so does a backslash
    followed by "u0000", which the reference path then stores as it is.

    ``typed``: the constructor of ``cls`` guarantees that its int fields hold
    exact ints. Otherwise the writer first checks that they do, as in
    ``if not (int is type(v.price) is type(v.quantity) ...): raise TypeError(v)``,
    so that a float, a bool or None goes down the reference path.
    """
    assert set(kinds) <= set(fields), (cls, set(kinds) - set(fields))
    # A named tuple (the nested OrderSpec) is unpacked into locals, faster
    # than reading its fields one by one; it is checked for its exact class,
    # which the lookup in ``encode_text`` has done for an event.
    nested = issubclass(cls, tuple)
    body = []
    if nested:
        body.append(f"if type(v) is not {cls.__name__}: raise TypeError(v)")
        body.append(f"{', '.join(f'v_{name}' for name in fields)}, = v")
    ints, optional_ints, members = [], [], []
    for name in sorted(fields):
        # Only names go into the source, and only names that need no escaping in JSON.
        if not name.isidentifier() or keyword.iskeyword(name):
            raise CodecError(f"{cls.__name__}.{name}: not a field name")
        value = f"v_{name}" if nested else f"v.{name}"
        kind = kinds.get(name)
        if kind is None:
            ints.append(value)
            expression = value
        elif isinstance(kind, _Kind):
            if kind is _Kind.OPTIONAL_INT:
                optional_ints.append(value)
            expression = _VALUE[kind].format(value)
        else:
            expression = f"_enum({value})"
        members.append(f'"{name}":{{{expression}}}')
    checks = [" is ".join(["int", *(f"type({value})" for value in ints)])] if ints else []
    checks += [f"({value} is None or type({value}) is int)" for value in optional_ints]
    if checks and not typed:
        body.append(f"if not ({' and '.join(checks)}): raise TypeError(v)")
    text = f"f'{{{{{','.join(members)}}}}}'"
    if nested:
        body.append(f"return {text}")  # inside an event's text, checked for a NUL as a whole
    else:
        body.append(f"text = {text}")
        body.append('if "\\\\u0000" in text: raise _HasNul')
        body.append(f"return {cls.__name__!r}, text")
    function = f"write_{cls.__name__}"
    source = "\n    ".join([f"def {function}(v, /):", *body])
    namespace = {**_WRITER_GLOBALS, cls.__name__: cls}
    exec(compile(source, f"<codec {function}>", "exec"), namespace)  # noqa: S102
    writer: Callable[[Any], Any] = namespace[function]
    return writer


_WRITER_GLOBALS: Final[dict[str, Any]] = {
    "__builtins__": {"int": int, "type": type, "TypeError": TypeError},  # all that writers use
    "_text": encode_basestring,  # json's C escaper; keeps UTF-8; raises TypeError for a non-str
    "_enum": _ENUM_TEXT.__getitem__,
    "_not_a_bool": _not_a_bool,
    "_instrument": _instrument_text,
    "_entries": _entries_text,
    "_HasNul": _HasNul,
}
# An OrderSpec is a named tuple, which takes any value: its writer checks them all.
_WRITER_GLOBALS["_spec"] = _make_writer(OrderSpec, OrderSpec._fields, _SPEC_KINDS, typed=False)
_TYPED: Final = _constructors_check_types()
_WRITERS: Final[Mapping[type[Any], _Writer]] = {
    cls: _make_writer(cls, cls.FIELDS, kinds, typed=_TYPED) for cls, kinds in _EVENT_KINDS.items()
}


# ---------------------------------------------------------------- the fast path from text


def decode_text(name: str, text: str) -> Journaled:
    """``decode(name, loads(text))``, several times faster; raises what they raise."""
    reader = _READERS.get(name)
    if reader is not None:
        try:
            return reader(text)
        except (msgspec.MsgspecError, TypeError, ValueError):
            pass  # the reference path decides: CodecError, or an odd but valid payload
    return decode(name, loads(text))


_TYPES: Final[Mapping[_Kind, Any]] = {
    _Kind.TEXT: str,
    _Kind.OPTIONAL_TEXT: str | None,
    _Kind.OPTIONAL_INT: int | None,
    _Kind.BOOL: bool,
    _Kind.ENTRIES: tuple[tuple[str, str, int], ...],
}
"""The msgspec type of each kind that has one (an instrument has none: it is rare)."""


def _struct(
    name: str, fields: tuple[str, ...], kinds: _FieldKinds, defaults: Mapping[str, Any]
) -> Any:
    spec: list[tuple[str, Any] | tuple[str, Any, Any]] = []
    for field in fields:
        kind = kinds.get(field)
        if kind is None:
            kind_type: Any = int
        elif isinstance(kind, _Kind):
            kind_type = _SPEC_STRUCT if kind is _Kind.SPEC else _TYPES[kind]
        else:
            kind_type = kind
        spec.append(
            (field, kind_type, defaults[field]) if field in defaults else (field, kind_type)
        )
    return msgspec.defstruct(name, spec, forbid_unknown_fields=True)


_SPEC_STRUCT: Final = _struct(
    "OrderSpecPayload", OrderSpec._fields, _SPEC_KINDS, OrderSpec._field_defaults
)


def _make_reader(cls: type[Any], kinds: _FieldKinds) -> Callable[[str], Journaled]:
    decoder = msgspec.json.Decoder(_struct(f"{cls.__name__}Payload", cls.FIELDS, kinds, {}))
    astuple = msgspec.structs.astuple
    spec_at = [i for i, field in enumerate(cls.FIELDS) if kinds.get(field) is _Kind.SPEC]

    def read(text: str) -> Journaled:
        values = astuple(decoder.decode(text))
        if spec_at:
            values = list(values)  # type: ignore[assignment]
            for i in spec_at:
                values[i] = OrderSpec(*astuple(values[i]))  # type: ignore[index]
        event: Journaled = cls(*values)
        return event

    return read


_READERS: Final[Mapping[str, Callable[[str], Journaled]]] = {
    cls.__name__: _make_reader(cls, kinds)
    for cls, kinds in _EVENT_KINDS.items()
    if _Kind.INSTRUMENT not in kinds.values()
}
