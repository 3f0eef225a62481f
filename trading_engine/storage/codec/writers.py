"""The codec's fast path to text: ``encode_text``, with a writer made from source per class.

Per class, a writer made once from ``EVENT_KINDS``: one f-string with the keys
sorted in advance, enums as their JSON text, strings through ``json``'s own C
escaper. Its text is the reference path's, character for character; a value
that the writer does not expect (a float, a NUL, an object) sends the event
down the reference path, which stores it or refuses it exactly as before. The
writers' source is registered with ``linecache`` under its own file name
(``<codec write_BookLevel>``), so that tracebacks and pdb show it.
"""

from __future__ import annotations

import keyword
import linecache
from collections.abc import Callable, Mapping
from enum import Enum
from json.encoder import encode_basestring
from typing import Any, Final

from trading_engine.core.enums import Side
from trading_engine.core.events import BookLevel, Journaled
from trading_engine.core.ids import Symbol
from trading_engine.core.instruments import Instrument
from trading_engine.core.orders import OrderSpec
from trading_engine.storage.codec.reference import (
    ENCODER,
    EVENT_KINDS,
    SPEC_KINDS,
    CodecError,
    FieldKinds,
    Kind,
    dumps,
    encode,
    entries_text,
    enums_of,
    instrument_to_json,
)

__all__ = ["encode_text"]


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
    return dumps(instrument_to_json(instrument))


class _HasNul(ValueError):
    """Raised by a writer whose text holds an escaped NUL: the reference path decides."""


_ENUM_TEXT: Final[Mapping[Enum, str]] = {
    member: ENCODER.encode(member.value)
    for kinds in (SPEC_KINDS, *EVENT_KINDS.values())
    for enum in enums_of(kinds).values()
    for member in enum
}
"""Every member of every enum that a field holds, to its JSON text: ``Side.BUY`` to ``"buy"``."""

_VALUE: Final[Mapping[Kind, str]] = {
    Kind.TEXT: "_text({})",
    Kind.OPTIONAL_TEXT: '"null" if {0} is None else _text({0})',
    Kind.OPTIONAL_INT: '"null" if {0} is None else {0}',
    Kind.BOOL: '"true" if {0} is True else "false" if {0} is False else _not_a_bool({0})',
    Kind.SPEC: "_spec({})",
    Kind.INSTRUMENT: "_instrument({})",
    Kind.ENTRIES: "_entries({})",
}
"""The Python expression that gives the JSON text of a field, for each kind but int and enum."""


def _make_writer(
    cls: type[Any], fields: tuple[str, ...], kinds: FieldKinds, *, typed: bool
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
        elif isinstance(kind, Kind):
            if kind is Kind.OPTIONAL_INT:
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
    source = "\n    ".join([f"def {function}(v, /):", *body]) + "\n"
    filename = f"<codec {function}>"
    # As attrs does for the code it makes: tracebacks and pdb can then show the lines.
    linecache.cache[filename] = (len(source), None, source.splitlines(keepends=True), filename)
    namespace = {**_WRITER_GLOBALS, cls.__name__: cls}
    exec(compile(source, filename, "exec"), namespace)  # noqa: S102
    writer: Callable[[Any], Any] = namespace[function]
    return writer


_WRITER_GLOBALS: Final[dict[str, Any]] = {
    "__builtins__": {"int": int, "type": type, "TypeError": TypeError},  # all that writers use
    "_text": encode_basestring,  # json's C escaper; keeps UTF-8; raises TypeError for a non-str
    "_enum": _ENUM_TEXT.__getitem__,
    "_not_a_bool": _not_a_bool,
    "_instrument": _instrument_text,
    "_entries": entries_text,
    "_HasNul": _HasNul,
}
# An OrderSpec is a named tuple, which takes any value: its writer checks them all.
_WRITER_GLOBALS["_spec"] = _make_writer(OrderSpec, OrderSpec._fields, SPEC_KINDS, typed=False)
_TYPED: Final = _constructors_check_types()
_WRITERS: Final[Mapping[type[Any], _Writer]] = {
    cls: _make_writer(cls, cls.FIELDS, kinds, typed=_TYPED) for cls, kinds in EVENT_KINDS.items()
}
