"""Helpers shared by the short-term test modules (imported by name: pytest's rootdir
insertion puts this directory on sys.path)."""

from __future__ import annotations

import redis
from mnemo.memory.v1 import memory_pb2 as pb


def all_keys(redis_url: str, prefix: str) -> dict[str, int]:
    """Every key under ``prefix`` (SCAN, as an operator would) with its TTL in seconds."""
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    try:
        return {k: client.ttl(k) for k in client.scan_iter(match=f"{prefix}:*", count=1000)}
    finally:
        client.close()


def fill_user(stub, uid: str, threads: int = 2, turns: int = 3) -> None:
    """Give ``uid`` threads, messages, preferences, a rate-limit window and jobs."""
    for t in range(threads):
        for i in range(turns):
            stub.CommitTurn(
                pb.CommitTurnRequest(
                    user_id=uid,
                    thread_id=f"{uid}-t{t}",
                    idempotency_key=f"k{i}",
                    user_message=f"{uid} says {i}",
                    assistant_message=f"reply {i}",
                )
            )
    stub.SetPreference(pb.SetPreferenceRequest(user_id=uid, key="tone", value="formal"))
    stub.PrepareTurn(
        pb.PrepareTurnRequest(user_id=uid, thread_id=f"{uid}-t0", count_rate_limit=True)
    )
    if threads > 1:
        stub.CloseThread(pb.CloseThreadRequest(user_id=uid, thread_id=f"{uid}-t1"))
