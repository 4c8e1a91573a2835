"""Policy: checkov on every rendered manifest and both Dockerfiles (one run), hadolint, and
the image properties the chart relies on (non-root 10001, writable paths, model baked in)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import deploy_support as ds
import pytest
import yaml

CHECKOV = ds.REPO / ".venv-checkov" / "bin" / "checkov"
HADOLINT = Path(sys.executable).parent / "hadolint"
DOCKERFILES = {
    "memory": ds.REPO / "services/memory/Dockerfile",
    "gateway": ds.REPO / "services/gateway/Dockerfile",
}


@pytest.fixture(scope="session")
def checkov_report(rendered, overlays, tmp_path_factory) -> list[dict]:
    """One checkov run over all scenarios, overlays and Dockerfiles (checkov is the slow part)."""
    if not CHECKOV.exists():
        if os.environ.get("CI"):
            pytest.fail(f"{CHECKOV} missing: `make setup` installs checkov in .venv-checkov")
        pytest.skip(f"checkov not installed ({CHECKOV}); `make setup` installs it")
    root = tmp_path_factory.mktemp("checkov")
    for name, docs in [
        *((f"chart-{k}", v) for k, v in rendered.items()),
        *((f"kustomize-{k}", v) for k, v in overlays.items()),
    ]:
        (root / f"{name}.yaml").write_text("---\n".join(yaml.safe_dump(d) for d in docs))
    for name, path in DOCKERFILES.items():
        shutil.copy(path, root / f"{name}.Dockerfile")
    out = subprocess.run(
        [
            str(CHECKOV),
            "--config-file",
            str(Path(__file__).with_name("checkov.yaml")),
            "-d",
            str(root),
            "-o",
            "json",
        ],
        capture_output=True,
        text=True,
        check=False,
        cwd=root,
    )
    report = json.loads(out.stdout)
    return report if isinstance(report, list) else [report]


def test_checkov_scanned_everything(checkov_report) -> None:
    by_type = {r["check_type"]: r["summary"] for r in checkov_report}
    assert by_type["dockerfile"]["resource_count"] == 2
    assert by_type["kubernetes"]["resource_count"] >= 150
    assert by_type["kubernetes"]["parsing_errors"] == 0


def test_checkov_finds_nothing(checkov_report) -> None:
    failed = [
        f"{f['check_id']} {f['check_name']}: {f['resource']} ({f['file_path']})"
        for r in checkov_report
        for f in r["results"]["failed_checks"]
    ]
    assert failed == []


def test_hadolint_is_clean() -> None:
    out = subprocess.run(
        [
            str(HADOLINT),
            "--config",
            str(ds.REPO / ".hadolint.yaml"),
            *map(str, DOCKERFILES.values()),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert out.returncode == 0, out.stdout + out.stderr


@pytest.mark.parametrize("name", sorted(DOCKERFILES))
def test_dockerfile_builds_a_safe_offline_image(name: str) -> None:
    text = DOCKERFILES[name].read_text()
    froms = re.findall(r"(?m)^FROM (\S+)", text)
    assert len(froms) >= 2 and len(set(froms)) == 1  # multi-stage, one pinned base
    assert re.fullmatch(r"python:3\.11\.\d+-slim-bookworm", froms[0]), froms[0]
    runtime = text.split("\nFROM ")[-1]
    assert "USER 10001:10001" in runtime
    assert 'VOLUME ["/tmp", "/var/lib/mnemo"]' in runtime
    assert "PYTHONUNBUFFERED=1" in runtime
    for label in ("title", "description", "version", "revision", "source"):
        assert f"org.opencontainers.image.{label}=" in runtime
    assert "pip install -c constraints.txt" in text
    if name == "memory":
        assert "HF_HUB_OFFLINE=1" in runtime
        # a build stage exports the packaged model to ONNX (checked against
        # sentence-transformers); the final image embeds with it offline and has no torch
        assert "python -m mnemo_memory.embed.export" in text
        assert "torch" not in runtime.split("COPY --from=build")[0]
        assert "find_spec('torch')" in runtime and "encode_sync" in runtime


def test_dockerignore_keeps_local_state_out() -> None:
    lines = (ds.REPO / ".dockerignore").read_text().splitlines()
    assert lines[lines.index("**") + 1 :][:3] == ["!constraints.txt", "!libs/", "!services/"]
    assert "**/tests/" in lines and "**/__pycache__" in lines


def test_dockerfiles_run_what_the_chart_runs(default_docs) -> None:
    """The commands the chart passes exist as console scripts, with those subcommands."""
    from importlib.metadata import entry_points

    scripts = {e.name for e in entry_points(group="console_scripts")}
    commands = set()
    for doc, spec in ds.workloads(default_docs):
        if ds.component(doc) in ("gateway", "memory", "worker") and not ds.is_hook(doc):
            args = spec["containers"][0]["args"]
            assert args[0] in scripts
            commands.add(tuple(args))
    assert commands == {("mnemo-gateway",), ("mnemo-memory", "serve"), ("mnemo-memory", "worker")}
    for command in (("mnemo-memory", "serve"), ("mnemo-memory", "worker")):
        # argparse accepts the subcommand (exit 0 on --help; an unknown one exits 2)
        out = subprocess.run(
            [str(Path(sys.executable).parent / command[0]), *command[1:], "--help"],
            capture_output=True,
            text=True,
            check=False,
            timeout=120,
        )
        assert out.returncode == 0, out.stderr
