"""NetworkPolicies: default deny for ingress and egress on every pod of the release, then
exactly DNS, gateway -> memory, memory/worker -> stores, gateway/worker -> LLM (by CIDR or
namespace, a value); Chroma and Redis admit only the memory service and the worker.

A small evaluator of the rendered policies answers "may pod A reach B on port P" the way
the NetworkPolicy API defines it (a pod selected by any policy of a type is isolated for that
type; traffic passes when any rule of any selecting policy allows it)."""

from __future__ import annotations

import ipaddress
from typing import Any

import deploy_support as ds
import pytest

Pod = dict[str, Any]  # {"labels": {...}, "namespace": str, "ports": {name: number}}


def _matches(selector: dict[str, Any] | None, labels: dict[str, str]) -> bool:
    if selector is None:
        return True
    return all(labels.get(k) == v for k, v in (selector.get("matchLabels") or {}).items())


def _peer_ok(peer: dict[str, Any], other: Pod | str, here_ns: str) -> bool:
    if isinstance(other, str):  # an IP address outside the cluster
        block = peer.get("ipBlock")
        if block is None:
            return False
        ip = ipaddress.ip_address(other)
        return ip in ipaddress.ip_network(block["cidr"]) and not any(
            ip in ipaddress.ip_network(e) for e in block.get("except", [])
        )
    if "ipBlock" in peer:
        return False
    ns_sel = peer.get("namespaceSelector")
    if ns_sel is None:
        ns_ok = other["namespace"] == here_ns
    else:
        ns_ok = _matches(ns_sel, {"kubernetes.io/metadata.name": other["namespace"]})
    return ns_ok and _matches(peer.get("podSelector"), other["labels"])


def _port_ok(rule_ports: list[dict[str, Any]] | None, dest: Pod | str, port: int, name: str):
    if not rule_ports:
        return True
    for p in rule_ports:
        if p["port"] == port or (name and p["port"] == name):
            return True
        named = isinstance(dest, dict) and isinstance(p["port"], str)
        if named and dest["ports"].get(p["port"]) == port:
            return True
    return False


def allowed(docs, src: Pod, dest: Pod | str, port: int, port_name: str = "") -> bool:
    """Egress from src and (for a pod) ingress to dest both allow it."""
    policies = [d for d in docs if d["kind"] == "NetworkPolicy"]

    def side(pod: Pod, kind: str, other: Pod | str, target: Pod | str) -> bool:
        selecting = [
            p
            for p in policies
            if kind in p["spec"]["policyTypes"]
            and _matches(p["spec"]["podSelector"], pod["labels"])
        ]
        if not selecting:
            return True
        key, peers_key = ("egress", "to") if kind == "Egress" else ("ingress", "from")
        for policy in selecting:
            for rule in policy["spec"].get(key) or []:
                peers = rule.get(peers_key)
                if (peers is None or any(_peer_ok(pe, other, ds.NAMESPACE) for pe in peers)) and (
                    _port_ok(rule.get("ports"), target, port, port_name)
                ):
                    return True
        return False

    if not side(src, "Egress", dest, dest):
        return False
    return isinstance(dest, str) or side(dest, "Ingress", src, dest)


def pods(docs) -> dict[str, Pod]:
    out: dict[str, Pod] = {}
    for doc, spec in ds.workloads(docs):
        labels = (
            doc["metadata"]["labels"]
            if doc["kind"] == "Pod"
            else doc["spec"]["template"]["metadata"]["labels"]
        )
        ports = {
            p["name"]: p["containerPort"] for c in spec["containers"] for p in c.get("ports", [])
        }
        name = ds.component(doc) if doc["kind"] != "Pod" else doc["metadata"]["name"]
        out[name] = {"labels": labels, "namespace": ds.NAMESPACE, "ports": ports}
    return out


DNS: Pod = {
    "labels": {"k8s-app": "kube-dns"},
    "namespace": "kube-system",
    "ports": {"dns": 53},
}
PUBLIC_LLM = "160.79.104.10"  # a public address (api.anthropic.com's range)


def test_every_pod_of_the_release_is_isolated_both_ways(default_docs) -> None:
    (deny,) = [
        d
        for d in default_docs
        if d["kind"] == "NetworkPolicy" and d["metadata"]["name"].endswith("-default-deny")
    ]
    assert deny["spec"]["policyTypes"] == ["Ingress", "Egress"]
    assert "ingress" not in deny["spec"] and "egress" not in deny["spec"]
    for name, pod in pods(default_docs).items():
        assert _matches(deny["spec"]["podSelector"], pod["labels"]), name


def test_each_component_reaches_exactly_what_it_needs(default_docs) -> None:
    p = pods(default_docs)
    gw, mem, wk, rd, ch = (p[c] for c in ("gateway", "memory", "worker", "redis", "chroma"))
    for pod in p.values():
        assert allowed(default_docs, pod, DNS, 53, "dns")
    assert allowed(default_docs, gw, mem, mem["ports"]["grpc"])
    for client in (mem, wk):
        assert allowed(default_docs, client, rd, rd["ports"]["redis"])
        assert allowed(default_docs, client, ch, ch["ports"]["http"])
    # the stores admit nobody else; the gateway never reaches them
    for other in (gw, p["mnemo-test-chat"]):
        assert not allowed(default_docs, other, rd, rd["ports"]["redis"])
        assert not allowed(default_docs, other, ch, ch["ports"]["http"])
    assert not allowed(default_docs, wk, mem, mem["ports"]["grpc"])
    # the LLM: the gateway (chat) and the worker (extraction), HTTPS to a public address
    assert allowed(default_docs, gw, PUBLIC_LLM, 443)
    assert allowed(default_docs, wk, PUBLIC_LLM, 443)
    assert not allowed(default_docs, mem, PUBLIC_LLM, 443)
    assert not allowed(default_docs, rd, PUBLIC_LLM, 443)
    assert not allowed(default_docs, gw, PUBLIC_LLM, 80)
    assert not allowed(default_docs, gw, "10.0.0.7", 443)  # nothing private by CIDR
    # helm test pods reach what they test
    assert allowed(default_docs, p["mnemo-test-chat"], gw, gw["ports"]["http"])
    assert allowed(default_docs, p["mnemo-test-memory-health"], mem, mem["ports"]["grpc"])


def test_an_in_cluster_llm_is_allowed_by_namespace() -> None:
    values = {
        "networkPolicy": {
            "llmEgress": {
                "to": [
                    {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "llm"}}}
                ],
                "ports": [{"port": 8000, "protocol": "TCP"}],
            }
        }
    }
    docs = ds.render(values)
    p = pods(docs)
    vllm: Pod = {"labels": {"app": "vllm"}, "namespace": "llm", "ports": {"http": 8000}}
    assert allowed(docs, p["gateway"], vllm, 8000)
    assert allowed(docs, p["worker"], vllm, 8000)
    assert not allowed(docs, p["gateway"], PUBLIC_LLM, 443)
    assert not allowed(docs, p["memory"], vllm, 8000)


def test_external_stores_get_their_own_egress(rendered) -> None:
    docs = rendered["external-stores"]
    p = pods(docs)
    managed = "10.20.0.5"
    assert allowed(docs, p["memory"], managed, 26379)  # externalStores.to [] = anywhere
    assert allowed(docs, p["worker"], managed, 6379)
    assert not allowed(docs, p["gateway"], managed, 6379)
    narrowed = ds.render(
        {
            **ds.load_yaml(ds.CHART / "ci" / "external-stores-values.yaml"),
            "networkPolicy": {
                "externalStores": {
                    "to": [{"ipBlock": {"cidr": "10.20.0.0/24"}}],
                    "ports": [{"port": 26379, "protocol": "TCP"}],
                }
            },
        }
    )
    q = pods(narrowed)
    assert allowed(narrowed, q["memory"], managed, 26379)
    assert not allowed(narrowed, q["memory"], managed, 6380)
    assert not allowed(narrowed, q["memory"], "10.30.0.5", 26379)


@pytest.mark.parametrize("scenario", ["default", "production", "redis-vector"])
def test_no_component_is_left_without_dns(rendered, scenario: str) -> None:
    docs = rendered[scenario]
    for name, pod in pods(docs).items():
        assert allowed(docs, pod, DNS, 53, "dns"), name


def test_an_external_chroma_token_reaches_memory_and_worker(service_code) -> None:
    values = {
        **ds.load_yaml(ds.CHART / "ci" / "external-stores-values.yaml"),
        "externalChroma": {
            "url": "https://chroma.example:8443",
            "existingSecret": "mnemo-chroma",
            "existingSecretKey": "token",
        },
    }
    docs = ds.render(values)
    for component in ("memory", "worker"):
        (container,) = ds.by_kind(docs, "Deployment")[f"{ds.RELEASE}-{component}"]["spec"][
            "template"
        ]["spec"]["containers"]
        (env,) = [e for e in container["env"] if e["name"] == "VECTOR__CHROMA_TOKEN"]
        assert env["valueFrom"]["secretKeyRef"] == {"name": "mnemo-chroma", "key": "token"}
        assert "VECTOR__CHROMA_TOKEN" in service_code[component].env_names
    gateway = ds.by_kind(docs, "Deployment")[f"{ds.RELEASE}-gateway"]
    names = {e["name"] for e in gateway["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert "VECTOR__CHROMA_TOKEN" not in names
