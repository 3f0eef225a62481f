"""Pure, synchronous exchange logic: numbers, orders, book, matcher, events, ledger, pricing.

Nothing here does I/O or imports trio. The modules may be compiled with mypyc
(``build_core.py``); this package file stays pure Python and refuses to load
a compiled core that is older than its sources, so an edit is never silently
shadowed by a stale build.
"""

from __future__ import annotations

from pathlib import Path


def _check_compiled_core() -> None:
    here = Path(__file__).parent
    stamp = here / ".compiled"
    if not stamp.exists() or not any(here.glob("*.so")):
        return
    built = stamp.stat().st_mtime
    stale = [
        p.name for p in here.glob("*.py") if p.name != "__init__.py" and p.stat().st_mtime > built
    ]
    if stale:
        raise ImportError(
            f"the compiled core is older than {', '.join(sorted(stale))}: "
            "run `make build` to recompile, or `python build_core.py --clean` for pure Python"
        )


_check_compiled_core()
