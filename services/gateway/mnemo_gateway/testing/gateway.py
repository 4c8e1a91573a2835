"""A real chat gateway for tests: uvicorn on a free port, in a background thread.

* :class:`GatewayServer` — ``GatewayServer(settings).start()`` serves
  ``mnemo_gateway.main.create_app(settings)`` over real HTTP at ``.url``; ``stop()``.
* :func:`gateway_settings` — ``GatewaySettings`` for tests: the LLM pointed at a fake server
  (``fake_anthropic`` by default), the memory service at ``memory_addr`` (``None`` = memory
  disabled), ``.env`` and the process environment's LLM keys ignored.
* fixture ``gateway_factory`` — ``gateway_factory(memory_addr=..., **overrides)`` starts a
  gateway (stopped after the test) wired to ``fake_anthropic``; overrides are
  ``GATEWAY__*``/``AUTH__*``-style nested dicts, e.g. ``auth={"mode": "jwt", ...}``.
* fixture ``gateway`` — the common case: a gateway wired to the ``memory_server`` fixture and
  ``fake_anthropic``, auth ``none``. Function-scoped so breaker state never leaks.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import pytest
from mnemo_common.testing import wire_registry
from mnemo_common.testing.procs import free_port, port_open, wait_for

if TYPE_CHECKING:
    from mnemo_common.llm import LLMProvider

    from mnemo_gateway.core.config import GatewaySettings

__all__ = ["GatewayServer", "gateway", "gateway_factory", "gateway_settings"]


class GatewayServer:
    """The gateway app served by uvicorn in a daemon thread."""

    def __init__(self, settings: GatewaySettings, *, provider: LLMProvider | None = None) -> None:
        self.settings = settings
        self.provider = provider
        self.port: int = settings.gateway.port
        self._server: Any = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> GatewayServer:
        import uvicorn

        from mnemo_gateway.main import SERVER_HTTP, SERVER_LOOP, create_app

        app = create_app(self.settings, provider=self.provider)
        config = uvicorn.Config(
            app,
            host="127.0.0.1",
            port=self.port,
            log_config=None,
            access_log=False,
            lifespan="on",
            timeout_graceful_shutdown=2,
            loop=SERVER_LOOP,
            http=SERVER_HTTP,
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, name=f"gateway-{self.port}", daemon=True
        )
        self._thread.start()
        try:
            wait_for(
                lambda: self._server.started and port_open(self.port),
                20,
                f"gateway on port {self.port}",
            )
        except TimeoutError:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)
        self._server = None
        self._thread = None


def gateway_settings(llm_fake: Any, memory_addr: str | None, **overrides: Any) -> GatewaySettings:
    """``GatewaySettings`` for a test gateway (see the module docstring)."""
    from mnemo_common.settings import LLMSettings

    from mnemo_gateway.core.config import AuthSettings, GatewayServerSettings, GatewaySettings

    gw: dict[str, Any] = {
        "host": "127.0.0.1",
        "port": free_port(),
        "memory_enabled": memory_addr is not None,
        "memory_addr": memory_addr or "127.0.0.1:1",
        # the test memory service's wire, as a deployment's gateway uses it (ADR 0032)
        "memory_wire_addr": wire_registry.wire_address_for(memory_addr),
        "memory_timeout_s": 20.0,
        "breaker_failures": 3,
        "breaker_cooldown_s": 1.0,
    }
    gw.update(overrides.pop("gateway", {}))
    llm_env = llm_fake.env(**overrides.pop("llm", {})) if llm_fake is not None else {}
    llm = {k[len("LLM__") :].lower(): v for k, v in llm_env.items() if k.startswith("LLM__")}
    if llm_fake is None:
        llm = {"provider": "offline"}
    return GatewaySettings(
        _env_file=None,
        anthropic_api_key=llm_env.get("ANTHROPIC_API_KEY"),
        llm=LLMSettings(**llm),
        gateway=GatewayServerSettings(**gw),
        auth=AuthSettings(**overrides.pop("auth", {})),
        **overrides,
    )


@pytest.fixture
def gateway_factory(fake_anthropic: Any) -> Iterator[Callable[..., GatewayServer]]:
    """Start gateways wired to ``fake_anthropic`` (pass ``llm_fake=`` to pick another)."""
    started: list[GatewayServer] = []

    def start(
        memory_addr: str | None = None,
        *,
        llm_fake: Any = fake_anthropic,
        provider: Any = None,
        **overrides: Any,
    ) -> GatewayServer:
        settings = gateway_settings(llm_fake, memory_addr, **overrides)
        server = GatewayServer(settings, provider=provider).start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


@pytest.fixture
def gateway(gateway_factory: Callable[..., GatewayServer], memory_server: Any) -> GatewayServer:
    """A gateway on real HTTP, wired to the ``memory_server`` fixture and ``fake_anthropic``."""
    return gateway_factory(memory_server.address)
