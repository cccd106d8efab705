"""Scenario 7's candidates: the same bot run from a scratch copy of the repository with a local patch to src/
(bench/candidates/), to measure a suggested change before anyone makes it; never the product."""

from __future__ import annotations

import difflib
import hashlib
from pathlib import Path
from typing import Any

from bench.env import REPO_ROOT


def parse_candidate(text: str) -> tuple[str, Path]:
    label, sep, where = text.partition("=")
    root = Path(where).expanduser().resolve()
    if not sep or not label.strip() or not (root / "src" / "main.py").is_file():
        raise ValueError(f"--reconnect-candidate LABEL=DIR, DIR a tree with src/main.py: {text!r}")
    return label.strip(), root


def describe_candidate(root: Path) -> dict[str, Any]:
    """Where the candidate's src/ differs from this tree's: a unified diff and a digest."""
    diff: list[str] = []
    h = hashlib.sha256()
    mine, theirs = REPO_ROOT / "src", root / "src"
    names = sorted({p.relative_to(mine).as_posix() for p in mine.rglob("*.py")}
                   | {p.relative_to(theirs).as_posix() for p in theirs.rglob("*.py")})
    for name in names:
        a, b = mine / name, theirs / name
        ta = a.read_text(encoding="utf-8").splitlines(keepends=True) if a.is_file() else []
        tb = b.read_text(encoding="utf-8").splitlines(keepends=True) if b.is_file() else []
        if b.is_file():
            h.update(f"src/{name}".encode() + b"\0" + b.read_bytes())
        if ta != tb:
            diff += difflib.unified_diff(ta, tb, f"a/src/{name}", f"b/src/{name}")
    text = "".join(diff)
    added = sum(1 for line in diff if line.startswith("+") and not line.startswith("+++"))
    removed = sum(1 for line in diff if line.startswith("-") and not line.startswith("---"))
    return {"dir": str(root), "src_digest": h.hexdigest()[:12], "diff": text, "lines_added": added,
            "lines_removed": removed}
