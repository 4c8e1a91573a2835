"""pytest plugin of the gateway's fixtures (``-p mnemo_gateway.testing.plugin``, registered
in the root pyproject.toml): ``gateway_factory`` and ``gateway`` (:mod:`.gateway`). They
build on ``fake_anthropic`` (``mnemo_common.testing.plugin``) and ``memory_server``
(``mnemo_memory.testing.plugin``)."""

from .gateway import *  # noqa: F403
