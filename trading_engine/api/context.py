"""What every route module reaches the engine through: the app's ``ApiContext``.

``create_app`` builds one and keeps it in the app's config; a handler asks
for it with ``ctx()``, so that route modules are plain blueprints of
module-level handlers rather than closures over the engine.
"""

from __future__ import annotations

from typing import cast

import attrs
from quart import current_app

from trading_engine.actors.facade import Engine
from trading_engine.api.secrets import SecretBox
from trading_engine.storage.read_tables import ReadTables

__all__ = ["ApiContext", "ctx"]

_KEY = "TRADING_ENGINE"


@attrs.frozen
class ApiContext:
    engine: Engine
    admin_key: str
    tables: ReadTables | None
    """The read tables (history), or None without PostgreSQL."""
    box: SecretBox = attrs.field(factory=SecretBox.generate, repr=False)
    """Seals and opens the API secrets (``api/secrets.py``)."""

    def install(self, config: dict[str, object]) -> None:
        config[_KEY] = self


def ctx() -> ApiContext:
    """The context of the app serving this request."""
    return cast(ApiContext, current_app.config[_KEY])
