"""``mnemo-gateway``: the chat gateway on ``GATEWAY__HOST``:``GATEWAY__PORT``."""

from __future__ import annotations

import sys

import uvicorn
from mnemo_common.logging import configure_logging
from mnemo_common.settings import SettingsError

from .core.config import get_settings


def main() -> int:
    try:
        settings = get_settings()
    except SettingsError as exc:
        sys.stderr.write(f"mnemo-gateway: {exc}\n")
        return 2
    configure_logging("gateway", settings.log.level, settings.log.json_format)
    from .main import SERVER_HTTP, SERVER_LOOP, create_app

    uvicorn.run(
        create_app(settings),
        host=settings.gateway.host,
        port=settings.gateway.port,
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=10,
        proxy_headers=True,
        server_header=False,
        loop=SERVER_LOOP,
        http=SERVER_HTTP,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
