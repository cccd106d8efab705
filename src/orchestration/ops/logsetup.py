"""Logging for a run: stderr for the operator, a file per run for the record, secrets redacted in both.

The console gets one line per event and no tracebacks (an operator needs a sentence);
the log file keeps the tracebacks for whoever investigates.
"""

from __future__ import annotations

import logging
import sys
from datetime import datetime
from pathlib import Path

from src.core.redaction import redact

log = logging.getLogger(__name__)
FORMAT = "%(asctime)s [%(levelname)s] %(name)s: %(message)s"


class _RedactingFormatter(logging.Formatter):
    """Redacts secrets; the console variant leaves tracebacks to the log file."""

    def __init__(self, fmt: str, secrets: tuple[str, ...], tracebacks: bool = True) -> None:
        super().__init__(fmt)
        self.secrets = secrets
        self.tracebacks = tracebacks

    def format(self, record: logging.LogRecord) -> str:
        if self.tracebacks or not record.exc_info:
            return redact(super().format(record), self.secrets)
        saved = record.exc_info, record.exc_text
        record.exc_info, record.exc_text = None, None
        try:
            return redact(super().format(record), self.secrets)
        finally:
            record.exc_info, record.exc_text = saved


def setup_logging(log_dir: Path, run_id: str, secrets: tuple[str, ...]) -> Path | None:
    """Log to stderr and to logs/orchestrator_<time>_<run>.log, secrets redacted in both."""
    root = logging.getLogger()
    root.setLevel(logging.INFO)
    for handler in list(root.handlers):
        root.removeHandler(handler)
    console = logging.StreamHandler(sys.stderr)
    console.setFormatter(_RedactingFormatter(FORMAT, secrets, tracebacks=False))
    root.addHandler(console)
    path = log_dir / f"orchestrator_{datetime.now().strftime('%Y%m%d_%H%M%S')}_{run_id}.log"
    try:
        log_dir.mkdir(parents=True, exist_ok=True)
        file_handler = logging.FileHandler(path, encoding="utf-8")
    except OSError as exc:
        log.warning("cannot write the log file %s (%s): logging to stderr only", path, exc.strerror)
        return None
    file_handler.setFormatter(_RedactingFormatter(FORMAT, secrets))
    root.addHandler(file_handler)
    return path
