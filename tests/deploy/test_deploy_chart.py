"""The chart renders and lints for every scenario, and its defaults keep memory safe."""

from __future__ import annotations

from typing import Any

import deploy_support as ds
import pytest
from mnemo_common.testing.dicts import deep_merge

SCENARIO_IDS = [ds.scenario_name(p) for p in ds.SCENARIOS]


def test_every_documented_scenario_exists() -> None:
    assert set(SCENARIO_IDS) >= {"default", "external-stores", "production", "redis-vector"}


@pytest.mark.parametrize("kube_version", [ds.KUBE_VERSIONS[0], ds.KUBE_VERSIONS[-1]])
@pytest.mark.parametrize("scenario", ds.SCENARIOS, ids=SCENARIO_IDS)
def test_chart_lints_strictly(scenario, kube_version: str) -> None:
    import helm_python as helm

    report = helm.lint(
        ds.CHART,
        ds.load_yaml(scenario),
        strict=True,
        namespace=ds.NAMESPACE,
        kube_version=f"v{kube_version}",
    )
    problems = [m for m in report["messages"] if m["severity"] >= 2] + report["errors"]
    assert not problems, problems


@pytest.mark.parametrize("scenario", ds.SCENARIOS, ids=SCENARIO_IDS)
def test_scenario_values_meet_the_schema(scenario) -> None:
    import helm_python as helm

    helm.Chart.load(ds.CHART).validate_schema(ds.load_yaml(scenario))


def test_schema_rejects_a_misspelt_key() -> None:
    import helm_python as helm

    with pytest.raises(helm.HelmValuesError, match="gatway"):
        helm.Chart.load(ds.CHART).validate_schema({"gatway": {"replicas": 2}})


def _redis_conf(docs: list[dict[str, Any]]) -> dict[str, str]:
    cm = ds.by_kind(docs, "ConfigMap")[f"{ds.RELEASE}-redis"]
    conf: dict[str, str] = {}
    for line in cm["data"]["redis.conf"].splitlines():
        if line.strip() and not line.startswith("#"):
            key, _, value = line.strip().partition(" ")
            conf[key] = value
    return conf


def test_default_redis_has_aof_maxmemory_and_noeviction(default_docs) -> None:
    conf = _redis_conf(default_docs)
    assert conf["appendonly"] == "yes"
    assert conf["maxmemory"] == "2gb"
    # ADR 0008: the job stream, dead letters and preferences must never be evicted
    assert conf["maxmemory-policy"] == "noeviction"
    assert conf["dir"] == "/data"
    sts = ds.by_kind(default_docs, "StatefulSet")[f"{ds.RELEASE}-redis"]
    mounts = {
        m["name"]: m["mountPath"]
        for m in sts["spec"]["template"]["spec"]["containers"][0]["volumeMounts"]
    }
    assert mounts["data"] == "/data"
    claim = sts["spec"]["volumeClaimTemplates"][0]
    assert claim["metadata"]["name"] == "data"
    assert claim["spec"]["accessModes"] == ["ReadWriteOnce"]


def test_redis_password_never_appears_in_argv_or_config(default_docs) -> None:
    sts = ds.by_kind(default_docs, "StatefulSet")[f"{ds.RELEASE}-redis"]
    redis = sts["spec"]["template"]["spec"]["containers"][0]
    env = {e["name"]: e for e in redis["env"]}
    assert "secretKeyRef" in env["REDIS_PASSWORD"]["valueFrom"]
    assert (
        "include /run/redis/auth.conf"
        in ds.by_kind(default_docs, "ConfigMap")[f"{ds.RELEASE}-redis"]["data"]["redis.conf"]
    )
    assert "requirepass" not in " ".join(redis["command"])
    assert "--requirepass" not in redis["args"][0]


@pytest.mark.parametrize("policy", ["allkeys-lru", "volatile-lru", "allkeys-lfu", "volatile-ttl"])
def test_an_evicting_policy_is_refused(policy: str) -> None:
    """An LRU that can evict un-processed jobs or preferences is a data-loss bug (ADR 0008)."""
    import helm_python as helm

    chart = helm.Chart.load(ds.CHART)
    with pytest.raises(helm.HelmValuesError, match="maxmemoryPolicy"):
        chart.validate_schema({"redis": {"config": {"maxmemoryPolicy": policy}}})
    # and even with schema validation skipped, the templates refuse to render it
    values = chart.merge_values({})
    values["redis"]["config"]["maxmemoryPolicy"] = policy
    with pytest.raises(helm.HelmError, match=r"ADR|adr/0008"):
        _render_without_schema(values)


def _render_without_schema(values: dict[str, Any]) -> None:
    import shutil
    import tempfile
    from pathlib import Path

    import helm_python as helm

    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp) / "mnemo"
        shutil.copytree(ds.CHART, copy)
        (copy / "values.schema.json").unlink()
        helm.Chart.load(copy).render(values, name=ds.RELEASE, namespace=ds.NAMESPACE)


def test_redis_memory_limit_leaves_room_above_maxmemory(rendered) -> None:
    """A container limit at or under maxmemory gets Redis OOM-killed before noeviction acts."""
    units = {"gb": 2**30, "mb": 2**20, "kb": 2**10, "g": 10**9, "m": 10**6, "k": 10**3, "b": 1}
    kube = {"Gi": 2**30, "Mi": 2**20, "Ki": 2**10, "G": 10**9, "M": 10**6}
    for name, docs in rendered.items():
        sts = ds.by_kind(docs, "StatefulSet").get(f"{ds.RELEASE}-redis")
        if sts is None:
            continue
        raw = _redis_conf(docs)["maxmemory"].lower()
        unit = next(u for u in units if raw.endswith(u)) if not raw.isdigit() else "b"
        maxmemory = int(raw.removesuffix(unit)) * units[unit]
        limit = sts["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]["memory"]
        suffix = next(s for s in kube if limit.endswith(s))
        assert int(limit.removesuffix(suffix)) * kube[suffix] >= maxmemory * 1.25, name


def test_default_chroma_keeps_data_on_a_pvc(default_docs) -> None:
    sts = ds.by_kind(default_docs, "StatefulSet")[f"{ds.RELEASE}-chroma"]
    container = sts["spec"]["template"]["spec"]["containers"][0]
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    claims = {c["metadata"]["name"]: c for c in sts["spec"]["volumeClaimTemplates"]}
    assert "chroma-data" in claims  # seed 000's volume name
    # Chroma is told to persist exactly where the volume is mounted
    path = container["args"][container["args"].index("--path") + 1]
    assert mounts["chroma-data"] == path
    memory_cm = ds.by_kind(default_docs, "ConfigMap")[f"{ds.RELEASE}-memory"]
    assert memory_cm["data"]["CHROMADB_URL"] == f"http://{ds.RELEASE}-chroma:8000"


@pytest.mark.parametrize("scenario", SCENARIO_IDS)
def test_no_container_runs_as_root(rendered, scenario: str) -> None:
    for doc, spec in ds.workloads(rendered[scenario]):
        pod_ctx = spec.get("securityContext") or {}
        assert spec.get("automountServiceAccountToken") is False, doc["metadata"]["name"]
        for c in spec.get("containers", []) + spec.get("initContainers", []):
            ctx = {**pod_ctx, **(c.get("securityContext") or {})}
            where = f"{doc['metadata']['name']}/{c['name']}"
            assert ctx.get("runAsNonRoot") is True, where
            assert ctx.get("runAsUser", 0) != 0, where
            assert ctx.get("allowPrivilegeEscalation") is False, where
            assert ctx.get("readOnlyRootFilesystem") is True, where
            assert ctx.get("capabilities", {}).get("drop") == ["ALL"], where
            assert (ctx.get("seccompProfile") or {}).get("type") == "RuntimeDefault", where


def _checksums(docs: list[dict[str, Any]]) -> dict[str, str]:
    return {
        ds.component(d): d["spec"]["template"]["metadata"]["annotations"]["checksum/config"]
        for d in docs
        if d["kind"] in ("Deployment", "StatefulSet")
        and "checksum/config" in (d["spec"]["template"]["metadata"].get("annotations") or {})
    }


JWT = {"gateway": {"auth": {"mode": "jwt", "jwtSecret": "a" * 32}}}
EXTERNAL_REDIS = {"redis": {"enabled": False}, "externalRedis": {"url": "redis://r.example:6379"}}


@pytest.mark.parametrize(
    ("base", "change", "rolled"),
    [
        ({}, {"gateway": {"memoryTimeoutS": 3.0}}, {"gateway"}),
        # the gateway re-reads the mounted api-keys file: a rotation restarts nothing
        ({}, {"gateway": {"auth": {"apiKeys": "k3y-0123456789 default\n"}}}, set()),
        ({}, {"redis": {"config": {"maxmemory": "1gb"}}}, {"redis"}),
        ({}, {"redis": {"config": {"appendfsync": "always"}}}, {"redis"}),
        # Redis and both of its clients read the password at start
        ({}, {"redis": {"auth": {"password": "n3w-pass"}}}, {"redis", "memory", "worker"}),
        ({}, {"memory": {"policy": {"threadTtlHours": 48}}}, {"memory", "worker"}),
        ({}, {"config": {"logLevel": "DEBUG"}}, {"gateway", "memory", "worker"}),
        ({}, {"llm": {"anthropic": {"apiKey": "sk-ant-x"}}}, {"gateway", "worker"}),
        (JWT, {"gateway": {"auth": {"jwtSecret": "b" * 32}}}, {"gateway"}),
        (EXTERNAL_REDIS, {"externalRedis": {"url": "redis://r2.example"}}, {"memory", "worker"}),
    ],
    ids=[
        "gateway-setting",
        "api-key-rotation",
        "redis-maxmemory",
        "redis-appendfsync",
        "redis-password",
        "memory-policy",
        "shared-config",
        "llm-key",
        "jwt-secret",
        "external-redis-url",
    ],
)
def test_a_change_rolls_exactly_the_pods_that_read_it(base, change, rolled) -> None:
    """checksum/config covers what each workload reads at start, and nothing else: a gateway
    setting must not restart Redis (memory goes NOT_SERVING, gateways leave the Service)."""
    before = _checksums(ds.render(base))
    after = _checksums(ds.render(deep_merge(base, change)))
    assert before.keys() == after.keys()
    assert {"gateway", "memory", "worker"} <= before.keys()
    assert {c for c in before if before[c] != after[c]} == rolled


def test_checksums_are_stable_across_renders() -> None:
    """Generated credentials (random until the Secret exists) must not change the hashes,
    or the first upgrade after an install would restart every pod, Redis included."""
    assert _checksums(ds.render({})) == _checksums(ds.render({}))
    assert "redis" in _checksums(ds.render({}))


def test_production_scenario_scales_and_monitors(rendered) -> None:
    docs = rendered["production"]
    hpas = ds.by_kind(docs, "HorizontalPodAutoscaler")
    assert set(hpas) == {f"{ds.RELEASE}-gateway", f"{ds.RELEASE}-memory"}
    deployments = ds.by_kind(docs, "Deployment")
    for name in hpas:
        assert "replicas" not in deployments[name]["spec"]  # the HPA owns the replica count
    assert set(ds.by_kind(docs, "PodDisruptionBudget")) == {
        f"{ds.RELEASE}-{c}" for c in ("gateway", "memory", "worker", "redis", "chroma")
    }
    monitors = ds.by_kind(docs, "ServiceMonitor")
    assert all(
        m["metadata"]["labels"]["release"] == "kube-prometheus-stack" for m in monitors.values()
    )
    assert ds.by_kind(docs, "PrometheusRule")
    dashboards = [
        d
        for d in docs
        if d["kind"] == "ConfigMap" and d["metadata"]["labels"].get("grafana_dashboard") == "1"
    ]
    assert len(dashboards) == 1
    ingress = ds.by_kind(docs, "Ingress")[ds.RELEASE]
    assert ingress["spec"]["tls"][0]["secretName"] == "mnemo-tls"
    # every credential comes from an existing Secret: the chart creates none
    assert not ds.by_kind(docs, "Secret")


def test_external_stores_scenario_deploys_no_store(rendered) -> None:
    docs = rendered["external-stores"]
    assert not ds.by_kind(docs, "StatefulSet")
    memory = ds.by_kind(docs, "Deployment")[f"{ds.RELEASE}-memory"]
    env = {e["name"]: e for e in memory["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["REDIS_URL"]["valueFrom"]["secretKeyRef"] == {
        "name": "mnemo-redis-url",
        "key": "url",
    }
    assert ds.by_kind(docs, "ConfigMap")[f"{ds.RELEASE}-memory"]["data"]["CHROMADB_URL"].startswith(
        "http://chroma."
    )


def test_redis_vector_scenario_uses_redis_8_and_no_chroma(rendered) -> None:
    docs = rendered["redis-vector"]
    assert f"{ds.RELEASE}-chroma" not in ds.by_kind(docs, "StatefulSet")
    data = ds.by_kind(docs, "ConfigMap")[f"{ds.RELEASE}-memory"]["data"]
    assert data["VECTOR__BACKEND"] == "redis" and "CHROMADB_URL" not in data
    image = ds.by_kind(docs, "StatefulSet")[f"{ds.RELEASE}-redis"]["spec"]["template"]["spec"][
        "containers"
    ][0]["image"]
    assert image.startswith("redis:8."), image  # Redis 8 ships the query engine (FT.*)


def test_network_policies_fence_the_stores(default_docs) -> None:
    policies = ds.by_kind(default_docs, "NetworkPolicy")
    deployments = ds.by_kind(default_docs, "Deployment")

    def labels(component: str) -> dict[str, str]:
        return deployments[f"{ds.RELEASE}-{component}"]["spec"]["template"]["metadata"]["labels"]

    def admitted(policy: str, pod_labels: dict[str, str], port: str) -> bool:
        for rule in policies[policy]["spec"]["ingress"]:
            if not any(p["port"] == port for p in rule.get("ports", [])):
                continue
            for peer in rule.get("from", [{}]):
                sel = peer.get("podSelector", {}).get("matchLabels")
                if sel is not None and all(pod_labels.get(k) == v for k, v in sel.items()):
                    return True
        return False

    assert admitted(f"{ds.RELEASE}-memory", labels("gateway"), "grpc")
    assert not admitted(f"{ds.RELEASE}-memory", labels("worker"), "grpc")
    for store, port in (("redis", "redis"), ("chroma", "http")):
        assert admitted(f"{ds.RELEASE}-{store}", labels("memory"), port)
        assert admitted(f"{ds.RELEASE}-{store}", labels("worker"), port)
        assert not admitted(f"{ds.RELEASE}-{store}", labels("gateway"), port)


@pytest.mark.parametrize("scenario", ["default", "production"])
def test_prometheus_may_scrape_the_gateway_as_it_scrapes_the_memory_service(
    rendered, scenario: str
) -> None:
    """The gateway's metrics port admits exactly the scrapers the memory service's does
    (networkPolicy.metricsNamespaceSelector); the open rule covers the API port only."""
    policies = ds.by_kind(rendered[scenario], "NetworkPolicy")

    def metrics_rules(policy: str) -> list[dict[str, Any]]:
        return [
            rule
            for rule in policies[f"{ds.RELEASE}-{policy}"]["spec"]["ingress"]
            if any(p["port"] == "metrics" for p in rule.get("ports", []))
        ]

    (memory_rule,) = metrics_rules("memory")
    assert metrics_rules("gateway") == [memory_rule]
    assert metrics_rules("worker") == [memory_rule]
    for rule in policies[f"{ds.RELEASE}-gateway"]["spec"]["ingress"]:
        if "from" not in rule:  # everyone: the public face
            assert [p["port"] for p in rule["ports"]] == ["http"]


@pytest.mark.parametrize("service_type", ["NodePort", "LoadBalancer"])
def test_gateway_metrics_stay_on_a_cluster_ip_service(service_type: str) -> None:
    """Every port of a NodePort/LoadBalancer Service is published: /metrics is not one."""
    docs = ds.render({"gateway": {"service": {"type": service_type}}})
    services = ds.by_kind(docs, "Service")
    public = services[f"{ds.RELEASE}-gateway"]
    assert public["spec"]["type"] == service_type
    assert [p["name"] for p in public["spec"]["ports"]] == ["http"]
    metrics = services[f"{ds.RELEASE}-gateway-metrics"]
    assert metrics["spec"]["type"] == "ClusterIP"
    assert [p["name"] for p in metrics["spec"]["ports"]] == ["metrics"]


def test_helm_test_hooks_chat_and_check_memory_health(default_docs) -> None:
    hooks = {d["metadata"]["name"]: d for d in default_docs if ds.is_hook(d)}
    chat = hooks[f"{ds.RELEASE}-test-chat"]
    health = hooks[f"{ds.RELEASE}-test-memory-health"]
    assert chat["metadata"]["annotations"]["helm.sh/hook"] == "test"
    chat_env = {e["name"]: e.get("value") for e in chat["spec"]["containers"][0]["env"]}
    assert chat_env["GATEWAY_URL"] == f"http://{ds.RELEASE}-gateway:8000"
    assert "/v1/chat" in chat["spec"]["containers"][0]["args"][0]
    health_env = {e["name"]: e.get("value") for e in health["spec"]["containers"][0]["env"]}
    assert health_env["MEMORY_ADDR"] == f"{ds.RELEASE}-memory:50051"
    assert "mnemo.memory.v1.MemoryService" in health["spec"]["containers"][0]["args"][0]


@pytest.mark.parametrize("scenario", ds.SCENARIOS, ids=SCENARIO_IDS)
def test_client_dry_run_install(scenario) -> None:
    """`helm install --dry-run=client` (Helm's install action, memory storage) succeeds.
    There is no cluster here, so generated credentials are throw-away ones (ADR 0020)."""
    import helm_python as helm

    config = helm.Config(namespace=ds.NAMESPACE, storage_driver="memory")
    release = config.install(
        helm.Chart.load(ds.CHART),
        ds.RELEASE,
        deep_merge(ds.OFFLINE_RANDOM, ds.load_yaml(scenario)),
        namespace=ds.NAMESPACE,
        dry_run="client",
    )
    kinds = {d["kind"] for d in ds.parse_docs(release["manifest"])}
    assert {"Deployment", "Service", "ConfigMap"} <= kinds
    assert f"helm test {ds.RELEASE}" in release["notes"]


def test_gateway_node_port_for_kind() -> None:
    docs = ds.render({"gateway": {"service": {"type": "NodePort", "nodePort": 30080}}})
    (port,) = ds.by_kind(docs, "Service")[f"{ds.RELEASE}-gateway"]["spec"]["ports"]
    assert port["nodePort"] == 30080
    kind = ds.load_yaml(ds.REPO / "deploy" / "kind" / "cluster.yaml")
    assert {"containerPort": 30080, "hostPort": 30080, "protocol": "TCP"} in kind["nodes"][0][
        "extraPortMappings"
    ]


def test_deploy_md_creates_every_secret_the_production_scenario_references(rendered) -> None:
    """docs/deploy.md's install recipe starts from ci/production-values.yaml: its
    `kubectl create secret` lines must create each Secret (and key) the pods reference."""
    import re

    wanted: set[tuple[str, str]] = set()
    docs = rendered["production"]
    for _, spec in ds.workloads(docs):
        for c in spec["containers"]:
            for env in c.get("env") or []:
                ref = (env.get("valueFrom") or {}).get("secretKeyRef")
                if ref:
                    wanted.add((ref["name"], ref["key"]))
        for volume in spec.get("volumes") or []:
            for item in (volume.get("secret") or {}).get("items") or []:
                wanted.add((volume["secret"]["secretName"], item["key"]))
    for ingress in ds.by_kind(docs, "Ingress").values():
        for tls in ingress["spec"].get("tls") or []:
            wanted.add((tls["secretName"], "tls.crt"))
    assert wanted
    text = (ds.REPO / "docs" / "deploy.md").read_text()
    created: set[tuple[str, str]] = set()
    for line in text.splitlines():
        m = re.search(r"create secret (generic|tls) (\S+)(.*)", line)
        if not m:
            continue
        kind, name, rest = m.groups()
        if kind == "tls":
            created |= {(name, "tls.crt"), (name, "tls.key")}
        created |= {(name, key) for key in re.findall(r"--from-literal=([\w.-]+)=", rest)}
    assert wanted - created == set()


def _chat_hook(values: dict[str, Any]) -> dict[str, Any]:
    docs = ds.render(values)
    (pod,) = [d for d in docs if ds.is_hook(d) and d["metadata"]["name"].endswith("-test-chat")]
    return pod["spec"]["containers"][0]


def _run_chat_test(
    container: dict[str, Any],
    extra_env: dict[str, str] | None = None,
    memory: str = "ok",
    reply: bytes = b'{"answer": "hi"}',
) -> tuple[Any, list[dict[str, Any]]]:
    """Run the rendered chat-test script against a stand-in gateway on localhost."""
    import http.server
    import json
    import os
    import subprocess
    import sys
    import threading

    seen: list[dict[str, Any]] = []

    class Gateway(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["content-length"]))
            seen.append(
                {"path": self.path, "auth": self.headers.get("authorization"), **json.loads(body)}
            )
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.send_header("x-mnemo-memory", memory)
            self.send_header("content-length", str(len(reply)))
            self.end_headers()
            self.wfile.write(reply)

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Gateway)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        env = {e["name"]: e["value"] for e in container["env"] if "value" in e}
        env |= {"GATEWAY_URL": f"http://127.0.0.1:{server.server_port}", **(extra_env or {})}
        out = subprocess.run(
            [sys.executable, "-c", container["args"][0]],
            env={"PATH": os.environ.get("PATH", ""), **env},
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    finally:
        server.shutdown()
        server.server_close()
    return out, seen


JWT_VALUES = {"gateway": {"auth": {"mode": "jwt", "jwtSecret": "s" * 32}}}


@pytest.mark.parametrize(("memory", "reply"), [("degraded", b'{"answer": "hi"}'), ("ok", b"{}")])
def test_chat_test_fails_on_an_answer_without_memory(memory: str, reply: bytes) -> None:
    container = _chat_hook(deep_merge(JWT_VALUES, {"tests": {"jwtToken": "eyJ.test.token"}}))
    out, _seen = _run_chat_test(container, memory=memory, reply=reply)
    assert out.returncode == 1
    assert "FAILED:" in out.stdout
    if memory == "degraded":
        assert "without memory (X-Mnemo-Memory: degraded)" in out.stdout


def test_chat_test_in_jwt_mode_without_a_token_skips_with_the_reason() -> None:
    container = _chat_hook(JWT_VALUES)
    assert "TEST_TOKEN" not in {e["name"] for e in container["env"]}
    out, seen = _run_chat_test(container)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("SKIPPED:") and "tests.jwtToken" in out.stdout
    assert seen == []  # no unauthenticated request that would only collect a 401


def test_chat_test_in_jwt_mode_chats_as_the_tokens_subject() -> None:
    container = _chat_hook(deep_merge(JWT_VALUES, {"tests": {"jwtToken": "eyJ.test.token"}}))
    out, seen = _run_chat_test(container)
    assert out.returncode == 0, out.stderr
    # "me": whatever the token's sub is (a fixed user_id is refused unless it equals sub)
    assert [(s["path"], s["auth"], s["user_id"]) for s in seen] == [
        ("/v1/chat", "Bearer eyJ.test.token", "me")
    ]


@pytest.mark.parametrize(
    ("line", "user"), [("k3y-one default", "helm-test"), ("k3y-one acme alice", "me")]
)
def test_chat_test_in_api_key_mode_uses_the_first_key(tmp_path, line: str, user: str) -> None:
    container = _chat_hook({})
    env = {e["name"]: e.get("value") for e in container["env"]}
    mount = container["volumeMounts"][0]["mountPath"]
    assert env["AUTH_MODE"] == "api-key" and env["API_KEYS_FILE"] == f"{mount}/api-keys"
    keys = tmp_path / "api-keys"
    keys.write_text(f"# rotated 2025-01-01\n\n{line}\nk3y-two default\n")
    out, seen = _run_chat_test(container, {"API_KEYS_FILE": str(keys)})
    assert out.returncode == 0, out.stderr
    assert [(s["auth"], s["user_id"]) for s in seen] == [("Bearer k3y-one", user)]


@pytest.mark.parametrize(
    ("path", "says"),
    [("/readyz", "leave their Service, so chat is unavailable"), ("/healthz", "without memory")],
)
def test_memory_down_alert_says_what_the_gateway_does(path: str, says: str) -> None:
    """With readinessPath=/readyz the gateways leave the Service when memory is down;
    the alert must not promise degraded answers then."""
    docs = ds.render(
        {"gateway": {"readinessPath": path}, "metrics": {"prometheusRule": {"enabled": True}}}
    )
    rules = ds.by_kind(docs, "PrometheusRule")[ds.RELEASE]["spec"]["groups"]
    (alert,) = [r for g in rules for r in g["rules"] if r["alert"] == "MnemoMemoryServiceDown"]
    assert says in alert["annotations"]["summary"]
    probe = ds.by_kind(docs, "Deployment")[f"{ds.RELEASE}-gateway"]["spec"]["template"]["spec"][
        "containers"
    ][0]["readinessProbe"]["httpGet"]["path"]
    assert probe == path
