"""Kustomize: the base and components are the chart's own render, every overlay builds, and
the external-redis component really swaps the in-cluster Redis for REDIS_URL."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import deploy_support as ds


def test_generated_kustomize_files_match_the_chart() -> None:
    out = subprocess.run(
        [sys.executable, str(ds.KUSTOMIZE / "generate.py"), "--check"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert out.returncode == 0, out.stderr


def test_every_overlay_builds(overlays) -> None:
    assert set(overlays) == {"dev", "prod"}
    for name, docs in overlays.items():
        namespaces = {d["metadata"].get("namespace") for d in docs}
        assert namespaces == {f"mnemo-{name}" if name == "dev" else "mnemo"}, name


def test_dev_overlay_secret_is_generated_and_referenced(overlays) -> None:
    docs = overlays["dev"]
    secrets = ds.by_kind(docs, "Secret")
    assert len(secrets) == 1
    (secret_name,) = secrets
    assert secret_name.startswith("mnemo-")  # hash suffix: a changed secret rolls the pods
    refs = set()
    for _, spec in ds.workloads(docs):
        for c in spec["containers"]:
            refs |= {
                e["valueFrom"]["secretKeyRef"]["name"]
                for e in c.get("env") or []
                if "valueFrom" in e and "secretKeyRef" in e["valueFrom"]
            }
        refs |= {v["secret"]["secretName"] for v in spec.get("volumes", []) if "secret" in v}
    assert refs == {secret_name}


def test_prod_overlay_has_autoscaling_and_monitoring(overlays) -> None:
    docs = overlays["prod"]
    kinds = {d["kind"] for d in docs}
    assert {"HorizontalPodAutoscaler", "ServiceMonitor", "PrometheusRule", "NetworkPolicy"} <= kinds
    for name in ("mnemo-gateway", "mnemo-memory"):
        assert "replicas" not in ds.by_kind(docs, "Deployment")[name]["spec"]
    # the pods keep the chart's checksum/config: a regenerated base rolls what changed
    for name in ("mnemo-gateway", "mnemo-memory", "mnemo-worker"):
        template = ds.by_kind(docs, "Deployment")[name]["spec"]["template"]
        assert len(template["metadata"]["annotations"]["checksum/config"]) == 64, name


def _alert_namespaces(docs: list[dict]) -> set[str]:
    import re

    rules = ds.by_kind(docs, "PrometheusRule")["mnemo"]
    exprs = " ".join(r["expr"] for g in rules["spec"]["groups"] for r in g["rules"])
    return set(re.findall(r'namespace=~?"([^"]*)"', exprs))


def test_alerts_keep_their_namespace_filter_in_any_namespace(overlays, tmp_path: Path) -> None:
    """The chart's alerts filter on the release namespace; the prod overlay's alerts filter
    on the overlay's namespace, whatever it is (a copy of the overlay in team-x)."""
    chart_rules = ds.by_kind(
        ds.render({"metrics": {"prometheusRule": {"enabled": True}}}), "PrometheusRule"
    )
    assert _alert_namespaces(list(chart_rules.values())) == {ds.NAMESPACE}
    assert _alert_namespaces(overlays["prod"]) == {"mnemo"}
    copy = tmp_path / "overlays" / "team"
    copy.mkdir(parents=True)
    src = ds.KUSTOMIZE / "overlays" / "prod"
    for f in src.iterdir():
        (copy / f.name).write_text(f.read_text())
    (tmp_path / "base").symlink_to(ds.KUSTOMIZE / "base")
    (tmp_path / "components").symlink_to(ds.KUSTOMIZE / "components")
    k = copy / "kustomization.yaml"
    k.write_text(k.read_text().replace("namespace: mnemo\n", "namespace: team-x\n"))
    docs = ds.kustomize_build(copy)
    assert _alert_namespaces(docs) == {"team-x"}
    rules = ds.by_kind(docs, "PrometheusRule")["mnemo"]
    chart = next(iter(chart_rules.values()))
    # nothing else in the expressions changed
    for got, want in zip(
        (r for g in rules["spec"]["groups"] for r in g["rules"]),
        (r for g in chart["spec"]["groups"] for r in g["rules"]),
        strict=True,
    ):
        assert got["expr"] == want["expr"].replace('namespace="mnemo"', 'namespace=~"team-x"')


def test_base_redis_keeps_aof_and_noeviction(overlays) -> None:
    for name, docs in overlays.items():
        conf = ds.by_kind(docs, "ConfigMap")["mnemo-redis"]["data"]["redis.conf"]
        assert "appendonly yes" in conf and "maxmemory-policy noeviction" in conf, name


def test_external_redis_component(tmp_path: Path, service_code, gateway_app) -> None:
    overlay = tmp_path / "overlay"
    overlay.mkdir()
    prod = os.path.relpath(ds.KUSTOMIZE / "overlays" / "prod", overlay)
    component = os.path.relpath(ds.KUSTOMIZE / "components" / "external-redis", overlay)
    (overlay / "kustomization.yaml").write_text(
        "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n"
        f"resources: [{prod}]\ncomponents: [{component}]\n"
    )
    docs = ds.kustomize_build(overlay)
    assert "mnemo-redis" not in ds.by_kind(docs, "StatefulSet")
    assert "mnemo-redis" not in ds.by_kind(docs, "Service")
    assert "mnemo-redis" not in ds.by_kind(docs, "NetworkPolicy")
    for name in ("mnemo-memory", "mnemo-worker"):
        container = ds.by_kind(docs, "Deployment")[name]["spec"]["template"]["spec"]["containers"]
        assert len(container) == 1
        env = {e["name"]: e for e in container[0]["env"]}
        assert "REDIS__PASSWORD" not in env
        assert env["REDIS_URL"]["valueFrom"]["secretKeyRef"] == {
            "name": "mnemo-redis-url",
            "key": "url",
        }
    assert "REDIS__HOST" not in ds.by_kind(docs, "ConfigMap")["mnemo-memory"]["data"]
    assert ds.contract_problems(docs, service_code, gateway_app) == []
