"""Merged book deltas keep the seq chain and give the same book."""

from __future__ import annotations

import json

from trading_engine.api.conflate import conflate


def delta(
    prev: int, seq: int, bids: list[list[str]], asks: list[list[str]], channel: str = "book.X"
) -> str:
    return json.dumps(
        {"channel": channel, "type": "delta", "seq": seq, "prev_seq": prev, "ts": seq,
         "bids": bids, "asks": asks}, separators=(",", ":"),
    )  # fmt: skip


def test_a_run_of_deltas_becomes_one_with_the_latest_levels() -> None:
    texts = [
        delta(1, 3, [["10", "1"]], []),
        delta(3, 7, [["10", "2"], ["9", "5"]], [["11", "1"]]),
        delta(7, 9, [], [["11", "0"]]),
    ]
    [merged] = conflate(texts)
    message = json.loads(merged)
    assert (message["prev_seq"], message["seq"], message["ts"]) == (1, 9, 9)
    assert dict(message["bids"]) == {"10": "2", "9": "5"}
    assert dict(message["asks"]) == {"11": "0"}


def test_other_messages_keep_their_place_and_break_a_run() -> None:
    trade = '{"channel":"trades.X","type":"trade","seq":4}'
    texts = [delta(1, 3, [["10", "1"]], []), trade, delta(3, 5, [["10", "2"]], [])]
    assert conflate(texts) == texts


def test_deltas_of_other_books_or_after_a_gap_are_not_merged() -> None:
    texts = [delta(1, 3, [], []), delta(3, 4, [], [], channel="book.Y"), delta(9, 10, [], [])]
    assert conflate(texts) == texts


def test_a_single_message_is_sent_as_it_came() -> None:
    only = delta(1, 2, [["1", "1"]], [])
    assert conflate([only]) == [only]
