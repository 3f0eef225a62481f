"""Errors and undecodable answers between the engine and a gateway."""

from __future__ import annotations

import logging

import pytest

from trading_engine.actors.mailbox import Reply, ReplyTimeout
from trading_engine.errors import InvalidInput
from trading_engine.gateway import codec
from trading_engine.gateway.protocol import INTERNAL, OK, Kind, RemoteError, error_of, raise_error
from trading_engine.gateway.remote import _Pending, settle


def test_an_engine_error_that_is_not_the_packages_travels_as_internal_error_and_is_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    paths: dict[str, int] = {}
    try:
        paths["/srv/secret/path"]
    except KeyError as exc:
        with caplog.at_level(logging.ERROR, logger="trading_engine.gateway.protocol"):
            wire = error_of(exc)
    assert wire[1] == INTERNAL
    assert "/srv/secret/path" not in str(wire)
    [record] = caplog.records
    assert record.exc_info is not None
    assert "/srv/secret/path" in caplog.text
    with pytest.raises(RemoteError) as raised:
        raise_error(wire)
    assert raised.value.message == INTERNAL


def test_a_package_error_travels_with_its_own_message() -> None:
    with pytest.raises(InvalidInput) as raised:
        raise_error(error_of(InvalidInput("price", "must be on the grid")))
    assert raised.value.message == "price: must be on the grid"


# Not a value type of this package: an engine of another version might answer it.
_UNDECODABLE = ["o", "collections:OrderedDict"]


async def test_an_ok_answer_that_does_not_decode_is_outcome_unknown_for_a_command() -> None:
    pending = _Pending(Reply(), Kind.COMMAND, 0.0)
    settle(pending, OK, _UNDECODABLE)
    with pytest.raises(ReplyTimeout):
        await pending.reply.wait()


async def test_an_ok_answer_that_does_not_decode_fails_a_query_with_the_codec_error() -> None:
    pending = _Pending(Reply(), Kind.QUERY, 0.0)
    settle(pending, OK, _UNDECODABLE)
    with pytest.raises(codec.CodecError):
        await pending.reply.wait()
