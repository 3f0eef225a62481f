import random

from trading_engine.core.enums import CancelReason, Liquidity, OrderStatus, OrderType, Side
from trading_engine.core.events import OrderAccepted, OrderCancelled, OrderFilled
from trading_engine.core.ids import OrderId, Symbol, TradeId, UserId
from trading_engine.core.l2 import L2Book
from trading_engine.core.orders import OrderSpec
from trading_engine.core.views import OrderRecord

SYM = Symbol("BTC_AIT")
ALICE = UserId("alice")


def test_l2_best_prices_follow_sets_and_removals() -> None:
    book = L2Book()
    book.set(Side.BUY, 99, 5, 1)
    book.set(Side.BUY, 101, 2, 2)
    book.set(Side.SELL, 103, 4, 3)
    book.set(Side.SELL, 102, 1, 4)
    assert (book.best_bid(), book.best_ask(), book.seq) == ((101, 2), (102, 1), 4)
    book.set(Side.BUY, 101, 0, 5)
    book.set(Side.SELL, 102, 0, 6)
    assert (book.best_bid(), book.best_ask()) == ((99, 5), (103, 4))
    assert book.depth(1) == ([(99, 5)], [(103, 4)])


def test_l2_matches_a_dict_model_on_random_updates() -> None:
    rng = random.Random(7)
    book = L2Book()
    model: dict[Side, dict[int, int]] = {Side.BUY: {}, Side.SELL: {}}
    for seq in range(1, 5000):
        side = rng.choice([Side.BUY, Side.SELL])
        price = rng.randint(90, 110)
        quantity = rng.choice([0, 0, rng.randint(1, 9)])
        book.set(side, price, quantity, seq)
        if quantity:
            model[side][price] = quantity
        else:
            model[side].pop(price, None)
        bids = sorted(model[Side.BUY].items(), reverse=True)
        asks = sorted(model[Side.SELL].items())
        assert book.depth() == (bids, asks)


def test_order_record_follows_its_events() -> None:
    spec = OrderSpec.create(OrderId(7), ALICE, Side.BUY, OrderType.LIMIT, 10, 100)
    record = OrderRecord.accepted(OrderAccepted(1, 10, SYM, spec, OrderStatus.OPEN))
    record.apply(
        OrderFilled(2, 11, SYM, OrderId(7), ALICE, TradeId(1), 99, 4, Liquidity.TAKER, 1, 4, 6,
                    OrderStatus.PARTIALLY_FILLED)
    )  # fmt: skip
    record.apply(OrderCancelled(3, 12, SYM, OrderId(7), ALICE, 6, 4, CancelReason.USER))
    view = record.view()
    assert (view.status, view.filled, view.remaining, view.cancelled) == (
        OrderStatus.CANCELLED,
        4,
        0,
        6,
    )
    assert (view.notional, view.reason, view.updated_ts) == (396, "user", 12)
