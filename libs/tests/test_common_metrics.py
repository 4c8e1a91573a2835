"""Prometheus helpers: one registry per process, idempotent metric creation."""

from __future__ import annotations

import prometheus_client
from mnemo_common import metrics


def test_same_collector_is_returned_for_the_same_name():
    first = metrics.counter("mnemo_test_widgets", "widgets made", ("kind",))
    second = metrics.counter("mnemo_test_widgets", "widgets made", ("kind",))
    gauge = metrics.gauge("mnemo_test_queue_depth", "items waiting")

    assert first is second
    assert gauge is metrics.gauge("mnemo_test_queue_depth", "items waiting")


def test_rendered_metrics_contain_values_and_the_content_type():
    counter = metrics.counter("mnemo_test_renders", "renders", ("outcome",))
    counter.labels("ok").inc(3)
    latency = metrics.histogram("mnemo_test_latency_seconds", "latency")
    latency.observe(0.003)

    body, content_type = metrics.render_latest()

    text = body.decode()
    assert 'mnemo_test_renders_total{outcome="ok"} 3.0' in text
    assert 'mnemo_test_latency_seconds_bucket{le="0.005"} 1.0' in text
    assert 'mnemo_test_latency_seconds_bucket{le="0.0025"} 0.0' in text
    assert content_type.startswith("text/plain")


def test_latency_buckets_span_redis_calls_to_llm_answers():
    assert metrics.LATENCY_BUCKETS[0] <= 0.001
    assert metrics.LATENCY_BUCKETS[-1] >= 30
    assert list(metrics.LATENCY_BUCKETS) == sorted(metrics.LATENCY_BUCKETS)


def test_metrics_live_in_the_process_registry_not_the_global_default():
    metrics.counter("mnemo_test_private", "not in the default registry")

    default_text = prometheus_client.generate_latest(prometheus_client.REGISTRY).decode()
    assert "mnemo_test_private" not in default_text
    assert "mnemo_test_private" in metrics.render_latest()[0].decode()
