"""The memory wire: framing shared by the memory service and the gateway (ADR 0032).

A lean transport beside gRPC for the gateway's *unary* memory-service calls. One TCP
connection carries many concurrent calls; every frame is::

    u32 length of what follows | u32 call id | u16 header length | header | payload

big-endian. The header is UTF-8 JSON:

* request: ``{"m": "/mnemo.memory.v1.MemoryService/PrepareTurn", "md": [[key, value], ...],
  "t": seconds_left_or_null}`` and the payload is the serialized protobuf request;
* response: ``{"c": grpc_status_code_int, "d": details, "tr": [[key, value], ...]}`` and the
  payload is the serialized protobuf response (empty unless ``c`` is 0).

Method paths, status codes, metadata (``authorization``, ``x-request-id``, the trailing
``x-request-id`` and ``retry-after``) and deadlines mean exactly what they mean in gRPC, so
both ends reuse their gRPC handling unchanged. Streaming methods, health probes and
reflection stay on gRPC.
"""

from __future__ import annotations

import json
import struct
from typing import Any

_PREFIX = struct.Struct(">IIH")  # length, call id, header length
PREFIX_BYTES = _PREFIX.size
#: header bytes a frame may carry beyond its payload (method, metadata, details)
MAX_HEADER_BYTES = 64 * 1024


class FrameError(Exception):
    """The peer sent bytes that are not a frame of this protocol (the connection is closed)."""


def encode(call_id: int, header: dict[str, Any], payload: bytes) -> bytes:
    """One frame."""
    head = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode()
    if len(head) > MAX_HEADER_BYTES:
        raise FrameError(f"frame header of {len(head)} bytes exceeds {MAX_HEADER_BYTES}")
    length = 4 + 2 + len(head) + len(payload)
    return _PREFIX.pack(length, call_id, len(head)) + head + payload


def split_prefix(prefix: bytes) -> tuple[int, int, int]:
    """(bytes still to read after the prefix, call id, header length) of a frame prefix."""
    length, call_id, head_len = _PREFIX.unpack(prefix)
    rest = length - 6
    if rest < head_len or head_len > MAX_HEADER_BYTES:
        raise FrameError("malformed frame prefix")
    return rest, call_id, head_len


def decode_body(body: bytes, head_len: int) -> tuple[dict[str, Any], bytes]:
    """(header, payload) of the bytes that follow a frame's prefix."""
    try:
        header = json.loads(body[:head_len])
    except (UnicodeDecodeError, ValueError) as exc:
        raise FrameError(f"frame header is not JSON: {exc}") from None
    if not isinstance(header, dict):
        raise FrameError("frame header is not a JSON object")
    return header, body[head_len:]


def metadata_pairs(value: Any) -> list[tuple[str, str]]:
    """A header's metadata list as (key, value) string pairs; anything else is dropped
    by raising FrameError (the peer is not speaking this protocol)."""
    if value is None:
        return []
    if not isinstance(value, list):
        raise FrameError("frame metadata is not a list")
    pairs: list[tuple[str, str]] = []
    for item in value:
        if not (
            isinstance(item, list)
            and len(item) == 2
            and isinstance(item[0], str)
            and isinstance(item[1], str)
        ):
            raise FrameError("frame metadata items must be [key, value] strings")
        pairs.append((item[0], item[1]))
    return pairs
