"""Talking to a live cluster for the e2e suite: the gateway through the API server's Service
proxy (no port-forward, works from anywhere the kubeconfig works), pod deletion, rollouts."""

from __future__ import annotations

import base64
import json
import os
import time
from dataclasses import dataclass
from typing import Any

NAMESPACE = os.environ.get("MNEMO_E2E_NAMESPACE", "mnemo")
RELEASE = os.environ.get("MNEMO_E2E_RELEASE", "mnemo")
#: seconds a rollout may take after a pod is deleted (image already on the node)
ROLLOUT_TIMEOUT_S = float(os.environ.get("MNEMO_E2E_ROLLOUT_TIMEOUT_S", "300"))


def cluster_or_reason() -> tuple[Any | None, str]:
    """An ApiClient for the current kube context, or why there is none."""
    try:
        from kubernetes import client, config
    except ImportError as exc:  # pragma: no cover - installed with the dev extras
        return None, f"kubernetes client not installed: {exc}"
    try:
        # KUBECONFIG as of now (the client reads it once, at import)
        config.load_kube_config(config_file=os.environ.get("KUBECONFIG"))
    except Exception as exc:
        try:
            config.load_incluster_config()
        except Exception:
            return None, f"no Kubernetes cluster configured (no kubeconfig: {exc})"
    api = client.ApiClient()
    try:
        client.CoreV1Api(api).read_namespace(NAMESPACE, _request_timeout=5)
    except Exception as exc:
        status = getattr(exc, "status", None)
        if status == 404:
            return None, (
                f"cluster reachable but namespace {NAMESPACE!r} does not exist: "
                "deploy Mnemo first (make kind-up deploy)"
            )
        return None, f"Kubernetes cluster not reachable: {exc.__class__.__name__}: {exc}"
    return api, ""


@dataclass
class Cluster:
    api: Any

    @property
    def core(self) -> Any:
        from kubernetes import client

        return client.CoreV1Api(self.api)

    @property
    def apps(self) -> Any:
        from kubernetes import client

        return client.AppsV1Api(self.api)

    def name(self, component: str) -> str:
        return f"{RELEASE}-{component}" if "mnemo" in RELEASE else f"{RELEASE}-mnemo-{component}"

    def selector(self, component: str) -> str:
        return f"app.kubernetes.io/instance={RELEASE},app.kubernetes.io/component={component}"

    # --- workloads -----------------------------------------------------------------------

    def workload(self, component: str) -> Any:
        name = self.name(component)
        if component in ("redis", "chroma"):
            return self.apps.read_namespaced_stateful_set(name, NAMESPACE)
        return self.apps.read_namespaced_deployment(name, NAMESPACE)

    def wait_ready(self, component: str, timeout_s: float = ROLLOUT_TIMEOUT_S) -> None:
        deadline = time.monotonic() + timeout_s
        while True:
            w = self.workload(component)
            want = w.spec.replicas if w.spec.replicas is not None else 1
            st = w.status
            ready = (st.ready_replicas or 0) >= want and (st.updated_replicas or 0) >= want
            if ready and (st.observed_generation or 0) >= w.metadata.generation:
                return
            if time.monotonic() > deadline:
                raise AssertionError(f"{component} not ready after {timeout_s}s: {st}")
            time.sleep(2)

    def delete_pods(self, component: str) -> list[str]:
        pods = self.core.list_namespaced_pod(NAMESPACE, label_selector=self.selector(component))
        names = [p.metadata.name for p in pods.items]
        for name in names:
            self.core.delete_namespaced_pod(name, NAMESPACE, grace_period_seconds=30)
        # wait until the old pods are gone, so readiness below is the new pods'
        deadline = time.monotonic() + ROLLOUT_TIMEOUT_S
        uids = {p.metadata.uid for p in pods.items}
        while True:
            now = self.core.list_namespaced_pod(NAMESPACE, label_selector=self.selector(component))
            if not uids & {p.metadata.uid for p in now.items}:
                return names
            if time.monotonic() > deadline:
                raise AssertionError(f"old {component} pods still present")
            time.sleep(2)

    # --- the gateway, through the API server's Service proxy ------------------------------

    def auth_headers(self) -> dict[str, str]:
        cm = self.core.read_namespaced_config_map(self.name("gateway"), NAMESPACE)
        mode = (cm.data or {}).get("AUTH__MODE", "none")
        if mode == "none":
            return {}
        if mode != "api-key":
            raise AssertionError(f"e2e supports AUTH__MODE none or api-key, not {mode}")
        deployment = self.workload("gateway")
        secret_name = next(
            v.secret.secret_name
            for v in deployment.spec.template.spec.volumes
            if v.secret is not None
        )
        secret = self.core.read_namespaced_secret(secret_name, NAMESPACE)
        key = base64.b64decode(secret.data["api-keys"]).decode().split()[0]
        # not Authorization: the API server authenticates the proxied call with that header
        # (the kubeconfig's credentials) and deletes it before forwarding
        return {"x-api-key": key}

    def gateway(
        self, method: str, path: str, body: Any = None, retry_for_s: float = 0
    ) -> tuple[int, Any]:
        """(status, parsed JSON) of a request to the gateway Service."""
        from kubernetes.client.exceptions import ApiException

        url = (
            f"/api/v1/namespaces/{NAMESPACE}/services/{self.name('gateway')}:http/proxy"
            f"/{path.lstrip('/')}"
        )
        headers = {
            "Content-Type": "application/json",
            "Accept": "application/json",
            **self.auth_headers(),
        }
        deadline = time.monotonic() + retry_for_s
        while True:
            try:
                status, raw = self._request(method, url, headers, body)
            except ApiException as exc:  # no HTTP answer at all (connection, TLS)
                status, raw = exc.status, exc.body
            if 0 < status < 500 or time.monotonic() > deadline:
                try:
                    return status, json.loads(raw or b"null")
                except ValueError:
                    return status, raw
            time.sleep(2)

    def _request(
        self, method: str, path: str, headers: dict[str, str], body: Any
    ) -> tuple[int, bytes]:
        """One raw request to the API server with the kubeconfig's credentials.

        The pinned client (kubernetes 37, openapi-generator 7): ``param_serialize`` adds the
        host and the ``BearerToken`` auth, ``call_api`` sends it and returns the unread
        response for any status (it raises only when no answer came)."""
        method, url, headers, body, post = self.api.param_serialize(
            method, path, header_params=headers, body=body, auth_settings=["BearerToken"]
        )
        resp = self.api.call_api(
            method, url, header_params=headers, body=body, post_params=post, _request_timeout=60
        )
        return int(resp.status), resp.read()
