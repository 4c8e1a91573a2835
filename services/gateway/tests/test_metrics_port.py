"""GATEWAY__METRICS_PORT: /metrics on its own port, off the public one (which answers 404)."""

from __future__ import annotations

import httpx
import pytest
from mnemo_common.settings import SettingsError, load_settings
from mnemo_common.testing.procs import free_port, port_open
from mnemo_gateway.core.config import GatewaySettings
from prometheus_client.parser import text_string_to_metric_families

HEALTHZ = {"route": "/healthz", "method": "GET", "status": "200"}


def healthz_count(metrics_text: str) -> float:
    """mnemo_gateway_http_requests_total{route="/healthz",method="GET",status="200"}."""
    for family in text_string_to_metric_families(metrics_text):
        if family.name == "mnemo_gateway_http_requests":
            for sample in family.samples:
                if sample.name.endswith("_total") and sample.labels == HEALTHZ:
                    return sample.value
    return 0.0


def test_metrics_port_serves_metrics_and_the_main_port_does_not(gateway_factory) -> None:
    metrics_port = free_port()
    gw = gateway_factory(gateway={"metrics_port": metrics_port})
    scrape = f"http://127.0.0.1:{metrics_port}/metrics"

    r = httpx.get(gw.url + "/metrics", timeout=10)
    assert r.status_code == 404
    assert r.headers["content-type"].startswith("application/json")
    body = r.json()
    assert body["type"] == "error" and body["error"]["code"] == "not_found", body
    assert r.headers["x-request-id"]  # answered by the gateway itself, like any unknown path

    before = httpx.get(scrape, timeout=10)
    assert before.status_code == 200
    assert before.headers["content-type"].startswith("text/plain")
    assert httpx.get(gw.url + "/healthz", timeout=10).status_code == 200
    after = httpx.get(scrape, timeout=10).text
    assert "# TYPE mnemo_gateway_http_requests_total counter" in after
    assert healthz_count(after) == healthz_count(before.text) + 1

    gw.stop()  # the metrics server stops with the app and frees its port
    assert not port_open(metrics_port)


def test_without_a_metrics_port_metrics_stay_on_the_main_port(gateway_factory) -> None:
    gw = gateway_factory()
    assert gw.settings.gateway.metrics_port == 0
    httpx.get(gw.url + "/healthz", timeout=10)
    r = httpx.get(gw.url + "/metrics", timeout=10)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    assert healthz_count(r.text) >= 1


def test_metrics_port_env_name_and_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MNEMO_ENV", "test")
    assert load_settings(GatewaySettings, _env_file=None).gateway.metrics_port == 0
    monkeypatch.setenv("GATEWAY__METRICS_PORT", "9466")
    assert load_settings(GatewaySettings, _env_file=None).gateway.metrics_port == 9466
    monkeypatch.setenv("GATEWAY__METRICS_PORT", "8000")
    with pytest.raises(SettingsError, match="GATEWAY__METRICS_PORT must differ"):
        load_settings(GatewaySettings, _env_file=None)
