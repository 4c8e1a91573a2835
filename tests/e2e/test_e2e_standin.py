"""The e2e helpers and the e2e tests themselves, run against a stand-in Kubernetes API
server (k8s_standin.py: real HTTP, bearer-token auth, the Service proxy forwarding to a real
gateway on a real memory service). Not marked e2e: `make test` runs it, so a helper that
cannot talk to an API server fails there instead of every e2e test failing on a cluster.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import e2e_support as es
import pytest
import test_e2e_cluster as real
from k8s_standin import StandInApiServer

TOKEN = "standin-service-account-token"
API_KEY = "mk-e2e-standin-key"


def _cluster_objects(api: StandInApiServer, gateway_url: str) -> None:
    for component in real.COMPONENTS:
        labels = {
            "app.kubernetes.io/instance": es.RELEASE,
            "app.kubernetes.io/component": component,
        }
        kind = "StatefulSet" if component in ("redis", "chroma") else "Deployment"
        pod: dict = {}
        if component == "gateway":
            pod["volumes"] = [{"name": "api-keys", "secret": {"secretName": es.RELEASE}}]
        api.add_workload(kind, es.RELEASE + "-" + component, labels, **pod)
    api.add_configmap(f"{es.RELEASE}-gateway", {"AUTH__MODE": "api-key"})
    api.add_secret(es.RELEASE, {"api-keys": f"{API_KEY} acme\n"})
    api.services[f"{es.RELEASE}-gateway"] = gateway_url


@pytest.fixture
def standin(
    tmp_path: Path, gateway_factory, memory_server, monkeypatch
) -> Iterator[StandInApiServer]:
    keys = tmp_path / "api-keys"
    keys.write_text(f"{API_KEY} acme\n")
    gateway = gateway_factory(
        memory_server.address, auth={"mode": "api-key", "api_keys_file": str(keys)}
    )
    api = StandInApiServer(namespace=es.NAMESPACE, token=TOKEN).start()
    try:
        _cluster_objects(api, gateway.url)
        monkeypatch.setenv("KUBECONFIG", str(api.write_kubeconfig(tmp_path / "kubeconfig")))
        yield api
    finally:
        api.stop()


@pytest.fixture
def cluster(standin: StandInApiServer) -> es.Cluster:
    client, reason = es.cluster_or_reason()
    assert client is not None, reason
    return es.Cluster(client)


def test_the_e2e_suite_passes_against_the_standin(standin, cluster) -> None:
    """Each test of test_e2e_cluster.py, with the helpers they use on a real cluster."""
    real.test_release_rolls_out(cluster)
    real.test_chat_through_the_gateway_service(cluster)
    real.test_memory_survives_losing_memory_and_redis_pods(cluster)
    real.test_long_term_memory_survives_a_chroma_restart(cluster)
    # every call carried the kubeconfig's token; the pods the tests delete were deleted
    assert standin.requests and all(authed for _, _, authed in standin.requests)
    owners = {name.rsplit("-", 1)[0] for name in standin.deleted}
    assert owners == {f"{es.RELEASE}-{c}" for c in ("memory", "redis", "chroma")}
    # the gateway's key reached it although the API server drops Authorization
    assert standin.proxied_headers
    assert all(h.get("x-api-key") == API_KEY for h in standin.proxied_headers)
    assert all("authorization" not in h for h in standin.proxied_headers)


def test_gateway_statuses_and_bodies_come_back_unchanged(cluster) -> None:
    status, body = cluster.gateway("GET", "/v1/users/bad%20id/threads")
    assert status == 422 or status == 400, body
    status, body = cluster.gateway("GET", "/v1/no-such-route")
    assert status == 404
    status, ready = cluster.gateway("GET", "/readyz")
    assert status == 200 and isinstance(ready, dict)


def test_a_wrong_gateway_key_is_refused_by_the_gateway(cluster, monkeypatch) -> None:
    monkeypatch.setattr(es.Cluster, "auth_headers", lambda self: {"x-api-key": "mk-wrong"})
    status, _ = cluster.gateway("GET", "/v1/users/alice/threads")
    assert status == 401


def test_skip_reasons_name_what_is_missing(standin, monkeypatch) -> None:
    monkeypatch.setattr(es, "NAMESPACE", "not-deployed")
    client, reason = es.cluster_or_reason()
    assert client is None and "namespace 'not-deployed' does not exist" in reason
    monkeypatch.setattr(es, "NAMESPACE", standin.namespace)
    standin.token = "rotated-token"  # the kubeconfig's token no longer works
    client, reason = es.cluster_or_reason()
    assert client is None and "not reachable" in reason and "401" in reason
