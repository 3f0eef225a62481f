"""An exchange core: order matching, risk, settlement, pricing and market data on Trio."""

__version__ = "0.1.0"
