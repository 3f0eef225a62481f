"""The risk actor (``actor.py``) and its state (``state.py``): their public names."""

from trading_engine.actors.risk.actor import RiskActor
from trading_engine.actors.risk.state import DEFAULT_MARGIN_RATES, LIQUIDATION_PREFIX, RiskConfig

__all__ = ["DEFAULT_MARGIN_RATES", "LIQUIDATION_PREFIX", "RiskActor", "RiskConfig"]
