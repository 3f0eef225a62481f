"""The risk actor: users, balances, holds, positions, pre-trade checks, and order views.

Every new order passes here first. The actor checks it (all failing reasons,
``core.risk.check_order``), holds its funds, gives it an id, and forwards it
to its symbol actor; the order's events come back from the journal once
durable and move the funds (a fill pays the counterparty at once, an end
releases what is left of the hold). The commands of one wake-up go to each
symbol in one ``SymbolBatch``.

State changes only through events, live or replayed: recovery feeds the
journal through the same code (``apply``), so restarting rebuilds the same
accounts. Deposits and withdrawals are applied when requested (so two
withdrawals can never both spend the same funds) and written to the
``$accounts`` stream, which this actor alone writes.

Margin symbols: an order needs margin instead of a hold, a trade moves
positions, and its money moves through the ``MarginSettled`` events this
actor writes to ``$accounts`` when the trade is durable (while replaying,
the journal's own; ``go_live`` writes those a crash lost). A new mark price
may liquidate a position (``Liquidated``, then a ``liq-<seq>`` reduce-only
market order). A reduce-only order needs no margin: it is checked here
against the position as far as it is durable (flat or on the order's side:
``reduce_only_would_increase``), and the matcher, which holds the position
as of its last trade, caps it and keeps it within the position.

A user's dead man's switch (``switches.py``) cancels every open order of
the user, in every symbol, unless armed again before its deadline; the
actor's own clock task fires it.

``RiskActor`` is one class written as mixins over one state, a module per
concern (``state.py`` says why mixins). Each part subclasses the parts it
calls, so the bases below are the dependencies:

- ``state.py``: ``RiskConfig``, ``SymbolState``, and ``RiskState``, every
  attribute of the actor and ``NOT_IN_SNAPSHOT``;
- ``margin.py``: ``MarginMixin(RiskState)``, order margin, positions,
  ``MarginSettled``, liquidations, ``go_live``;
- ``checks.py``: ``PreTradeMixin(MarginMixin)``, new orders checked, held,
  numbered and queued; holds freed;
- ``amends.py``: ``AmendMixin(PreTradeMixin)``, an amend's checks and hold;
- ``switches.py``: ``SwitchesMixin(RiskState)``, users' dead man's
  switches and the clock that fires them;
- ``funds.py``: ``FundsMixin(MarginMixin, SwitchesMixin)``, users, deposits
  and withdrawals: the ``$accounts`` stream;
- ``committed.py``: ``CommittedMixin(AmendMixin, FundsMixin)``, durable
  events applied, live and on recovery;
- ``queries.py``: ``QueriesMixin(MarginMixin)``, the answers to ``Query``;
- ``actor.py``: ``RiskActor(QueriesMixin, CommittedMixin)``, the loop and
  the dispatch of messages.
"""

from trading_engine.actors.risk.actor import RiskActor
from trading_engine.actors.risk.state import DEFAULT_MARGIN_RATES, LIQUIDATION_PREFIX, RiskConfig

__all__ = ["DEFAULT_MARGIN_RATES", "LIQUIDATION_PREFIX", "RiskActor", "RiskConfig"]
