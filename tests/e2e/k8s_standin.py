"""A stand-in Kubernetes API server for the e2e helpers: real HTTP, the few paths
e2e_support.py uses, bearer-token authentication, and the Service proxy forwarding to a
real gateway — so `make test` runs the same helpers (and the e2e tests themselves) that
`make e2e` runs on a cluster.

What it emulates, as the real API server does it:

* every request must carry the kubeconfig's ``Authorization: Bearer <token>`` (401 Status
  otherwise); a proxied request then loses that header (kube-apiserver deletes it after
  authenticating), so a gateway credential must travel in another header;
* ``GET`` namespace, Deployment, StatefulSet, ConfigMap, Secret by name (404 Status when
  absent); pods listed by ``labelSelector`` and deleted by name — the workload's controller
  replaces a deleted pod with a new uid;
* ``/api/v1/namespaces/{ns}/services/{name}:{port}/proxy/{path}``: the request forwarded to
  the Service's backend URL with its method, body and remaining headers; the backend's
  status and body are returned unchanged.
"""

from __future__ import annotations

import base64
import json
import re
import threading
import urllib.error
import urllib.request
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import yaml

HOP_HEADERS = {"host", "authorization", "connection", "content-length", "accept-encoding"}


def _status(code: int, reason: str, message: str) -> dict[str, Any]:
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "status": "Failure",
        "code": code,
        "reason": reason,
        "message": message,
    }


class StandInApiServer:
    """Objects of one namespace, served over HTTP on a free loopback port."""

    def __init__(self, *, namespace: str, token: str) -> None:
        self.namespace = namespace
        self.token = token
        self.objects: dict[str, dict[str, dict[str, Any]]] = {
            k: {} for k in ("deployments", "statefulsets", "configmaps", "secrets")
        }
        self.pods: dict[str, dict[str, Any]] = {}
        #: Service name -> backend base URL (the proxy's target)
        self.services: dict[str, str] = {}
        self.requests: list[tuple[str, str, bool]] = []  # (method, path, authenticated)
        self.deleted: list[str] = []
        self.proxied_headers: list[dict[str, str]] = []
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None

    # --- objects -------------------------------------------------------------------------

    def add_workload(self, kind: str, name: str, labels: dict[str, str], **pod: Any) -> None:
        """A Deployment or StatefulSet with one ready pod (``pod``: extra pod spec fields)."""
        spec = {"containers": [{"name": name, "image": f"{name}:standin"}], **pod}
        self.objects["deployments" if kind == "Deployment" else "statefulsets"][name] = {
            "apiVersion": "apps/v1",
            "kind": kind,
            "metadata": {"name": name, "namespace": self.namespace, "generation": 1},
            "spec": {
                "replicas": 1,
                "selector": {"matchLabels": labels},
                "template": {"metadata": {"labels": labels}, "spec": spec},
                **({"serviceName": name} if kind == "StatefulSet" else {}),
            },
            "status": {
                "replicas": 1,
                "readyReplicas": 1,
                "updatedReplicas": 1,
                "observedGeneration": 1,
            },
        }
        self._new_pod(name, labels)

    def add_configmap(self, name: str, data: dict[str, str]) -> None:
        self.objects["configmaps"][name] = {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": name},
            "data": data,
        }

    def add_secret(self, name: str, data: dict[str, str]) -> None:
        encoded = {k: base64.b64encode(v.encode()).decode() for k, v in data.items()}
        self.objects["secrets"][name] = {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": name},
            "data": encoded,
        }

    def _new_pod(self, owner: str, labels: dict[str, str]) -> None:
        name = f"{owner}-{uuid.uuid4().hex[:5]}"
        self.pods[name] = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                "name": name,
                "uid": str(uuid.uuid4()),
                "labels": dict(labels),
                "namespace": self.namespace,
                "annotations": {"owner": owner},
            },
            "spec": {"containers": [{"name": owner, "image": f"{owner}:standin"}]},
        }

    # --- server --------------------------------------------------------------------------

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> StandInApiServer:
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:  # quiet
                pass

            def _any(self) -> None:
                owner._handle(self)

            do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _any

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def write_kubeconfig(self, path: Path) -> Path:
        path.write_text(
            yaml.safe_dump(
                {
                    "apiVersion": "v1",
                    "kind": "Config",
                    "clusters": [{"name": "standin", "cluster": {"server": self.url}}],
                    "users": [{"name": "e2e", "user": {"token": self.token}}],
                    "contexts": [
                        {"name": "standin", "context": {"cluster": "standin", "user": "e2e"}}
                    ],
                    "current-context": "standin",
                }
            )
        )
        return path

    # --- requests ------------------------------------------------------------------------

    def _handle(self, h: BaseHTTPRequestHandler) -> None:
        parts = urlsplit(h.path)
        length = int(h.headers.get("content-length") or 0)
        body = h.rfile.read(length) if length else b""
        authed = h.headers.get("authorization") == f"Bearer {self.token}"
        with self._lock:
            self.requests.append((h.command, parts.path, authed))
        if not authed:
            return self._send(h, 401, _status(401, "Unauthorized", "Unauthorized"))
        ns = re.escape(self.namespace)
        proxy = re.fullmatch(
            rf"/api/v1/namespaces/{ns}/services/([^/:]+):[^/]+/proxy(/.*)?", parts.path
        )
        if proxy:
            return self._proxy(h, proxy.group(1), (proxy.group(2) or "/"), parts.query, body)
        if h.command == "GET" and parts.path == f"/api/v1/namespaces/{self.namespace}":
            return self._send(
                h,
                200,
                {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": self.namespace}},
            )
        m = re.fullmatch(
            rf"/(?:api/v1|apis/apps/v1)/namespaces/{ns}/(\w+)(?:/([^/]+))?", parts.path
        )
        if m is None:
            return self._send(h, 404, _status(404, "NotFound", f"no route {parts.path}"))
        resource, name = m.groups()
        if resource == "pods" and name is None and h.command == "GET":
            return self._list_pods(h, parse_qs(parts.query).get("labelSelector", [""])[0])
        if resource == "pods" and name and h.command == "DELETE":
            return self._delete_pod(h, name)
        obj = self.objects.get(resource, {}).get(name or "")
        if h.command != "GET" or obj is None:
            return self._send(h, 404, _status(404, "NotFound", f'{resource} "{name}" not found'))
        return self._send(h, 200, obj)

    def _list_pods(self, h: BaseHTTPRequestHandler, selector: str) -> None:
        want = dict(p.split("=", 1) for p in selector.split(",") if p)
        with self._lock:
            items = [
                p
                for p in self.pods.values()
                if all(p["metadata"]["labels"].get(k) == v for k, v in want.items())
            ]
        self._send(h, 200, {"apiVersion": "v1", "kind": "PodList", "metadata": {}, "items": items})

    def _delete_pod(self, h: BaseHTTPRequestHandler, name: str) -> None:
        with self._lock:
            pod = self.pods.pop(name, None)
            if pod is None:
                return self._send(h, 404, _status(404, "NotFound", f'pods "{name}" not found'))
            self.deleted.append(name)
            # the ReplicaSet / StatefulSet controller: a replacement with a new uid
            self._new_pod(pod["metadata"]["annotations"]["owner"], pod["metadata"]["labels"])
        self._send(h, 200, pod)

    def _proxy(
        self, h: BaseHTTPRequestHandler, service: str, path: str, query: str, body: bytes
    ) -> None:
        base = self.services.get(service)
        if base is None:
            return self._send(h, 404, _status(404, "NotFound", f'services "{service}" not found'))
        # kube-apiserver deletes the Authorization header once it has authenticated the call
        headers = {k: v for k, v in h.headers.items() if k.lower() not in HOP_HEADERS}
        with self._lock:
            self.proxied_headers.append({k.lower(): v for k, v in headers.items()})
        url = base + path + (f"?{query}" if query else "")
        request = urllib.request.Request(url, data=body or None, method=h.command, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=60) as resp:
                status, raw, ctype = resp.status, resp.read(), resp.headers.get("content-type")
        except urllib.error.HTTPError as exc:
            status, raw, ctype = exc.code, exc.read(), exc.headers.get("content-type")
        self._send_raw(h, status, raw, ctype or "application/octet-stream")

    def _send(self, h: BaseHTTPRequestHandler, status: int, doc: dict[str, Any]) -> None:
        self._send_raw(h, status, json.dumps(doc).encode(), "application/json")

    @staticmethod
    def _send_raw(h: BaseHTTPRequestHandler, status: int, raw: bytes, ctype: str) -> None:
        h.send_response(status)
        h.send_header("content-type", ctype)
        h.send_header("content-length", str(len(raw)))
        h.end_headers()
        h.wfile.write(raw)
