"""The embedding runtime in a real ``mnemo-memory serve`` process: recall is ready within
seconds of start on the ONNX runtime, a missing ONNX file keeps recall NOT_SERVING with a
message saying what to do (chat goes on without it), and the sentence-transformers
fallback serves without the file."""

from __future__ import annotations

import time

import grpc
from mnemo.memory.v1 import memory_pb2 as pb
from mnemo.memory.v1 import memory_pb2_grpc
from mnemo_common.testing.procs import wait_for

RECALL = "mnemo.memory.v1.Recall"


def prepare(proc):
    with grpc.insecure_channel(proc.address) as channel:
        stub = memory_pb2_grpc.MemoryServiceStub(channel)
        return stub.PrepareTurn(
            pb.PrepareTurnRequest(user_id="alice", thread_id="t1", query="where do I live?"),
            timeout=10,
        )


def test_recall_is_ready_within_seconds_of_start_on_the_onnx_runtime(memory_process):
    started = time.monotonic()
    proc = memory_process().start()  # the main service SERVING
    wait_for(lambda: proc.health(RECALL) == "SERVING", 30, "recall SERVING")
    ready_s = time.monotonic() - started
    # the interpreter, gRPC and Chroma imports dominate; the model itself loads in < 1 s
    # (torch took ~36 s here under load); generous for a shared CI machine
    assert ready_s < 20, ready_s
    assert '"backend": "onnx"' in proc.log_tail(20_000)
    assert list(prepare(proc).degraded) == []


def test_missing_onnx_file_keeps_recall_down_saying_what_to_do(memory_process, tmp_path):
    missing = tmp_path / "missing.onnx"
    proc = memory_process(env={"EMBEDDING__ONNX_PATH": str(missing)}).start()
    wait_for(
        lambda: "long-term memory failed to open" in proc.log_tail(20_000),
        30,
        "the failed open to be logged",
    )
    log = proc.log_tail(20_000)
    assert str(missing) in log and "EMBEDDING__ONNX_PATH" in log and "make setup" in log
    assert proc.health(RECALL) == "NOT_SERVING"
    assert proc.health() == "SERVING"  # the chat path is unaffected
    reply = prepare(proc)
    assert list(reply.degraded) == ["vector_store"]


def test_sentence_transformers_fallback_serves_without_the_onnx_file(memory_process, tmp_path):
    proc = memory_process(
        env={
            "EMBEDDING__BACKEND": "sentence-transformers",
            "EMBEDDING__ONNX_PATH": str(tmp_path / "missing.onnx"),
        }
    ).start()
    wait_for(lambda: proc.health(RECALL) == "SERVING", 90, "recall SERVING on torch")
    assert '"backend": "sentence-transformers"' in proc.log_tail(20_000)
    assert list(prepare(proc).degraded) == []
