"""Change notices for files in one directory: Linux inotify, through ctypes (no package needed).

The firewall's order path asks "has the plan in force changed?" for every order. A notice
answers that without a system call: the kernel queues an event when a watched name is written,
renamed, removed or has its mode changed, and the event loop reads it (`add_reader`) before any
client data that arrived after it. Where notices are not delivered (no inotify, a file system
that does not report changes made from outside, such as some Docker Desktop shares) the caller
keeps looking itself (`open_watch` returns None, or the caller stops trusting the watch).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import struct
from pathlib import Path

IN_MODIFY, IN_ATTRIB, IN_CLOSE_WRITE = 0x2, 0x4, 0x8
IN_MOVED_FROM, IN_MOVED_TO, IN_CREATE, IN_DELETE = 0x40, 0x80, 0x100, 0x200
IN_DELETE_SELF, IN_MOVE_SELF, IN_Q_OVERFLOW, IN_IGNORED = 0x400, 0x800, 0x4000, 0x8000
IN_NONBLOCK, IN_CLOEXEC = os.O_NONBLOCK, getattr(os, "O_CLOEXEC", 0o2000000)
CHANGES = IN_MODIFY | IN_ATTRIB | IN_CLOSE_WRITE | IN_MOVED_FROM | IN_MOVED_TO | IN_CREATE | IN_DELETE
GONE = IN_DELETE_SELF | IN_MOVE_SELF | IN_IGNORED | IN_Q_OVERFLOW  # the watch no longer tells everything
_EVENT = struct.Struct("iIII")  # wd, mask, cookie, len; then len bytes of NUL-padded name


class DirWatch:
    """An inotify watch on `directory` for changes to `names`."""

    def __init__(self, fd: int, names: frozenset[str]) -> None:
        self._fd = fd
        self._names = frozenset(name.encode() for name in names)

    def fileno(self) -> int:
        return self._fd

    def read(self) -> frozenset[str] | None:
        """Drain the queued events: the watched names they concern (empty: none), or None if the watch is gone
        or events were lost (the directory removed or moved, the queue overflowed)."""
        seen: set[str] = set()
        while True:
            try:
                data = os.read(self._fd, 65536)
            except BlockingIOError:
                return frozenset(seen)
            except OSError:
                return None
            if not data:
                return None
            pos = 0
            while pos + _EVENT.size <= len(data):
                _wd, mask, _cookie, size = _EVENT.unpack_from(data, pos)
                name = data[pos + _EVENT.size:pos + _EVENT.size + size].rstrip(b"\0")
                pos += _EVENT.size + size
                if mask & GONE:
                    return None
                if name in self._names:
                    seen.add(os.fsdecode(name))

    def close(self) -> None:
        if self._fd >= 0:
            fd, self._fd = self._fd, -1
            os.close(fd)


def open_watch(directory: Path, names: frozenset[str]) -> DirWatch | None:
    """A watch on `directory` for `names`, or None where inotify is not available (or out of watches)."""
    path = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(path or "libc.so.6", use_errno=True)
        init, add = libc.inotify_init1, libc.inotify_add_watch
    except (OSError, AttributeError):
        return None
    fd = init(IN_NONBLOCK | IN_CLOEXEC)
    if fd < 0:
        return None
    if add(fd, os.fsencode(directory), CHANGES | IN_DELETE_SELF | IN_MOVE_SELF) < 0:
        os.close(fd)
        return None
    return DirWatch(fd, names)
