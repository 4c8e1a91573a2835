"""A real local Redis Cluster for tests: 3 masters + 3 replicas of the test redis-server.

* :class:`LocalRedisCluster` — six ``redis-server --cluster-enabled yes`` processes on free
  loopback ports, each with its ``--cluster-config-file`` in its own data dir, joined with
  the cluster commands themselves (ADDSLOTSRANGE, MEET, REPLICATE — what
  ``redis-cli --cluster create --cluster-replicas 1`` sends), so only the server binary is
  needed. ``.url`` is the ``redis+cluster://`` URL of all six, ``.master_of(key)`` the
  node serving a key, ``.kill(node)`` a SIGKILL, ``.wait_failover(killed)`` polls until a
  replica serves the dead master's slots and the cluster is ``ok`` again.
  ``cluster-node-timeout`` is 1 s so a fail-over takes a few seconds, not 15+.
* fixtures ``redis_cluster`` (session, shared: tests use their own key prefix) and
  ``fresh_redis_cluster`` (function: a test may kill its masters).
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from .procs import RedisServer, free_port, wait_for

_SLOTS = 16384


class LocalRedisCluster:
    """Six Redis servers joined into a cluster (3 masters, one replica each)."""

    def __init__(self, base_dir: Path | None = None, node_timeout_ms: int = 1000) -> None:
        self.base_dir = Path(base_dir or tempfile.mkdtemp(prefix="mnemo-cluster-"))
        self.node_timeout_ms = node_timeout_ms
        self.nodes: list[RedisServer] = []
        self.bus_ports: dict[int, int] = {}

    @property
    def url(self) -> str:
        return "redis+cluster://" + ",".join(f"127.0.0.1:{n.port}" for n in self.nodes)

    def client(self) -> Any:
        """A synchronous ``redis.RedisCluster`` client (decoded replies); close it."""
        import redis
        from redis.cluster import ClusterNode

        return redis.RedisCluster(
            startup_nodes=[
                ClusterNode("127.0.0.1", n.port)  # type: ignore[no-untyped-call]
                for n in self._alive()
            ],
            decode_responses=True,
        )

    def _client(self, node: RedisServer) -> Any:
        import redis

        return redis.Redis(host="127.0.0.1", port=node.port, decode_responses=True)

    def _call(self, node: RedisServer, *args: Any) -> Any:
        client = self._client(node)
        try:
            return client.execute_command(*args)
        finally:
            client.close()

    def start(self) -> LocalRedisCluster:
        for i in range(6):
            data = self.base_dir / f"node{i}"
            port, bus = free_port(), free_port()
            self.bus_ports[port] = bus
            node = RedisServer(
                appendonly=True,
                data_dir=data,
                port=port,
                extra_args=[
                    "--cluster-enabled",
                    "yes",
                    "--cluster-config-file",
                    str(data / "nodes.conf"),
                    # the bus port explicitly: the default (port + 10000) may be taken
                    "--cluster-port",
                    str(bus),
                    "--cluster-node-timeout",
                    str(self.node_timeout_ms),
                    # a replica takes over whatever its replication lag
                    "--cluster-replica-validity-factor",
                    "0",
                ],
            )
            self.nodes.append(node)
        try:
            for node in self.nodes:
                node.start()
            self._create()
        except BaseException:
            self.stop()
            raise
        return self

    def node_id(self, node: RedisServer) -> str:
        return str(self._call(node, "CLUSTER", "MYID"))

    def _create(self) -> None:
        masters, replicas = self.nodes[:3], self.nodes[3:]
        per = _SLOTS // 3
        for i, node in enumerate(masters):
            last = _SLOTS - 1 if i == 2 else (i + 1) * per - 1
            self._call(node, "CLUSTER", "ADDSLOTSRANGE", i * per, last)
        for node in self.nodes[1:]:
            first = self.nodes[0].port
            self._call(node, "CLUSTER", "MEET", "127.0.0.1", first, self.bus_ports[first])
        wait_for(lambda: all(self._known_nodes(n) == 6 for n in self.nodes), 30, "cluster MEET")
        for master, replica in zip(masters, replicas, strict=True):
            self._call(replica, "CLUSTER", "REPLICATE", self.node_id(master))
        wait_for(self._healthy, 30, "redis cluster with replicas")

    def _known_nodes(self, node: RedisServer) -> int:
        return len(str(self._call(node, "CLUSTER", "NODES")).strip().splitlines())

    def _healthy(self, alive: list[RedisServer] | None = None) -> bool:
        alive = alive or self.nodes
        for node in alive:
            info = str(self._call(node, "CLUSTER", "INFO"))
            if "cluster_state:ok" not in info:
                return False
        # every slot owner has a replica that finished its initial sync (when all nodes
        # are alive): until then a WAIT for it times out
        if alive is self.nodes:
            for node in self.nodes[:3]:
                client = self._client(node)
                try:
                    repl = client.info("replication")
                finally:
                    client.close()
                slave = repl.get("slave0")
                if not isinstance(slave, dict) or slave.get("state") != "online":
                    return False
        return True

    def master_of(self, key: str) -> RedisServer:
        """The node serving ``key``'s slot now."""
        slot = int(self._call(self._alive()[0], "CLUSTER", "KEYSLOT", key))
        for start, end, master, *_ in self._call(self._alive()[0], "CLUSTER", "SLOTS"):
            if int(start) <= slot <= int(end):
                port = int(master[1])
                return next(n for n in self.nodes if n.port == port)
        raise LookupError(f"no node serves slot {slot}")

    def _alive(self) -> list[RedisServer]:
        return [n for n in self.nodes if n._proc is not None and n._proc.running]

    def kill(self, node: RedisServer) -> None:
        """SIGKILL one node (a crashed master)."""
        node.kill()

    def wait_failover(self, killed: RedisServer, timeout: float = 30) -> float:
        """Poll until every live node sees the cluster ``ok`` with the killed node's
        slots served by another node; returns the seconds it took."""
        start = time.monotonic()

        def done() -> bool:
            alive = self._alive()
            if not self._healthy(alive):
                return False
            for _s, _e, master, *_ in self._call(alive[0], "CLUSTER", "SLOTS"):
                if int(master[1]) == killed.port:
                    return False
            return True

        wait_for(done, timeout, "redis cluster fail-over", interval=0.1)
        return time.monotonic() - start

    def keys(self, pattern: str) -> list[str]:
        """Every key matching ``pattern`` on every live master (SCAN, as an operator would)."""
        found: list[str] = []
        for node in self._alive():
            client = self._client(node)
            try:
                if client.info("replication").get("role") == "master":
                    found += list(client.scan_iter(match=pattern, count=1000))
            finally:
                client.close()
        return found

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()


@pytest.fixture(scope="session")
def redis_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalRedisCluster]:
    """One Redis Cluster shared by a session's cluster tests (each uses its own prefix)."""
    cluster = LocalRedisCluster(tmp_path_factory.mktemp("redis-cluster")).start()
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture
def fresh_redis_cluster(tmp_path: Path) -> Iterator[LocalRedisCluster]:
    """A private Redis Cluster a test may kill masters of."""
    cluster = LocalRedisCluster(tmp_path / "redis-cluster").start()
    try:
        yield cluster
    finally:
        cluster.stop()


__all__ = ["LocalRedisCluster", "fresh_redis_cluster", "redis_cluster"]
