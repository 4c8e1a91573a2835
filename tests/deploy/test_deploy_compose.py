"""compose.yaml (seed 002's Docker Compose set-up, for Mnemo) without a Docker engine:

* valid against the Compose specification's JSON schema, vendored unchanged as
  schemas/compose-spec.json from compose-spec/compose-spec (schema/compose-spec.json,
  commit 170098ba07d9f53c383a41bfd4c5166b0a4529a6, Apache-2.0);
* Redis with AOF on a volume, Chroma on a volume, memory, worker and gateway, each with a
  healthcheck, each dependency waited for with ``condition: service_healthy``;
* the environment of the Mnemo services is settings the code reads and accepts, and the
  images, ports and paths agree with the chart and the code's defaults;
* the healthcheck commands themselves run against real servers (Redis, Chroma, the memory
  service's gRPC health, the gateway) and fail against a closed port.
"""

from __future__ import annotations

import copy
import json
import re
import subprocess
import sys
from typing import Any

import deploy_support as ds
import pytest
import yaml
from mnemo_common.testing.procs import free_port

COMPOSE = ds.REPO / "compose.yaml"
SERVICES = {"redis", "chroma", "memory", "worker", "gateway"}
#: what each service waits for (healthy) before it starts
NEEDS = {
    "memory": {"redis", "chroma"},
    "worker": {"redis", "chroma"},
    "gateway": {"memory"},
}
#: the variables compose.yaml interpolates, as an empty environment leaves them
ENV = {"ANTHROPIC_API_KEY": "", "TORCH_PIP_ARGS": ""}


def _interpolate(value: Any, env: dict[str, str]) -> Any:
    """Compose's ${VAR}, ${VAR:-default} (the forms compose.yaml uses)."""
    if isinstance(value, dict):
        return {k: _interpolate(v, env) for k, v in value.items()}
    if isinstance(value, list):
        return [_interpolate(v, env) for v in value]
    if isinstance(value, str):
        pattern = r"\$\{(\w+)(?::-([^}]*))?\}"
        return re.sub(pattern, lambda m: env.get(m.group(1)) or (m.group(2) or ""), value)
    return value


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return _interpolate(yaml.safe_load(COMPOSE.read_text()), ENV)


@pytest.fixture(scope="module")
def validator():
    import jsonschema

    schema = json.loads((ds.SCHEMAS / "compose-spec.json").read_text())
    jsonschema.Draft7Validator.check_schema(schema)
    return jsonschema.Draft7Validator(schema)


def _errors(validator, doc: dict[str, Any]) -> list[str]:
    return [
        f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(doc)
    ]


def test_compose_file_is_valid_against_the_compose_spec(compose, validator) -> None:
    assert _errors(validator, compose) == []
    raw = yaml.safe_load(COMPOSE.read_text())  # before interpolation, as `docker compose` reads
    assert _errors(validator, raw) == []


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (("services", "gateway", "depends_on", "memory", "condition"), "service_healty"),
        (("services", "redis", "healthcheck", "intervall"), "5s"),
        (("services", "memory", "restart"), ["always"]),
        (("volumes", "redis-data"), "not-a-mapping"),
    ],
)
def test_the_schema_catches_a_broken_file(compose, validator, path, value) -> None:
    broken = copy.deepcopy(compose)
    node = broken
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    assert _errors(validator, broken)


def test_services_healthchecks_and_start_order(compose) -> None:
    services = compose["services"]
    assert set(services) == SERVICES
    for name, svc in services.items():
        check = svc["healthcheck"]
        assert check["test"][0] in ("CMD", "CMD-SHELL"), name
        assert not check.get("disable"), name
        needs = svc.get("depends_on") or {}
        assert set(needs) == NEEDS.get(name, set()), name
        for dep, how in needs.items():
            assert how == {"condition": "service_healthy"}, (name, dep)


def test_redis_persists_with_aof_and_chroma_on_volumes(compose) -> None:
    services = compose["services"]
    redis_cmd = services["redis"]["command"]
    opts = dict(zip(redis_cmd[1::2], redis_cmd[2::2], strict=True))
    assert opts["--appendonly"] == "yes" and opts["--dir"] == "/data"
    assert opts["--maxmemory-policy"] == "noeviction"  # ADR 0008
    assert "redis-data:/data" in services["redis"]["volumes"]
    chroma = services["chroma"]
    path = chroma["command"][chroma["command"].index("--path") + 1]
    assert f"chroma-data:{path}" in chroma["volumes"]
    assert {"redis-data", "chroma-data"} <= set(compose["volumes"])


def test_images_and_paths_match_the_chart(compose) -> None:
    values = ds.load_yaml(ds.CHART / "values.yaml")
    services = compose["services"]
    for name in ("redis", "chroma"):
        image = values[name]["image"]
        assert services[name]["image"] == f"{image['repository']}:{image['tag']}", name
    chroma_cmd = services["chroma"]["command"]
    assert chroma_cmd[chroma_cmd.index("--port") + 1] == str(values["chroma"]["port"])
    chart_probe = "/api/v2/heartbeat"  # the chart's Chroma readiness path
    assert chart_probe in " ".join(services["chroma"]["healthcheck"]["test"])
    assert services["worker"]["image"] == services["memory"]["image"] == "mnemo-memory:dev"
    assert services["memory"]["build"]["dockerfile"] == "services/memory/Dockerfile"
    assert services["gateway"]["build"]["dockerfile"] == "services/gateway/Dockerfile"


def test_service_environments_are_settings_the_code_accepts(compose, service_code) -> None:
    services = compose["services"]
    loaded = {}
    for name in ("memory", "worker", "gateway"):
        env = {k: str(v) for k, v in services[name]["environment"].items()}
        code = service_code[name]
        assert sorted(n for n in env if n.upper() not in code.env_names) == [], name
        loaded[name] = ds.load_settings_from_env(code.settings_cls, env)
        if name in ds.LLM_CALLERS:
            assert ds._llm_provider_problem(loaded[name]) is None, name
    memory, worker, gateway = loaded["memory"], loaded["worker"], loaded["gateway"]
    assert gateway.gateway.memory_addr == f"memory:{memory.server.grpc_port}"
    assert memory.server.host == "0.0.0.0"  # reachable from the gateway's container
    ports = services["gateway"]["ports"]
    assert ports == [f"127.0.0.1:{gateway.gateway.port}:{gateway.gateway.port}"]
    assert gateway.gateway.host == "0.0.0.0"
    hc = " ".join(services["memory"]["healthcheck"]["test"])
    assert f"127.0.0.1:{memory.server.grpc_port}" in hc
    assert f"127.0.0.1:{worker.worker.metrics_port}/metrics" in " ".join(
        services["worker"]["healthcheck"]["test"]
    )
    assert f"127.0.0.1:{gateway.gateway.port}/healthz" in " ".join(
        services["gateway"]["healthcheck"]["test"]
    )
    for s in (memory, worker):
        assert s.effective_redis_url == "redis://redis:6379/0"
        assert s.vector.backend == "chroma"


# --- the healthcheck commands, run for real ------------------------------------------------


def _run(check: dict[str, Any], port_from: int, port_to: int) -> int:
    """The healthcheck's command with its port changed, as the container would run it."""
    kind, *argv = check["test"]
    argv = [a.replace(str(port_from), str(port_to)) for a in argv]
    if argv[0] == "python":
        argv[0] = sys.executable
    if kind == "CMD-SHELL":
        argv = ["sh", "-c", argv[0]]
    return subprocess.run(argv, capture_output=True, timeout=30, check=False).returncode


def test_redis_healthcheck_against_real_redis(compose, redis_server) -> None:
    import shutil

    if shutil.which("redis-cli") is None:
        pytest.skip("redis-cli not installed (apt-get install redis-tools)")
    check = compose["services"]["redis"]["healthcheck"]
    assert _run(check, 6379, redis_server.port) == 0
    assert _run(check, 6379, free_port()) != 0


def test_chroma_healthcheck_against_real_chroma(compose, chroma_server) -> None:
    check = compose["services"]["chroma"]["healthcheck"]
    assert _run(check, 8000, chroma_server.port) == 0
    assert _run(check, 8000, free_port()) != 0


def test_memory_healthcheck_against_the_real_service(compose, memory_factory_short) -> None:
    check = compose["services"]["memory"]["healthcheck"]
    server = memory_factory_short()
    port = int(server.address.rsplit(":", 1)[1])
    assert _run(check, 50051, port) == 0
    assert _run(check, 50051, free_port()) != 0


def test_gateway_healthcheck_against_the_real_gateway(compose, gateway_factory) -> None:
    check = compose["services"]["gateway"]["healthcheck"]
    gateway = gateway_factory()
    assert _run(check, 8000, gateway.port) == 0
    assert _run(check, 8000, free_port()) != 0


@pytest.fixture
def memory_factory_short(memory_server_factory):
    """An in-process memory service without long-term memory (health only)."""
    return lambda: memory_server_factory(longterm=None)
