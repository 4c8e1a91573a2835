"""The circuit breaker opens only when the memory service is not answering.

A refusal that is about one request (a bad page token, an unknown thread — someone else's
answers the same —, a rate limit, a server-side bug on one user's data) must never open
the breaker: otherwise one user could switch memory off for everybody.
"""

from __future__ import annotations

import base64

import httpx
import redis
from mnemo_gateway.core.auth import AuthMode, encode_user_id
from mnemo_memory.stores.keys import KeyBuilder


def chat(gw, user: str, thread: str) -> httpx.Response:
    return httpx.post(
        gw.url + "/v1/chat",
        json={"prompt": "hello", "user_id": user, "thread_id": thread},
        timeout=30,
    )


def test_refusals_of_single_requests_leave_the_breaker_closed(
    gateway_factory, memory_server, redis_url
):
    gw = gateway_factory(
        memory_server.address, gateway={"breaker_failures": 2, "breaker_cooldown_s": 60}
    )
    assert chat(gw, "alice", "alice-thread").headers["x-mnemo-memory"] == "ok"

    # INTERNAL: a page token that decodes to a non-finite score, and a user whose thread
    # index holds the wrong Redis type (the memory service fails on that user's data only)
    nan_token = base64.urlsafe_b64encode(b"nan:0").decode()
    prefix = memory_server.settings.redis.key_prefix
    client = redis.Redis.from_url(redis_url)
    try:
        # the memory-service id of the gateway's (auth none) user mallory
        mallory = encode_user_id(AuthMode.NONE, None, "mallory")
        client.set(KeyBuilder(prefix).thread_index(mallory), "not a sorted set")
    finally:
        client.close()
    refusals = {
        "bad page token": lambda: httpx.get(
            gw.url + "/v1/users/mallory/threads", params={"page_token": "garbage"}
        ),
        "non-finite page token": lambda: httpx.get(
            gw.url + "/v1/users/bob/threads", params={"page_token": nan_token}
        ),
        "broken user data": lambda: httpx.get(gw.url + "/v1/users/mallory/threads"),
        "unknown thread": lambda: httpx.get(gw.url + "/v1/users/bob/threads/nope"),
        "someone else's thread": lambda: httpx.get(gw.url + "/v1/users/bob/threads/alice-thread"),
    }
    for name, call in refusals.items():
        for _ in range(3):  # beyond the breaker threshold
            r = call()
            assert 400 <= r.status_code < 600 and r.status_code not in (503, 504), (name, r.text)

    r = chat(gw, "alice", "alice-thread")
    assert (r.status_code, r.headers["x-mnemo-memory"]) == (200, "ok")
    assert httpx.get(gw.url + "/v1/users/alice/threads").status_code == 200
