"""Execution algorithms as actors: one task per running algorithm, under a supervisor.

- ``supervisor.py``: ``AlgoSupervisor``, the ``$algos`` stream's writer, every
  algorithm's journaled state, and the actors it starts, restarts and stops;
- ``actor.py``: ``AlgoActor``, one algorithm sending its child orders on
  schedule through the engine's front door (``AlgoEngine``).

The schedule and the events are pure: ``core/algos.py``.
"""

from trading_engine.actors.algos.actor import AlgoActor, AlgoEngine, AlgoHandle
from trading_engine.actors.algos.supervisor import AlgoSupervisor

__all__ = ["AlgoActor", "AlgoEngine", "AlgoHandle", "AlgoSupervisor"]
