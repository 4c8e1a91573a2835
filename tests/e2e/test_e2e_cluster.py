"""End to end on a real cluster (kind/minikube after `make kind-up deploy`, or any context):
the release is ready, chat works through the gateway Service, and memory survives losing
the memory-service and Redis pods (AOF on a PVC) and the Chroma pod (PVC).

Run with `make e2e`; skipped with the reason when no cluster or no release is reachable.
Deletes pods of the release under test: never point it at a production namespace.
"""

from __future__ import annotations

import json
import uuid

import pytest
from e2e_support import Cluster

pytestmark = pytest.mark.e2e

COMPONENTS = ("redis", "chroma", "memory", "worker", "gateway")


def _user() -> str:
    return f"e2e-{uuid.uuid4().hex[:10]}"


def _uses_chroma(cluster: Cluster) -> bool:
    try:
        cluster.workload("chroma")
    except Exception:
        return False
    return True


def test_release_rolls_out(cluster: Cluster) -> None:
    for component in COMPONENTS:
        if component == "chroma" and not _uses_chroma(cluster):
            continue
        cluster.wait_ready(component)


def test_chat_through_the_gateway_service(cluster: Cluster) -> None:
    user = _user()
    status, answer = cluster.gateway(
        "POST",
        "/v1/chat",
        {"prompt": "Hello, I am testing Mnemo.", "user_id": user},
        retry_for_s=60,
    )
    assert status == 200, answer
    assert answer["response"] and answer["thread_id"]
    status, ready = cluster.gateway("GET", "/readyz")
    assert status == 200, ready


def test_memory_survives_losing_memory_and_redis_pods(cluster: Cluster) -> None:
    user, marker = _user(), f"teal-{uuid.uuid4().hex[:6]}"
    status, answer = cluster.gateway(
        "POST",
        "/v1/chat",
        {"prompt": f"My favourite colour is {marker}.", "user_id": user},
        retry_for_s=60,
    )
    assert status == 200, answer
    thread = answer["thread_id"]
    status, _ = cluster.gateway("PUT", f"/v1/users/{user}/preferences/colour", {"value": marker})
    assert status == 200

    cluster.delete_pods("memory")
    cluster.delete_pods("redis")
    cluster.wait_ready("redis")
    cluster.wait_ready("memory")

    status, detail = cluster.gateway("GET", f"/v1/users/{user}/threads/{thread}", retry_for_s=120)
    assert status == 200, detail
    assert marker in json.dumps(detail)  # the turn came back from the AOF on the PVC
    status, prefs = cluster.gateway("GET", f"/v1/users/{user}/preferences")
    assert status == 200 and marker in json.dumps(prefs)


def test_long_term_memory_survives_a_chroma_restart(cluster: Cluster) -> None:
    if not _uses_chroma(cluster):
        pytest.skip("this release keeps long-term memory outside an in-release Chroma")
    user, marker = _user(), f"codename-{uuid.uuid4().hex[:6]}"
    status, created = cluster.gateway(
        "POST",
        f"/v1/users/{user}/memories",
        {"text": f"The user's project is called {marker}.", "kind": "fact"},
        retry_for_s=60,
    )
    assert status == 201, created

    cluster.delete_pods("chroma")
    cluster.wait_ready("chroma")

    status, listed = cluster.gateway("GET", f"/v1/users/{user}/memories", retry_for_s=120)
    assert status == 200, listed
    assert marker in json.dumps(listed)  # read back from the chroma-data PVC
