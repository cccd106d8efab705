"""The Markdown of the report's cells and tables: numbers with their unit, ratios, counts, contender labels.

Ratio = the baseline's median / this project's median in the same cell ("× slower than this project").
"""

from __future__ import annotations

from typing import Any

from bench.contenders import LABELS


def fmt(x: float | None, unit: str = " s", digits: int = 2) -> str:
    if x is None:
        return "–"
    return f"{x:.{digits}f}{unit}"


def ratio(baseline: float | None, project: float | None) -> str:
    if baseline is None or project is None:
        return "–"
    if project <= 0 or baseline < 0:
        return "n/a"
    return f"{baseline / project:.1f}×"


def count(samples: list[dict[str, Any]], key: str) -> str:
    return f"{sum(1 for s in samples if s.get(key))}/{len(samples)}"


def exit_codes(samples: list[dict[str, Any]]) -> str:
    codes: dict[Any, int] = {}
    for s in samples:
        codes[s.get("exit_code")] = codes.get(s.get("exit_code"), 0) + 1
    return ", ".join(f"{k}×{v}" if v > 1 else f"{k}" for k, v in sorted(codes.items(), key=lambda kv: str(kv[0])))


def table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def label(contender: str) -> str:
    return LABELS.get(contender, contender)


def facts(pairs: list[tuple[str, Any]]) -> str:
    """A two-column table of (name, value) rows without a header; the command in backquotes."""
    return table(["", ""], [[k, f"`{v}`" if k == "command" else str(v)] for k, v in pairs])
