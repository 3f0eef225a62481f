"""Values on the wire between gateways and the engine: msgpack of tagged trees.

``encode(value)`` and ``decode(data)`` carry any value an ``Engine`` method
takes or answers, and give back one equal to it and of the same types: the
engine's value types (``attrs`` classes such as ``OrderRequest`` and
``Instrument``, named tuples such as ``OrderView``, events such as ``Trade``,
and every ``enum``), tuples as tuples, ``Decimal`` as ``Decimal``. msgspec
writes the bytes; what it cannot tell apart by itself (a tuple from a list,
an ``OrderResult`` from a ``Rejected``, ``Side.BUY`` from ``"buy"``) is tagged:

- a scalar (None, bool, int, float, str, bytes) is itself;
- a container is a list whose first item names its kind: ``["l", *items]``,
  ``["t", *items]``, ``["d", key, value, key, value, ...]``, ``["f", *items]``
  (a frozenset), ``["D", "1.25"]`` (a Decimal), ``["I", "123..."]`` (an integer
  past 64 bits);
- a value type is ``["o", "module:Class", *fields]`` and an enum member
  ``["e", "module:Class", value]``.

A class is named by where it is defined, so a new value type needs no entry
anywhere. Decoding builds only classes defined under ``trading_engine`` that
are value types (an enum, an ``attrs`` class, a named tuple or an event); any
other name is ``CodecError``, as is a tag it does not know.
"""

from __future__ import annotations

import enum
import importlib
from collections.abc import Callable
from decimal import Decimal
from typing import Any, Final

import attrs
import msgspec

from trading_engine.core.events import EventBase
from trading_engine.errors import TradingEngineError

__all__ = ["CodecError", "decode", "encode", "lift", "lower"]

_PACKAGE: Final = "trading_engine."
_SMALLEST: Final = -(2**63)
_LARGEST: Final = 2**64 - 1
"""The integers msgpack writes; larger ones travel as their digits."""


class CodecError(TradingEngineError):
    """Raised when bytes from the wire do not decode to a value this codec writes."""

    code = "codec_error"


def _scalar(value: Any) -> Any:
    return value


def _int(value: int) -> Any:
    return value if _SMALLEST <= value <= _LARGEST else ["I", str(value)]


def _list(value: list[Any]) -> list[Any]:
    return ["l", *map(lower, value)]


def _tuple(value: tuple[Any, ...]) -> list[Any]:
    return ["t", *map(lower, value)]


def _dict(value: dict[Any, Any]) -> list[Any]:
    out: list[Any] = ["d"]
    for key, item in value.items():
        out.append(lower(key))
        out.append(lower(item))
    return out


def _frozenset(value: frozenset[Any]) -> list[Any]:
    return ["f", *map(lower, value)]


def _decimal(value: Decimal) -> list[Any]:
    return ["D", str(value)]


_LOWER: dict[type, Callable[[Any], Any]] = {
    type(None): _scalar,
    bool: _scalar,
    int: _int,
    float: _scalar,
    str: _scalar,
    bytes: _scalar,
    list: _list,
    tuple: _tuple,
    dict: _dict,
    frozenset: _frozenset,
    set: _frozenset,
    Decimal: _decimal,
}
"""How each exact type is lowered; value types are added as they are first met."""


def _name(cls: type) -> str:
    return f"{cls.__module__}:{cls.__qualname__}"


def _lowering(cls: type) -> Callable[[Any], Any]:
    """How to lower instances of ``cls`` (not a built-in); raises ``CodecError``."""
    name = _name(cls)
    if issubclass(cls, enum.Enum):
        return lambda value: ["e", name, value.value]
    if attrs.has(cls):
        fields = tuple(f.name for f in attrs.fields(cls) if f.init)
        return lambda value: ["o", name, *(lower(getattr(value, f)) for f in fields)]
    if issubclass(cls, tuple) and hasattr(cls, "_fields"):
        return lambda value: ["o", name, *map(lower, value)]
    if issubclass(cls, EventBase):
        return lambda value: ["o", name, *map(lower, value.values())]
    raise CodecError(f"{name} is not a value type the wire carries")


def lower(value: Any) -> Any:
    """``value`` as a tree of scalars and tagged lists; raises ``CodecError``."""
    cls = type(value)
    how = _LOWER.get(cls)
    if how is None:
        how = _LOWER[cls] = _lowering(cls)
    return how(value)


_BUILDERS: dict[str, Callable[..., Any]] = {}
"""Each value type met on decoding, by name: its constructor from its fields in order."""


def _builder(name: str) -> Callable[..., Any]:
    built = _BUILDERS.get(name)
    if built is not None:
        return built
    module_name, _, qualname = name.partition(":")
    if not module_name.startswith(_PACKAGE) or "." in qualname:
        raise CodecError(f"{name!r} is not a value type of this package")
    try:
        cls = getattr(importlib.import_module(module_name), qualname)
    except (ImportError, AttributeError) as exc:
        raise CodecError(f"no value type {name!r}") from exc
    if not isinstance(cls, type):
        raise CodecError(f"{name!r} is not a value type of this package")
    if issubclass(cls, enum.Enum):
        built = cls
    elif attrs.has(cls):
        aliases = tuple(f.alias for f in attrs.fields(cls) if f.init)
        built = _keywords(cls, aliases)
    elif (issubclass(cls, tuple) and hasattr(cls, "_fields")) or issubclass(cls, EventBase):
        built = cls
    else:
        raise CodecError(f"{name!r} is not a value type of this package")
    _BUILDERS[name] = built
    return built


def _keywords(cls: type, aliases: tuple[str, ...]) -> Callable[..., Any]:
    """``cls`` from its ``attrs`` fields in order, passed by name (some are keyword-only)."""
    return lambda *values: cls(**dict(zip(aliases, values, strict=True)))


def lift(tree: Any) -> Any:
    """The value ``lower`` made ``tree`` of; raises ``CodecError``."""
    if type(tree) is not list:
        return tree
    if not tree:
        raise CodecError("an untagged empty list")
    tag = tree[0]
    if tag == "o":
        return _builder(tree[1])(*map(lift, tree[2:]))
    if tag == "e":
        return _builder(tree[1])(tree[2])
    if tag == "l":
        return [lift(item) for item in tree[1:]]
    if tag == "t":
        return tuple(map(lift, tree[1:]))
    if tag == "d":
        items = tree[1:]
        return {lift(items[i]): lift(items[i + 1]) for i in range(0, len(items), 2)}
    if tag == "f":
        return frozenset(map(lift, tree[1:]))
    if tag == "D":
        return Decimal(tree[1])
    if tag == "I":
        return int(tree[1])
    raise CodecError(f"unknown tag {tag!r}")


_ENCODER: Final = msgspec.msgpack.Encoder()
_DECODER: Final = msgspec.msgpack.Decoder()


def encode(value: Any) -> bytes:
    """``value`` as bytes for the wire; raises ``CodecError``."""
    return _ENCODER.encode(lower(value))


def decode(data: bytes) -> Any:
    """The value ``encode`` made ``data`` of; raises ``CodecError``."""
    try:
        tree = _DECODER.decode(data)
    except msgspec.DecodeError as exc:
        raise CodecError(f"undecodable message: {exc}") from exc
    try:
        return lift(tree)
    except (TypeError, ValueError, IndexError) as exc:
        raise CodecError(f"a malformed value: {exc}") from exc
