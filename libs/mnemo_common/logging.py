"""Structured JSON logging, configured once per process.

Every record is one JSON object on stderr with ``ts``, ``level``, ``logger``, ``msg`` and
any ``extra={...}`` fields; the request id of the current request (a context variable set
by the servers) is added automatically. Secrets must never be passed to a logger.
"""

from __future__ import annotations

import contextvars
import json
import logging
import sys
import time
from typing import Any

#: request id of the request being served (gRPC metadata ``x-request-id`` / HTTP header)
request_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "mnemo_request_id", default=None
)

_STANDARD_ATTRS = frozenset(
    vars(logging.LogRecord("x", logging.INFO, "x", 0, "x", None, None)).keys()
) | {"message", "asctime", "taskName"}

_configured = False


class JsonFormatter(logging.Formatter):
    """One JSON object per line; extras become top-level fields."""

    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "service": self.service,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        rid = request_id_var.get()
        if rid:
            doc["request_id"] = rid
        for key, value in record.__dict__.items():
            if key not in _STANDARD_ATTRS and not key.startswith("_"):
                doc[key] = value
        if record.exc_info:
            doc["exc"] = self.formatException(record.exc_info)
        return json.dumps(doc, default=str, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    """Readable single-line logs for a terminal (``LOG__JSON=false``)."""

    def __init__(self, service: str) -> None:
        super().__init__("%(asctime)s %(levelname)-7s " + service + " %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        extras = {
            k: v
            for k, v in record.__dict__.items()
            if k not in _STANDARD_ATTRS and not k.startswith("_")
        }
        rid = request_id_var.get()
        if rid:
            extras["request_id"] = rid
        if extras:
            line += " " + " ".join(f"{k}={v}" for k, v in extras.items())
        return line


def configure_logging(service: str, level: str = "INFO", json_format: bool = True) -> None:
    """Install the root handler once; later calls only change the level."""
    global _configured
    root = logging.getLogger()
    root.setLevel(level.upper())
    if _configured:
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter(service) if json_format else TextFormatter(service))
    root.handlers[:] = [handler]
    # chatty libraries
    for noisy in ("httpx", "httpcore", "chromadb", "urllib3", "sentence_transformers"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
    _configured = True
