"""Prometheus helpers: one registry per process, histograms with sensible buckets.

Use :func:`registry` for every metric so tests can read a process's metrics without the
default global registry's surprises, and :func:`start_metrics_server` for services that
expose ``/metrics`` on their own port (the gateway too when ``GATEWAY__METRICS_PORT`` is set;
otherwise it mounts ``/metrics`` in FastAPI).
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Mapping
from typing import Any, TypeVar
from wsgiref.simple_server import WSGIServer

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    start_http_server,
)

#: seconds; from sub-millisecond Redis calls to multi-second LLM answers
LATENCY_BUCKETS = (
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
    60.0,
)
#: tokens per request
TOKEN_BUCKETS = (16, 64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384, 32768)

_REGISTRY = CollectorRegistry(auto_describe=True)


def registry() -> CollectorRegistry:
    """The process-wide registry every Mnemo metric is registered in."""
    return _REGISTRY


def counter(name: str, doc: str, labels: tuple[str, ...] = ()) -> Counter:
    return _get_or_create(Counter, name, doc, labels)


def counters(*rows: tuple[str, str, tuple[str, ...]]) -> tuple[Counter, ...]:
    """Several counters from a table of (name, doc, labels) rows, in order."""
    return tuple(counter(*row) for row in rows)


def gauge(name: str, doc: str, labels: tuple[str, ...] = ()) -> Gauge:
    return _get_or_create(Gauge, name, doc, labels)


def histogram(
    name: str,
    doc: str,
    labels: tuple[str, ...] = (),
    buckets: tuple[float, ...] = LATENCY_BUCKETS,
) -> Histogram:
    return _get_or_create(Histogram, name, doc, labels, buckets=buckets)


_M = TypeVar("_M", Counter, Gauge, Histogram)


def _get_or_create(
    kind: type[_M], name: str, doc: str, labels: tuple[str, ...], **kwargs: Any
) -> _M:
    # Re-importing a module (tests, reloads) must return the same collector, not raise.
    existing = _REGISTRY._names_to_collectors.get(name)
    if existing is None and kind is Counter:
        existing = _REGISTRY._names_to_collectors.get(name + "_total")
    if existing is not None:
        if not isinstance(existing, kind):
            raise ValueError(f"metric {name} is already registered as another kind")
        return existing
    return kind(name, doc, labelnames=labels, registry=_REGISTRY, **kwargs)


def render_latest() -> tuple[bytes, str]:
    """Metrics in the Prometheus text format and its content type."""
    return generate_latest(_REGISTRY), CONTENT_TYPE_LATEST


def start_metrics_server(
    port: int,
    addr: str = "127.0.0.1",
    routes: Mapping[str, Callable[[], tuple[int, str]]] | None = None,
) -> WSGIServer:
    """Serve ``/metrics`` for this process's registry on its own HTTP port (a daemon
    thread). ``routes``: more paths (e.g. ``/livez``), each answered with the (status, text
    body) its function returns. ``shutdown()`` then ``server_close()`` on the returned server
    stop it and free the port; processes that serve until they exit can ignore it."""
    if not routes:
        server, _thread = start_http_server(port, addr=addr, registry=_REGISTRY)
        return server
    from http import HTTPStatus
    from wsgiref.simple_server import WSGIRequestHandler, make_server

    from prometheus_client import make_wsgi_app
    from prometheus_client.exposition import ThreadingWSGIServer

    metrics_app = make_wsgi_app(_REGISTRY)
    extra = dict(routes)

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        check = extra.get(environ.get("PATH_INFO", ""))
        if check is None:
            return metrics_app(environ, start_response)
        status, body = check()
        start_response(
            f"{status} {HTTPStatus(status).phrase}",
            [("Content-Type", "text/plain; charset=utf-8")],
        )
        return [body.encode()]

    class _Quiet(WSGIRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

    class _Server(ThreadingWSGIServer):
        address_family = socket.getaddrinfo(addr, port, type=socket.SOCK_STREAM)[0][0]

    server = make_server(addr, port, app, _Server, handler_class=_Quiet)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server
