"""The alerts evaluated for real: promtool (Prometheus' own rule engine) runs the rendered
PrometheusRule against synthetic series, so an alert that cannot fire is caught.

promtool comes with Prometheus (Debian: `apt-get install prometheus`); without it these
tests are skipped with that reason. The structural checks in test_deploy_contract.py run
everywhere.
"""

from __future__ import annotations

import os
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


def _rules(docs: list[dict[str, Any]]) -> dict[str, Any]:
    return ds.by_kind(docs, "PrometheusRule")[ds.RELEASE]["spec"]


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
                    "exp_annotations": by_name[name]["annotations"],
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
