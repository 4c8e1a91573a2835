"""Every rendered object is valid for the supported Kubernetes versions; CRD objects
(ServiceMonitor, PrometheusRule) against their CRDs' OpenAPI schemas (tests/deploy/schemas)."""

from __future__ import annotations

import json
from typing import Any

import deploy_support as ds
import jsonschema
import pytest

CRD_SCHEMAS = {
    ("monitoring.coreos.com/v1", "ServiceMonitor"): "servicemonitor-v1.json",
    ("monitoring.coreos.com/v1", "PrometheusRule"): "prometheusrule-v1.json",
}


def _crd_validator(api_version: str, kind: str) -> jsonschema.Draft7Validator:
    schema = json.loads((ds.SCHEMAS / CRD_SCHEMAS[(api_version, kind)]).read_text())
    return jsonschema.Draft7Validator(schema)


def schema_problems(docs: list[dict[str, Any]], version: str) -> list[str]:
    import kubernetes_validate

    problems = []
    for doc in docs:
        where = f"{doc.get('kind')}/{doc.get('metadata', {}).get('name')}"
        key = (doc.get("apiVersion"), doc.get("kind"))
        if key in CRD_SCHEMAS:
            for err in _crd_validator(*key).iter_errors(doc):
                problems.append(f"{where}: {'/'.join(map(str, err.path))}: {err.message}")
            continue
        try:
            kubernetes_validate.validate(doc, version, strict=True)
        except kubernetes_validate.ValidationError as exc:
            problems.append(
                f"{where} (k8s {version}): {exc.message} at {'/'.join(map(str, exc.path))}"
            )
        except kubernetes_validate.SchemaNotFoundError as exc:
            problems.append(f"{where}: no schema for {key} in k8s {version}: {exc}")
    return problems


@pytest.mark.parametrize("version", ds.KUBE_VERSIONS)
def test_chart_objects_are_valid_kubernetes(rendered, version: str) -> None:
    for scenario, docs in rendered.items():
        assert schema_problems(docs, version) == [], scenario


@pytest.mark.parametrize("version", ds.KUBE_VERSIONS)
def test_overlay_objects_are_valid_kubernetes(overlays, version: str) -> None:
    assert overlays, "no kustomize overlay found"
    for name, docs in overlays.items():
        assert schema_problems(docs, version) == [], name


def test_monitoring_objects_are_checked_against_crd_schemas(rendered) -> None:
    kinds = {d["kind"] for d in rendered["production"]}
    assert {"ServiceMonitor", "PrometheusRule"} <= kinds


def test_schema_check_catches_bad_objects(default_docs) -> None:
    import copy

    docs = copy.deepcopy(default_docs)
    gateway = ds.by_kind(docs, "Deployment")[f"{ds.RELEASE}-gateway"]
    gateway["spec"]["template"]["spec"]["containers"][0]["livenessProbe"]["httpGet"]["prot"] = 1
    assert any("prot" in p for p in schema_problems([gateway], ds.KUBE_VERSIONS[0]))
    rule = {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": {"name": "x"},
        "spec": {
            "groups": [{"name": "g", "rules": [{"alert": "A", "expr": "up", "for": "10 minutes"}]}]
        },
    }
    assert any("for" in p for p in schema_problems([rule], ds.KUBE_VERSIONS[0]))
