"""The gameplan's duplicate-symbol check before issue "Live money" §7, verbatim, as a baseline.

Up to commit 3cd62a9, `src/gameplan/schema.py` validated `symbols` and `earnings_blackout` with

    duplicates = sorted({t for t in tickers if tickers.count(t) > 1})

and set no maximum on `earnings_blackout`: `tickers.count` scans the whole tuple for every entry,
so a list of n tickers costs n² comparisons. A valid 1 MiB plan holds ~120 000 tickers; the
check alone then takes minutes (the issue measured 383 s for the whole validation). The
benchmark (`python -m bench.gameplan`) times this function on prefixes of that list and
extrapolates; it never runs it on the whole list.
"""

from __future__ import annotations


def duplicates(tickers: tuple[str, ...]) -> list[str]:
    """The old check: the tickers that occur more than once, sorted."""
    return sorted({t for t in tickers if tickers.count(t) > 1})
