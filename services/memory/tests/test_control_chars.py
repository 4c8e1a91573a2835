"""Every gRPC method refuses control characters in every string it takes (INVALID_ARGUMENT
naming the field), so nothing can store a NUL that breaks the user's later turns."""

from __future__ import annotations

from typing import Any

import grpc
import pytest
from google.protobuf.descriptor import FieldDescriptor
from mnemo.memory.v1 import memory_pb2 as pb

BAD = ["tea\x00", "tea\x1b[0m", "tea\x7f", "tea\x9b"]
#: valid values by field name (anything else gets "walk")
VALID = {
    "user_id": "walker",
    "thread_id": "walk-t1",
    "memory_id": "mem-1",
    "idempotency_key": "k1",
    "key": "tone",
    "source_thread_id": "",
    "page_token": "",
}


def _valid_request(desc: Any) -> Any:
    msg = pb.__dict__[desc.name]()
    for f in desc.fields:
        if f.type == FieldDescriptor.TYPE_STRING and not f.is_repeated:
            setattr(msg, f.name, VALID.get(f.name, "walk"))
    return msg


def _string_fields(desc: Any, prefix: str = "") -> list[str]:
    """Dotted paths of every singular string, repeated string, map and nested string."""
    out = []
    for f in desc.fields:
        path = f"{prefix}{f.name}"
        if f.type == FieldDescriptor.TYPE_STRING:
            out.append(path)
        elif f.message_type is not None and f.message_type.GetOptions().map_entry:
            if f.message_type.fields_by_name["value"].type == FieldDescriptor.TYPE_STRING:
                out.append(path + "{}")
        elif f.type == FieldDescriptor.TYPE_MESSAGE and not f.is_repeated:
            out += _string_fields(f.message_type, path + ".")
    return out


def _set(msg: Any, path: str, value: str) -> None:
    *parents, last = path.split(".")
    for p in parents:
        msg = getattr(msg, p)
    if last.endswith("{}"):
        getattr(msg, last[:-2])["k"] = value
        return
    field = msg.DESCRIPTOR.fields_by_name[last]
    if field.is_repeated:
        getattr(msg, last).append(value)
    else:
        setattr(msg, last, value)


def _cases() -> list[tuple[str, str]]:
    service = pb.DESCRIPTOR.services_by_name["MemoryService"]
    return [(m.name, f) for m in service.methods for f in _string_fields(m.input_type)]


def test_the_walk_covers_every_method() -> None:
    service = pb.DESCRIPTOR.services_by_name["MemoryService"]
    walked = {m for m, _ in _cases()}
    assert walked == {m.name for m in service.methods}
    assert ("AddMemory", "text") in _cases() and ("CommitTurn", "metadata{}") in _cases()


@pytest.mark.parametrize(("method", "field"), _cases())
def test_every_string_field_refuses_control_characters(memory_server, method, field) -> None:
    stub = memory_server.stub()
    desc = pb.DESCRIPTOR.services_by_name["MemoryService"].methods_by_name[method]
    bad = BAD[hash((method, field)) % len(BAD)]
    request = _valid_request(desc.input_type)
    _set(request, field, bad)
    call = getattr(stub, method)
    with pytest.raises(grpc.RpcError) as caught:
        result = call(request, timeout=30)
        if desc.server_streaming:
            list(result)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT, caught.value.details()
    named = field.replace("{}", "").split(".")[-1]
    assert named in (caught.value.details() or ""), caught.value.details()
    # and nothing of the walker was stored meanwhile
    assert not stub.ListThreads(pb.ListThreadsRequest(user_id="walker")).threads
    assert not stub.ListMemories(pb.ListMemoriesRequest(user_id="walker")).memories
