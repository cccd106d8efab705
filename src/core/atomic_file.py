"""Whole files or nothing: what a crash, a full disk or a reader at the wrong moment may see.

Used for everything another process reads while we may be writing it: the Strategy C
plan, the bot's readiness record, the run checkpoint.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path


def write_atomic(path: Path, data: bytes | str, mode: int = 0o644, *, durable: bool = True) -> None:
    """Temp file in the same directory, fsync, ``os.replace``, fsync the directory.

    The temp file never survives an error, and an existing file is untouched until the
    rename. `mode` because mkstemp makes 0600 and the reader may be another user.
    `durable=False` skips both fsyncs: a reader still sees the old file or the new one whole, but
    a power cut may lose the change (for a record rewritten often that means nothing after a reboot).
    """
    payload = data.encode("utf-8") if isinstance(data, str) else data
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as file:
            os.fchmod(file.fileno(), mode)
            file.write(payload)
            file.flush()
            if durable:
                os.fsync(file.fileno())
        os.replace(temp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise
    if durable:
        _fsync_directory(path.parent)


def _fsync_directory(directory: Path) -> None:
    """Make the rename durable; some filesystems cannot fsync a directory, which is fine."""
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
