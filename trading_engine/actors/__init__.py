"""Trio actors around the core: symbol, supervisor, risk, settlement, pricing, market data, journal.

Each actor is a task that owns its state and is reached only through its inbox.
"""
