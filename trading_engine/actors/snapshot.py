"""Engine snapshots: the actors' state after the journal up to a position, and back.

A snapshot holds what replaying the journal up to ``position`` builds, and
nothing else: each symbol's matcher (book in price-time priority, stops,
``seq``), and the risk, settlement, pricing and market-data actors' state.
It is taken from actors that were fed the journal and never ran (``make``:
the newest snapshot plus the events after it), so it is consistent by
construction and costs the running engine nothing but the reads. Recovery
(``actors/recovery.py``) restores the newest one the journal still agrees with
and replays only the events after it; the steps that end a recovery
(settling what is pending, journaling lost margin money, publishing
reference prices) run after that replay, as they do after a full one.

What an actor keeps is every attribute but those it names in
``NOT_IN_SNAPSHOT``: its channels and settings (given again when it is
built), and what only a running actor holds (replies, subscribers), which
is empty while the journal is replayed. A new attribute is therefore in
snapshots unless it is named there; a test checks that the state restored
equals the state replayed.

The state is pickled. Pickle is exact and fast for these objects, but ties
a snapshot to the code that wrote it: ``VERSION`` is a hash of the sources
of ``core/`` and ``actors/``, their subfolders included (and whether the
core is compiled), and a snapshot of another version is never read;
recovery then replays the whole journal, as it does without snapshots.
Snapshots live in the system of record and are written only by the engine,
so unpickling them trusts what the journal itself is trusted with.
"""

from __future__ import annotations

import hashlib
import pickle
import sys
from pathlib import Path
from typing import Any, Final, Protocol

from trading_engine.actors.supervisor import Supervisor
from trading_engine.core.ids import Symbol
from trading_engine.core.instruments import Instrument
from trading_engine.core.margin import MarginRates
from trading_engine.core.matcher import Matcher
from trading_engine.storage.journal import Snapshot

__all__ = ["VERSION", "Stateful", "restore", "take", "version_for"]


class Stateful(Protocol):
    NOT_IN_SNAPSHOT: frozenset[str]


def _version() -> str:
    package = Path(__file__).parent.parent
    digest = hashlib.sha256()
    for folder in ("core", "actors"):
        # Subfolders too: a concept with its own folder (``actors/risk/``) is code as well.
        for source in sorted((package / folder).rglob("*.py")):
            digest.update(f"{source.relative_to(package).as_posix()}\0".encode())
            digest.update(source.read_bytes())
    compiled = Path(sys.modules[Matcher.__module__].__file__ or "").suffix != ".py"
    python = f"{sys.version_info.major}.{sys.version_info.minor}"
    return f"{digest.hexdigest()[:16]}-py{python}-{'compiled' if compiled else 'python'}"


VERSION: Final = _version()
"""Which code a snapshot belongs to: its state is read back only by the same code."""


def version_for(rates: MarginRates) -> str:
    """The version of snapshots for this code and these margin rates, the one setting
    that replay computes with (margin held by resting orders)."""
    (a, b), (c, d) = rates
    return f"{VERSION}-margin{a}/{b},{c}/{d}"


def state_of(actor: Stateful) -> dict[str, Any]:
    """The attributes of ``actor`` that a snapshot keeps."""
    skip = actor.NOT_IN_SNAPSHOT
    return {name: value for name, value in vars(actor).items() if name not in skip}


def take(
    supervisor: Supervisor,
    actors: dict[str, Stateful],
    *,
    version: str,
    position: int,
    tips: dict[str, int],
    events: int,
) -> Snapshot:
    """A snapshot of actors that hold exactly the journal up to ``position`` (and never ran)."""
    symbols: dict[Symbol, tuple[Instrument, str | None, Matcher]] = {}
    for symbol, handle in supervisor.handles.items():
        assert handle.recovered is not None, f"{symbol}: a running symbol can't be snapshotted"
        symbols[symbol] = (handle.instrument, handle.halted, handle.recovered)
    state = {
        "supervisor": (supervisor.seq, symbols),
        "actors": {name: state_of(actor) for name, actor in actors.items()},
    }
    data = pickle.dumps(state, protocol=pickle.HIGHEST_PROTOCOL)
    return Snapshot(position, dict(tips), version, data, events)


def restore(supervisor: Supervisor, actors: dict[str, Stateful], snapshot: Snapshot) -> None:
    """Put the state of ``snapshot`` (of this code's version) into freshly built actors."""
    assert snapshot.version.startswith(VERSION)
    state = pickle.loads(snapshot.state)  # noqa: S301 (written by this code, see above)
    seq, symbols = state["supervisor"]
    supervisor.restore(seq, symbols)
    for name, actor in actors.items():
        vars(actor).update(state["actors"][name])
