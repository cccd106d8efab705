"""Partial reruns (`python -m bench --rerun NAME`, results in bench/results/NAME.json): which of them are newer
than the full run, and so get a section of the report and replace its figures in the Goals table."""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path
from typing import Any

from bench.figures import summary


def _when(text: Any) -> datetime | None:
    try:
        return datetime.fromisoformat(str(text))
    except ValueError:
        return None


def find_reruns(directory: Path, main: dict[str, Any], skip: Iterable[str] = (),
                root: Path | None = None) -> list[tuple[str, dict[str, Any]]]:
    """Results files in `directory` (not named in `skip`, not quick runs) started after the full
    run `main`, oldest first, as (path relative to `root`, results with a fresh summary)."""
    start = _when(main.get("meta", {}).get("started"))
    if start is None:
        return []
    found = []
    for path in sorted(directory.glob("*.json")):
        if path.name in set(skip):
            continue
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        meta = data.get("meta") if isinstance(data, dict) else None
        if not isinstance(meta, dict) or meta.get("quick") or not isinstance(data.get("samples"), dict):
            continue
        when = _when(meta.get("started"))
        if when is None or when <= start:
            continue
        data["summary"] = summary(data)
        rel = path.relative_to(root).as_posix() if root and path.is_relative_to(root) else str(path)
        found.append((when, rel, data))
    return [(rel, data) for _, rel, data in sorted(found, key=lambda x: x[0])]
