"""Values cannot break what the chart guarantees: redis.config.extra cannot override
persistence or eviction, maxmemory must fit the memory limit, long release names give valid
names, generated credentials never change between renders (the chart refuses to make them
without a cluster), stores get PDBs and Guaranteed QoS, and the gateway stays Ready without
memory by default."""

from __future__ import annotations

import re
from typing import Any

import deploy_support as ds
import pytest
from mnemo_common.testing.dicts import deep_merge


def refused(values: dict[str, Any], **kwargs: Any) -> str:
    import helm_python as helm

    with pytest.raises(helm.HelmError) as info:
        ds.render(values, **kwargs)
    return str(info.value)


# --- redis.config.extra and maxmemory ----------------------------------------------------


@pytest.mark.parametrize(
    "line",
    [
        "appendonly no",
        "appendfsync no",
        'save ""',
        "dir /tmp",
        "dbfilename other.rdb",
        "appendfilename other.aof",
        "maxmemory 0",
        "  MAXMEMORY-POLICY volatile-lru",
        "\tport 6380",
        "requirepass guessable",
        "include /tmp/other.conf",
        "rename-command CONFIG ''",
        '"maxmemory-policy" allkeys-lfu',
    ],
)
def test_extra_cannot_override_what_the_chart_owns(line: str) -> None:
    message = refused({"redis": {"config": {"extra": f"latency-monitor-threshold 100\n{line}"}}})
    directive = line.split()[0].strip("\"'").lower()
    assert f"redis.config.extra sets {directive}" in message


def test_an_evicting_policy_in_extra_is_refused_naming_the_adr() -> None:
    message = refused({"redis": {"config": {"extra": "maxmemory-policy allkeys-lru"}}})
    assert "maxmemory-policy" in message and "only noeviction" in message
    assert "adr/0008" in message


def test_extra_may_still_tune_what_the_chart_does_not_own() -> None:
    extra = "# save 60 1 is a comment\nlatency-monitor-threshold 100\nhz 20"
    docs = ds.render({"redis": {"config": {"extra": extra}}})
    conf = ds.by_kind(docs, "ConfigMap")[f"{ds.RELEASE}-redis"]["data"]["redis.conf"]
    assert "hz 20" in conf and "latency-monitor-threshold 100" in conf


@pytest.mark.parametrize(
    ("maxmemory", "limit"),
    [("0", "3Gi"), ("3gb", "3Gi"), ("4gb", "3Gi"), ("3221225472", "3Gi"), ("3g", "3G")],
)
def test_maxmemory_must_be_above_zero_and_below_the_limit(maxmemory: str, limit: str) -> None:
    values = {
        "redis": {
            "config": {"maxmemory": maxmemory},
            "resources": {"requests": {"memory": limit}, "limits": {"memory": limit}},
        }
    }
    message = refused(values)
    assert "redis.config.maxmemory" in message


@pytest.mark.parametrize(("maxmemory", "limit"), [("2gb", "3Gi"), ("2900mb", "3Gi"), ("1g", "2G")])
def test_maxmemory_below_the_limit_renders(maxmemory: str, limit: str) -> None:
    values = {
        "redis": {
            "config": {"maxmemory": maxmemory},
            "resources": {"requests": {"memory": limit}, "limits": {"memory": limit}},
        }
    }
    assert ds.by_kind(ds.render(values), "StatefulSet")


# --- names ----------------------------------------------------------------------------------

DNS_LABEL = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")


def _label_values(doc: dict[str, Any]) -> list[str]:
    out = list((doc["metadata"].get("labels") or {}).values())
    spec = ds.pod_spec(doc)
    if spec is not None and doc["kind"] != "Pod":
        out += list((doc["spec"]["template"]["metadata"].get("labels") or {}).values())
    return [str(v) for v in out]


@pytest.mark.parametrize(
    "release",
    [
        "a" * 42,
        "b" * 53,  # Helm's longest release name
        "team-production-conversational-memory-assistant-eu1",
        "x" * 44 + "-mnemo",  # contains the chart name
    ],
)
def test_long_release_names_give_valid_distinct_names(release: str) -> None:
    values = {"metrics": {"serviceMonitor": {"enabled": True}, "prometheusRule": {"enabled": True}}}
    docs = ds.render(values, release=release)
    seen: set[tuple[str, str]] = set()
    for doc in docs:
        name = doc["metadata"]["name"]
        assert len(name) <= 63 and DNS_LABEL.match(name), (doc["kind"], name)
        assert (doc["kind"], name) not in seen, (doc["kind"], name)
        seen.add((doc["kind"], name))
        if doc["kind"] == "StatefulSet":
            # its pods get a controller-revision-hash label of name + "-" + 10 characters
            assert len(name) <= 52, name
        for value in _label_values(doc):
            assert len(value) <= 63, (doc["kind"], name, value)
        if ds.pod_spec(doc) is not None and doc["kind"] != "Pod":
            for key in doc["spec"]["template"]["metadata"].get("labels") or {}:
                assert len(key.rpartition("/")[2]) <= 63, key
    # the gateway's memory address names the memory Service that exists
    gateway_cm = next(d for n, d in ds.by_kind(docs, "ConfigMap").items() if n.endswith("-gateway"))
    host = gateway_cm["data"]["GATEWAY__MEMORY_ADDR"].rpartition(":")[0].split(".")[0]
    assert host in ds.by_kind(docs, "Service")


def test_two_long_names_that_share_a_prefix_stay_apart() -> None:
    a = ds.render({}, release="c" * 45 + "-one")
    b = ds.render({}, release="c" * 45 + "-two")
    assert set(ds.by_kind(a, "Service")).isdisjoint(ds.by_kind(b, "Service"))


# --- credentials ---------------------------------------------------------------------------


def _secret_data(docs: list[dict[str, Any]]) -> dict[str, dict[str, str]]:
    return {n: d.get("data") or {} for n, d in ds.by_kind(docs, "Secret").items()}


@pytest.mark.parametrize("scenario", ds.SCENARIOS, ids=ds.scenario_name)
def test_offline_renders_never_invent_a_credential(scenario) -> None:
    """credentials.offline=fail (the default): a render without a cluster (helm template,
    ArgoCD) either gives the same Secret every time or refuses, naming what to set."""
    import helm_python as helm

    values = ds.load_yaml(scenario)
    try:
        first = ds.render(values, offline="fail")
    except helm.HelmError as exc:
        assert "existingSecret" in str(exc) and "no cluster" in str(exc), exc
        return
    assert _secret_data(first) == _secret_data(ds.render(values, offline="fail"))


def test_defaults_refuse_offline_naming_every_way_out() -> None:
    message = refused({}, offline="fail")
    assert "redis.auth.existingSecret" in message
    assert "credentials.offline=random" in message
    assert "docs/deploy.md" in message


@pytest.mark.parametrize(
    ("missing", "setting"),
    [
        ("redis", "redis.auth.existingSecret"),
        ("memory", "memory.auth.existingSecret"),
        ("gateway", "gateway.auth.existingSecret"),
    ],
)
def test_each_generated_credential_is_refused_by_name(missing: str, setting: str) -> None:
    given = {
        "redis": {"redis": {"auth": {"existingSecret": "r"}}},
        "memory": {"memory": {"auth": {"existingSecret": "m"}}},
        "gateway": {"gateway": {"auth": {"existingSecret": "g"}}},
    }
    values: dict[str, Any] = {}
    for part, v in given.items():
        if part != missing:
            values = deep_merge(values, v)
    assert setting in refused(values, offline="fail")


def test_gitops_values_render_identically() -> None:
    values = {
        "redis": {"auth": {"existingSecret": "mnemo-redis"}},
        "memory": {"auth": {"existingSecret": "mnemo-memory-token"}},
        "gateway": {"auth": {"existingSecret": "mnemo-gateway-auth"}},
    }
    first, second = ds.render(values, offline="fail"), ds.render(values, offline="fail")
    assert _secret_data(first) == _secret_data(second)
    assert first == second


# --- stores: PDBs, QoS; the gateway's readiness ------------------------------------------


def _qos_guaranteed(container: dict[str, Any]) -> bool:
    res = container.get("resources") or {}
    req, lim = res.get("requests") or {}, res.get("limits") or {}
    return bool(lim.get("cpu") and lim.get("memory")) and all(
        str(req.get(k, lim[k])) == str(lim[k]) for k in ("cpu", "memory")
    )


def test_stores_are_guaranteed_qos_and_have_pdbs(default_docs) -> None:
    pdbs = ds.by_kind(default_docs, "PodDisruptionBudget")
    for store in ("redis", "chroma"):
        sts = ds.by_kind(default_docs, "StatefulSet")[f"{ds.RELEASE}-{store}"]
        spec = sts["spec"]["template"]["spec"]
        # Guaranteed QoS needs every container of the pod at requests = limits
        assert all(_qos_guaranteed(c) for c in spec["containers"]), store
        pdb = pdbs[f"{ds.RELEASE}-{store}"]
        assert pdb["spec"]["maxUnavailable"] == 0
        assert pdb["spec"]["selector"]["matchLabels"] == sts["spec"]["selector"]["matchLabels"]


def test_default_gateway_readiness_does_not_follow_memory(default_docs, gateway_app) -> None:
    gw = ds.by_kind(default_docs, "Deployment")[f"{ds.RELEASE}-gateway"]
    (container,) = gw["spec"]["template"]["spec"]["containers"]
    path = container["readinessProbe"]["httpGet"]["path"]
    assert path == "/readyz?memory=optional"
    assert gateway_app.serves(path)
