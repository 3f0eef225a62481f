"""Rate limits as the API answers them: ``Retry-After`` from a limiter's wait.

The limiters themselves (the ``Limiter`` port, in process and in Redis) are in
``storage/limits.py``; ``serve.py`` builds one and hands it to the app.
"""

from __future__ import annotations

import math

__all__ = ["retry_after"]


def retry_after(seconds: float) -> str:
    return str(max(1, math.ceil(seconds)))
