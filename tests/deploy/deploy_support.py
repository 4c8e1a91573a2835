"""Rendering and checking the deployment artefacts without a cluster.

Helm's own Go SDK (helm-python-sdk) renders the chart, the pip-installed kubectl builds the
kustomize overlays, and the *contract* check binds the manifests to the code: it reads the
services' pydantic settings classes, their HTTP routes and their Prometheus registry.
"""

from __future__ import annotations

import importlib
import os
import pkgutil
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from unittest import mock

import yaml

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "deploy" / "helm" / "mnemo"
KUSTOMIZE = REPO / "deploy" / "kustomize"
SCHEMAS = Path(__file__).resolve().parent / "schemas"
SCENARIOS = sorted((CHART / "ci").glob("*-values.yaml"))
OVERLAYS = sorted(p.parent for p in (KUSTOMIZE / "overlays").glob("*/kustomization.yaml"))
#: Kubernetes versions the chart supports and is validated against (docs/deploy.md).
KUBE_VERSIONS = ("1.29.0", "1.33.0", "1.37.0")
RELEASE = "mnemo"
NAMESPACE = "mnemo"
#: the pip-installed kubectl (some machines also have an older /usr/bin/kubectl)
KUBECTL = Path(sys.executable).parent / "kubectl"
#: what a secretKeyRef resolves to when settings are loaded from a rendered env
SECRET_STAND_INS = {
    "REDIS_URL": "redis://:s3cret-stand-in@redis.example:6379/0",
}
DEFAULT_SECRET = "s3cret-stand-in-value-0123456789"


def scenario_name(path: Path) -> str:
    return path.name.removesuffix("-values.yaml")


def load_yaml(path: Path) -> dict[str, Any]:
    return yaml.safe_load(path.read_text()) or {}


def parse_docs(text: str) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(text) if d]


#: these renders have no cluster, where the chart refuses to generate a credential (ADR 0020,
#: credentials.offline=fail); unless a check says otherwise it asks for throw-away ones
OFFLINE_RANDOM = {"credentials": {"offline": "random"}}


def render(
    values: dict[str, Any] | None = None,
    *,
    release: str = RELEASE,
    namespace: str = NAMESPACE,
    offline: str = "random",
) -> list[dict[str, Any]]:
    """Every object `helm template` would produce (test hooks included), in template order.
    ``offline``: ``credentials.offline`` when ``values`` does not set it."""
    import helm_python as helm

    values = dict(values or {})
    values.setdefault("credentials", {"offline": offline})
    chart = helm.Chart.load(CHART)
    rendered = chart.render(values, name=release, namespace=namespace, is_install=True)
    docs: list[dict[str, Any]] = []
    for path in sorted(rendered):
        if path.endswith(".yaml"):
            docs.extend(parse_docs(rendered[path]))
    return docs


def kustomize_build(directory: Path) -> list[dict[str, Any]]:
    out = subprocess.run(
        [str(KUBECTL), "kustomize", str(directory)], capture_output=True, text=True, check=False
    )
    if out.returncode != 0:
        raise AssertionError(f"kubectl kustomize {directory} failed:\n{out.stderr}")
    return parse_docs(out.stdout)


def by_kind(docs: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {d["metadata"]["name"]: d for d in docs if d.get("kind") == kind}


def is_hook(doc: dict[str, Any]) -> bool:
    return "helm.sh/hook" in (doc.get("metadata", {}).get("annotations") or {})


def pod_spec(doc: dict[str, Any]) -> dict[str, Any] | None:
    kind = doc.get("kind")
    if kind == "Pod":
        return doc["spec"]
    if kind in ("Deployment", "StatefulSet", "DaemonSet", "Job"):
        return doc["spec"]["template"]["spec"]
    return None


def workloads(docs: list[dict[str, Any]]) -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
    for doc in docs:
        spec = pod_spec(doc)
        if spec is not None:
            yield doc, spec


def component(doc: dict[str, Any]) -> str:
    if doc["kind"] == "Pod":
        labels = doc["metadata"].get("labels", {})
    else:
        labels = doc["spec"]["template"]["metadata"].get("labels", {})
    return labels.get("app.kubernetes.io/component", "")


# --- the services' settings -------------------------------------------------------------


def _aliases(name: str, field: Any) -> list[str]:
    from pydantic import AliasChoices, AliasPath

    alias = field.validation_alias
    if isinstance(alias, str):
        return [alias]
    if isinstance(alias, AliasChoices):
        return [c for c in alias.choices if isinstance(c, str)] + (
            [name] if any(isinstance(c, AliasPath) for c in alias.choices) else []
        )
    return [name]


def _model_of(annotation: Any) -> type | None:
    import typing

    from pydantic import BaseModel

    candidates = [annotation, *typing.get_args(annotation)]
    for c in candidates:
        if isinstance(c, type) and issubclass(c, BaseModel):
            return c
    return None


def settings_env_names(cls: type) -> set[str]:
    """Environment variables pydantic-settings reads for ``cls`` (upper-cased).

    Top-level fields by their validation aliases (``REDIS_URL``, ``MNEMO_ENV``) or name,
    nested models as ``GROUP__FIELD`` (their own aliases count, e.g. ``LOG__JSON``).
    """
    prefix = (cls.model_config.get("env_prefix") or "").upper()  # type: ignore[attr-defined]
    delimiter = cls.model_config.get("env_nested_delimiter") or "__"  # type: ignore[attr-defined]

    def walk(model: type, path: str) -> Iterator[str]:
        for name, field in model.model_fields.items():  # type: ignore[attr-defined]
            names = _aliases(name, field) if path or field.validation_alias else [name]
            sub = _model_of(field.annotation)
            for n in names:
                full = f"{path}{n}".upper()
                if sub is not None:
                    yield from walk(sub, full + delimiter)
                else:
                    yield full

    names: set[str] = set()
    for name, field in cls.model_fields.items():  # type: ignore[attr-defined]
        if field.validation_alias is not None:
            names.update(a.upper() for a in _aliases(name, field))
            continue
        sub = _model_of(field.annotation)
        if sub is not None:
            names.update(walk(sub, f"{prefix}{name}{delimiter}".upper()))
        else:
            names.add(f"{prefix}{name}".upper())
    return names


def load_settings_from_env(cls: type, env: dict[str, str]) -> Any:
    """Build ``cls`` exactly as the container would: from this environment and nothing else."""
    with mock.patch.dict(os.environ, env, clear=True):
        return cls(_env_file=None)


@dataclass(frozen=True)
class ServiceCode:
    """What the code says a component serves."""

    settings_cls: type
    env_names: frozenset[str]


def service_code() -> dict[str, ServiceCode]:
    """Settings classes of the Mnemo containers by chart component."""
    from mnemo_gateway.core.config import GatewaySettings
    from mnemo_memory.config import MemoryServiceSettings

    memory = ServiceCode(
        MemoryServiceSettings, frozenset(settings_env_names(MemoryServiceSettings))
    )
    gateway = ServiceCode(GatewaySettings, frozenset(settings_env_names(GatewaySettings)))
    return {"gateway": gateway, "memory": memory, "worker": memory}


class GatewayApp:
    """The real gateway app, asked over ASGI whether it serves a path (GET, not 404/405)."""

    def __init__(self) -> None:
        self._answers: dict[str, int] = {}

    def status(self, path: str) -> int:
        if path not in self._answers:
            from fastapi.testclient import TestClient
            from mnemo_gateway.core.config import GatewaySettings
            from mnemo_gateway.main import create_app

            # no memory service here: readiness then reports memory "disabled"
            env = {"MNEMO_ENV": "test", "GATEWAY__MEMORY_ENABLED": "false"}
            app = create_app(load_settings_from_env(GatewaySettings, env))
            with TestClient(app) as client:
                self._answers[path] = client.get(path).status_code
        return self._answers[path]

    def serves(self, path: str) -> bool:
        return self.status(path) not in (404, 405)


def memory_service_full_name() -> str:
    from mnemo.memory.v1 import memory_pb2

    return memory_pb2.DESCRIPTOR.services_by_name["MemoryService"].full_name


def exposed_metric_names() -> set[str]:
    """Sample names the services' /metrics can show, from their registries.

    Metrics are registered when their modules are imported, so every module of the two
    services (and mnemo_common) is imported first; then the process registry is read.
    """
    from prometheus_client.parser import text_string_to_metric_families

    for package in ("mnemo_common", "mnemo_memory", "mnemo_gateway"):
        pkg = importlib.import_module(package)
        for info in pkgutil.walk_packages(pkg.__path__, package + "."):
            if info.name.endswith("__main__") or ".testing" in info.name:
                continue
            importlib.import_module(info.name)
    from mnemo_common.metrics import render_latest

    body, _ = render_latest()
    names: set[str] = set()
    suffixes = {
        "counter": ("_total", "_created"),
        "histogram": ("_bucket", "_sum", "_count", "_created"),
        "summary": ("_sum", "_count", "_created", ""),
        "gauge": ("",),
        "info": ("_info",),
        "unknown": ("",),
    }
    for family in text_string_to_metric_families(body.decode()):
        for suffix in suffixes.get(family.type, ("",)):
            names.add(family.name + suffix)
    return names


# --- the contract -----------------------------------------------------------------------


def container_env(
    container: dict[str, Any],
    configmaps: dict[str, dict[str, Any]],
    problems: list[str],
    where: str,
) -> dict[str, str]:
    """The environment a container starts with; secrets become stand-in values."""
    env: dict[str, str] = {}
    for source in container.get("envFrom") or []:
        ref = source.get("configMapRef")
        if ref is None:
            problems.append(f"{where}: envFrom without a configMapRef is not checked: {source}")
            continue
        cm = configmaps.get(ref["name"])
        if cm is None:
            problems.append(f"{where}: envFrom ConfigMap {ref['name']!r} is not in the manifests")
            continue
        env.update({k: str(v) for k, v in (cm.get("data") or {}).items()})
    for item in container.get("env") or []:
        if "value" in item:
            env[item["name"]] = str(item["value"])
        else:
            env[item["name"]] = SECRET_STAND_INS.get(item["name"], DEFAULT_SECRET)
    return env


def _port_number(container: dict[str, Any], port: int | str) -> int | None:
    if isinstance(port, int):
        return port
    for p in container.get("ports", []):
        if p.get("name") == port:
            return int(p["containerPort"])
    return None


def _named_port(container: dict[str, Any], name: str) -> int | None:
    return _port_number(container, name)


#: the worker's liveness route (mnemo_memory.worker.main: the consumer loop's heartbeat)
WORKER_LIVENESS_PATH = "/livez"
#: the gateway readiness paths the chart offers (gateway.readinessPath)
READINESS_PATHS = ("/readyz?memory=optional", "/readyz", "/healthz")


def contract_problems(
    docs: list[dict[str, Any]],
    code: dict[str, ServiceCode] | None = None,
    gateway: GatewayApp | None = None,
) -> list[str]:
    """Every way the manifests disagree with the services' code (empty list = they agree)."""
    code = code if code is not None else service_code()
    gateway = gateway if gateway is not None else GatewayApp()
    problems: list[str] = []
    configmaps = by_kind(docs, "ConfigMap")
    services = by_kind(docs, "Service")
    loaded: dict[str, Any] = {}
    containers: dict[str, tuple[dict[str, Any], dict[str, Any], dict[str, Any]]] = {}
    for doc, spec in workloads(docs):
        comp = component(doc)
        if comp not in code or is_hook(doc):
            continue
        for container in spec.get("containers", []):
            where = f"{doc['kind']}/{doc['metadata']['name']} container {container['name']}"
            env = container_env(container, configmaps, problems, where)
            unknown = sorted(n for n in env if n.upper() not in code[comp].env_names)
            for name in unknown:
                problems.append(f"{where}: env {name} is not a setting of the {comp} service")
            try:
                loaded[comp] = load_settings_from_env(code[comp].settings_cls, env)
            except Exception as exc:  # the process would exit at start
                problems.append(f"{where}: the service refuses this environment: {exc}")
                continue
            if comp in LLM_CALLERS:
                problem = _llm_provider_problem(loaded[comp])
                if problem:
                    problems.append(
                        f"{where}: the {comp} refuses its LLM settings at start: {problem}"
                    )
            containers[comp] = (doc, spec, container)

    if "gateway" in containers:
        doc, spec, c = containers["gateway"]
        s = loaded["gateway"]
        where = f"gateway {doc['metadata']['name']}"
        if _named_port(c, "http") != s.gateway.port:
            problems.append(
                f"{where}: containerPort http={_named_port(c, 'http')} but the "
                f"gateway listens on GATEWAY__PORT={s.gateway.port}"
            )
        for probe, path in (
            ("livenessProbe", "/healthz"),
            ("readinessProbe", "/readyz"),
            ("startupProbe", None),
        ):
            get = (c.get(probe) or {}).get("httpGet")
            if get is None:
                if path is not None:
                    problems.append(f"{where}: {probe} is not an httpGet on {path}")
                continue
            if not gateway.serves(get["path"]):
                problems.append(f"{where}: {probe} path {get['path']} is not a gateway route")
            elif probe == "readinessProbe" and get["path"] in READINESS_PATHS:
                pass  # gateway.readinessPath: degraded-mode availability or strict readiness
            elif path is not None and get["path"] != path:
                problems.append(f"{where}: {probe} path {get['path']} should be {path}")
            if _port_number(c, get["port"]) != s.gateway.port:
                problems.append(
                    f"{where}: {probe} port {get['port']} is not GATEWAY__PORT {s.gateway.port}"
                )
        if s.gateway.metrics_port == 0:
            problems.append(
                f"{where}: GATEWAY__METRICS_PORT=0 serves /metrics on GATEWAY__PORT, the port "
                "the Ingress publishes"
            )
        elif _named_port(c, "metrics") != s.gateway.metrics_port:
            problems.append(
                f"{where}: containerPort metrics={_named_port(c, 'metrics')} but "
                f"GATEWAY__METRICS_PORT={s.gateway.metrics_port}"
            )
        problems += _memory_addr_problems(s.gateway.memory_addr, services, containers)

    if "memory" in containers:
        doc, spec, c = containers["memory"]
        s = loaded["memory"]
        where = f"memory {doc['metadata']['name']}"
        if _named_port(c, "grpc") != s.server.grpc_port:
            problems.append(
                f"{where}: containerPort grpc={_named_port(c, 'grpc')} but the "
                f"server listens on SERVER__GRPC_PORT={s.server.grpc_port}"
            )
        if _named_port(c, "metrics") != s.server.metrics_port:
            problems.append(
                f"{where}: containerPort metrics={_named_port(c, 'metrics')} but "
                f"SERVER__METRICS_PORT={s.server.metrics_port}"
            )
        if s.server.metrics_port == 0:
            problems.append(f"{where}: SERVER__METRICS_PORT=0 turns off the scraped metrics")
        full_name = memory_service_full_name()
        for probe in ("startupProbe", "livenessProbe"):
            # must not follow Redis health: a Redis outage would restart every pod
            tcp = (c.get(probe) or {}).get("tcpSocket")
            if tcp is None:
                problems.append(
                    f"{where}: {probe} must be a tcpSocket probe on the gRPC port "
                    "(gRPC health turns NOT_SERVING while Redis is down)"
                )
            elif _port_number(c, tcp["port"]) != s.server.grpc_port:
                problems.append(
                    f"{where}: {probe} port {tcp['port']} is not SERVER__GRPC_PORT "
                    f"{s.server.grpc_port}"
                )
        grpc = (c.get("readinessProbe") or {}).get("grpc")
        if grpc is None:
            problems.append(f"{where}: readinessProbe is not a gRPC health probe")
        else:
            if grpc["port"] != s.server.grpc_port:
                problems.append(
                    f"{where}: readinessProbe gRPC port {grpc['port']} is not "
                    f"SERVER__GRPC_PORT {s.server.grpc_port}"
                )
            if grpc.get("service", "") not in ("", full_name):
                problems.append(
                    f"{where}: readinessProbe checks unknown health service "
                    f"{grpc['service']!r} (served: '' and {full_name!r})"
                )
        grace = spec.get("terminationGracePeriodSeconds", 30)
        pre_stop = _pre_stop_seconds(c)
        if grace <= s.server.grace_s + pre_stop:
            problems.append(
                f"{where}: terminationGracePeriodSeconds {grace} does not exceed "
                f"the preStop pause ({pre_stop:g}s) plus the drain "
                f"SERVER__GRACE_S={s.server.grace_s:g}"
            )

    if "worker" in containers:
        doc, spec, c = containers["worker"]
        s = loaded["worker"]
        where = f"worker {doc['metadata']['name']}"
        if _named_port(c, "metrics") != s.worker.metrics_port:
            problems.append(
                f"{where}: containerPort metrics={_named_port(c, 'metrics')} but "
                f"WORKER__METRICS_PORT={s.worker.metrics_port}"
            )
        if s.worker.metrics_port == 0:
            problems.append(f"{where}: WORKER__METRICS_PORT=0 turns off the server its probes use")
        live = (c.get("livenessProbe") or {}).get("httpGet")
        if live is None or _port_number(c, live["port"]) != s.worker.metrics_port:
            problems.append(
                f"{where}: livenessProbe must hit the metrics port {s.worker.metrics_port}"
            )
        elif live["path"] != WORKER_LIVENESS_PATH:
            problems.append(
                f"{where}: livenessProbe path {live['path']} is not {WORKER_LIVENESS_PATH}, the "
                "consumer loop's heartbeat (the metrics thread answers while the loop is stuck)"
            )

    problems += _service_target_problems(services, docs)
    problems += _service_monitor_problems(docs, services, containers, loaded)
    return problems


def _metrics_port_setting(component: str, settings: Any) -> tuple[str, int] | None:
    """The setting naming the port a component serves /metrics on, and its value."""
    if component == "gateway":
        port = settings.gateway.metrics_port
        return ("GATEWAY__METRICS_PORT", port) if port else ("GATEWAY__PORT", settings.gateway.port)
    if component == "memory":
        return "SERVER__METRICS_PORT", settings.server.metrics_port
    if component == "worker":
        return "WORKER__METRICS_PORT", settings.worker.metrics_port
    return None


def _service_monitor_problems(
    docs: list[dict[str, Any]],
    services: dict[str, dict[str, Any]],
    containers: dict[str, tuple[dict[str, Any], dict[str, Any], dict[str, Any]]],
    loaded: dict[str, Any],
) -> list[str]:
    """Every ServiceMonitor endpoint of a Mnemo component reaches, through a Service it
    selects, the container port that component's settings serve /metrics on."""
    problems = []
    for name, monitor in by_kind(docs, "ServiceMonitor").items():
        match = monitor["spec"]["selector"].get("matchLabels") or {}
        comp = match.get("app.kubernetes.io/component", "")
        if comp not in containers or comp not in loaded:
            continue
        setting, expected = _metrics_port_setting(comp, loaded[comp]) or ("", 0)
        if not setting:
            continue
        _, _, container = containers[comp]
        selected = [
            svc
            for svc in services.values()
            if all((svc["metadata"].get("labels") or {}).get(k) == v for k, v in match.items())
        ]
        for endpoint in monitor["spec"]["endpoints"]:
            where = f"ServiceMonitor/{name} endpoint port {endpoint['port']}"
            if endpoint.get("path", "/metrics") != "/metrics":
                problems.append(f"{where}: path {endpoint['path']} is not /metrics")
            ports = [
                p for svc in selected for p in svc["spec"]["ports"] if p["name"] == endpoint["port"]
            ]
            if not ports:
                problems.append(f"{where}: no Service it selects has a port of that name")
            for port in ports:
                target = _port_number(container, port.get("targetPort", port["port"]))
                if target != expected:
                    problems.append(
                        f"{where}: scrapes container port {target} but the {comp} serves "
                        f"/metrics on {setting}={expected}"
                    )
    return problems


#: components whose process builds the LLM provider at start (build_provider)
LLM_CALLERS = ("gateway", "worker")


def _llm_provider_problem(settings: Any) -> str | None:
    """Why ``build_provider`` (run by the gateway and worker at start) refuses these
    settings, or None. The provider's HTTP client is closed again; nothing is called."""
    import asyncio

    from mnemo_common.llm import build_provider
    from mnemo_common.settings import SettingsError

    try:
        provider = build_provider(settings)
    except SettingsError as exc:
        return str(exc)
    asyncio.run(provider.aclose())
    return None


def _pre_stop_seconds(container: dict[str, Any]) -> float:
    """Seconds a `sleep N` preStop hook holds the container before SIGTERM."""
    hook = ((container.get("lifecycle") or {}).get("preStop") or {}).get("exec") or {}
    command = hook.get("command") or []
    if len(command) == 2 and command[0] == "sleep":
        return float(command[1])
    return 0.0


def _memory_addr_problems(
    addr: str, services: dict[str, dict[str, Any]], containers: dict[str, Any]
) -> list[str]:
    host, _, port = addr.rpartition(":")
    svc = services.get(host.split(".")[0])
    if svc is None:
        return [f"GATEWAY__MEMORY_ADDR={addr}: no Service named {host!r}"]
    if svc["spec"]["selector"].get("app.kubernetes.io/component") != "memory":
        return [f"GATEWAY__MEMORY_ADDR={addr}: Service {host} does not select the memory pods"]
    match = [p for p in svc["spec"]["ports"] if str(p["port"]) == port]
    if not match:
        return [f"GATEWAY__MEMORY_ADDR={addr}: Service {host} has no port {port}"]
    if "memory" in containers:
        _, _, c = containers["memory"]
        target = match[0].get("targetPort", match[0]["port"])
        if _port_number(c, target) != _named_port(c, "grpc"):
            return [
                f"GATEWAY__MEMORY_ADDR={addr}: Service port {port} does not lead to the "
                "memory container's gRPC port"
            ]
    return []


def _service_target_problems(
    services: dict[str, dict[str, Any]], docs: list[dict[str, Any]]
) -> list[str]:
    """Every Service port's targetPort exists on the pods it selects."""
    problems = []
    for name, svc in services.items():
        selector = svc["spec"].get("selector") or {}
        pods = [
            spec
            for doc, spec in workloads(docs)
            if not is_hook(doc)
            and selector
            and all(_template_labels(doc).get(k) == v for k, v in selector.items())
        ]
        if not pods:
            problems.append(f"Service/{name} selects no pods")
            continue
        for port in svc["spec"]["ports"]:
            target = port.get("targetPort", port["port"])
            if not any(
                _port_number(c, target) is not None
                and (isinstance(target, int) or _named_port(c, target) is not None)
                for spec in pods
                for c in spec["containers"]
            ):
                problems.append(
                    f"Service/{name} port {port['name']}: targetPort {target} is "
                    "not a container port of the selected pods"
                )
    return problems


def _template_labels(doc: dict[str, Any]) -> dict[str, str]:
    if doc["kind"] == "Pod":
        return doc["metadata"].get("labels", {})
    return doc["spec"]["template"]["metadata"].get("labels", {})


METRIC_NAME = re.compile(r"\b((?:mnemo|redis|kubelet)_[a-zA-Z0-9_]+)\b")
#: kubelet metrics the alerts/dashboard use (the kubelet's volume stats, per PVC)
KUBELET_METRICS = frozenset(
    {"kubelet_volume_stats_used_bytes", "kubelet_volume_stats_capacity_bytes"}
)
#: redis_exporter metrics the alerts/dashboard use (the exporter's documented names)
REDIS_EXPORTER_METRICS = frozenset(
    {
        "redis_memory_used_bytes",
        "redis_memory_max_bytes",
        "redis_connected_clients",
        "redis_commands_processed_total",
        "redis_evicted_keys_total",
        "redis_db_keys",
        "redis_rejected_connections_total",
        "redis_aof_last_bgrewrite_status",
        "redis_rdb_last_bgsave_status",
        "redis_up",
    }
)


def metric_names_in(text: str) -> set[str]:
    return set(METRIC_NAME.findall(text))


def missing_metrics(used: set[str], exposed: set[str]) -> list[str]:
    missing = []
    for name in sorted(used):
        if name.startswith("kubelet_"):
            if name not in KUBELET_METRICS:
                missing.append(f"{name} (not a kubelet metric this chart knows)")
        elif name.startswith("redis_"):
            if name not in REDIS_EXPORTER_METRICS:
                missing.append(f"{name} (not a redis_exporter metric this chart knows)")
        elif name not in exposed:
            missing.append(name)
    return missing
