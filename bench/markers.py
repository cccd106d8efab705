"""The report's marked parts: what `python -m bench` carries over when it regenerates docs/BENCHMARKS.md.

The hand-written reading between `<!-- reading:start -->` and `<!-- reading:end -->` is kept from
the file being replaced; so are the sections other bench commands write between their own markers:
the gameplan's (`python -m bench.gameplan`), the order firewall's (`python -m bench.firewall`) and
the recovery's (`python -m bench.recovery`). Those commands update their own section with
`replace_section` (`write_section` puts it into the report file, or prints it when there is none).
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from pathlib import Path

READING_START, READING_END = "<!-- reading:start -->", "<!-- reading:end -->"
GAMEPLAN_START, GAMEPLAN_END = "<!-- gameplan:start -->", "<!-- gameplan:end -->"
FIREWALL_START, FIREWALL_END = "<!-- firewall:start -->", "<!-- firewall:end -->"
RECOVERY_START, RECOVERY_END = "<!-- recovery:start -->", "<!-- recovery:end -->"
PLACEHOLDER = "_Reading not written yet: add it between the reading markers (kept when the report is regenerated)._"
# the sections other commands write, in the order the report carries them
CARRIED = ((GAMEPLAN_START, GAMEPLAN_END), (FIREWALL_START, FIREWALL_END), (RECOVERY_START, RECOVERY_END))


def replace_section(text: str, section: str, start: str, end: str) -> str:
    """`text` with the section between `start` and `end` replaced by `section` (markers included), or with it
    inserted before the reading (or at the end): how a bench module that is not `python -m bench` updates its
    own part of the report."""
    begin, finish = text.find(start), text.find(end)
    if 0 <= begin < finish:
        return text[:begin] + section + text[finish + len(end):]
    anchor = text.find("## Reading\n\n" + READING_START)
    if anchor < 0:
        return text.rstrip("\n") + "\n\n" + section + "\n"
    return text[:anchor] + section + "\n\n" + text[anchor:]


def shown_path(json_path: Path | None, out_path: Path | None, report: Path) -> str:
    """How a section names its results file: relative to the report it goes into, or "this run (not saved)"."""
    return os.path.relpath(json_path, (out_path or report).parent) if json_path else "this run (not saved)"


def write_section(out_path: Path | None, section: str, update: Callable[[str, str], str]) -> None:
    """`section` put into the report at `out_path` by `update` (its command's `update_report`), or printed."""
    if out_path:
        old = out_path.read_text(encoding="utf-8") if out_path.exists() else ""
        out_path.write_text(update(old, section), encoding="utf-8")
    else:
        print(section)


def previous_section(out_path: Path, start: str, end: str) -> list[str]:
    try:
        text = out_path.read_text(encoding="utf-8")
    except OSError:
        return []
    match = re.search(re.escape(start) + r".*?" + re.escape(end), text, re.DOTALL)
    return [match.group(0), ""] if match else []


def previous_reading(out_path: Path) -> str:
    try:
        text = out_path.read_text(encoding="utf-8")
    except OSError:
        return PLACEHOLDER
    match = re.search(re.escape(READING_START) + r"\n?(.*?)\n?" + re.escape(READING_END), text, re.DOTALL)
    return match.group(1).strip() if match and match.group(1).strip() else PLACEHOLDER


def carried(out_path: Path) -> list[str]:
    """The gameplan's, the firewall's and the recovery's sections as `out_path` has them (markers included)."""
    return [line for start, end in CARRIED for line in previous_section(out_path, start, end)]


def reading(out_path: Path) -> list[str]:
    """The Reading section, its text carried over from `out_path` (or a placeholder)."""
    return ["## Reading", "", READING_START, previous_reading(out_path), READING_END, ""]
