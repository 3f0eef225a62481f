"""``BookMirror`` against a plain model: levels by value, a snapshot in place of the book."""

from decimal import Decimal
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from trading_engine.core.book_mirror import BookMirror
from trading_engine.core.numbers import format_decimal

# Prices as the engine writes them: 9.5 and 10 and 10.25 sort by value, not as text.
_PRICES = st.integers(1, 2000).map(lambda cents: format_decimal(Decimal(cents) / 100))
_QUANTITIES = st.sampled_from(["0", "0", "0.01", "1.5", "20"])
_LEVELS = st.lists(st.tuples(_PRICES, _QUANTITIES).map(list), max_size=4)
_MESSAGES = st.lists(
    st.one_of(
        st.fixed_dictionaries({"type": st.just("delta"), "bids": _LEVELS, "asks": _LEVELS}),
        st.fixed_dictionaries(
            {
                "type": st.just("snapshot"),
                "bids": st.dictionaries(_PRICES, st.sampled_from(["0.01", "3"])).map(
                    lambda side: [list(level) for level in side.items()]
                ),
                "asks": st.dictionaries(_PRICES, st.sampled_from(["0.01", "3"])).map(
                    lambda side: [list(level) for level in side.items()]
                ),
            }
        ),
    ),
    max_size=40,
)


@given(_MESSAGES, st.integers(1, 6))
def test_a_mirror_holds_each_side_best_first_as_a_plain_model_of_the_messages(
    messages: list[dict[str, Any]], depth: int
) -> None:
    mirror = BookMirror()
    model: dict[str, dict[Decimal, str]] = {"bids": {}, "asks": {}}
    for seq, message in enumerate(messages, start=1):
        mirror.apply(message | {"seq": seq})
        for side, levels in model.items():
            if message["type"] == "snapshot":
                levels.clear()
            for price, quantity in message[side]:
                if Decimal(quantity):
                    levels[Decimal(price)] = quantity
                else:
                    levels.pop(Decimal(price), None)
        bids = [(format_decimal(p), q) for p, q in sorted(model["bids"].items(), reverse=True)]
        asks = [(format_decimal(p), q) for p, q in sorted(model["asks"].items())]
        assert mirror.levels() == (bids, asks)
        assert mirror.levels(depth) == (bids[:depth], asks[:depth])
        assert (mirror.bids, mirror.asks) == (dict(bids), dict(asks))
        assert mirror.seq == seq


def test_a_delta_removes_a_level_whose_quantity_is_zero_however_it_is_written() -> None:
    mirror = BookMirror()
    mirror.apply({"type": "snapshot", "seq": 4, "bids": [["10", "1"], ["9.5", "2"]], "asks": []})
    mirror.apply({"type": "delta", "seq": 5, "bids": [["10", "0.000"], ["11", "0"]], "asks": []})
    assert mirror.levels() == ([("9.5", "2")], [])
    assert mirror.seq == 5
