"""Wire format of the TWS API text protocol, server side.

The client opens with the bytes ``API\\0`` and a frame ``v<min>..<max>``; every
later message is a frame: a 4-byte big-endian length, then NUL-terminated ASCII
fields. This module reads and writes frames and builds the messages the
simulator sends. Field layouts follow ib_async 2.1.0's decoder for
``SERVER_VERSION`` (message id first, then usually a message version "1").
"""

from __future__ import annotations

import asyncio
import re
import struct
import time
from collections.abc import Iterable

API_PREFIX = b"API\0"

# Highest version ib_async 2.1.0 asks for (client.py MaxClientVersion). Real
# Gateways answer >= 201 with protobuf messages, which a text simulator cannot.
SERVER_VERSION = 178

# From this server version the error message carries advancedOrderRejectJson.
MIN_VERSION_ADVANCED_ORDER_REJECT = 166

# TWS rejects longer messages; a bigger length means a broken or hostile peer.
MAX_FRAME_LENGTH = 0xFFFFFF

_VERSION_RANGE = re.compile(rb"v(\d+)(?:\.\.(\d+))?")


class ProtocolError(Exception):
    """The peer sent something that is not the TWS API protocol."""


def encode(*fields: object) -> bytes:
    """One frame: the length prefix, then each field as text plus NUL."""
    payload = b"".join(str(field).encode() + b"\0" for field in fields)
    return struct.pack(">I", len(payload)) + payload


async def read_payload(reader: asyncio.StreamReader) -> bytes:
    """Read one frame and return its payload (raises IncompleteReadError on EOF)."""
    (length,) = struct.unpack(">I", await reader.readexactly(4))
    if length > MAX_FRAME_LENGTH:
        raise ProtocolError(f"frame of {length} bytes")
    return await reader.readexactly(length)


async def read_fields(reader: asyncio.StreamReader) -> list[str]:
    """Read one frame and split it into its NUL-terminated fields."""
    payload = await read_payload(reader)
    return payload.decode(errors="replace").split("\0")[:-1]


async def read_version_range(reader: asyncio.StreamReader) -> tuple[int, int]:
    """Read the client's ``API\\0`` + ``v<min>..<max>`` opening."""
    if await reader.readexactly(len(API_PREFIX)) != API_PREFIX:
        raise ProtocolError("missing API prefix")
    match = _VERSION_RANGE.match(await read_payload(reader))
    if not match:
        raise ProtocolError("missing version range")
    low = int(match.group(1))
    return low, int(match.group(2) or low)


def negotiate_version(client_min: int, client_max: int) -> int | None:
    """The version to serve: the highest both sides speak, or None if none."""
    version = min(SERVER_VERSION, client_max)
    return version if version >= client_min else None


def version_reply(version: int) -> bytes:
    """Handshake answer: server version and connection time ``yyyyMMdd HH:mm:ss zone``."""
    return encode(version, time.strftime("%Y%m%d %H:%M:%S %Z"))


def managed_accounts(accounts: Iterable[str]) -> bytes:
    return encode(15, 1, ",".join(accounts))


def next_valid_id(order_id: int) -> bytes:
    return encode(9, 1, order_id)


def error(version: int, req_id: int, code: int, text: str) -> bytes:
    """Error or notice (id 4); ib_async requires the trailing JSON field from 166 on."""
    fields: list[object] = [4, 2, req_id, code, text]
    if version >= MIN_VERSION_ADVANCED_ORDER_REJECT:
        fields.append("")
    return encode(*fields)


def current_time() -> bytes:
    return encode(49, 1, int(time.time()))


def position_end() -> bytes:
    return encode(62, 1)


def open_order_end() -> bytes:
    return encode(53, 1)


def completed_orders_end() -> bytes:
    """Id 102 has no message-version field (ib_async decoder skips only one field)."""
    return encode(102)


def account_download_end(account: str) -> bytes:
    return encode(54, 1, account)


def exec_details_end(req_id: str) -> bytes:
    return encode(55, 1, req_id)


def account_update_multi_end(req_id: str) -> bytes:
    return encode(74, 1, req_id)


def account_summary_end(req_id: str) -> bytes:
    return encode(64, 1, req_id)


def position_multi_end(req_id: str) -> bytes:
    return encode(72, 1, req_id)
