"""Reply, the one-shot answer every request waits on: answered, failed, cancelled, timed out."""

from __future__ import annotations

import pytest
import trio
import trio.testing

from trading_engine.actors.mailbox import ActorUnavailable, Reply, ReplyTimeout


async def test_an_answer_given_before_or_while_waiting_is_returned_once() -> None:
    early: Reply[int] = Reply()
    early.send(1)
    early.send(2)  # a second answer is ignored
    assert await early.wait() == 1
    late: Reply[int] = Reply()
    got: list[int] = []
    async with trio.open_nursery() as nursery:
        nursery.start_soon(lambda: _collect(late, got))
        nursery.start_soon(lambda: _collect(late, got))
        await trio.testing.wait_all_tasks_blocked()
        assert not late.done
        late.send(7)
    assert got == [7, 7]


async def _collect(reply: Reply[int], into: list[int]) -> None:
    into.append(await reply.wait())


async def test_a_failure_is_raised_and_close_fails_an_unanswered_reply() -> None:
    failed: Reply[int] = Reply()
    failed.fail(ValueError("no"))
    with pytest.raises(ValueError, match="no"):
        await failed.wait()
    with Reply[int]() as closed:
        pass
    with pytest.raises(ActorUnavailable):
        await closed.wait()


async def test_a_cancelled_waiter_leaves_and_a_later_answer_wakes_no_one() -> None:
    reply: Reply[int] = Reply()
    with trio.move_on_after(0.01) as scope:
        await reply.wait()
    assert scope.cancelled_caught
    reply.send(3)  # must not reschedule the task that left
    assert await reply.wait() == 3


async def test_wait_with_a_timeout_raises_reply_timeout() -> None:
    reply: Reply[int] = Reply()
    with pytest.raises(ReplyTimeout):
        await reply.wait(timeout=0.01)
    reply.send(4)
    assert await reply.wait(timeout=0.01) == 4
