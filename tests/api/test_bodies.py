"""The order bodies parsed once into typed fields (``api/bodies.py``): the same exact
decimals and the same refusals as the JSON reader and ``parse_decimal`` they replace,
and the API's words for a field's fault."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.api.conftest import Server
from tests.api.test_rest import ALICE, order
from trading_engine.api.bodies import AmendBody, ExactDecimal, OrderBody, convert_body, decode_body
from trading_engine.api.schemas import load_json
from trading_engine.core.numbers import parse_decimal
from trading_engine.errors import InvalidInput

PLAIN = st.from_regex(r"[0-9]{1,22}(\.[0-9]{1,20})?", fullmatch=True)
"""Decimal literals around the grammar's bounds (20 digits, then 18), inside and out."""
LITERALS = st.one_of(
    PLAIN,
    PLAIN.map(lambda text: "-" + text),
    PLAIN.map(lambda text: text + "e2"),
    st.integers(min_value=-(10**25), max_value=10**25).map(str),
)
"""The text of a JSON number (or of a decimal string): plain, signed, with an exponent."""
TEXTS = st.one_of(LITERALS, st.text(max_size=30))
"""What a client may put in a decimal string."""


def _old(raw: bytes, name: str = "price") -> Decimal | str:
    """``name`` as the JSON reader and ``parse_decimal`` read it, or the refusal's field."""
    try:
        return parse_decimal(load_json(raw)[name], field=name)
    except InvalidInput as exc:
        return exc.field


def _new(raw: bytes) -> Decimal | str:
    try:
        price = decode_body(raw, AmendBody).price
    except InvalidInput as exc:
        return exc.field
    assert isinstance(price, ExactDecimal)
    return price


def _same(old: Decimal | str, new: Decimal | str) -> bool:
    """The same refusal, or the same decimal to the last digit written (``0.50`` is not
    ``0.5``), so that grids and echoes see what the client sent."""
    return isinstance(old, str) == isinstance(new, str) and str(old) == str(new)


@given(LITERALS)
def test_a_json_number_parses_once_to_the_decimal_its_literal_spells(literal: str) -> None:
    raw = b'{"price": ' + literal.encode() + b"}"
    assert _same(_old(raw), _new(raw)), raw


@given(TEXTS)
def test_a_decimal_string_keeps_to_the_one_grammar(text: str) -> None:
    raw = json.dumps({"price": text}).encode()
    assert _same(_old(raw), _new(raw)), raw


@given(TEXTS)
def test_an_order_in_a_batch_reads_its_decimals_as_a_body_does(text: str) -> None:
    raw = json.dumps(order("buy", text, "30000")).encode()
    try:
        read = convert_body(load_json(raw), OrderBody, at="orders.3").quantity
        assert read is not None
        quantity: Decimal | str = read
    except InvalidInput as exc:
        quantity = exc.field.removeprefix("orders.3.")
    assert _same(_old(raw, "quantity"), quantity)


@pytest.mark.parametrize(
    ("body", "field", "message"),
    [
        (order("up", "1", "1"), "side", "side: must be one of buy, sell"),
        (order("buy", "1", "1", post_only=1), "post_only", "post_only: must be true or false"),
        (order("buy", "1", "1") | {"symbol": ""}, "symbol",
         "symbol: must be a non-empty string of at most 64 characters"),
        (order("up", "1", "1", colour="red"), "colour", "colour: is not a known field"),
        ({"side": "buy"}, "symbol", "symbol: is required"),
        ([1], "body", "body: must be a JSON object"),
    ],
)  # fmt: skip
def test_a_fault_is_named_in_the_apis_words(body: object, field: str, message: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        decode_body(json.dumps(body).encode(), OrderBody)
    assert (caught.value.field, caught.value.message) == (field, message)


def test_an_order_that_is_not_an_object_is_named_by_its_place() -> None:
    for item in ("buy 1 BTC", 5, None, [order("buy", "1", "1")]):
        with pytest.raises(InvalidInput) as caught:
            convert_body(item, OrderBody, at="orders.3")
        assert caught.value.message == "orders.3: must be an object"


async def test_a_risk_checks_order_names_its_fields_under_order(server: Server) -> None:
    async with server.client(server.keys[ALICE]) as alice:
        for quantity, message in (("-1", "is not a plain decimal"), (True, "not a float")):
            body = {"order": order("buy", "1", "30000") | {"quantity": quantity}}
            response = await alice.post("/risk/check", json=body)
            assert response.status_code == 400, response.text
            error = response.json()["error"]
            assert error["field"] == "order.quantity", error
            assert message in error["message"], error
        refused = await alice.post("/orders", json=order("up", "1", "30000"))
    assert refused.json()["error"]["message"] == "side: must be one of buy, sell"


async def test_answers_are_compact_sorted_json_with_text_in_utf8(server: Server) -> None:
    """``jsonify`` writes msgspec's bytes: as Flask's (compact, keys sorted, a newline at
    the end), but text outside ASCII as UTF-8, not as ``\\u`` escapes."""
    async with server.client(server.keys[ALICE]) as alice:
        placed = await alice.post("/orders", json=order("buy", "0.001", "30000"))
        refused = await alice.post("/orders", json=order("buy", "1", "٣٠٠٠٠"))
    assert placed.status_code == 201, placed.text
    flask = json.dumps(placed.json(), sort_keys=True, separators=(",", ":")) + "\n"
    assert placed.content == flask.encode()
    assert refused.status_code == 400, refused.text
    assert "'٣٠٠٠٠' is not".encode() in refused.content
