"""The alerts and the dashboard against the code and the docs, without promtool:
every metric they read is one the services register (or a kubelet / redis_exporter metric
the chart knows), every runbook link lands on a section of docs/operations.md, and the
volume alert names the claims the chart's StatefulSets really create.
(test_deploy_alerts.py evaluates the alerts with promtool.)"""

from __future__ import annotations

import json
import re
from typing import Any

import deploy_support as ds
import pytest

OPERATIONS = ds.REPO / "docs" / "operations.md"
#: every alert docs/operations.md has a runbook section for (issue 13's list and the rest)
ALERTS = {
    "MnemoMemoryServiceDown",
    "MnemoMemoryNotServing",
    "MnemoRedisDown",
    "MnemoWorkerDown",
    "MnemoExtractionLag",
    "MnemoDeadLettersGrowing",
    "MnemoRedisMemoryNearMax",
    "MnemoRedisMemoryFull",
    "MnemoRedisPersistenceFailing",
    "MnemoVolumeFillingUp",
    "MnemoGatewayErrors",
    "MnemoLLMErrors",
    "MnemoMemoryBreakerOpen",
}


def _alerts(docs: list[dict[str, Any]], name: str = ds.RELEASE) -> dict[str, dict[str, Any]]:
    rule = ds.by_kind(docs, "PrometheusRule")[name]
    return {r["alert"]: r for g in rule["spec"]["groups"] for r in g["rules"] if "alert" in r}


def _dashboard_exprs(docs: list[dict[str, Any]]) -> dict[str, list[str]]:
    cm = next(
        d
        for d in docs
        if d["kind"] == "ConfigMap" and d["metadata"]["labels"].get("grafana_dashboard") == "1"
    )
    dashboard = json.loads(cm["data"]["mnemo-memory.json"])
    return {p["title"]: [t["expr"] for t in p.get("targets", [])] for p in dashboard["panels"]}


def github_anchors(markdown: str) -> set[str]:
    """The anchors GitHub gives the headings of a Markdown file."""
    anchors, fenced = set(), False
    for line in markdown.splitlines():
        if line.startswith("```"):
            fenced = not fenced
        m = None if fenced else re.match(r"^#{1,6} +(.+?)\s*$", line)
        if m:
            slug = re.sub(r"[^\w\- ]", "", m.group(1).lower()).replace(" ", "-")
            anchors.add(slug)
    return anchors


@pytest.fixture(scope="module")
def production(rendered) -> list[dict[str, Any]]:
    return rendered["production"]


@pytest.fixture(scope="module")
def exposed() -> set[str]:
    return ds.exposed_metric_names()


def test_the_alerts_of_issue_13_exist(production) -> None:
    alerts = _alerts(production)
    assert set(alerts) == ALERTS
    # Redis down is seen by the memory service itself (a running-but-unready pod keeps up=1)
    assert "mnemo_memory_redis_up" in alerts["MnemoRedisDown"]["expr"]
    assert "mnemo_memory_serving" in alerts["MnemoMemoryNotServing"]["expr"]


def test_alerts_and_dashboard_use_metrics_the_code_registers(production, exposed) -> None:
    used = set()
    for rule in _alerts(production).values():
        names = ds.metric_names_in(rule["expr"])
        assert names or "up{" in rule["expr"], rule["alert"]
        used |= names
    for exprs in _dashboard_exprs(production).values():
        for expr in exprs:
            used |= ds.metric_names_in(expr)
    assert {
        "mnemo_memory_serving",
        "mnemo_memory_redis_persistence_ok",
        "mnemo_memory_vectors",
        "mnemo_llm_requests_total",
        "mnemo_gateway_memory_breaker_state",
        "kubelet_volume_stats_used_bytes",
    } <= used
    assert ds.missing_metrics(used, exposed) == []


def test_the_metric_check_catches_unknown_kubelet_and_mnemo_names(exposed) -> None:
    assert ds.missing_metrics(
        {"kubelet_volume_stats_free_percent", "mnemo_memory_not_a_metric"}, exposed
    ) == [
        "kubelet_volume_stats_free_percent (not a kubelet metric this chart knows)",
        "mnemo_memory_not_a_metric",
    ]


def test_dashboard_shows_vectors_and_per_store_usage(production) -> None:
    panels = _dashboard_exprs(production)
    vectors = panels["Vectors in the long-term store"]
    assert any("mnemo_memory_vectors" in e for e in vectors)
    usage = " ".join(panels["Store usage (Redis memory, data volumes)"])
    assert "mnemo_memory_redis_used_memory_bytes" in usage
    assert "kubelet_volume_stats_used_bytes" in usage


def test_every_runbook_url_lands_on_a_section_of_operations_md(production) -> None:
    anchors = github_anchors(OPERATIONS.read_text())
    for name, rule in _alerts(production).items():
        url = rule["annotations"]["runbook_url"]
        page, _, anchor = url.partition("#")
        assert page == "docs/operations.md", (name, url)
        assert anchor in anchors, f"{name}: {url} has no section in docs/operations.md"


def test_anchor_reader_knows_githubs_slugs() -> None:
    text = "### Alert: MnemoRedisDown\n```bash\n# a comment\n```\n## Grow a volume (PVC)\n"
    assert github_anchors(text) == {
        "alert-mnemoredisdown",
        "grow-a-volume-pvc",
    }


def test_runbook_base_is_a_value() -> None:
    docs = ds.render(
        {
            "metrics": {
                "prometheusRule": {
                    "enabled": True,
                    "runbookUrl": "https://git.example.com/mnemo/docs/operations.md",
                }
            }
        }
    )
    urls = {r["annotations"]["runbook_url"] for r in _alerts(docs).values()}
    assert all(
        u.startswith("https://git.example.com/mnemo/docs/operations.md#alert-") for u in urls
    )


@pytest.mark.parametrize("release", ["mnemo", "team-a"])
def test_volume_alert_selects_the_claims_the_statefulsets_create(release: str) -> None:
    values = {"metrics": {"prometheusRule": {"enabled": True}}}
    docs = ds.render(values, release=release)
    claims = [
        f"{tpl['metadata']['name']}-{sts['metadata']['name']}-0"
        for sts in ds.by_kind(docs, "StatefulSet").values()
        for tpl in sts["spec"].get("volumeClaimTemplates", [])
    ]
    assert len(claims) == 2  # Redis and Chroma
    fullname = next(iter(ds.by_kind(docs, "PrometheusRule")))
    expr = _alerts(docs, fullname)["MnemoVolumeFillingUp"]["expr"]
    (pattern,) = set(re.findall(r'persistentvolumeclaim=~"([^"]+)"', expr))
    for claim in claims:
        assert re.fullmatch(pattern, claim), (claim, pattern)
    assert not re.fullmatch(pattern, f"data-{release}-redis-extra-0")


def test_no_volume_alert_without_in_release_stores() -> None:
    docs = ds.render(
        {
            "redis": {"enabled": False},
            "externalRedis": {"url": "redis://redis.example:6379/0"},
            "chroma": {"enabled": False},
            "externalChroma": {"url": "http://chroma.example:8000"},
            "metrics": {"prometheusRule": {"enabled": True}},
        }
    )
    alerts = _alerts(docs)
    assert "MnemoVolumeFillingUp" not in alerts
    assert "MnemoRedisPersistenceFailing" in alerts  # read by the memory service, any Redis


def test_kustomize_monitoring_carries_the_same_alerts() -> None:
    path = ds.KUSTOMIZE / "components" / "monitoring" / "monitoring.yaml"
    (rule,) = [d for d in ds.parse_docs(path.read_text()) if d["kind"] == "PrometheusRule"]
    names = {r["alert"] for g in rule["spec"]["groups"] for r in g["rules"] if "alert" in r}
    assert names == ALERTS


def _exprs(docs: list[dict[str, Any]]) -> dict[str, str]:
    return {name: r["expr"] for name, r in _alerts(docs).items()}


def _overlay_with_monitoring(tmp_path, namespace: str, replacements: bool) -> list[dict]:
    import os
    import shutil

    overlay = tmp_path / namespace
    overlay.mkdir()
    rel = {k: os.path.relpath(ds.KUSTOMIZE / k, overlay) for k in ("base", "components")}
    text = (
        "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n"
        f"namespace: {namespace}\nresources: [{rel['base']}]\n"
        f"components: [{rel['components']}/monitoring]\n"
    )
    if replacements:
        shutil.copy(ds.KUSTOMIZE / "overlays/prod/monitoring-namespace.yaml", overlay)
        text += "replacements:\n  - path: monitoring-namespace.yaml\n"
    (overlay / "kustomization.yaml").write_text(text)
    return ds.kustomize_build(overlay)


def test_kustomize_alerts_filter_on_the_overlays_namespace(overlays, production, tmp_path) -> None:
    """The chart's namespace="<release namespace>" filters survive into kustomize: prod's
    overlay sets them to its namespace, any overlay can with the generated replacements,
    and without them they match every namespace (never a namespace the overlay is not in)."""
    chart = _exprs(production)
    filters = {name: expr.count(f'namespace="{ds.NAMESPACE}"') for name, expr in chart.items()}
    assert all(filters.values()), "every chart alert filters on its namespace"
    cases = {
        "mnemo": _exprs(overlays["prod"]),
        "team-a": _exprs(_overlay_with_monitoring(tmp_path, "team-a", replacements=True)),
        ".*": _exprs(_overlay_with_monitoring(tmp_path, "team-b", replacements=False)),
    }
    for namespace, exprs in cases.items():
        assert set(exprs) == set(chart)
        for name, expr in exprs.items():
            assert expr.count(f'namespace=~"{namespace}"') == filters[name], (namespace, name)
            assert expr.count("namespace=") == filters[name], (namespace, name)
            # the same expression as the chart's, but for the namespace matcher
            assert (
                expr.replace(f'namespace=~"{namespace}"', f'namespace="{ds.NAMESPACE}"')
                == (chart[name])
            )


def test_kustomize_alerts_are_valid_promql(overlays, tmp_path) -> None:
    import shutil
    import subprocess

    import yaml

    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool not installed (apt-get install prometheus)")
    rule = ds.by_kind(overlays["prod"], "PrometheusRule")["mnemo"]
    (tmp_path / "rules.yaml").write_text(yaml.safe_dump({"groups": rule["spec"]["groups"]}))
    out = subprocess.run(
        [promtool, "check", "rules", "rules.yaml"], cwd=tmp_path, capture_output=True, text=True
    )
    assert out.returncode == 0, out.stdout + out.stderr
