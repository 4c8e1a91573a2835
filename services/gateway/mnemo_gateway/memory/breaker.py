"""Circuit breakers for the memory service, one per failure domain (ADR 0014).

Closed: calls go through; ``failure_threshold`` consecutive failures open it.
Open: calls fail at once (no waiting on a dead service) until ``cooldown_s`` has passed.
Half-open: one probe call goes through; success closes the breaker, failure re-opens it.

:class:`BreakerSet` holds the domains: ``service`` (the memory service not answering at
all: every caller shares it) and one ``store`` breaker per (RPC method, user) for failures
the service itself reported (its Redis shard or vector store failing for that request):
they stop that user's calls of that kind only, never everybody's.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from enum import IntEnum


class BreakerState(IntEnum):
    CLOSED = 0
    OPEN = 1
    HALF_OPEN = 2


class CircuitBreaker:
    """Counts consecutive failures; thread-unsafe by design (one asyncio loop)."""

    def __init__(
        self,
        failure_threshold: int,
        cooldown_s: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        on_change: Callable[[BreakerState], None] | None = None,
    ) -> None:
        self.failure_threshold = failure_threshold
        self.cooldown_s = cooldown_s
        self._clock = clock
        self._on_change = on_change
        self._state = BreakerState.CLOSED
        self._failures = 0
        self._opened_at = 0.0
        self._probe_in_flight = False

    @property
    def state(self) -> BreakerState:
        if self._state is BreakerState.OPEN and self._clock() - self._opened_at >= self.cooldown_s:
            self._set(BreakerState.HALF_OPEN)
        return self._state

    @property
    def probe_in_flight(self) -> bool:
        """A half-open probe was admitted and has not finished yet."""
        return self._probe_in_flight

    def allow(self) -> bool:
        """True when a call may be attempted now."""
        state = self.state
        if state is BreakerState.CLOSED:
            return True
        if state is BreakerState.HALF_OPEN and not self._probe_in_flight:
            self._probe_in_flight = True
            return True
        return False

    def record_success(self) -> None:
        self._failures = 0
        self._probe_in_flight = False
        if self._state is not BreakerState.CLOSED:
            self._set(BreakerState.CLOSED)

    def record_failure(self) -> None:
        self._probe_in_flight = False
        self._failures += 1
        if self._state is BreakerState.HALF_OPEN or self._failures >= self.failure_threshold:
            self._opened_at = self._clock()
            self._set(BreakerState.OPEN)

    def release(self) -> None:
        """A call finished with an answer that says nothing about health (e.g. 404)."""
        if self._state is BreakerState.HALF_OPEN:
            self.record_success()

    def abandon(self) -> None:
        """A call failed before reaching the service (says nothing about its health): the
        half-open probe slot is free again, the state is unchanged."""
        self._probe_in_flight = False

    def _set(self, state: BreakerState) -> None:
        if state is not self._state:
            self._state = state
            if self._on_change is not None:
                self._on_change(state)


class BreakerSet:
    """The ``service`` breaker plus bounded per-(method, user) ``store`` breakers.

    Store breakers are created on a user's first reported failure and dropped once they
    close again; at most ``max_store_domains`` are kept (least recently failed evicted).
    """

    def __init__(
        self,
        failure_threshold: int,
        cooldown_s: float,
        *,
        max_store_domains: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
        on_change: Callable[[BreakerState], None] | None = None,
    ) -> None:
        self.failure_threshold = failure_threshold
        self.cooldown_s = cooldown_s
        self.max_store_domains = max_store_domains
        self._clock = clock
        self.service = CircuitBreaker(
            failure_threshold, cooldown_s, clock=clock, on_change=on_change
        )
        self._stores: OrderedDict[tuple[str, str], CircuitBreaker] = OrderedDict()

    def open_store_domains(self) -> int:
        """Store domains whose breaker is open or half-open now."""
        return sum(1 for b in self._stores.values() if b.state is not BreakerState.CLOSED)

    def allow(self, method: str, user: str) -> str | None:
        """None when a call may go now, else the domain refusing it (service | store)."""
        if not self.service.allow():
            return "service"
        store = self._stores.get((method, user))
        if store is not None and not store.allow():
            self.service.abandon()
            return "store"
        return None

    def record_success(self, method: str, user: str) -> None:
        self.service.record_success()
        self._stores.pop((method, user), None)  # closed again: forget the domain

    def record_service_failure(self, method: str, user: str) -> None:
        """The service did not answer (unreachable, silent past the deadline)."""
        self.service.record_failure()
        store = self._stores.get((method, user))
        if store is not None:
            store.abandon()

    def record_store_failure(self, method: str, user: str) -> None:
        """The service answered that its store failed for this request: the service is
        up; only this (method, user) domain counts the failure."""
        self.service.record_success()
        key = (method, user)
        store = self._stores.pop(key, None)
        if store is None:
            store = CircuitBreaker(self.failure_threshold, self.cooldown_s, clock=self._clock)
        self._stores[key] = store  # most recently failed last
        store.record_failure()
        while len(self._stores) > self.max_store_domains:
            self._stores.popitem(last=False)

    def release(self, method: str, user: str) -> None:
        """An answer that says nothing about health (a verdict such as NOT_FOUND)."""
        self.service.release()
        store = self._stores.get((method, user))
        if store is not None and store.state is BreakerState.HALF_OPEN:
            del self._stores[(method, user)]

    def abandon(self, method: str, user: str) -> None:
        """The call never reached the service: free the probe slots, change nothing."""
        self.service.abandon()
        store = self._stores.get((method, user))
        if store is not None:
            store.abandon()
