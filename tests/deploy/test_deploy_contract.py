"""The CONTRACT: the rendered manifests match the code they deploy.

Env names come from the services' pydantic settings classes, ports from the settings each
container would load from exactly the environment the chart gives it, probe paths from the
real gateway app, the health service name from the generated gRPC package, and metric names
from the services' Prometheus registry. Breaking any of them in the chart fails a test here.
"""

from __future__ import annotations

import copy
import json

import deploy_support as ds
import pytest

SCENARIO_IDS = [ds.scenario_name(p) for p in ds.SCENARIOS]


@pytest.mark.parametrize("scenario", SCENARIO_IDS)
def test_chart_matches_the_code(rendered, service_code, gateway_app, scenario: str) -> None:
    assert ds.contract_problems(rendered[scenario], service_code, gateway_app) == []


def test_overlays_match_the_code(overlays, service_code, gateway_app) -> None:
    for name, docs in overlays.items():
        assert ds.contract_problems(docs, service_code, gateway_app) == [], name


def test_gateway_memory_addr_is_the_memory_service(default_docs) -> None:
    data = ds.by_kind(default_docs, "ConfigMap")[f"{ds.RELEASE}-gateway"]["data"]
    service = ds.by_kind(default_docs, "Service")[f"{ds.RELEASE}-memory"]
    grpc = next(p for p in service["spec"]["ports"] if p["name"] == "grpc")
    assert data["GATEWAY__MEMORY_ADDR"] == f"{service['metadata']['name']}:{grpc['port']}"


def test_chart_sets_nothing_the_defaults_would_contradict(service_code) -> None:
    """The chart's default ports are the services' own defaults (no silent drift)."""
    memory = ds.load_settings_from_env(service_code["memory"].settings_cls, {})
    gateway = ds.load_settings_from_env(service_code["gateway"].settings_cls, {"MNEMO_ENV": "dev"})
    values = ds.load_yaml(ds.CHART / "values.yaml")
    assert values["memory"]["grpcPort"] == memory.server.grpc_port
    assert values["memory"]["metricsPort"] == memory.server.metrics_port
    assert values["memory"]["graceS"] == memory.server.grace_s
    assert values["worker"]["metricsPort"] == memory.worker.metrics_port
    assert values["gateway"]["port"] == gateway.gateway.port


def test_env_name_reader_knows_nested_and_aliased_settings(service_code) -> None:
    names = service_code["memory"].env_names
    for expected in (
        "REDIS__HOST",
        "REDIS_URL",
        "CHROMADB_URL",
        "ANTHROPIC_API_KEY",
        "MNEMO_ENV",
        "SERVER__GRPC_PORT",
        "WORKER__METRICS_PORT",
        "LOG__JSON",
        "MEMORY__USER_TTL_DAYS",
    ):
        assert expected in names
    assert "GATEWAY__PORT" in service_code["gateway"].env_names
    assert (
        "GATEWAY__PORT" not in names
        and "SERVER__GRPC_PORT" not in service_code["gateway"].env_names
    )


# --- the contract check catches breakage ---------------------------------------------------


def _container(docs, deployment: str) -> dict:
    doc = ds.by_kind(docs, "Deployment")[f"{ds.RELEASE}-{deployment}"]
    return doc["spec"]["template"]["spec"]["containers"][0]


def test_a_misspelt_env_name_is_caught(service_code, gateway_app) -> None:
    docs = ds.render(
        {
            "memory": {"extraEnv": {"SERVER__GRPC_PROT": "50051"}},
            "gateway": {"extraEnv": {"GATEWAY__MEMORY_ADRR": "x:1"}},
        }
    )
    problems = "\n".join(ds.contract_problems(docs, service_code, gateway_app))
    assert "SERVER__GRPC_PROT is not a setting of the memory service" in problems
    assert "GATEWAY__MEMORY_ADRR is not a setting of the gateway service" in problems


def test_a_setting_of_the_other_service_is_caught(service_code, gateway_app) -> None:
    docs = ds.render({"gateway": {"extraEnv": {"SERVER__GRPC_PORT": "50051"}}})
    problems = ds.contract_problems(docs, service_code, gateway_app)
    assert any("SERVER__GRPC_PORT is not a setting of the gateway" in p for p in problems)


def test_a_broken_probe_path_is_caught(default_docs, service_code, gateway_app) -> None:
    docs = copy.deepcopy(default_docs)
    _container(docs, "gateway")["readinessProbe"]["httpGet"]["path"] = "/ready"
    problems = ds.contract_problems(docs, service_code, gateway_app)
    assert any("readinessProbe path /ready is not a gateway route" in p for p in problems)


def test_a_swapped_probe_is_caught(default_docs, service_code, gateway_app) -> None:
    docs = copy.deepcopy(default_docs)
    _container(docs, "gateway")["livenessProbe"]["httpGet"]["path"] = "/readyz"
    problems = ds.contract_problems(docs, service_code, gateway_app)
    assert any("livenessProbe path /readyz should be /healthz" in p for p in problems)


def test_a_wrong_container_port_is_caught(default_docs, service_code, gateway_app) -> None:
    docs = copy.deepcopy(default_docs)
    _container(docs, "memory")["ports"][0]["containerPort"] = 50052
    _container(docs, "gateway")["ports"][0]["containerPort"] = 8080
    problems = "\n".join(ds.contract_problems(docs, service_code, gateway_app))
    assert "containerPort grpc=50052 but the server listens on SERVER__GRPC_PORT=50051" in problems
    assert "containerPort http=8080 but the gateway listens on GATEWAY__PORT=8000" in problems


def test_a_wrong_probe_port_or_health_service_is_caught(
    default_docs, service_code, gateway_app
) -> None:
    docs = copy.deepcopy(default_docs)
    _container(docs, "memory")["livenessProbe"]["tcpSocket"]["port"] = 9464
    _container(docs, "memory")["startupProbe"] = {"grpc": {"port": 50051}}
    _container(docs, "memory")["readinessProbe"]["grpc"]["service"] = "mnemo.MemoryService"
    problems = "\n".join(ds.contract_problems(docs, service_code, gateway_app))
    assert "livenessProbe port 9464 is not SERVER__GRPC_PORT 50051" in problems
    assert "startupProbe must be a tcpSocket probe" in problems
    assert "unknown health service 'mnemo.MemoryService'" in problems


def test_a_memory_addr_off_the_service_port_is_caught(
    default_docs, service_code, gateway_app
) -> None:
    docs = copy.deepcopy(default_docs)
    ds.by_kind(docs, "ConfigMap")[f"{ds.RELEASE}-gateway"]["data"]["GATEWAY__MEMORY_ADDR"] = (
        f"{ds.RELEASE}-memory:9464"
    )
    problems = ds.contract_problems(docs, service_code, gateway_app)
    assert any("does not lead to the memory container's gRPC port" in p for p in problems)


def test_a_port_setting_out_of_step_with_the_container_is_caught(
    default_docs, service_code, gateway_app
) -> None:
    docs = copy.deepcopy(default_docs)
    ds.by_kind(docs, "ConfigMap")[f"{ds.RELEASE}-memory"]["data"]["WORKER__METRICS_PORT"] = "9999"
    problems = "\n".join(ds.contract_problems(docs, service_code, gateway_app))
    assert "WORKER__METRICS_PORT=9999" in problems


def test_an_environment_the_service_refuses_is_caught(service_code, gateway_app) -> None:
    """e.g. the gateway refuses AUTH__MODE=none in prod: the pod would crash-loop."""
    docs = ds.render({"gateway": {"extraEnv": {"AUTH__MODE": "none"}}})
    problems = ds.contract_problems(docs, service_code, gateway_app)
    assert any("refuses this environment" in p and "AUTH__MODE" in p for p in problems)


def test_a_short_termination_grace_is_caught(default_docs, service_code, gateway_app) -> None:
    docs = copy.deepcopy(default_docs)
    ds.by_kind(docs, "Deployment")[f"{ds.RELEASE}-memory"]["spec"]["template"]["spec"][
        "terminationGracePeriodSeconds"
    ] = 12  # > SERVER__GRACE_S=10 alone, but not with the 5 s preStop pause
    problems = ds.contract_problems(docs, service_code, gateway_app)
    assert any("plus the drain SERVER__GRACE_S=10" in p for p in problems)


# --- the gateway's metrics port -------------------------------------------------------------


def _gateway_env(docs, service_code):
    configmaps = ds.by_kind(docs, "ConfigMap")
    env = ds.container_env(_container(docs, "gateway"), configmaps, [], "gateway")
    return env, ds.load_settings_from_env(service_code["gateway"].settings_cls, env)


def test_gateway_metrics_port_env_is_the_setting(default_docs, service_code) -> None:
    """The chart's GATEWAY__METRICS_PORT is the setting the gateway reads: /metrics leaves
    the public port, on a port no other component uses."""
    assert "GATEWAY__METRICS_PORT" in service_code["gateway"].env_names
    values = ds.load_yaml(ds.CHART / "values.yaml")
    env, settings = _gateway_env(default_docs, service_code)
    assert env["GATEWAY__METRICS_PORT"] == str(values["gateway"]["metricsPort"])
    assert settings.gateway.metrics_port == values["gateway"]["metricsPort"] == 9466
    assert settings.gateway.metrics_port != settings.gateway.port
    others = {
        values["memory"]["metricsPort"],
        values["worker"]["metricsPort"],
        values["redis"]["metrics"]["port"],
    }
    assert settings.gateway.metrics_port not in others
    # the code's own default keeps /metrics on the main port (make run, tests)
    default = ds.load_settings_from_env(service_code["gateway"].settings_cls, {"MNEMO_ENV": "dev"})
    assert default.gateway.metrics_port == 0


@pytest.mark.parametrize("docs_of", ["production", "overlay-prod"])
def test_service_monitor_scrapes_the_gateway_metrics_port(
    rendered, overlays, service_code, docs_of: str
) -> None:
    docs = rendered["production"] if docs_of == "production" else overlays["prod"]
    _, settings = _gateway_env(docs, service_code)
    (endpoint,) = ds.by_kind(docs, "ServiceMonitor")[f"{ds.RELEASE}-gateway"]["spec"]["endpoints"]
    assert (endpoint["port"], endpoint["path"]) == ("metrics", "/metrics")
    service = ds.by_kind(docs, "Service")[f"{ds.RELEASE}-gateway-metrics"]
    assert service["spec"]["type"] == "ClusterIP"
    (port,) = service["spec"]["ports"]
    assert port["name"] == "metrics" and port["targetPort"] == "metrics"
    container = _container(docs, "gateway")
    assert ds._named_port(container, "metrics") == settings.gateway.metrics_port
    # the Service the Ingress routes carries the API port only
    public = ds.by_kind(docs, "Service")[f"{ds.RELEASE}-gateway"]
    assert [p["name"] for p in public["spec"]["ports"]] == ["http"]


def test_a_service_monitor_on_the_wrong_gateway_port_is_caught(
    rendered, service_code, gateway_app
) -> None:
    docs = copy.deepcopy(rendered["production"])
    monitor = ds.by_kind(docs, "ServiceMonitor")[f"{ds.RELEASE}-gateway"]
    monitor["spec"]["endpoints"][0]["port"] = "http"
    problems = "\n".join(ds.contract_problems(docs, service_code, gateway_app))
    assert (
        f"ServiceMonitor/{ds.RELEASE}-gateway endpoint port http: scrapes container port 8000 "
        "but the gateway serves /metrics on GATEWAY__METRICS_PORT=9466"
    ) in problems


def test_a_gateway_metrics_port_out_of_step_or_off_is_caught(
    default_docs, service_code, gateway_app
) -> None:
    for value, expected in (
        ("9999", "containerPort metrics=9466 but GATEWAY__METRICS_PORT=9999"),
        ("0", "GATEWAY__METRICS_PORT=0 serves /metrics on GATEWAY__PORT"),
    ):
        docs = copy.deepcopy(default_docs)
        data = ds.by_kind(docs, "ConfigMap")[f"{ds.RELEASE}-gateway"]["data"]
        data["GATEWAY__METRICS_PORT"] = value
        problems = "\n".join(ds.contract_problems(docs, service_code, gateway_app))
        assert expected in problems, value


def test_a_gateway_metrics_port_on_the_api_port_is_refused() -> None:
    import helm_python as helm

    with pytest.raises(helm.HelmError, match=r"gateway\.metricsPort must differ"):
        ds.render({"gateway": {"metricsPort": 8000}})


# --- metric names ---------------------------------------------------------------------------


@pytest.fixture(scope="session")
def exposed_metrics() -> set[str]:
    return ds.exposed_metric_names()


@pytest.fixture(scope="session")
def monitoring_docs(rendered) -> list[dict]:
    return rendered["production"]


def test_alert_rules_use_metrics_the_services_expose(monitoring_docs, exposed_metrics) -> None:
    rules = ds.by_kind(monitoring_docs, "PrometheusRule")[ds.RELEASE]
    alerts = {r["alert"]: r["expr"] for g in rules["spec"]["groups"] for r in g["rules"]}
    assert {
        "MnemoMemoryServiceDown",
        "MnemoWorkerDown",
        "MnemoExtractionLag",
        "MnemoRedisMemoryNearMax",
        "MnemoDeadLettersGrowing",
    } <= set(alerts)
    used = set().union(*(ds.metric_names_in(e) for e in alerts.values()))
    assert used, "the alerts use no metric at all"
    assert ds.missing_metrics(used, exposed_metrics) == []


def test_up_alerts_name_services_a_service_monitor_scrapes(monitoring_docs) -> None:
    """prometheus-operator labels a target with the Service it found it through
    (`service`); an `up{service=...}` alert on a Service no ServiceMonitor selects is
    absent() forever, i.e. always firing or never meaningful."""
    import re

    rules = ds.by_kind(monitoring_docs, "PrometheusRule")[ds.RELEASE]
    alerts = {r["alert"]: r["expr"] for g in rules["spec"]["groups"] for r in g["rules"]}
    services = ds.by_kind(monitoring_docs, "Service")
    monitors = ds.by_kind(monitoring_docs, "ServiceMonitor").values()
    scraped = {
        name
        for name, svc in services.items()
        for m in monitors
        if all(
            svc["metadata"]["labels"].get(k) == v
            for k, v in m["spec"]["selector"]["matchLabels"].items()
        )
        and {e["port"] for e in m["spec"]["endpoints"]} <= {p["name"] for p in svc["spec"]["ports"]}
    }
    named = {
        alert: set(re.findall(r'\bup\{[^}]*service="([^"]+)"', expr))
        for alert, expr in alerts.items()
    }
    assert named["MnemoWorkerDown"] == {f"{ds.RELEASE}-worker"}
    assert named["MnemoMemoryServiceDown"] == {f"{ds.RELEASE}-memory"}
    for alert, names in named.items():
        assert names <= scraped, alert


def test_extraction_stall_counts_no_series_as_nothing_processed(monitoring_docs) -> None:
    """sum() over no series is empty, and `empty == 0` is empty: without a fallback the
    stalled branch cannot fire when no worker is scraped or none ever finished a job.
    (tests/deploy/test_deploy_alerts.py evaluates it with promtool.)"""
    rules = ds.by_kind(monitoring_docs, "PrometheusRule")[ds.RELEASE]
    (expr,) = [
        r["expr"]
        for g in rules["spec"]["groups"]
        for r in g["rules"]
        if r.get("alert") == "MnemoExtractionLag"
    ]
    compact = "".join(expr.split())
    assert "(sum(increase(mnemo_worker_jobs_processed_total" in compact
    assert "[15m]))oron()vector(0))==0" in compact


def test_dashboard_uses_metrics_the_services_expose(monitoring_docs, exposed_metrics) -> None:
    cm = next(
        d
        for d in monitoring_docs
        if d["kind"] == "ConfigMap" and d["metadata"]["labels"].get("grafana_dashboard") == "1"
    )
    dashboard = json.loads(cm["data"]["mnemo-memory.json"])
    exprs = [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]
    titles = " ".join(p["title"].lower() for p in dashboard["panels"])
    for topic in (
        "redis memory",
        "threads per user",
        "facts per user",
        "queue depth",
        "recall latency",
    ):
        assert topic in titles, topic
    used = set().union(*(ds.metric_names_in(e) for e in exprs))
    assert ds.missing_metrics(used, exposed_metrics) == []


def test_metric_check_catches_an_unknown_name(exposed_metrics) -> None:
    assert ds.missing_metrics({"mnemo_no_such_metric_total"}, exposed_metrics) == [
        "mnemo_no_such_metric_total"
    ]
    assert ds.missing_metrics({"redis_memory_used_bytes"}, exposed_metrics) == []


def test_readiness_path_choice_is_served(service_code, gateway_app) -> None:
    docs = ds.render({"gateway": {"readinessPath": "/healthz"}})
    assert ds.contract_problems(docs, service_code, gateway_app) == []
    probe = _container(docs, "gateway")["readinessProbe"]["httpGet"]
    assert probe["path"] == "/healthz"


# --- the OpenAI-compatible provider -------------------------------------------------------

OPENAI = {
    "llm": {
        "provider": "openai-compatible",
        "openaiBaseUrl": "http://vllm:8000/v1",
        "openai": {"chatModel": "llama3.1:8b", "existingSecret": "mnemo-openai"},
    }
}


def _env_refs(docs, deployment: str) -> dict[str, dict]:
    return {
        e["name"]: e["valueFrom"]["secretKeyRef"]
        for e in _container(docs, deployment).get("env") or []
        if "secretKeyRef" in (e.get("valueFrom") or {})
    }


def test_openai_compatible_provider_starts(service_code, gateway_app) -> None:
    """LLM__OPENAI_CHAT_MODEL is required by build_provider: without it the gateway and the
    worker exit at start. The key comes from a Secret, never from the ConfigMap."""
    import asyncio

    from mnemo_common.llm import build_provider

    docs = ds.render(OPENAI)
    assert ds.contract_problems(docs, service_code, gateway_app) == []
    data = ds.by_kind(docs, "ConfigMap")[f"{ds.RELEASE}-config"]["data"]
    assert data["LLM__OPENAI_CHAT_MODEL"] == "llama3.1:8b"
    assert "LLM__OPENAI_EXTRACTION_MODEL" not in data  # "" = the chat model
    assert not any("API_KEY" in k for k in data)
    for name in ("gateway", "worker"):
        assert _env_refs(docs, name)["LLM__OPENAI_API_KEY"] == {
            "name": "mnemo-openai",
            "key": "openai-api-key",
        }
    assert "LLM__OPENAI_API_KEY" not in _env_refs(docs, "memory")  # never calls the model
    configmaps = ds.by_kind(docs, "ConfigMap")
    env = ds.container_env(_container(docs, "worker"), configmaps, [], "worker")
    provider = build_provider(ds.load_settings_from_env(service_code["worker"].settings_cls, env))
    try:
        assert provider.name == "openai-compatible"
    finally:
        asyncio.run(provider.aclose())


def test_openai_key_from_values_goes_into_the_charts_secret() -> None:
    import base64

    values = {"llm": {**OPENAI["llm"], "openai": {"chatModel": "m", "apiKey": "sk-local-1"}}}
    values["llm"]["openai"]["extractionModel"] = "m-small"
    docs = ds.render(values)
    secret = ds.by_kind(docs, "Secret")[ds.RELEASE]
    assert base64.b64decode(secret["data"]["openai-api-key"]).decode() == "sk-local-1"
    assert _env_refs(docs, "worker")["LLM__OPENAI_API_KEY"] == {
        "name": ds.RELEASE,
        "key": "openai-api-key",
    }
    data = ds.by_kind(docs, "ConfigMap")[f"{ds.RELEASE}-config"]["data"]
    assert data["LLM__OPENAI_EXTRACTION_MODEL"] == "m-small"


@pytest.mark.parametrize("missing", ["openaiBaseUrl", "chatModel"])
def test_openai_compatible_without_model_or_url_is_refused(missing: str) -> None:
    import helm_python as helm

    values = copy.deepcopy(OPENAI)
    if missing == "chatModel":
        del values["llm"]["openai"]["chatModel"]
    else:
        del values["llm"]["openaiBaseUrl"]
    with pytest.raises(helm.HelmError, match=r"llm\.openaiBaseUrl and llm\.openai\.chatModel"):
        ds.render(values)


def test_a_provider_the_service_refuses_is_caught(service_code, gateway_app) -> None:
    docs = ds.render(OPENAI)
    del ds.by_kind(docs, "ConfigMap")[f"{ds.RELEASE}-config"]["data"]["LLM__OPENAI_CHAT_MODEL"]
    problems = "\n".join(ds.contract_problems(docs, service_code, gateway_app))
    assert "gateway refuses its LLM settings at start: LLM__OPENAI_CHAT_MODEL" in problems
    assert "worker refuses its LLM settings at start: LLM__OPENAI_CHAT_MODEL" in problems


def test_schema_knows_the_openai_keys() -> None:
    import helm_python as helm

    chart = helm.Chart.load(ds.CHART)
    chart.validate_schema(OPENAI)
    with pytest.raises(helm.HelmValuesError, match="chatModle"):
        chart.validate_schema({"llm": {"openai": {"chatModle": "x"}}})
