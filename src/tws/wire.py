"""Framing of the TWS API text protocol, sans-IO (h11's shape: feed bytes, take messages).

The client opens with the bytes ``API\\0`` and a frame ``v<min>..<max>``; every later message,
both ways, is a frame: a 4-byte big-endian length, then NUL-terminated ASCII fields, the first
the message id. `FrameBuffer` is fed whatever the socket gave and hands back whole frames;
`encode` builds one. The builders below are the messages more than one user sends (the
version reply, the greeting, an error); message ids are named once here.
"""

from __future__ import annotations

import re
import struct
import time

API_PREFIX = b"API\0"
# TWS rejects longer messages; a bigger length means a broken or hostile peer.
MAX_FRAME_LENGTH = 0xFFFFFF
# The highest server version that keeps the text protocol (>= 201 switches messages to protobuf).
MAX_TEXT_VERSION = 178
# From this server version the error message carries advancedOrderRejectJson.
MIN_VERSION_ADVANCED_ORDER_REJECT = 166

# At most 9 digits each (a real range is 3), and nothing digit-like after them.
_VERSION_RANGE = re.compile(rb"v(\d{1,9})(?:\.\.(\d{1,9}))?(?![\d.])")
_HEADER = struct.Struct(">I")

# --- message ids, client -> server ----------------------------------------------------------------
REQ_MKT_DATA = 1
PLACE_ORDER = 3
CANCEL_ORDER = 4
REQ_OPEN_ORDERS = 5
REQ_CONTRACT_DATA = 9
REQ_ALL_OPEN_ORDERS = 16
EXERCISE_OPTIONS = 21
REQ_CURRENT_TIME = 49
REQ_GLOBAL_CANCEL = 58
REQ_POSITIONS = 61
CANCEL_POSITIONS = 64
START_API = 71

# --- message ids, server -> client ----------------------------------------------------------------
TICK_PRICE = 1
ORDER_STATUS = 3
ERR_MSG = 4
OPEN_ORDER = 5
NEXT_VALID_ID = 9
CONTRACT_DATA = 10
MANAGED_ACCTS = 15
CURRENT_TIME = 49
CONTRACT_DATA_END = 52
OPEN_ORDER_END = 53
POSITION = 61
POSITION_END = 62

# --- codes carried by ERR_MSG -----------------------------------------------------------------------
ORDER_REJECTED = 201
ORDER_CANCELLED = 202
CLIENT_ID_IN_USE = 326
CONNECTIVITY_LOST = 1100
CONNECTIVITY_RESTORED_DATA_LOST = 1101
CONNECTIVITY_RESTORED = 1102
NOT_CONNECTED = 504


class ProtocolError(Exception):
    """The peer sent something that is not the TWS API protocol."""


def encode(*fields: object) -> bytes:
    """One frame: the length prefix, then each field as text plus NUL."""
    payload = b"".join(str(field).encode() + b"\0" for field in fields)
    return _HEADER.pack(len(payload)) + payload


def fields_of(payload: bytes) -> list[str]:
    """A frame's payload as its fields (undecodable bytes replaced, never an exception)."""
    return payload.decode(errors="replace").split("\0")[:-1]


def message_id(payload: bytes) -> int | None:
    """The message id, the first field, without splitting the rest; None if it is not a number."""
    end = payload.find(b"\0", 0, 8)
    head = payload[:end] if end >= 0 else b""
    return int(head) if head.isdigit() else None


def opening(low: int, high: int) -> bytes:
    """What a client sends first: ``API\\0`` and its version range."""
    return API_PREFIX + encode_raw(f"v{low}..{high}".encode())


def encode_raw(payload: bytes) -> bytes:
    return _HEADER.pack(len(payload)) + payload


def parse_version_range(payload: bytes) -> tuple[int, int]:
    """``v<min>..<max>`` (or ``v<n>``) from the opening frame's payload."""
    match = _VERSION_RANGE.match(payload)
    if not match:
        raise ProtocolError(f"no version range v<min>..<max> in a {len(payload)}-byte opening")
    low = int(match.group(1))
    return low, int(match.group(2) or low)


class FrameBuffer:
    """Bytes in, whole frames out. ``opening=True`` expects the client's ``API\\0`` first.

    `feed` takes what a read returned; `next_payload` returns one frame's payload or None until
    one is complete; `take` returns every complete frame's raw bytes at once (for relaying them
    unchanged) with their payloads. A length over ``limit`` raises ProtocolError.
    """

    __slots__ = ("_buf", "_need_prefix", "limit")

    def __init__(self, *, opening: bool = False, limit: int = MAX_FRAME_LENGTH) -> None:
        self._buf = bytearray()
        self._need_prefix = opening
        self.limit = limit

    def feed(self, data: bytes) -> None:
        self._buf += data

    @property
    def pending(self) -> int:
        """Bytes held that are not yet a whole frame."""
        return len(self._buf)

    def _prefix(self) -> bool:
        if not self._need_prefix:
            return True
        size = len(API_PREFIX)
        if len(self._buf) < size:
            if not API_PREFIX.startswith(bytes(self._buf)):
                raise ProtocolError("missing API prefix")
            return False
        if self._buf[:size] != API_PREFIX:
            raise ProtocolError("missing API prefix")
        del self._buf[:size]
        self._need_prefix = False
        return True

    def _frame_end(self, start: int) -> int:
        """Where the frame at ``start`` ends, or -1 if it is not complete yet."""
        if len(self._buf) - start < 4:
            return -1
        (length,) = _HEADER.unpack_from(self._buf, start)
        if length > self.limit:
            raise ProtocolError(f"absurd frame length {length} bytes")
        end = start + 4 + length
        return end if end <= len(self._buf) else -1

    def next_payload(self) -> bytes | None:
        if not self._prefix():
            return None
        end = self._frame_end(0)
        if end < 0:
            return None
        payload = bytes(self._buf[4:end])
        del self._buf[:end]
        return payload

    def take_where(self, wanted: tuple[bytes, ...]) -> tuple[bytes, list[bytes]]:
        """Every complete frame's raw bytes, concatenated, and the payloads of only those that begin with one of
        `wanted` (e.g. ``(b"3\\0", b"4\\0")``): a relay that inspects a few message kinds copies nothing else."""
        if not self._prefix():
            return b"", []
        end, payloads = self._wanted(wanted)
        raw = bytes(self._buf[:end])
        del self._buf[:end]
        return raw, payloads

    def skim(self, wanted: tuple[bytes, ...]) -> list[bytes]:
        """`take_where` for a relay that has sent the bytes on already: the wanted payloads only."""
        if not self._prefix():
            return []
        end, payloads = self._wanted(wanted)
        del self._buf[:end]
        return payloads

    def _wanted(self, wanted: tuple[bytes, ...]) -> tuple[int, list[bytes]]:
        """Where the complete frames end, and the payloads among them that begin with one of `wanted`.
        One loop with everything in locals: a relayed market-data burst passes here once per message."""
        payloads: list[bytes] = []
        buf, limit, unpack = self._buf, self.limit, _HEADER.unpack_from
        firsts = frozenset(w[0] for w in wanted if w)  # a payload's first byte settles most frames
        every = any(not w for w in wanted)
        size, pos = len(buf), 0
        while size - pos >= 4:
            (length,) = unpack(buf, pos)
            if length > limit:
                raise ProtocolError(f"absurd frame length {length} bytes")
            end = pos + 4 + length
            if end > size:
                break
            if (every or (length and buf[pos + 4] in firsts)) and buf.startswith(wanted, pos + 4, end):
                payloads.append(bytes(buf[pos + 4:end]))
            pos = end
        return pos, payloads

    def take(self) -> tuple[bytes, list[bytes]]:
        """Every complete frame: their raw bytes, concatenated, and each one's payload."""
        return self.take_where((b"",))


def parse_number(text: str) -> float | None:
    """A number field as the Gateway writes it; None for empty, not a number, NaN, an infinity or "unset"
    (TWS's largest double, ~1.8e308)."""
    if not text or len(text) > 32:
        return None
    try:
        value = float(text)
    except ValueError:
        return None
    return value if value == value and abs(value) < 1e300 else None


# --- messages more than one user builds -------------------------------------------------------------

def version_reply(version: int) -> bytes:
    """Handshake answer: server version and connection time ``yyyyMMdd HH:mm:ss zone``."""
    return encode(version, time.strftime("%Y%m%d %H:%M:%S %Z"))


def start_api(client_id: int, capabilities: str = "") -> bytes:
    return encode(START_API, 2, client_id, capabilities)


def managed_accounts(accounts: list[str] | tuple[str, ...]) -> bytes:
    return encode(MANAGED_ACCTS, 1, ",".join(accounts))


def next_valid_id(order_id: int) -> bytes:
    return encode(NEXT_VALID_ID, 1, order_id)


def error(version: int, req_id: int | str, code: int, text: str) -> bytes:
    """Error or notice (id 4); ib_async requires the trailing JSON field from 166 on."""
    fields: list[object] = [ERR_MSG, 2, req_id, code, text]
    if version >= MIN_VERSION_ADVANCED_ORDER_REJECT:
        fields.append("")
    return encode(*fields)


def clip(text: object, limit: int = 40) -> str:
    """``text`` fit for a log line: printable ASCII only, at most ``limit`` characters plus a
    note of the full length, so a line that echoes client data stays short."""
    value = str(text)
    if len(value) <= limit and value.isascii() and value.isprintable():
        return value  # the common case, at C speed: an order's fields are plain ASCII
    shown = "".join(c if " " <= c <= "~" else "?" for c in value[:limit])
    return shown if len(value) <= limit else f"{shown}...({len(value)} chars)"
