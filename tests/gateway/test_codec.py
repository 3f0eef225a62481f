"""The gateway wire: values come back equal and of the same types; the wire covers Engine."""

from __future__ import annotations

import inspect
from decimal import Decimal
from typing import Any

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from trading_engine.actors.facade import Engine
from trading_engine.actors.messages import OrderRequest, OrderResult, Refused, Rejected
from trading_engine.core.enums import OrderStatus, OrderType, RejectReason, Side, TimeInForce
from trading_engine.core.events import Trade
from trading_engine.core.ids import ClientOrderId, OrderId, Symbol, TradeId, UserId
from trading_engine.core.risk import Figure, Rejection, Unit
from trading_engine.core.views import OrderView
from trading_engine.gateway.codec import CodecError, decode, encode
from trading_engine.gateway.protocol import METHODS, error_of, raise_error
from trading_engine.gateway.remote import RemoteEngine
from trading_engine.serve import DEMO_SYMBOLS

S = Symbol("BTC_AIT")

_VIEW = OrderView(
    OrderId(7), ClientOrderId("c-1"), UserId("alice"), S, Side.BUY, OrderType.LIMIT,
    TimeInForce.GTC, 100, 0, 5, 2, 3, 0, 200, OrderStatus.PARTIALLY_FILLED, None, False, None,
    1, 2, False, 0, 0, 0, 0, 0, 0, 0, 0,
)  # fmt: skip
_TRADE = Trade(3, 2, S, TradeId(1), 100, 2, Side.SELL, OrderId(7), OrderId(8), UserId("alice"),
               UserId("bob"), -1, 2)  # fmt: skip


@pytest.mark.parametrize(
    "value",
    [
        OrderRequest(
            UserId("alice"),
            S,
            Side.SELL,
            OrderType.LIMIT,
            5,
            100,
            client_order_id=ClientOrderId("x"),
            expire_time=10**18,
        ),
        OrderResult(_VIEW, (_TRADE,), duplicate=True),
        Rejected(
            (Rejection(RejectReason.INSUFFICIENT_FUNDS, (Figure("needed", 5, Unit.PRICE),)),), _VIEW
        ),
        Refused("unknown_order", "no order 9"),
        DEMO_SYMBOLS[0],
        (3, [(100, 2)], []),
        {S: (1, -2), "x": {Decimal("0.10"): frozenset({1})}},
        [None, True, 1.5, b"\x00", ""],
    ],
)
def test_a_value_comes_back_equal_and_of_the_same_types(value: object) -> None:
    back = decode(encode(value))
    assert back == value
    assert _types(back) == _types(value)


def _types(value: Any) -> Any:
    """The type of every part of ``value``, nested as it is."""
    if isinstance(value, list | tuple | frozenset):
        parts: Any = [_types(item) for item in value]
    elif isinstance(value, dict):
        parts = [(_types(k), _types(v)) for k, v in value.items()]
    elif hasattr(value, "__attrs_attrs__"):
        parts = [_types(getattr(value, a.name)) for a in value.__attrs_attrs__]
    elif isinstance(value, Trade):
        parts = [_types(v) for v in value.values()]
    else:
        parts = None
    return (type(value), parts)


_TREES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text() | st.binary(),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.lists(inner, max_size=4).map(tuple)
        | st.dictionaries(st.text(max_size=5), inner, max_size=4)
    ),
    max_leaves=20,
)


@given(_TREES)
def test_any_tree_of_builtins_comes_back_as_it_was(value: object) -> None:
    back = decode(encode(value))
    assert back == value
    assert _types(back) == _types(value)


@pytest.mark.parametrize(
    "tree",
    [["o", "subprocess:Popen", "ls"], ["o", "trading_engine.serve:serve"], ["x", 1], [],
     ["e", "os:environ", "x"]],
)  # fmt: skip
def test_a_tree_naming_anything_but_a_value_type_of_the_package_is_refused(tree: Any) -> None:
    with pytest.raises(CodecError):
        decode(msgspec.msgpack.encode(tree))


def test_a_value_that_is_not_a_value_type_is_refused() -> None:
    with pytest.raises(CodecError):
        encode(object())


def test_every_public_method_of_engine_is_on_the_wire_or_answered_by_the_gateway() -> None:
    """A method added to ``Engine`` needs its one entry in ``METHODS`` (or an answer of
    the gateway's own), else a gateway would run the in-process code with no actors."""
    for name, member in vars(Engine).items():
        if name.startswith("_"):
            continue
        if callable(member) or isinstance(member, property):
            assert name in vars(RemoteEngine), f"Engine.{name} is not on the gateway's wire"
    for name in METHODS:
        assert inspect.iscoroutinefunction(getattr(Engine, name)), name


def test_an_engine_error_is_raised_again_as_its_own_class_with_its_field() -> None:
    from trading_engine.errors import InvalidInput  # noqa: PLC0415

    with pytest.raises(InvalidInput) as raised:
        raise_error(decode(encode(error_of(InvalidInput("price", "off the grid")))))
    assert raised.value.field == "price"
    assert raised.value.message == "price: off the grid"
