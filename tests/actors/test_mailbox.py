"""Reply, the one-shot answer every request waits on: answered, failed, cancelled, timed out;
and receive_batch, how actors take their inbox."""

from __future__ import annotations

import pytest
import trio
import trio.testing

from trading_engine.actors.mailbox import ActorUnavailable, Reply, ReplyTimeout, receive_batch


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


async def _gathered(gather: int) -> list[int]:
    """What receive_batch takes once a message is waiting and a sender has just
    been woken, which then sends 10, 11, ... one a step."""
    send, inbox = trio.open_memory_channel[int](100)
    go = trio.Event()

    async def sender() -> None:
        await go.wait()
        for n in range(10, 20):
            send.send_nowait(n)
            await trio.lowlevel.checkpoint()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(sender)
        await trio.testing.wait_all_tasks_blocked()
        send.send_nowait(0)
        go.set()
        batch = await receive_batch(inbox, gather=gather)
        nursery.cancel_scope.cancel()
    assert batch is not None
    return batch


async def test_receive_batch_gathers_what_tasks_that_can_run_are_about_to_send() -> None:
    # The order of tasks within one scheduler pass is Trio's choice: a pass may
    # or may not have run the sender's step before the receiver drains.
    alone = await _gathered(0)
    assert alone in ([0], [0, 10])
    gathered = await _gathered(3)
    assert gathered[:4] == [0, 10, 11, 12]
    assert gathered in ([0, 10, 11, 12], [0, 10, 11, 12, 13])


async def test_receive_batch_gathering_never_waits_on_a_timer(
    mock_clock: trio.testing.MockClock,
) -> None:
    mock_clock.autojump_threshold = 0  # any sleep would jump the clock at once
    send, inbox = trio.open_memory_channel[int](10)
    send.send_nowait(1)
    before = trio.current_time()
    assert await receive_batch(inbox, gather=3) == [1]
    assert trio.current_time() == before


async def test_receive_batch_keeps_its_first_message_if_cancelled_while_gathering() -> None:
    send, inbox = trio.open_memory_channel[int](10)
    batches: list[list[int] | None] = []

    async def receiver(task_status: trio.TaskStatus[trio.CancelScope]) -> None:
        with trio.CancelScope() as scope:
            task_status.started(scope)
            batches.append(await receive_batch(inbox, gather=3))

    async with trio.open_nursery() as nursery:
        scope = await nursery.start(receiver)
        await trio.testing.wait_all_tasks_blocked()  # waiting on the empty inbox
        send.send_nowait(7)  # handed to the waiting receiver...
        scope.cancel()  # ...which is cancelled before it runs again
    assert batches == [[7]]
