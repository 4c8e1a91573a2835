"""Security headers on every answer, and HEAD wherever GET is (a real gateway over HTTP)."""

from __future__ import annotations

import re

import httpx
import pytest

PAGES = ("/", "/docs")


@pytest.fixture
def gw(gateway_factory, memory_server):
    return gateway_factory(memory_server.address, llm_fake=None)


def _get_paths(base: str) -> list[str]:
    """Every GET path of the OpenAPI document (ids filled in) and the pages."""
    doc = httpx.get(base + "/openapi.json").json()
    paths = [re.sub(r"\{[^}]+\}", "x1", p) for p, ops in doc["paths"].items() if "get" in ops]
    paths = [p.replace("/users/x1", "/users/ada") for p in paths]
    return [*paths, *PAGES, "/docs/init.js", "/docs/assets/swagger-ui.css", "/static/app.js"]


def test_head_is_answered_on_every_get_route(gw):
    paths = _get_paths(gw.url)
    assert len(paths) > 15
    with httpx.Client(base_url=gw.url, timeout=30) as http:
        for path in paths:
            got, head = http.get(path), http.head(path)
            assert head.status_code == got.status_code != 405, path
            assert head.content == b"", path
            assert head.headers.get("content-type") == got.headers.get("content-type"), path
            if "content-length" in got.headers:
                assert head.headers["content-length"] == got.headers["content-length"], path
        # a route without GET still says so
        assert http.head("/v1/chat").status_code == 405
        # a 405 names every method of the path (two routes here), HEAD with GET
        for method, path, allow in (
            ("TRACE", "/v1/users/ada/memories", "GET, HEAD, POST"),
            ("PUT", "/v1/info", "GET, HEAD"),
            ("GET", "/v1/chat", "POST"),
            ("POST", "/v1/users/ada/memories/m1", "DELETE, PATCH"),
        ):
            r = http.request(method, path)
            assert r.status_code == 405, (method, path)
            assert r.headers["allow"] == allow, (method, path)
            assert r.json()["error"]["code"] == "method_not_allowed"


def test_security_headers_on_pages_api_and_errors(gw):
    with httpx.Client(base_url=gw.url, timeout=30) as http:
        for path in PAGES:
            r = http.get(path)
            assert r.status_code == 200, path
            csp = r.headers["content-security-policy"]
            assert "default-src 'self'" in csp and "script-src 'self'" in csp, path
            assert "frame-ancestors 'none'" in csp and "unsafe-eval" not in csp, path
            assert "'unsafe-inline'" not in csp.split("script-src")[1].split(";")[0], path
        for r in (
            http.get("/v1/info"),
            http.get("/v1/users/a:b/memories"),  # 422
            http.get("/nowhere"),  # 404
            http.post("/v1/chat", content=b"{", headers={"content-type": "application/json"}),
        ):
            assert (
                r.headers["content-security-policy"] == "default-src 'none'; frame-ancestors 'none'"
            )
        for r in (http.get("/"), http.get("/v1/info"), http.get("/nowhere")):
            assert r.headers["x-frame-options"] == "DENY"
            assert r.headers["x-content-type-options"] == "nosniff"
            assert r.headers["referrer-policy"] == "no-referrer"


def test_docs_page_loads_only_local_assets(gw):
    with httpx.Client(base_url=gw.url, timeout=30) as http:
        page = http.get("/docs").text
        assert "<script>" not in page  # no inline script: the CSP forbids it
        srcs = re.findall(r'(?:src|href)="([^"]+)"', page)
        assert srcs and all(s.startswith("/docs/") for s in srcs), srcs
        for src in srcs:
            assert http.get(src).status_code == 200, src
        assert "SwaggerUIBundle" in http.get("/docs/assets/swagger-ui-bundle.js").text[:5000]
        assert http.get("/redoc").status_code == 404  # its page needed a CDN: not served
