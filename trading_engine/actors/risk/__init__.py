"""The risk actor (``actor.py``): its public names."""

from trading_engine.actors.risk.actor import (
    DEFAULT_MARGIN_RATES,
    LIQUIDATION_PREFIX,
    RiskActor,
    RiskConfig,
)

__all__ = ["DEFAULT_MARGIN_RATES", "LIQUIDATION_PREFIX", "RiskActor", "RiskConfig"]
