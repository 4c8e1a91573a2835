"""The memory image's export stage installs CPU-only torch (ADR 0001), checked without a
Docker engine: the pin its RUN line computes for each architecture, the pin's agreement
with constraints.txt, and the guard that fails the build on a CUDA torch (run for real
against the venv's CPU torch and a stand-in CUDA build)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import deploy_support as ds
import pytest

DOCKERFILE = ds.REPO / "services" / "memory" / "Dockerfile"


def _export_stage() -> str:
    text = DOCKERFILE.read_text()
    (stage,) = [s for s in text.split("\nFROM ") if s.split("\n", 1)[0].endswith(" AS export")]
    return stage


def _torch_run() -> str:
    """The export stage's RUN instruction that installs torch, continuation lines joined."""
    stage = _export_stage().replace("\\\n", " ")
    (run,) = [line for line in stage.splitlines() if line.startswith("RUN torch=")]
    return run.removeprefix("RUN ")


def _pin_for(arch: str | None) -> str:
    # the RUN's first line: torch="torch==<version>$(...)" \
    (first,) = [ln for ln in _export_stage().splitlines() if ln.startswith("RUN torch=")]
    assignment = first.removeprefix("RUN ").removesuffix("\\").strip()
    env = f"TARGETARCH={arch}; " if arch is not None else ""
    out = subprocess.run(
        ["sh", "-c", f'{env}{assignment}; printf %s "$torch"'],
        capture_output=True,
        text=True,
        check=True,
    )
    return out.stdout


def _constraint(name: str) -> str:
    for line in (ds.REPO / "constraints.txt").read_text().splitlines():
        if line.startswith(f"{name}=="):
            return line.split("==", 1)[1]
    raise AssertionError(f"{name} is not pinned in constraints.txt")


def test_amd64_installs_the_cpu_build_and_arm64_the_plain_version() -> None:
    version = _constraint("torch")
    assert _pin_for("amd64") == f"torch=={version}+cpu"
    assert _pin_for(None) == f"torch=={version}+cpu"  # a builder without TARGETARCH
    assert _pin_for("arm64") == f"torch=={version}"  # CPU-only wheels, no local label


def test_the_torch_install_is_constrained_and_takes_the_build_args() -> None:
    run = _torch_run()
    assert 'pip install -c constraints.txt ${TORCH_PIP_ARGS} "$torch"' in run
    assert "ARG TARGETARCH" in _export_stage() and 'ARG TORCH_PIP_ARGS=""' in _export_stage()


def _guard() -> str:
    (code,) = re.findall(r'python -c "(import sys, torch;[^"]+)"', _torch_run())
    return code


def test_the_cuda_guard_passes_cpu_torch() -> None:
    pytest.importorskip("torch")
    out = subprocess.run([sys.executable, "-c", _guard()], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr


def test_the_cuda_guard_fails_a_cuda_build(tmp_path: Path) -> None:
    fake = tmp_path / "torch"
    fake.mkdir()
    (fake / "__init__.py").write_text("class version:\n    cuda = '12.4'\n")
    out = subprocess.run(
        [sys.executable, "-c", _guard()],
        capture_output=True,
        text=True,
        env={"PYTHONPATH": str(tmp_path)},
    )
    assert out.returncode == 1
    assert "CUDA torch 12.4" in out.stderr
