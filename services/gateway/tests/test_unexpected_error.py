"""An unexpected exception is a JSON 500 that carries the request id (header and log)."""

from __future__ import annotations

import json
import logging
import re

import pytest
from mnemo_common.logging import JsonFormatter
from mnemo_gateway.main import create_app
from mnemo_gateway.testing.gateway import gateway_settings
from starlette.testclient import TestClient


class _Lines(logging.Handler):
    """Formats each record at emit time, as the gateway's log handler does."""

    def __init__(self) -> None:
        super().__init__()
        self.setFormatter(JsonFormatter("gateway"))
        self.lines: list[dict] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(json.loads(self.format(record)))


@pytest.fixture
def client():
    app = create_app(gateway_settings(None, None))

    @app.get("/test-only/boom")
    async def boom() -> None:
        raise RuntimeError("kaboom")

    handler = _Lines()
    logger = logging.getLogger("mnemo_gateway")
    logger.addHandler(handler)
    try:
        with TestClient(app, raise_server_exceptions=False) as test_client:
            test_client.log_lines = handler.lines  # type: ignore[attr-defined]
            yield test_client
    finally:
        logger.removeHandler(handler)


@pytest.mark.parametrize("sent", ["boom-req-1", None])
def test_500_has_the_request_id_in_header_and_log(client, sent):
    r = client.get("/test-only/boom", headers={"X-Request-Id": sent} if sent else {})
    assert r.status_code == 500
    assert r.json()["error"]["code"] == "internal_error"
    rid = r.headers["x-request-id"]
    assert rid == sent if sent else re.fullmatch(r"[0-9a-f]{32}", rid)
    errors = [line for line in client.log_lines if line["level"] == "error"]
    assert len(errors) == 1
    assert errors[0]["request_id"] == rid
    assert "kaboom" in errors[0]["exc"]
    # the gateway keeps serving
    assert client.get("/healthz").status_code == 200
