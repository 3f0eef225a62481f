"""The asyncio bridge: results, errors, cancellation and shutdown, all without hanging."""

from __future__ import annotations

import asyncio
import threading
import time
from types import SimpleNamespace

import pytest
import trio
import trio.testing

from trading_engine.storage.bridge import BridgeClosed, open_bridge


async def _add(a: int, b: int, *, times: int = 1) -> int:
    await asyncio.sleep(0)
    return (a + b) * times


async def _where() -> tuple[int, bool]:
    return threading.get_ident(), asyncio.get_running_loop().is_running()


async def _fail() -> None:
    await asyncio.sleep(0)
    raise KeyError("nope")


async def test_call_returns_the_value_computed_on_the_loop_thread() -> None:
    with trio.fail_after(5):
        async with open_bridge() as bridge:
            assert await bridge.call(_add, 2, 3, times=2) == 10
            ident, running = await bridge.call(_where)
            assert ident != threading.get_ident()
            assert running


async def test_an_exception_raised_on_the_loop_reaches_the_caller() -> None:
    with trio.fail_after(5):
        async with open_bridge() as bridge:
            with pytest.raises(KeyError, match="nope"):
                await bridge.call(_fail)
            assert await bridge.call(_add, 1, 1) == 2


async def test_a_function_that_cannot_start_gives_its_error_rather_than_a_hang() -> None:
    def not_a_coroutine_function() -> int:
        return 1

    with trio.fail_after(5):
        async with open_bridge() as bridge:
            with pytest.raises(TypeError):
                await bridge.call(not_a_coroutine_function)  # type: ignore[arg-type]
            with pytest.raises(TypeError):
                await bridge.call(_add, 1)  # type: ignore[call-arg]


async def test_concurrent_calls_each_get_their_own_answer() -> None:
    results: dict[int, int] = {}

    async def one(i: int) -> None:
        results[i] = await bridge.call(_add, i, i)

    with trio.fail_after(5):
        async with open_bridge() as bridge, trio.open_nursery() as nursery:
            for i in range(200):
                nursery.start_soon(one, i)
    assert results == {i: 2 * i for i in range(200)}


class _Counted:
    """Counts the calls of one method of an object, and makes them."""

    def __init__(self, target: object, name: str) -> None:
        self.target, self.method, self.calls = target, getattr(target, name), 0

    def __call__(self, *args: object) -> object:
        self.calls += 1
        return self.method(*args)


async def test_a_burst_of_calls_wakes_each_thread_a_few_times_not_once_a_call() -> None:
    """200 calls made while the loop thread is busy: their starts cross to the loop in
    one wake-up, and their answers back to Trio in a few, not one each."""
    results: dict[int, int] = {}
    entered, gate = threading.Event(), threading.Event()

    async def busy() -> None:  # holds the loop thread until the gate opens
        entered.set()
        gate.wait(5)

    async def one(i: int) -> None:
        results[i] = await bridge.call(_add, i, 1)

    with trio.fail_after(10):
        async with open_bridge() as bridge:
            to_loop = _Counted(bridge._loop, "call_soon_threadsafe")
            to_trio = _Counted(bridge._token, "run_sync_soon")
            bridge._loop.call_soon_threadsafe = to_loop  # type: ignore[method-assign,assignment]
            bridge._token = SimpleNamespace(run_sync_soon=to_trio)  # type: ignore[assignment]
            async with trio.open_nursery() as nursery:
                nursery.start_soon(bridge.call, busy)
                while not entered.is_set():
                    await trio.sleep(0.001)
                for i in range(200):
                    nursery.start_soon(one, i)
                await trio.testing.wait_all_tasks_blocked()
                gate.set()
            wakes = (to_loop.calls, to_trio.calls)  # before the close's own
    assert results == {i: i + 1 for i in range(200)}
    assert wakes[0] == 2  # ``busy``, then the 200
    assert 1 <= wakes[1] <= 50


async def test_a_cancelled_caller_returns_at_once_and_the_asyncio_task_is_cancelled() -> None:
    state = {"cancelled": False}

    async def forever() -> None:
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            state["cancelled"] = True
            raise

    async def was_cancelled() -> bool:
        for _ in range(100):
            if state["cancelled"]:
                break
            await asyncio.sleep(0.01)
        return state["cancelled"]

    with trio.fail_after(5):
        async with open_bridge() as bridge:
            with trio.move_on_after(0.05) as scope:
                await bridge.call(forever)
            assert scope.cancelled_caught
            assert await bridge.call(was_cancelled)


async def test_closing_the_bridge_releases_a_waiting_call_with_bridge_closed() -> None:
    errors: list[BaseException] = []

    async def waiter(task_status: trio.TaskStatus[None]) -> None:
        task_status.started()
        try:
            await the_bridge.call(asyncio.sleep, 3600)
        except BridgeClosed as exc:
            errors.append(exc)

    with trio.fail_after(5):
        async with trio.open_nursery() as nursery, open_bridge() as the_bridge:
            await nursery.start(waiter)
            await trio.sleep(0.01)
    assert len(errors) == 1


async def test_a_call_after_close_is_refused() -> None:
    with trio.fail_after(5):
        async with open_bridge() as bridge:
            pass
        assert bridge.closed
        with pytest.raises(BridgeClosed):
            await bridge.call(_add, 1, 2)


async def test_leaving_the_bridge_ends_its_thread() -> None:
    before = threading.active_count()
    with trio.fail_after(5):
        async with open_bridge(name="bridge-under-test") as bridge:
            await bridge.call(_add, 1, 2)
            assert threading.active_count() == before + 1
    assert "bridge-under-test" not in {t.name for t in threading.enumerate()}


async def test_a_trivial_call_costs_well_under_a_millisecond() -> None:
    with trio.fail_after(10):
        async with open_bridge() as bridge:
            await bridge.call(_add, 0, 0)
            n = 2000
            start = time.perf_counter()
            for i in range(n):
                await bridge.call(_add, i, 1)
            per_call = (time.perf_counter() - start) / n
    print(f"bridge round trip: {per_call * 1e6:.0f} us")
    assert per_call < 0.002
