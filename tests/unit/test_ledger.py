"""The double-entry ledger: balanced postings, idempotency, trade settlement, transfers."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from trading_engine.core.enums import Side
from trading_engine.core.events import Trade
from trading_engine.core.ids import OrderId, Symbol, TradeId, UserId
from trading_engine.core.instruments import Instrument, fee_for
from trading_engine.core.ledger import (
    EXTERNAL,
    FEES,
    AccountEntry,
    Entry,
    Ledger,
    Posting,
    PostingKind,
    deposit_posting,
    trade_posting,
    user_account,
    withdrawal_posting,
)
from trading_engine.errors import InvalidInput, InvariantViolation

BTC = Instrument.create(
    "BTC_AIT",
    "BTC",
    "AIT",
    "0.01",
    "0.0001",
    maker_fee_bps=-2,
    taker_fee_bps=10,
    base_decimals=8,
    quote_decimals=6,
)
USDX = Instrument.create(
    "ETH_USDX", "ETH", "USDX", "0.01", "0.001", maker_fee_bps=0, taker_fee_bps=0
)


def make_trade(
    *,
    trade_id: int = 1,
    price: int = 12_345,
    quantity: int = 25,
    aggressor: Side = Side.BUY,
    maker: str = "mia",
    taker: str = "tom",
    maker_fee: int = -1,
    taker_fee: int = 5,
    symbol: str = "BTC_AIT",
    ts: int = 1_000,
) -> Trade:
    return Trade(
        seq=trade_id,
        ts=ts,
        symbol=Symbol(symbol),
        trade_id=TradeId(trade_id),
        price=price,
        quantity=quantity,
        aggressor=aggressor,
        maker_order_id=OrderId(100 + trade_id),
        taker_order_id=OrderId(200 + trade_id),
        maker_user_id=UserId(maker),
        taker_user_id=UserId(taker),
        maker_fee=maker_fee,
        taker_fee=taker_fee,
    )


# ---- Posting ------------------------------------------------------------------------------


def test_posting_create_keeps_a_balanced_posting() -> None:
    entries = [Entry("user:a", "BTC", 5), Entry("user:b", "BTC", -5)]
    posting = Posting.create("p1", "transfer", entries, ts=7)
    assert posting.entries == tuple(entries)
    assert (posting.posting_id, posting.kind, posting.ts) == ("p1", "transfer", 7)
    assert posting.deltas() == {("user:a", "BTC"): 5, ("user:b", "BTC"): -5}


@pytest.mark.parametrize(
    "entries",
    [
        [],
        [Entry("user:a", "BTC", 5)],
        [Entry("user:a", "BTC", 5), Entry("user:b", "BTC", -4)],
        # Balanced in total, but across two assets.
        [Entry("user:a", "BTC", 5), Entry("user:b", "ETH", -5)],
        [Entry("user:a", "BTC", 5), Entry("user:b", "BTC", -5), Entry("fees", "AIT", 1)],
        [Entry("user:a", "BTC", 0)],
    ],
    ids=["empty", "one-sided", "short", "cross-asset", "one-asset-unbalanced", "zero"],
)
def test_posting_create_rejects_what_does_not_balance(entries: list[Entry]) -> None:
    with pytest.raises(InvariantViolation):
        Posting.create("p1", "transfer", entries, ts=0)


@pytest.mark.parametrize(("posting_id", "kind"), [("", "trade"), ("p1", "")])
def test_posting_create_needs_an_id_and_a_kind(posting_id: str, kind: str) -> None:
    entries = [Entry("user:a", "BTC", 5), Entry("user:b", "BTC", -5)]
    with pytest.raises(InvariantViolation):
        Posting.create(posting_id, kind, entries, ts=0)


def test_ledger_refuses_an_unbalanced_posting_built_without_create() -> None:
    ledger = Ledger()
    bad = Posting(posting_id="p1", kind="x", entries=(Entry("user:a", "BTC", 5),), ts=0)
    with pytest.raises(InvariantViolation):
        ledger.post(bad)
    assert len(ledger) == 0
    assert ledger.balances() == {}
    assert "p1" not in ledger


# ---- Ledger -------------------------------------------------------------------------------


def test_balances_history_and_totals_after_transfers() -> None:
    ledger = Ledger()
    assert ledger.post(deposit_posting("d1", "ann", "BTC", 1_000, ts=1))
    assert ledger.post(withdrawal_posting("w1", "ann", "BTC", 300, ts=2))
    assert ledger.post(deposit_posting("d2", "bob", "AIT", 50, ts=3))
    assert ledger.balance("user:ann", "BTC") == 700
    assert ledger.balance(EXTERNAL, "BTC") == -700
    assert ledger.balance("user:ann", "AIT") == 0
    assert ledger.balances() == {
        ("user:ann", "BTC"): 700,
        (EXTERNAL, "BTC"): -700,
        ("user:bob", "AIT"): 50,
        (EXTERNAL, "AIT"): -50,
    }
    assert ledger.totals_by_asset() == {"BTC": 0, "AIT": 0}
    ledger.verify()
    assert ledger.entries("user:ann") == [
        AccountEntry("d1", "deposit", 1, "BTC", 1_000, 1_000),
        AccountEntry("w1", "withdrawal", 2, "BTC", -300, 700),
    ]
    assert ledger.entries("user:bob", "BTC") == []
    assert [line.balance for line in ledger.entries(EXTERNAL, "AIT")] == [-50]
    assert len(ledger) == 3
    assert ledger.posting("w1") == withdrawal_posting("w1", "ann", "BTC", 300, ts=2)
    assert ledger.posting("nope") is None


def test_balances_leave_out_accounts_back_at_zero() -> None:
    ledger = Ledger()
    ledger.post(deposit_posting("d1", "ann", "BTC", 10, ts=1))
    ledger.post(withdrawal_posting("w1", "ann", "BTC", 10, ts=2))
    assert ledger.balances() == {}
    assert ledger.totals_by_asset() == {"BTC": 0}


def test_posting_the_same_id_twice_is_a_no_op() -> None:
    ledger = Ledger()
    posting = deposit_posting("d1", "ann", "BTC", 10, ts=1)
    assert ledger.post(posting) is True
    assert ledger.post(deposit_posting("d1", "ann", "BTC", 10, ts=1)) is False
    assert ledger.balance("user:ann", "BTC") == 10
    assert len(ledger.entries("user:ann")) == 1


@pytest.mark.parametrize(
    "other",
    [
        deposit_posting("d1", "ann", "BTC", 11, ts=1),
        deposit_posting("d1", "bob", "BTC", 10, ts=1),
        deposit_posting("d1", "ann", "BTC", 10, ts=2),
        withdrawal_posting("d1", "ann", "BTC", 10, ts=1),
    ],
)
def test_a_different_posting_under_a_used_id_raises_and_changes_nothing(other: Posting) -> None:
    ledger = Ledger()
    ledger.post(deposit_posting("d1", "ann", "BTC", 10, ts=1))
    before = ledger.balances()
    with pytest.raises(InvariantViolation, match="d1"):
        ledger.post(other)
    assert ledger.balances() == before
    assert len(ledger.entries("user:ann")) == 1


def test_negative_balances_lists_only_users() -> None:
    ledger = Ledger()
    ledger.post(withdrawal_posting("w1", "ann", "BTC", 5, ts=1))
    ledger.post(deposit_posting("d1", "bob", "BTC", 9, ts=1))
    rebate = Posting.create("r1", "rebate", [Entry(FEES, "AIT", -3), Entry("user:cy", "AIT", 3)], 2)
    ledger.post(rebate)
    assert ledger.balance(FEES, "AIT") == -3
    assert ledger.balance(EXTERNAL, "BTC") == -4
    assert ledger.negative_balances() == [("user:ann", "BTC", -5)]


def test_verify_raises_when_totals_are_not_zero() -> None:
    ledger = Ledger()
    ledger.post(deposit_posting("d1", "ann", "BTC", 10, ts=1))
    ledger.verify()
    ledger._balances[("user:ann", "BTC")] = 11  # simulate corruption
    with pytest.raises(InvariantViolation, match="BTC"):
        ledger.verify()


# ---- transfers ----------------------------------------------------------------------------


@pytest.mark.parametrize("builder", [deposit_posting, withdrawal_posting])
@pytest.mark.parametrize("amount", [0, -1])
def test_transfers_need_a_positive_integer_amount(builder: object, amount: int) -> None:
    assert callable(builder)
    with pytest.raises(InvalidInput) as info:
        builder("p1", "ann", "BTC", amount, 0)
    assert info.value.field == "amount"


@pytest.mark.parametrize(
    ("posting_id", "user_id", "asset", "field"),
    [("", "ann", "BTC", "posting_id"), ("p", "", "BTC", "user_id"), ("p", "ann", "", "asset")],
)
def test_transfers_need_ids_and_an_asset(
    posting_id: str, user_id: str, asset: str, field: str
) -> None:
    with pytest.raises(InvalidInput) as info:
        deposit_posting(posting_id, user_id, asset, 1, 0)
    assert info.value.field == field


def test_deposit_and_withdrawal_postings_move_against_external() -> None:
    deposit = deposit_posting("d1", "ann", "BTC", 7, ts=5)
    assert deposit.kind == PostingKind.DEPOSIT
    assert deposit.kind == "deposit"
    assert deposit.deltas() == {("user:ann", "BTC"): 7, (EXTERNAL, "BTC"): -7}
    withdrawal = withdrawal_posting("w1", "ann", "BTC", 7, ts=5)
    assert withdrawal.kind == "withdrawal"
    assert withdrawal.deltas() == {("user:ann", "BTC"): -7, (EXTERNAL, "BTC"): 7}


# ---- trades -------------------------------------------------------------------------------


def test_instrument_units_used_below() -> None:
    # 123.45 AIT x 0.0025 BTC = 0.308625 AIT; 0.0025 BTC = 250_000 satoshi.
    assert BTC.notional(12_345, 25) == 308_625
    assert BTC.base_units(25) == 250_000


def test_taker_buy_settles_buyer_seller_and_fees_exactly() -> None:
    posting = trade_posting(make_trade(aggressor=Side.BUY, maker_fee=-1, taker_fee=5), BTC)
    assert posting.posting_id == "trade:BTC_AIT:1"
    assert posting.kind == "trade"
    assert posting.ts == 1_000
    assert posting.deltas() == {
        ("user:tom", "BTC"): 250_000,
        ("user:mia", "BTC"): -250_000,
        ("user:tom", "AIT"): -(308_625 + 5),
        ("user:mia", "AIT"): 308_625 + 1,
        (FEES, "AIT"): 4,
    }


def test_taker_sell_makes_the_maker_the_buyer() -> None:
    posting = trade_posting(make_trade(aggressor=Side.SELL, maker_fee=2, taker_fee=5), BTC)
    assert posting.deltas() == {
        ("user:mia", "BTC"): 250_000,
        ("user:tom", "BTC"): -250_000,
        ("user:mia", "AIT"): -(308_625 + 2),
        ("user:tom", "AIT"): 308_625 - 5,
        (FEES, "AIT"): 7,
    }


def test_zero_fees_leave_no_fee_entry() -> None:
    posting = trade_posting(make_trade(maker_fee=0, taker_fee=0), BTC)
    assert all(entry.account != FEES for entry in posting.entries)
    assert all(entry.amount != 0 for entry in posting.entries)


def test_net_rebate_is_paid_from_the_fee_account() -> None:
    posting = trade_posting(make_trade(maker_fee=-9, taker_fee=5), BTC)
    assert posting.deltas()[(FEES, "AIT")] == -4


def test_self_trade_nets_to_paying_both_fees() -> None:
    posting = trade_posting(make_trade(maker="sam", taker="sam", maker_fee=-1, taker_fee=5), BTC)
    assert posting.deltas() == {
        ("user:sam", "BTC"): 0,
        ("user:sam", "AIT"): -4,
        (FEES, "AIT"): 4,
    }
    ledger = Ledger()
    ledger.post(posting)
    assert ledger.balance("user:sam", "BTC") == 0
    assert ledger.balance("user:sam", "AIT") == -4
    ledger.verify()


def test_trade_posting_refuses_another_symbols_trade() -> None:
    with pytest.raises(InvariantViolation, match="ETH_USDX"):
        trade_posting(make_trade(symbol="BTC_AIT"), USDX)


@pytest.mark.parametrize(("price", "quantity"), [(0, 1), (1, 0), (-1, 1)])
def test_trade_posting_refuses_non_positive_price_or_quantity(price: int, quantity: int) -> None:
    with pytest.raises(InvariantViolation):
        trade_posting(make_trade(price=price, quantity=quantity), BTC)


def test_user_account_name() -> None:
    assert user_account("ann") == "user:ann"


# ---- properties ---------------------------------------------------------------------------

USERS = ["ann", "bob", "cy"]
ASSETS = ["BTC", "AIT"]


@st.composite
def trades(draw: st.DrawFn, trade_id: int) -> Trade:
    price = draw(st.integers(1, 10**7))
    quantity = draw(st.integers(1, 10**6))
    notional = BTC.notional(price, quantity)
    if draw(st.booleans()):
        maker_fee, taker_fee = fee_for(notional, -2), fee_for(notional, 10)
    else:  # Anything, net negative included: the ledger must not assume the instrument's rules.
        maker_fee = draw(st.integers(-notional - 5, notional + 5))
        taker_fee = draw(st.integers(-notional - 5, notional + 5))
    return make_trade(
        trade_id=trade_id,
        price=price,
        quantity=quantity,
        aggressor=draw(st.sampled_from(Side)),
        maker=draw(st.sampled_from(USERS)),
        taker=draw(st.sampled_from(USERS)),
        maker_fee=maker_fee,
        taker_fee=taker_fee,
        ts=trade_id,
    )


@st.composite
def postings(draw: st.DrawFn) -> list[Posting]:
    out: list[Posting] = []
    for number in range(draw(st.integers(0, 25))):
        kind = draw(st.sampled_from(["trade", "deposit", "withdrawal"]))
        if kind == "trade":
            out.append(trade_posting(draw(trades(number)), BTC))
        else:
            builder = deposit_posting if kind == "deposit" else withdrawal_posting
            user, asset = draw(st.sampled_from(USERS)), draw(st.sampled_from(ASSETS))
            out.append(builder(f"{kind}:{number}", user, asset, draw(st.integers(1, 10**12)), 0))
    return out


@settings(max_examples=150)
@given(postings())
def test_any_sequence_keeps_every_asset_summing_to_zero(sequence: list[Posting]) -> None:
    ledger = Ledger()
    expected: dict[tuple[str, str], int] = {}
    for posting in sequence:
        per_asset: dict[str, int] = {}
        for entry in posting.entries:
            per_asset[entry.asset] = per_asset.get(entry.asset, 0) + entry.amount
            key = (entry.account, entry.asset)
            expected[key] = expected.get(key, 0) + entry.amount
        assert set(per_asset.values()) == {0}
        assert ledger.post(posting)
        assert set(ledger.totals_by_asset().values()) <= {0}
        ledger.verify()
    assert ledger.balances() == {key: value for key, value in expected.items() if value}
    for (account, asset), value in expected.items():
        assert ledger.balance(account, asset) == value
        assert sum(line.amount for line in ledger.entries(account, asset)) == value
        history = ledger.entries(account, asset)
        assert history[-1].balance == value
    negative = [(a, s, v) for (a, s), v in expected.items() if v < 0 and a.startswith("user:")]
    assert ledger.negative_balances() == sorted(negative)


@settings(max_examples=100)
@given(postings())
def test_posting_everything_again_changes_nothing(sequence: list[Posting]) -> None:
    ledger = Ledger()
    for posting in sequence:
        ledger.post(posting)
    before = (ledger.balances(), {a: ledger.entries(a) for a, _ in ledger.balances()})
    for posting in sequence:
        assert ledger.post(posting) is False
    assert (ledger.balances(), {a: ledger.entries(a) for a, _ in ledger.balances()}) == before
    assert len(ledger) == len(sequence)


@settings(max_examples=200)
@given(trades(1))
def test_trade_deltas_match_the_trade(trade: Trade) -> None:
    deltas = trade_posting(trade, BTC).deltas()
    base = trade.quantity * 10_000  # satoshi per 0.0001 BTC lot
    notional = trade.price * trade.quantity  # a tick-lot is one micro-AIT here
    buyer, seller = (
        (trade.taker_user_id, trade.maker_user_id)
        if trade.aggressor == Side.BUY
        else (trade.maker_user_id, trade.taker_user_id)
    )
    buyer_fee, seller_fee = (
        (trade.taker_fee, trade.maker_fee)
        if trade.aggressor == Side.BUY
        else (trade.maker_fee, trade.taker_fee)
    )
    expected: dict[tuple[str, str], int] = {}
    for account, asset, amount in [
        (f"user:{buyer}", "BTC", base),
        (f"user:{seller}", "BTC", -base),
        (f"user:{buyer}", "AIT", -notional - buyer_fee),
        (f"user:{seller}", "AIT", notional - seller_fee),
        (FEES, "AIT", trade.maker_fee + trade.taker_fee),
    ]:
        expected[(account, asset)] = expected.get((account, asset), 0) + amount
    assert {k: v for k, v in deltas.items() if v} == {k: v for k, v in expected.items() if v}


@settings(max_examples=150)
@given(postings(), st.integers(1, 5))
def test_a_ledger_remembering_the_newest_ids_balances_as_one_remembering_all(
    sequence: list[Posting], remember: int
) -> None:
    bounded, full = Ledger(remember=remember), Ledger()
    for posting in sequence:
        assert bounded.post(posting) == full.post(posting)
        assert bounded.post(posting) is False  # a repeat of the newest is still refused
    assert bounded.balances() == full.balances()
    assert len(bounded) == len(full) == len(sequence)
    kept = [p.posting_id for p in sequence[-remember:]]
    assert [i for i in (p.posting_id for p in sequence) if i in bounded] == kept
    assert all(bounded.posting(i) == full.posting(i) for i in kept)


def test_remember_newest_trims_to_the_newest_and_zero_keeps_all_from_then_on() -> None:
    ledger = Ledger()
    for number in range(5):
        ledger.post(deposit_posting(f"d{number}", "ann", "BTC", 10, 0))
    ledger.remember_newest(2)
    assert [f"d{n}" in ledger for n in range(5)] == [False, False, False, True, True]
    ledger.post(deposit_posting("d5", "ann", "BTC", 10, 0))
    assert "d3" not in ledger
    assert "d5" in ledger
    ledger.remember_newest(0)
    for number in range(6, 10):
        ledger.post(deposit_posting(f"d{number}", "ann", "BTC", 10, 0))
    assert all(f"d{n}" in ledger for n in range(4, 10))
    assert ledger.balance("user:ann", "BTC") == 100
    assert len(ledger) == 10
