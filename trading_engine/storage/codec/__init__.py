"""Events to JSON and back: what the journal stores in its ``payload`` column.

Three modules: ``reference.py`` (the list of event kinds, ``encode``,
``decode``, ``dumps``, ``loads``), ``writers.py`` (``encode_text``) and
``readers.py`` (``decode_text``).

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

from trading_engine.storage.codec.readers import decode_text
from trading_engine.storage.codec.reference import (
    EVENT_TYPES,
    CodecError,
    decode,
    dumps,
    encode,
    loads,
)
from trading_engine.storage.codec.writers import encode_text

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
