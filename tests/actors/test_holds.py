"""Holds: what the risk actor holds live is what the journal rebuilds, at every snapshot point.

A hold is taken when an order is accepted, brought to what is left of the
order by each fill, reduction and amend, and released when the order ends.
Live, some of that happens before the journal has the matching event (a
submit or an amend is held first), and an amend the matcher refuses leaves no
event at all; recovery rebuilds the holds from the journal alone, on top of a
snapshot taken at any commit. The two must agree, and both must equal what
the open orders need (``core.holds``, the risk actor's ``check``).
"""

from __future__ import annotations

import contextlib
import time
from typing import Any, NamedTuple

import attrs
import pytest
import trio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.actors.helpers import (
    ALICE,
    BOB,
    BTC,
    BTC_MID,
    CAROL,
    ETH,
    ETH_MID,
    INSTRUMENTS,
    buy,
    buy_hold,
    inject_crash,
    open_market,
    place,
    quiesce,
    sell,
)
from tests.actors.test_margin import PERP
from trading_engine.actors.engine import Actors, Engine, build_actors, open_engine, snapshot_journal
from trading_engine.actors.messages import (
    Expire,
    ListRequest,
    OrderRequest,
    OrderResult,
    Refused,
    SymbolBatch,
)
from trading_engine.config import EngineConfig
from trading_engine.core.enums import ListType, OrderType, Side, StpMode, TimeInForce
from trading_engine.core.events import Journaled
from trading_engine.core.holds import HoldMismatch
from trading_engine.core.ids import OrderId, Symbol, UserId
from trading_engine.errors import InvalidInput, InvariantViolation
from trading_engine.storage.journal import InMemoryJournal

CONFIG = EngineConfig(settlement_interval=3600.0, ticker_interval=0.0, expire_every=float("inf"))
USERS = (ALICE, BOB, CAROL)
RICH = {"AIT": 10**13, "BTC": 10**11, "ETH": 10**12, "USD": 10**13}
FUNDING = dict.fromkeys(USERS, RICH)
MIDS = {BTC.symbol: BTC_MID, ETH.symbol: ETH_MID, PERP.symbol: BTC_MID}
LOTS = {BTC.symbol: (1, 60), ETH.symbol: (10, 80), PERP.symbol: (1, 60)}
HOUR = 3600 * 10**9


class CommitLog(InMemoryJournal):
    """The in-memory journal, noting where each commit ends: each place a snapshot may be
    taken (``trading-engine snapshot`` reads whole commits)."""

    def __init__(self) -> None:
        super().__init__()
        self.ends: list[int] = []

    async def append(self, batch: Any) -> None:
        await super().append(batch)
        if not self.ends or self.ends[-1] != self.events:
            self.ends.append(self.events)


async def journal_of(events: list[tuple[str, Journaled]]) -> InMemoryJournal:
    """A journal holding ``events``, in the same order."""
    journal = InMemoryJournal()
    for stream, event in events:
        await journal.append([(stream, [event])])
    return journal


def balances(actors: Actors) -> dict[UserId, dict[str, tuple[int, int]]]:
    return {user: actors.risk.query_balances(user) for user in USERS}


async def live_balances(engine: Engine) -> dict[UserId, dict[str, tuple[int, int]]]:
    await quiesce(engine)
    with trio.fail_after(5):
        return {user: await engine.balances(user) for user in USERS}


async def assert_rebuilt_alike(journal: CommitLog, live: dict[UserId, Any]) -> None:
    """A full replay, and recovery from a snapshot taken after any commit, rebuild ``live``'s
    balances and pass the risk actor's check (holds included).

    Snapshots are made as ``trading-engine snapshot`` makes them while the engine runs:
    each from the one before it plus the commits after it."""
    log = await journal.read_all()
    restored = await journal_of(log)
    full = await build_actors(CONFIG, restored)
    full.risk.query_check()
    assert balances(full) == live, "a full replay differs from the live engine"
    prefix = InMemoryJournal()
    done = 0
    for end in journal.ends[:-1]:
        for stream, event in log[done:end]:
            await prefix.append([(stream, [event])])
        done = end
        snapshot = await snapshot_journal(CONFIG, prefix)
        await prefix.save_snapshot(snapshot)
        await restored.save_snapshot(snapshot)
        actors = await build_actors(CONFIG, restored)
        assert actors.recovered is not None
        assert actors.recovered.snapshot == end
        actors.risk.query_check()
        assert balances(actors) == live, f"a snapshot at {end} of {len(log)} differs"


# ---------------------------------------------------------------- a generated stream


class Limit(NamedTuple):
    user: int
    symbol: int
    buy: bool
    quantity: int
    offset: int
    tif: TimeInForce
    post_only: bool
    stp: StpMode
    reduce_only: bool
    """In the margin symbol only (spot refuses it)."""


class Market(NamedTuple):
    user: int
    symbol: int
    buy: bool
    quantity: int
    reduce_only: bool


class Stop(NamedTuple):
    user: int
    symbol: int
    buy: bool
    quantity: int
    offset: int
    limit_offset: int | None


class Newer(NamedTuple):
    """Take-profit, trailing-stop, iceberg and quote-sized market orders."""

    user: int
    symbol: int
    buy: bool
    quantity: int
    offset: int
    kind: str
    limit: bool


class ListOp(NamedTuple):
    """An order list: a take-profit limit and a stop (``oco``), after a working limit on
    the other side (``otoco``), or one of the two after it (``oto``)."""

    user: int
    symbol: int
    buy: bool
    quantity: int
    offset: int
    kind: ListType
    stop_quantity: int


class Amend(NamedTuple):
    order: int
    partly_filled: bool
    """Pick among the partly filled orders, if there are any."""
    price: int | None
    """An offset from the order's price: 0 re-sends its price (the matcher refuses that)."""
    quantity: int | None
    """Added to the order's quantity: 0 re-sends it."""


class Cancel(NamedTuple):
    order: int


class CancelAll(NamedTuple):
    user: int


class ExpireAll(NamedTuple):
    pass


Op = Limit | Market | Stop | Newer | ListOp | Amend | Cancel | CancelAll | ExpireAll

_symbol = st.integers(0, len(MIDS) - 1)
_user = st.integers(0, len(USERS) - 1)
_offset = st.integers(-10, 10)
_quantity = st.integers(0, 60)
_LIMIT = st.builds(
    Limit, _user, _symbol, st.booleans(), _quantity, _offset,
    st.sampled_from([TimeInForce.GTC, TimeInForce.GTC, TimeInForce.GTD, TimeInForce.IOC,
                     TimeInForce.FOK]),
    st.booleans(), st.sampled_from(list(StpMode)), st.booleans(),
)  # fmt: skip
_AMEND = st.builds(
    Amend, st.integers(0, 1000), st.sampled_from([True, True, False]),
    st.sampled_from([None, 0]) | st.integers(-20, 20),
    st.sampled_from([None, 0]) | st.integers(-40, 40),
)  # fmt: skip
OPS = st.one_of(
    _LIMIT, _LIMIT, _LIMIT, _AMEND, _AMEND, _AMEND,
    st.builds(Market, _user, _symbol, st.booleans(), _quantity, st.booleans()),
    st.builds(Stop, _user, _symbol, st.booleans(), _quantity, _offset, st.none() | _offset),
    st.builds(
        Newer, _user, _symbol, st.booleans(), _quantity, _offset,
        st.sampled_from(["take_profit", "trailing", "iceberg", "quote"]), st.booleans(),
    ),
    st.builds(
        ListOp, _user, _symbol, st.booleans(), _quantity, _offset, st.sampled_from(list(ListType)),
        _quantity,
    ),
    st.builds(Cancel, st.integers(0, 1000)),
    st.builds(CancelAll, _user),
    st.builds(ExpireAll),
)  # fmt: skip
"""Mostly limit orders and amends: an amend acts on one of the open orders, often a partly
filled one (where what an order holds and what its rest needs may part)."""


def _request(op: Limit | Market | Stop | Newer) -> OrderRequest:
    symbol = list(MIDS)[op.symbol]
    low, high = LOTS[symbol]
    quantity = min(max(op.quantity, low), high)
    user, side, mid = USERS[op.user], Side.BUY if op.buy else Side.SELL, MIDS[symbol]
    match op:
        case Limit():
            expire = time.time_ns() + HOUR if op.tif is TimeInForce.GTD else None
            return OrderRequest(
                user, symbol, side, OrderType.LIMIT, quantity, mid + 10 * op.offset,
                time_in_force=op.tif, post_only=op.post_only, stp=op.stp, expire_time=expire,
                reduce_only=op.reduce_only and symbol == PERP.symbol,
            )  # fmt: skip
        case Market():
            reduce_only = op.reduce_only and symbol == PERP.symbol
            return OrderRequest(
                user, symbol, side, OrderType.MARKET, quantity, reduce_only=reduce_only
            )
        case Newer(kind="take_profit"):
            kind = OrderType.TAKE_PROFIT_LIMIT if op.limit else OrderType.TAKE_PROFIT
            stop = mid + 10 * op.offset
            return OrderRequest(user, symbol, side, kind, quantity, stop if op.limit else 0, stop)
        case Newer(kind="trailing"):
            kind = OrderType.TRAILING_STOP_LIMIT if op.limit else OrderType.TRAILING_STOP
            return OrderRequest(
                user, symbol, side, kind, quantity, trailing_delta=10 * (1 + abs(op.offset)),
                limit_offset=5 if op.limit else 0, activation_price=mid if op.limit else 0,
            )  # fmt: skip
        case Newer(kind="iceberg"):
            return OrderRequest(
                user, symbol, side, OrderType.LIMIT, quantity, mid + 10 * op.offset,
                display_quantity=max(quantity // 3, 1),
            )  # fmt: skip
        case Newer():
            instrument = INSTRUMENTS.get(Symbol(symbol), PERP)
            quote = instrument.notional(mid, quantity) + 10 * op.offset
            return OrderRequest(user, symbol, side, OrderType.MARKET, 0, quote_quantity=quote)
        case Stop():
            stop = mid + 10 * op.offset
            if op.limit_offset is None:
                return OrderRequest(user, symbol, side, OrderType.STOP, quantity, stop_price=stop)
            price = mid + 10 * op.limit_offset
            return OrderRequest(
                user, symbol, side, OrderType.STOP_LIMIT, quantity, price, stop_price=stop
            )


def _list_request(op: ListOp) -> ListRequest:
    symbol = list(MIDS)[op.symbol]
    low, high = LOTS[symbol]
    quantity = min(max(op.quantity, low), high)
    stop_quantity = min(max(op.stop_quantity, low), high)
    user, side, mid = USERS[op.user], Side.BUY if op.buy else Side.SELL, MIDS[symbol]
    away = -1 if op.buy else 1  # a buy's take-profit is below, its stop above
    distance = 10 * (1 + abs(op.offset))
    take_profit = OrderRequest(user, symbol, side, OrderType.LIMIT, quantity, mid + away * distance)
    stop = OrderRequest(
        user, symbol, side, OrderType.STOP, stop_quantity, stop_price=mid - away * distance
    )
    working = OrderRequest(
        user, symbol, side.opposite, OrderType.LIMIT, quantity, mid + 10 * op.offset
    )
    if op.kind is ListType.OCO:
        return ListRequest(user, op.kind, (take_profit, stop))
    if op.kind is ListType.OTO:
        return ListRequest(user, op.kind, (working, stop if op.offset % 2 else take_profit))
    return ListRequest(user, op.kind, (working, take_profit, stop))


async def _open_orders(engine: Engine, *, partly_filled: bool = False) -> list[OrderId]:
    views = [
        view
        for user in USERS
        for view in await engine.user_orders(user, open_only=True, limit=10_000)
    ]
    if partly_filled and any(view.filled for view in views):
        views = [view for view in views if view.filled]
    return sorted(view.order_id for view in views)


async def _run(engine: Engine, op: Op) -> None:
    with trio.fail_after(5), contextlib.suppress(InvalidInput):  # refused, changing nothing
        match op:
            case Limit() | Market() | Stop() | Newer():
                await engine.submit(_request(op))
            case ListOp():
                await engine.submit_list(_list_request(op))
            case Amend():
                orders = await _open_orders(engine, partly_filled=op.partly_filled)
                if not orders:
                    return
                order_id = orders[op.order % len(orders)]
                view = await engine.order(order_id)
                assert view is not None
                price = None if op.price is None else max(view.price + 10 * op.price, 1)
                quantity = None if op.quantity is None else max(view.quantity + op.quantity, 1)
                outcome = await engine.amend(order_id, None, price=price, quantity=quantity)
                assert isinstance(outcome, OrderResult | Refused), outcome
            case Cancel():
                orders = await _open_orders(engine)
                if orders:
                    await engine.cancel(orders[op.order % len(orders)], None)
            case CancelAll(user=user):
                await engine.cancel_all(USERS[user])
            case ExpireAll():
                for symbol in MIDS:
                    handle = engine._supervisor.handles[Symbol(symbol)]
                    await handle.send.send(SymbolBatch((Expire(time.time_ns() + 2 * HOUR),)))
                    await engine.book(Symbol(symbol))  # answered once the expiries are written
    await quiesce(engine)


async def _holds_scenario(ops: list[Op]) -> None:
    journal = CommitLog()
    async with open_market(journal, CONFIG, FUNDING) as engine:
        with trio.fail_after(5):
            assert await engine.add_symbol(PERP) is None
        # Positions to reduce: alice long 20 lots of the margin symbol, carol short.
        await place(engine, sell(CAROL, 20, BTC_MID, PERP.symbol))
        await place(engine, buy(ALICE, 20, BTC_MID, PERP.symbol))
        for symbol, mid in MIDS.items():
            lots = 40 * LOTS[symbol][0]  # deep levels: most takers fill some of one
            for step, user in enumerate(USERS, start=1):
                await place(engine, buy(user, lots, mid - 50 * step, Symbol(symbol)))
                await place(engine, sell(USERS[-step], lots, mid + 50 * step, Symbol(symbol)))
        for index, op in enumerate(ops):
            await _run(engine, op)
            replayed = await build_actors(CONFIG, await journal_of(await journal.read_all()))
            live = await live_balances(engine)
            assert balances(replayed) == live, f"after {ops[: index + 1]}"
    await assert_rebuilt_alike(journal, live)


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(st.lists(OPS, min_size=10, max_size=40))
def test_live_holds_equal_the_holds_rebuilt_from_the_journal_at_every_snapshot_point(
    ops: list[Op],
) -> None:
    """After every operation the live engine passes its check (``quiesce``) and its
    balances equal a replay of the journal so far; at the end, those of a recovery
    from a snapshot taken after any commit too."""
    trio.run(_holds_scenario, ops)


# ---------------------------------------------------------------- single cases


async def test_an_amend_the_matcher_refuses_leaves_the_hold_a_restart_rebuilds() -> None:
    """Alice's buy fills in part as the maker, paying the maker's fee (a rebate) instead
    of the worst fee its hold covers; an amend to the price it has is refused by the
    matcher, which journals nothing. Live and after a restart, alice holds exactly what
    the rest of the order needs."""
    journal = CommitLog()
    async with open_market(journal, CONFIG) as engine:
        resting = await place(engine, buy(ALICE, 100, BTC_MID))
        await place(engine, sell(BOB, 40, BTC_MID))
        with trio.fail_after(5):
            refused = await engine.amend(resting.order.order_id, ALICE, price=BTC_MID)
        assert isinstance(refused, Refused)
        assert refused.code == "invalid_amend"
        live = await live_balances(engine)
        assert live[ALICE]["AIT"][1] == buy_hold(BTC, 60, BTC_MID)
    async with open_engine(CONFIG, journal) as engine:
        assert await live_balances(engine) == live
    await assert_rebuilt_alike(journal, live)


async def test_a_partial_fill_frees_what_the_rest_of_a_buy_does_not_need() -> None:
    """A taker buy fills 30 lots below its limit price, paying the taker's fee: its
    hold is at once what its 70 resting lots need at its price, the rest is available."""
    journal = CommitLog()
    async with open_market(journal, CONFIG) as engine:
        await place(engine, sell(BOB, 30, BTC_MID - 500))
        taker = await place(engine, buy(ALICE, 100, BTC_MID))
        assert taker.order.filled == 30
        live = await live_balances(engine)
        assert live[ALICE]["AIT"][1] == buy_hold(BTC, 70, BTC_MID)
    await assert_rebuilt_alike(journal, live)


async def test_a_self_trade_decrement_frees_the_hold_of_the_lots_it_removes() -> None:
    """Self-trade prevention ``decrement`` takes 40 lots off alice's resting buy without
    a trade (``OrderReduced``): its hold drops to what its 60 lots need."""
    journal = CommitLog()
    async with open_market(journal, CONFIG) as engine:
        await place(engine, buy(ALICE, 100, BTC_MID))
        await place(engine, sell(ALICE, 40, BTC_MID, stp=StpMode.DECREMENT))
        live = await live_balances(engine)
        assert live[ALICE]["AIT"][1] == buy_hold(BTC, 60, BTC_MID)
    await assert_rebuilt_alike(journal, live)


async def test_an_amend_that_meets_a_halted_symbol_gives_back_the_hold_it_raised() -> None:
    """The symbol crashes and halts (one crash is too many here) while an amend that
    raises alice's hold is on its way: the halted symbol refuses it, and her hold goes
    back to what the order needs, as a restart rebuilds it."""
    journal = CommitLog()
    config = attrs.evolve(CONFIG, max_restarts=1)
    async with open_market(journal, config) as engine:
        resting = await place(engine, buy(ALICE, 100, BTC_MID))
        before = await live_balances(engine)
        with trio.fail_after(5):
            await inject_crash(engine, BTC.symbol)
            amended = await engine.amend(resting.order.order_id, ALICE, quantity=300)
        assert isinstance(amended, Refused)
        assert amended.code == "symbol_halted"
        assert BTC.symbol in engine.halted()
        live = await live_balances(engine)
        assert live == before
        assert live[ALICE]["AIT"][1] == buy_hold(BTC, 100, BTC_MID)
    async with open_engine(config, journal) as engine:
        assert await live_balances(engine) == live


# ---------------------------------------------------------------- the check itself


async def test_the_check_names_each_user_and_asset_whose_held_is_not_what_orders_need() -> None:
    """Holds set wrong behind the bookkeeping's back (it still adds up): a spot hold 25
    units too large, and a margin order's margin 1,000 too small. The check lists both,
    with what the orders need and what is held."""
    journal = InMemoryJournal()
    async with open_market(journal, CONFIG, FUNDING) as engine:
        with trio.fail_after(5):
            assert await engine.add_symbol(PERP) is None
        spot = await place(engine, buy(ALICE, 100, BTC_MID))
        margin = await place(engine, buy(BOB, 10, BTC_MID, PERP.symbol))
    risk = (await build_actors(CONFIG, journal)).risk
    assert risk.query_check()
    assert risk.hold_mismatches() == []
    needed = buy_hold(BTC, 100, BTC_MID)
    assert risk.accounts.adjust_hold(spot.order.order_id, needed + 25)
    order_margin = 10 * (BTC_MID * 100 // 10 + BTC_MID * 100 * 10 // 10_000)
    _, held = risk.accounts.balance(BOB, "USD")
    assert held == order_margin
    risk.margin.set_order(margin.order.order_id, BOB, "USD", order_margin - 1_000)
    risk.accounts.set_margin_requirement(BOB, "USD", order_margin - 1_000)
    risk.accounts.check()
    assert risk.hold_mismatches() == [
        HoldMismatch(ALICE, "AIT", needed, needed + 25),
        HoldMismatch(BOB, "USD", order_margin, order_margin - 1_000),
    ]
    with pytest.raises(InvariantViolation) as raised:
        risk.query_check()
    assert f"alice AIT: held {needed + 25}, its open orders need {needed}" in str(raised.value)
    assert f"bob USD: held {order_margin - 1_000}, its open orders need {order_margin}" in str(
        raised.value
    )
