"""Session fixtures of the deployment checks: each scenario is rendered once per session."""

from __future__ import annotations

from typing import Any

import deploy_support as ds
import pytest


@pytest.fixture(scope="session")
def rendered() -> dict[str, list[dict[str, Any]]]:
    """Objects of every ci/*-values.yaml scenario, by scenario name."""
    return {ds.scenario_name(p): ds.render(ds.load_yaml(p)) for p in ds.SCENARIOS}


@pytest.fixture(scope="session")
def default_docs(rendered: dict[str, list[dict[str, Any]]]) -> list[dict[str, Any]]:
    return rendered["default"]


@pytest.fixture(scope="session")
def overlays() -> dict[str, list[dict[str, Any]]]:
    """Objects of every kustomize overlay, by overlay name."""
    return {p.name: ds.kustomize_build(p) for p in ds.OVERLAYS}


@pytest.fixture(scope="session")
def service_code() -> dict[str, ds.ServiceCode]:
    return ds.service_code()


@pytest.fixture(scope="session")
def gateway_app() -> ds.GatewayApp:
    return ds.GatewayApp()
