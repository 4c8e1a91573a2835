"""The chart's Chroma, run for real: its container args started with the chromadb package's
own server (the version the chart's image tag pins) answer the chart's probe path, and data
written through the client survives a restart from the --path the PVC is mounted at."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import chromadb
import deploy_support as ds
import httpx
import pytest
from mnemo_common.testing.procs import free_port, wait_for

CHROMA = Path(sys.executable).parent / "chroma"


def _chart_chroma() -> tuple[list[str], dict, str]:
    docs = ds.render({})
    sts = ds.by_kind(docs, "StatefulSet")[f"{ds.RELEASE}-chroma"]
    container = sts["spec"]["template"]["spec"]["containers"][0]
    return container["args"], container["readinessProbe"]["httpGet"], container["image"]


def _start(args: list[str], port: int, data: Path, log: Path) -> subprocess.Popen[bytes]:
    argv = list(args)
    argv[argv.index("--host") + 1] = "127.0.0.1"
    argv[argv.index("--port") + 1] = str(port)
    argv[argv.index("--path") + 1] = str(data)
    with log.open("ab") as out:
        return subprocess.Popen([str(CHROMA), *argv], stdout=out, stderr=out)


def test_image_tag_matches_the_client() -> None:
    _, _, image = _chart_chroma()
    assert image.split(":")[1] == chromadb.__version__


@pytest.mark.skipif(not CHROMA.exists(), reason="chromadb's `chroma` CLI is not installed")
def test_chart_chroma_serves_its_probe_and_persists(tmp_path: Path) -> None:
    args, probe, _ = _chart_chroma()
    port, data = free_port(), tmp_path / "chroma-data"
    url = f"http://127.0.0.1:{port}{probe['path']}"

    def up() -> bool:
        try:
            return httpx.get(url, timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    proc = _start(args, port, data, tmp_path / "chroma.log")
    try:
        wait_for(up, 60, "chroma to answer the chart's readiness path")
        client = chromadb.HttpClient(host="127.0.0.1", port=port)
        client.get_or_create_collection("mnemo_facts").add(
            ids=["f1"], embeddings=[[0.1, 0.2, 0.3]], documents=["prefers tea"]
        )
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)
        proc = _start(args, port, data, tmp_path / "chroma.log")
        wait_for(up, 60, "chroma to restart")
        got = (
            chromadb.HttpClient(host="127.0.0.1", port=port)
            .get_collection("mnemo_facts")
            .get(ids=["f1"])
        )
        assert got["documents"] == ["prefers tea"]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
