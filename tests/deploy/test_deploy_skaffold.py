"""skaffold.yaml is valid for its API version and points at real images, charts, values,
overlays and Services; deploy/kind/cluster.yaml is a kind cluster config."""

from __future__ import annotations

import copy
import json

import deploy_support as ds
import jsonschema
import pytest
import yaml

SKAFFOLD = ds.REPO / "skaffold.yaml"


@pytest.fixture(scope="module")
def skaffold() -> dict:
    return yaml.safe_load(SKAFFOLD.read_text())


def _validator(config: dict) -> jsonschema.Draft7Validator:
    version = config["apiVersion"].split("/")[1]
    schema = json.loads((ds.SCHEMAS / f"skaffold-{version}.json").read_text())
    return jsonschema.Draft7Validator(schema)


def test_skaffold_yaml_meets_its_schema(skaffold) -> None:
    errors = [
        f"{'/'.join(map(str, e.path))}: {e.message}"
        for e in _validator(skaffold).iter_errors(skaffold)
    ]
    assert errors == []


def test_schema_check_rejects_a_typo(skaffold) -> None:
    broken = copy.deepcopy(skaffold)
    broken["deploy"]["helm"]["releases"][0]["chartpath"] = "x"
    assert list(_validator(skaffold).iter_errors(broken))


def _apply_patches(config: dict, patches: list[dict]) -> dict:
    config = copy.deepcopy(config)
    for p in patches:
        *parents, last = [int(x) if x.isdigit() else x for x in p["path"].strip("/").split("/")]
        target = config
        for key in parents:
            target = target[key]
        if p["op"] == "remove":
            del target[last]
        else:
            target[last] = p["value"]
    return config


def test_skaffold_builds_both_images_the_chart_runs(skaffold, rendered) -> None:
    artifacts = {a["image"]: a for a in skaffold["build"]["artifacts"]}
    assert set(artifacts) == {"mnemo-gateway", "mnemo-memory"}
    for artifact in artifacts.values():
        assert (ds.REPO / artifact["context"] / artifact["docker"]["dockerfile"]).is_file()
    values = ds.load_yaml(ds.CHART / "values.yaml")
    assert {
        values["gateway"]["image"]["repository"],
        values["memory"]["image"]["repository"],
    } == set(artifacts)


def test_helm_release_injects_the_built_images(skaffold) -> None:
    release = skaffold["deploy"]["helm"]["releases"][0]
    assert (ds.REPO / release["chartPath"]).resolve() == ds.CHART
    for values_file in release["valuesFiles"]:
        assert (ds.REPO / values_file).is_file()
    templates = release["setValueTemplates"]
    assert templates == {
        "gateway.image.repository": "{{.IMAGE_REPO_mnemo_gateway}}",
        "gateway.image.tag": "{{.IMAGE_TAG_mnemo_gateway}}",
        "memory.image.repository": "{{.IMAGE_REPO_mnemo_memory}}",
        "memory.image.tag": "{{.IMAGE_TAG_mnemo_memory}}",
    }
    # the injected values render: a built image reference lands in every Mnemo workload
    values = ds.load_yaml(ds.REPO / release["valuesFiles"][0])
    values.setdefault("gateway", {})["image"] = {
        "repository": "localhost/mnemo-gateway",
        "tag": "abc123",
    }
    values.setdefault("memory", {})["image"] = {
        "repository": "localhost/mnemo-memory",
        "tag": "abc123",
    }
    docs = ds.render(values, namespace=release["namespace"])
    images = {
        ds.component(d): s["containers"][0]["image"]
        for d, s in ds.workloads(docs)
        if not ds.is_hook(d)
    }
    assert images["gateway"] == "localhost/mnemo-gateway:abc123"
    assert images["memory"] == images["worker"] == "localhost/mnemo-memory:abc123"


def test_port_forward_reaches_the_gateway_service(skaffold, rendered) -> None:
    (forward,) = skaffold["portForward"]
    service = ds.by_kind(rendered["dev"], "Service")[forward["resourceName"]]
    assert forward["port"] in [p["port"] for p in service["spec"]["ports"]]
    assert forward["namespace"] == skaffold["deploy"]["helm"]["releases"][0]["namespace"]


def test_kustomize_profile_deploys_the_dev_overlay(skaffold, overlays) -> None:
    profile = next(p for p in skaffold["profiles"] if p["name"] == "kustomize")
    effective = _apply_patches(skaffold, profile["patches"])
    assert "helm" not in effective["deploy"]
    (path,) = profile["manifests"]["kustomize"]["paths"]
    assert (ds.REPO / path / "kustomization.yaml").is_file()
    docs = overlays[(ds.REPO / path).name]
    assert effective["portForward"][0]["namespace"] == docs[0]["metadata"]["namespace"]
    assert effective["portForward"][0]["resourceName"] in ds.by_kind(docs, "Service")
    images = {c["image"].split(":")[0] for _, s in ds.workloads(docs) for c in s["containers"]}
    assert {"mnemo-gateway", "mnemo-memory"} <= images  # names skaffold rewrites


def test_kind_cluster_config() -> None:
    config = yaml.safe_load((ds.REPO / "deploy" / "kind" / "cluster.yaml").read_text())
    assert config["kind"] == "Cluster" and config["apiVersion"] == "kind.x-k8s.io/v1alpha4"
    assert config["name"] == "mnemo"  # make kind-up checks for this name
    assert {n["role"] for n in config["nodes"]} == {"control-plane", "worker"}
