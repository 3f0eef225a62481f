"""The order book: levels, best price via the heap, lazy deletion, depth, L3 and check()."""

import heapq

import pytest

from trading_engine.core.book import Book, BookSide
from trading_engine.core.enums import OrderType, Side
from trading_engine.core.ids import OrderId, UserId
from trading_engine.core.orders import Order, OrderSpec
from trading_engine.errors import InvariantViolation


def order(order_id: int, side: Side, price: int, quantity: int = 1) -> Order:
    spec = OrderSpec.create(
        OrderId(order_id), UserId("u"), side, OrderType.LIMIT, quantity, price=price
    )
    return Order.from_spec(spec, ts=0)


def asks() -> BookSide:
    return Book().asks


def test_add_appends_to_the_level_and_sums_its_quantity() -> None:
    side = asks()
    first, second = order(1, Side.SELL, 100, 3), order(2, Side.SELL, 100, 4)
    level = side.add(first)
    assert side.add(second) is level
    assert (level.price, level.side, level.quantity, level.count) == (100, Side.SELL, 7, 2)
    assert list(level.orders) == [first, second]
    assert first.resting
    assert second.resting
    side.check()


def test_best_is_the_lowest_ask_and_the_highest_bid() -> None:
    book = Book()
    for i, price in enumerate([101, 99, 100]):
        book.bids.add(order(i, Side.BUY, price))
        book.asks.add(order(10 + i, Side.SELL, price + 10))
    assert book.best_bid() == 101
    assert book.best_ask() == 109
    assert book.bids.best() == -book.bids.heap[0]
    assert book.asks.best() == book.asks.heap[0]


def test_empty_side_has_no_best_price() -> None:
    book = Book()
    assert book.best_bid() is None
    assert book.best_ask() is None
    assert not book.is_crossed()


def test_side_returns_bids_for_buy_and_asks_for_sell() -> None:
    book = Book()
    assert book.side(Side.BUY) is book.bids
    assert book.side(Side.SELL) is book.asks


def test_remove_subtracts_quantity_and_clears_resting() -> None:
    side = asks()
    first, second = order(1, Side.SELL, 100, 3), order(2, Side.SELL, 100, 4)
    side.add(first)
    side.add(second)
    level = side.remove(second)
    assert (level.quantity, level.count) == (3, 1)
    assert not second.resting
    assert list(level.live()) == [first]
    side.check()


def test_removing_the_last_order_drops_the_level_and_best_moves_to_the_next() -> None:
    side = asks()
    best, next_best = order(1, Side.SELL, 100), order(2, Side.SELL, 105)
    side.add(best)
    side.add(next_best)
    side.remove(best)
    assert 100 not in side.levels
    assert side.best() == 105
    assert side.heap[0] == 105
    side.check()


def test_removing_the_only_level_empties_the_side() -> None:
    side = asks()
    only = order(1, Side.SELL, 100)
    side.add(only)
    side.remove(only)
    assert side.levels == {}
    assert side.heap == []
    assert side.best() is None


def test_stale_heap_keys_of_deeper_levels_are_skipped_when_they_surface() -> None:
    side = asks()
    a, b, c = order(1, Side.SELL, 100), order(2, Side.SELL, 101), order(3, Side.SELL, 102)
    for o in (a, b, c):
        side.add(o)
    side.remove(b)
    assert sorted(side.heap) == [100, 101, 102]  # 101's key stays until it reaches the top
    assert side.best() == 100
    side.remove(a)
    assert side.best() == 102
    assert side.heap == [102]
    side.check()


def test_drop_forgets_the_level_and_repairs_the_heap_top() -> None:
    side = Book().bids
    side.add(order(1, Side.BUY, 100))
    level = side.add(order(2, Side.BUY, 99))
    top = side.levels[100]
    side.drop(top)
    assert list(side.levels) == [99]
    assert side.best() == 99
    assert side.levels[99] is level


def test_stale_heap_keys_stay_bounded() -> None:
    side = asks()
    side.add(order(0, Side.SELL, 1))
    largest = 0
    for i in range(1, 500):
        side.remove(side.add(order(i, Side.SELL, 1_000 + i)).orders[0])
        largest = max(largest, len(side.heap))
    assert largest < 100  # rebuilt past 2 x levels + 64, not one key per level ever added
    assert side.best() == 1
    side.check()


def test_removing_from_the_middle_is_lazy_and_keeps_fifo_order() -> None:
    side = asks()
    a, b, c = (order(i, Side.SELL, 100) for i in (1, 2, 3))
    for o in (a, b, c):
        side.add(o)
    level = side.remove(b)
    assert list(level.orders) == [a, b, c]  # b stays, dead, in the deque
    assert list(level.live()) == [a, c]
    assert level.count == 2
    side.remove(a)
    assert list(level.orders) == [b, c]  # the front is popped; the dead b surfaces
    assert list(level.live()) == [c]
    side.check()


def test_compaction_drops_dead_entries_once_they_outnumber_live_ones() -> None:
    side = asks()
    orders = [order(i, Side.SELL, 100) for i in range(20)]
    for o in orders:
        side.add(o)
    for o in orders[1:15]:
        level = side.remove(o)
    assert len(level.orders) == 20  # 6 live, 14 dead: not yet compacted
    level = side.remove(orders[15])
    assert list(level.orders) == [orders[0], *orders[16:]]
    assert list(level.live()) == [orders[0], *orders[16:]]
    assert level.quantity == 5
    side.check()


def test_depth_aggregates_each_level_best_first() -> None:
    book = Book()
    for i, (price, qty) in enumerate([(99, 2), (101, 1), (99, 3), (100, 4), (101, 5)]):
        book.bids.add(order(i, Side.BUY, price, qty))
        book.asks.add(order(10 + i, Side.SELL, price + 10, qty))
    assert book.bids.depth() == [(101, 6), (100, 4), (99, 5)]
    assert book.asks.depth() == [(109, 5), (110, 4), (111, 6)]
    assert book.bids.depth(2) == [(101, 6), (100, 4)]
    assert book.asks.depth(1) == [(109, 5)]
    assert book.bids.prices() == [101, 100, 99]


def test_book_orders_lists_bids_then_asks_best_first_in_queue_order() -> None:
    book = Book()
    placed = [
        order(1, Side.BUY, 99),
        order(2, Side.SELL, 102),
        order(3, Side.BUY, 100),
        order(4, Side.SELL, 101),
        order(5, Side.BUY, 99),
        order(6, Side.SELL, 101),
        order(7, Side.BUY, 100),
    ]
    for o in placed:
        book.side(o.side).add(o)
    book.bids.remove(placed[2])
    assert [o.order_id for o in book.orders()] == [7, 1, 5, 4, 6, 2]


def test_is_crossed_when_best_bid_reaches_best_ask() -> None:
    book = Book()
    book.bids.add(order(1, Side.BUY, 100))
    book.asks.add(order(2, Side.SELL, 101))
    assert not book.is_crossed()
    book.bids.add(order(3, Side.BUY, 101))
    assert book.is_crossed()


def test_check_passes_on_a_consistent_book() -> None:
    book = Book()
    book.bids.add(order(1, Side.BUY, 100, 2))
    book.asks.add(order(2, Side.SELL, 101, 3))
    book.check()


def test_check_detects_a_level_quantity_out_of_sync() -> None:
    side = asks()
    side.add(order(1, Side.SELL, 100, 2)).quantity += 1
    with pytest.raises(InvariantViolation, match="quantity out of sync"):
        side.check()


def test_check_detects_a_wrong_count() -> None:
    side = asks()
    side.add(order(1, Side.SELL, 100, 2)).count = 2
    with pytest.raises(InvariantViolation, match="bad count or empty"):
        side.check()


def test_check_detects_a_misplaced_order() -> None:
    side = asks()
    placed = order(1, Side.SELL, 100, 2)
    side.add(placed)
    placed.price = 101
    with pytest.raises(InvariantViolation, match="misplaced order"):
        side.check()


def test_check_detects_a_heap_top_without_a_live_level() -> None:
    side = asks()
    side.add(order(1, Side.SELL, 100))
    heapq.heappush(side.heap, 50)
    with pytest.raises(InvariantViolation, match="heap top is not a live level"):
        side.check()


def test_check_detects_a_heap_top_that_is_not_the_best_price() -> None:
    side = asks()
    side.add(order(1, Side.SELL, 100))
    side.add(order(2, Side.SELL, 101))
    side.heap = [101, 100]
    with pytest.raises(InvariantViolation, match="heap top is not the best price"):
        side.check()
