"""The alerts evaluated for real: promtool (Prometheus' own rule engine) runs the rendered
PrometheusRule against synthetic series, so an alert that cannot fire is caught.

promtool comes with Prometheus (Debian: `apt-get install prometheus`); without it these
tests are skipped with that reason. The structural checks in test_deploy_contract.py run
everywhere.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import deploy_support as ds
import pytest
import yaml

PROMTOOL = shutil.which("promtool")
if PROMTOOL is None and os.environ.get("CI"):
    raise RuntimeError("promtool missing in CI: make setup installs Debian's prometheus")
pytestmark = pytest.mark.skipif(
    PROMTOOL is None, reason="promtool not installed (apt-get install prometheus)"
)
NS = ds.NAMESPACE
WORKER_UP = f'up{{namespace="{NS}", service="{ds.RELEASE}-worker", pod="w1"}}'
BACKLOG = f'mnemo_memory_jobs_stream_length{{namespace="{NS}", pod="m1"}}'
PROCESSED = f'mnemo_worker_jobs_processed_total{{namespace="{NS}", pod="w1", type="extract"}}'
ABSENT_LABELS = {"namespace": NS, "service": f"{ds.RELEASE}-worker"}

#: case -> (input series, {alert: [extra labels of each expected alert]}) at 30 min
CASES: dict[str, tuple[dict[str, str], dict[str, list[dict[str, str]]]]] = {
    # nothing scrapes a worker: no processed counter exists, so the sum is empty
    "no-worker-scraped": (
        {BACKLOG: "5x40"},
        {"MnemoWorkerDown": [ABSENT_LABELS], "MnemoExtractionLag": [{}]},
    ),
    # the worker is up but has never finished a job (a labelled counter has no series yet)
    "worker-never-processed": (
        {WORKER_UP: "1x40", BACKLOG: "5x40"},
        {"MnemoWorkerDown": [], "MnemoExtractionLag": [{}]},
    ),
    "worker-target-down": (
        {f'up{{namespace="{NS}", service="{ds.RELEASE}-worker", pod="w1"}}': "0x40"},
        {"MnemoWorkerDown": [{}], "MnemoExtractionLag": []},
    ),
    "worker-processing": (
        {WORKER_UP: "1x40", BACKLOG: "5x40", PROCESSED: "0+1x40"},
        {"MnemoWorkerDown": [], "MnemoExtractionLag": []},
    ),
    "idle": (
        {WORKER_UP: "1x40", BACKLOG: "0x40"},
        {"MnemoWorkerDown": [], "MnemoExtractionLag": []},
    ),
}


R = f'namespace="{NS}"'
CHAT = f'{R}, route="/v1/chat/completions", method="POST"'
PROBE = f'{R}, route="/readyz", method="GET"'
REDIS_PVC = f"data-{ds.RELEASE}-redis-0"
CHROMA_PVC = f"chroma-data-{ds.RELEASE}-chroma-0"
PERSIST = f'mnemo_memory_redis_persistence_ok{{{R}, pod="m1"'


def _pvc(name: str, used: int, capacity: int = 100) -> dict[str, str]:
    labels = f'{R}, persistentvolumeclaim="{name}", job="kubelet"'
    return {
        f"kubelet_volume_stats_used_bytes{{{labels}}}": f"{used}x40",
        f"kubelet_volume_stats_capacity_bytes{{{labels}}}": f"{capacity}x40",
    }


#: alert -> {case: (input series, [extra labels of each expected alert])} at 30 min; every
#: alert has at least one case that fires and one that stays silent
ALERT_CASES: dict[str, dict[str, tuple[dict[str, str], list[dict[str, str]]]]] = {
    "MnemoMemoryServiceDown": {
        "no-pod-up": ({f'up{{{R}, service="{ds.RELEASE}-memory", pod="m1"}}': "0x40"}, [{}]),
        "not-scraped": ({}, [{"namespace": NS, "service": f"{ds.RELEASE}-memory"}]),
        # the case: pods run, Redis is gone; `up` stays 1 (MnemoRedisDown fires)
        "redis-down-pods-up": (
            {
                f'up{{{R}, service="{ds.RELEASE}-memory", pod="m1"}}': "1x40",
                f'mnemo_memory_redis_up{{{R}, pod="m1"}}': "0x40",
            },
            [],
        ),
    },
    "MnemoMemoryNotServing": {
        "one-pod-not-serving": (
            {
                f'mnemo_memory_serving{{{R}, pod="m1"}}': "0x40",
                f'mnemo_memory_serving{{{R}, pod="m2"}}': "1x40",
            },
            [{"namespace": NS, "pod": "m1"}],
        ),
        "brief-blip": ({f'mnemo_memory_serving{{{R}, pod="m1"}}': "1x28 0 1x11"}, []),
        "serving": ({f'mnemo_memory_serving{{{R}, pod="m1"}}': "1x40"}, []),
    },
    "MnemoRedisDown": {
        # 25 minutes of mnemo_memory_redis_up == 0 (the review's promtool case)
        "redis-down-25m": (
            {
                f'up{{{R}, service="{ds.RELEASE}-memory", pod="m1"}}': "1x40",
                f'mnemo_memory_redis_up{{{R}, pod="m1"}}': "1x5 0x35",
                f'mnemo_memory_redis_up{{{R}, pod="m2"}}': "1x5 0x35",
            },
            [{}],
        ),
        "one-pod-reaches-redis": (
            {
                f'mnemo_memory_redis_up{{{R}, pod="m1"}}': "0x40",
                f'mnemo_memory_redis_up{{{R}, pod="m2"}}': "1x40",
            },
            [],
        ),
    },
    "MnemoDeadLettersGrowing": {
        "growing": ({f"mnemo_memory_jobs_dead_letter_length{{{R}}}": "0+1x40"}, [{}]),
        "steady": ({f"mnemo_memory_jobs_dead_letter_length{{{R}}}": "3x40"}, []),
    },
    "MnemoRedisMemoryNearMax": {
        "at-85%": (
            {
                f"mnemo_memory_redis_used_memory_bytes{{{R}}}": "850x40",
                f"mnemo_memory_redis_maxmemory_bytes{{{R}}}": "1000x40",
            },
            [{}],
        ),
        "at-50%": (
            {
                f"mnemo_memory_redis_used_memory_bytes{{{R}}}": "500x40",
                f"mnemo_memory_redis_maxmemory_bytes{{{R}}}": "1000x40",
            },
            [],
        ),
        "no-maxmemory": (
            {
                f"mnemo_memory_redis_used_memory_bytes{{{R}}}": "900x40",
                f"mnemo_memory_redis_maxmemory_bytes{{{R}}}": "0x40",
            },
            [],
        ),
    },
    "MnemoRedisMemoryFull": {
        "at-99%": (
            {
                f"mnemo_memory_redis_used_memory_bytes{{{R}}}": "990x40",
                f"mnemo_memory_redis_maxmemory_bytes{{{R}}}": "1000x40",
            },
            [{}],
        ),
        "at-85%": (
            {
                f"mnemo_memory_redis_used_memory_bytes{{{R}}}": "850x40",
                f"mnemo_memory_redis_maxmemory_bytes{{{R}}}": "1000x40",
            },
            [],
        ),
    },
    "MnemoRedisPersistenceFailing": {
        "aof-write-failing": (
            {
                f'{PERSIST}, operation="aof_write"}}': "0x40",
                f'{PERSIST}, operation="rdb_bgsave"}}': "1x40",
            },
            [{"operation": "aof_write"}],
        ),
        "all-ok": (
            {
                f'{PERSIST}, operation="aof_write"}}': "1x40",
                f'{PERSIST}, operation="rdb_bgsave"}}': "1x40",
            },
            [],
        ),
    },
    "MnemoVolumeFillingUp": {
        "redis-volume-90%": (
            {**_pvc(REDIS_PVC, 90), **_pvc(CHROMA_PVC, 50), **_pvc("other-app-0", 99)},
            [{"persistentvolumeclaim": REDIS_PVC}],
        ),
        "chroma-volume-95%": (
            {**_pvc(REDIS_PVC, 10), **_pvc(CHROMA_PVC, 95)},
            [{"persistentvolumeclaim": CHROMA_PVC}],
        ),
        "half-full": ({**_pvc(REDIS_PVC, 50), **_pvc(CHROMA_PVC, 80)}, []),
    },
    "MnemoGatewayErrors": {
        "10%-5xx": (
            {
                f'mnemo_gateway_http_requests_total{{{CHAT}, status="200"}}': "0+90x40",
                f'mnemo_gateway_http_requests_total{{{CHAT}, status="502"}}': "0+10x40",
            },
            [{}],
        ),
        # failing readiness probes (503) are not answers to users
        "1%-5xx-and-unready-probes": (
            {
                f'mnemo_gateway_http_requests_total{{{CHAT}, status="200"}}': "0+99x40",
                f'mnemo_gateway_http_requests_total{{{CHAT}, status="500"}}': "0+1x40",
                f'mnemo_gateway_http_requests_total{{{PROBE}, status="503"}}': "0+100x40",
            },
            [],
        ),
    },
    "MnemoLLMErrors": {
        "chat-20%-timeouts": (
            {
                f'mnemo_llm_requests_total{{{R}, purpose="chat", outcome="ok"}}': "0+8x40",
                f'mnemo_llm_requests_total{{{R}, purpose="chat", outcome="timeout"}}': "0+2x40",
                f'mnemo_llm_requests_total{{{R}, purpose="extraction", outcome="ok"}}': "0+5x40",
            },
            [{"purpose": "chat"}],
        ),
        # clients hanging up (cancelled) are not provider errors
        "1%-errors-many-cancelled": (
            {
                f'mnemo_llm_requests_total{{{R}, purpose="chat", outcome="ok"}}': "0+99x40",
                f'mnemo_llm_requests_total{{{R}, purpose="chat", outcome="auth"}}': "0+1x40",
                f'mnemo_llm_requests_total{{{R}, purpose="chat", outcome="cancelled"}}': "0+60x40",
            },
            [],
        ),
    },
    "MnemoMemoryBreakerOpen": {
        "open": ({f'mnemo_gateway_memory_breaker_state{{{R}, pod="g1"}}': "0x10 1x30"}, [{}]),
        "open-and-probing": (
            {f'mnemo_gateway_memory_breaker_state{{{R}, pod="g1"}}': "0x10 1 2 1 2 1x26"},
            [{}],
        ),
        "closed": ({f'mnemo_gateway_memory_breaker_state{{{R}, pod="g1"}}': "0x40"}, []),
        "brief-trip": (
            {f'mnemo_gateway_memory_breaker_state{{{R}, pod="g1"}}': "0x28 1 0x11"},
            [],
        ),
    },
}
FLAT_CASES = [(alert, case) for alert, cases in ALERT_CASES.items() for case in cases]


def _rules(docs: list[dict[str, Any]]) -> dict[str, Any]:
    return ds.by_kind(docs, "PrometheusRule")[ds.RELEASE]["spec"]


def _expand(annotations: dict[str, str], labels: dict[str, str]) -> dict[str, str]:
    """The annotations as Prometheus renders them for an alert with these labels."""
    return {
        k: re.sub(r"\{\{ \$labels\.(\w+) \}\}", lambda m: labels[m.group(1)], v)
        for k, v in annotations.items()
    }


def _promtool_test(
    tmp_path: Path, rules: dict[str, Any], series: dict[str, str], expected: dict[str, Any]
) -> subprocess.CompletedProcess[str]:
    by_name = {r["alert"]: r for g in rules["groups"] for r in g["rules"] if "alert" in r}
    (tmp_path / "rules.yaml").write_text(yaml.safe_dump({"groups": rules["groups"]}))
    alert_tests = [
        {
            "eval_time": "30m",
            "alertname": name,
            "exp_alerts": [
                {
                    "exp_labels": {**by_name[name]["labels"], **labels},
                    "exp_annotations": _expand(by_name[name]["annotations"], labels),
                }
                for labels in alerts
            ],
        }
        for name, alerts in expected.items()
    ]
    test = {
        "rule_files": ["rules.yaml"],
        "evaluation_interval": "1m",
        "tests": [
            {
                "interval": "1m",
                "input_series": [{"series": s, "values": v} for s, v in series.items()],
                "alert_rule_test": alert_tests,
            }
        ],
    }
    (tmp_path / "test.yaml").write_text(yaml.safe_dump(test, sort_keys=False))
    return subprocess.run(
        [str(PROMTOOL), "test", "rules", "test.yaml"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )


@pytest.fixture(scope="module")
def rules(rendered) -> dict[str, Any]:
    return _rules(rendered["production"])


def test_rules_are_valid_promql(tmp_path: Path, rules) -> None:
    (tmp_path / "rules.yaml").write_text(yaml.safe_dump({"groups": rules["groups"]}))
    out = subprocess.run(
        [str(PROMTOOL), "check", "rules", "rules.yaml"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    assert out.returncode == 0, out.stdout + out.stderr


@pytest.mark.parametrize("case", list(CASES))
def test_worker_alerts_fire_when_they_should(tmp_path: Path, rules, case: str) -> None:
    series, expected = CASES[case]
    out = _promtool_test(tmp_path, rules, series, expected)
    assert out.returncode == 0, out.stdout + out.stderr


@pytest.mark.parametrize(("alert", "case"), FLAT_CASES, ids=[f"{a}-{c}" for a, c in FLAT_CASES])
def test_alert_fires_on_its_failure_and_only_then(tmp_path: Path, rules, alert, case) -> None:
    series, expected = ALERT_CASES[alert][case]
    out = _promtool_test(tmp_path, rules, series, {alert: expected})
    assert out.returncode == 0, out.stdout + out.stderr


def test_every_alert_has_a_firing_and_a_silent_case(rules) -> None:
    alerts = {r["alert"] for g in rules["groups"] for r in g["rules"] if "alert" in r}
    worker = {"MnemoWorkerDown", "MnemoExtractionLag"}
    assert alerts - worker == set(ALERT_CASES), "an alert without promtool cases (or a stale one)"
    for alert, cases in ALERT_CASES.items():
        outcomes = {bool(expected) for _, expected in cases.values()}
        assert outcomes == {True, False}, alert
    for alert in worker:
        outcomes = {bool(exp.get(alert)) for _, exp in CASES.values()}
        assert outcomes == {True, False}, alert


def test_a_silent_case_would_catch_an_alert_that_always_fires(tmp_path: Path, rules) -> None:
    """The harness is not vacuous: an alert rewritten to `vector(1)` fails its silent case."""
    broken = yaml.safe_load(yaml.safe_dump(rules))
    for group in broken["groups"]:
        for rule in group["rules"]:
            if rule.get("alert") == "MnemoMemoryBreakerOpen":
                rule["expr"] = "vector(1)"
    series, expected = ALERT_CASES["MnemoMemoryBreakerOpen"]["closed"]
    out = _promtool_test(tmp_path, broken, series, {"MnemoMemoryBreakerOpen": expected})
    assert out.returncode != 0
