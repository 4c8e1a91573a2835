"""Entry point of ``mnemo-memory worker``: the extraction worker process."""

from __future__ import annotations

import asyncio
import logging
import signal
from typing import TYPE_CHECKING, Any

from mnemo_common import metrics
from mnemo_common.logging import configure_logging

from .extract import ExtractiveSummarizer, LLMExtractor, LLMSummarizer, RuleExtractor
from .liveness import Heartbeat
from .tasks import TaskContext

if TYPE_CHECKING:
    from mnemo_common.llm import LLMProvider

    from mnemo_memory.config import MemoryServiceSettings
    from mnemo_memory.longterm.service import LongTermMemory
    from mnemo_memory.stores.shortterm import ShortTermStores

log = logging.getLogger(__name__)


def build_context(
    settings: MemoryServiceSettings,
    redis: Any,
    longterm: LongTermMemory,
    provider: LLMProvider | None,
    *,
    stores: ShortTermStores | None = None,
) -> TaskContext:
    """Handlers' context: LLM extractor/summariser, or the deterministic offline ones; the
    ThreadStore is ``stores``' (else built on ``redis`` as the server builds its own)."""
    from mnemo_memory.stores.redis_client import target_from_settings
    from mnemo_memory.stores.shortterm import build_stores

    if stores is None:
        stores = build_stores(
            settings, redis, inline_global=target_from_settings(settings).cross_slot_ok
        )
    threads = stores.threads
    if provider is None or provider.name == "offline":
        extractor: Any = RuleExtractor()
        summarizer: Any = ExtractiveSummarizer(settings.worker.offline_summary_chars)
    else:
        extractor = LLMExtractor(provider, settings.llm.max_tokens)
        summarizer = LLMSummarizer(provider, settings.llm.max_tokens)
    return TaskContext(
        threads=threads,
        longterm=longterm,
        extractor=extractor,
        summarizer=summarizer,
        policy=settings.memory,
    )


async def serve(
    settings: MemoryServiceSettings,
    *,
    install_signals: bool = True,
    heartbeat: Heartbeat | None = None,
) -> int:
    from mnemo_common.llm import build_provider

    from mnemo_memory.runtime import build_runtime, build_worker

    runtime = build_runtime(settings)
    longterm = runtime.longterm
    assert longterm is not None  # build_runtime's default: the configured long-term memory
    provider = build_provider(settings)
    worker = build_worker(settings, runtime.stores, longterm, provider, heartbeat)
    if install_signals:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, worker.request_stop)
    # the model loads in its own thread; a store that is down now is waited for per job
    await longterm.embedder.aload()
    try:
        await worker.run()
    finally:
        await runtime.aclose()
        await provider.aclose()
        longterm.embedder.close()
    return 0


def run(settings: MemoryServiceSettings) -> int:
    """Run the worker until SIGTERM (finishing the current job); returns the exit code."""
    configure_logging("mnemo-worker", settings.log.level, settings.log.json_format)
    heartbeat = Heartbeat(settings.worker.liveness_timeout_s)
    if settings.worker.metrics_port:
        # /livez follows the consumer loop, not this metrics thread (worker/liveness.py)
        metrics.start_metrics_server(
            settings.worker.metrics_port,
            settings.worker.metrics_host,
            routes={"/livez": heartbeat.status},
        )
    log.info(
        "starting worker",
        extra={
            "metrics_port": settings.worker.metrics_port,
            "llm_provider": settings.llm_provider.value,
            "vector_backend": settings.vector.backend,
        },
    )
    return asyncio.run(serve(settings, heartbeat=heartbeat))
