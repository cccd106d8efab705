"""Hostile or broken TCP servers on 127.0.0.1, for health-probe tests."""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
from collections.abc import Callable, Iterator


@contextlib.contextmanager
def tcp_listener(behaviour: Callable[[socket.socket], None]) -> Iterator[int]:
    """Serve each connection with `behaviour(conn)` in a thread; yield the port."""
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(0.2)
    stop = threading.Event()
    held: list[socket.socket] = []

    def loop() -> None:
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            held.append(conn)
            threading.Thread(target=behaviour, args=(conn,), daemon=True).start()

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    try:
        yield server.getsockname()[1]
    finally:
        stop.set()
        thread.join(2)
        server.close()
        for conn in held:
            conn.close()


def accept_and_close(conn: socket.socket) -> None:
    """socat in front of a Gateway that is not listening yet."""
    conn.close()


def accept_and_stay_silent(conn: socket.socket) -> None:
    """Holds the connection open and never answers (the caller closes it)."""


def answer_garbage(conn: socket.socket) -> None:
    conn.sendall(b"HTTP/1.1 400 Bad Request\r\n\r\n")


def answer_absurd_frame(conn: socket.socket) -> None:
    conn.recv(1024)
    conn.sendall(struct.pack(">I", 0xFFFFFFFF) + b"x" * 16)
