"""How the engine's side hands a gateway's call to its ``Engine``, in the order read.

``handed_over`` starts one call: the order-entry commands (``submit``,
``cancel``, ``amend``, ``cancel_all`` and the list's two) through the
``Engine``'s ``*_soon`` methods, which hand the command to the risk actor at
once, as the in-process WebSocket does for a pipelining client; every other
method as its coroutine, whose first step (the send to its actor) runs when it
is first awaited. Either way what comes back is awaited for the value the
method answers, so the caller sees the same value as from the method itself.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Final

from trading_engine.actors.facade import Engine
from trading_engine.actors.mailbox import Reply
from trading_engine.actors.messages import ListCancelled, Refused
from trading_engine.core.views import OrderView

__all__ = ["handed_over"]


def handed_over(
    engine: Engine, method: str, args: Sequence[Any], kwargs: dict[str, Any]
) -> Awaitable[Any]:
    """``engine.<method>(*args, **kwargs)``'s value, to await; an order-entry command is
    with the engine already. Raises what handing it over raises (``ActorUnavailable``)."""
    soon = _SOON.get(method)
    if soon is None:
        running: Awaitable[Any] = getattr(engine, method)(*args, **kwargs)
        return running
    return soon(engine, *args, **kwargs)


async def _all_cancelled(replies: list[Reply[list[OrderView]]]) -> list[OrderView]:
    cancelled: list[OrderView] = []
    for reply in replies:
        cancelled.extend(await reply.wait())
    return cancelled


async def _list_cancelled(
    engine: Engine, list_id: int, reply: Reply[ListCancelled | Refused]
) -> Any:
    return await engine.list_cancelled(list_id, await reply.wait())


_SOON: Final[dict[str, Callable[..., Awaitable[Any]]]] = {
    "submit": lambda engine, *a, **k: engine.submit_soon(*a, **k).wait(),
    "cancel": lambda engine, *a, **k: engine.cancel_soon(*a, **k).wait(),
    "amend": lambda engine, *a, **k: engine.amend_soon(*a, **k).wait(),
    "submit_list": lambda engine, *a, **k: engine.submit_list_soon(*a, **k).wait(),
    "cancel_all": lambda engine, *a, **k: _all_cancelled(engine.cancel_all_soon(*a, **k)),
    "cancel_list": lambda engine, list_id, user_id: _list_cancelled(
        engine, list_id, engine.cancel_list_soon(list_id, user_id)
    ),
}
"""The methods handed over at once, each through its ``*_soon``."""
