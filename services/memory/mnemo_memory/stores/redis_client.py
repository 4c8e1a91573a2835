"""Build the async Redis client of the memory service and the worker from settings.

Deployment modes, chosen by the URL (``REDIS_URL``) or, without one, by ``REDIS__*``:

* ``redis://[user:pass@]host:port/db`` and ``rediss://...`` (TLS): one server.
  ``REDIS__TLS=true`` / ``REDIS__TLS_CA_FILE`` add TLS to a URL built from parts.
* ``redis+sentinel://[user:pass@]h1:26379,h2:26379[/master[/db]]``: the master named in
  the path (default ``REDIS__SENTINEL_MASTER``) is discovered through the Sentinels; the
  password authenticates against the master and the Sentinels alike. ``rediss+sentinel://``
  uses TLS.
* ``redis+cluster://[user:pass@]h1:6379[,h2:6379...]`` (``rediss+cluster://`` for TLS):
  Redis Cluster. Every per-user key carries the user id as a hash tag (``keys.py``), so
  the Lua scripts that touch one user's keys run on one slot; the few global keys (job
  stream, activity index, thread owners) are then written in separate commands.

Sockets have short timeouts (``REDIS__SOCKET_TIMEOUT_S``, ``REDIS__CONNECT_TIMEOUT_S``) and
a failed command is retried once without back-off (a pooled connection that died with a
restarted server reconnects), so an unreachable Redis becomes UNAVAILABLE quickly.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import parse_qs, unquote

import redis.asyncio as aioredis
from redis.asyncio.cluster import ClusterNode, RedisCluster
from redis.asyncio.retry import Retry
from redis.asyncio.sentinel import Sentinel
from redis.backoff import NoBackoff

if TYPE_CHECKING:
    from mnemo_common.settings import CommonSettings

RedisMode = Literal["standalone", "sentinel", "cluster"]


@dataclass(frozen=True)
class RedisTarget:
    """Where Redis is and how to talk to it, parsed from a URL (secrets included)."""

    mode: RedisMode
    hosts: list[tuple[str, int]]
    username: str | None = None
    password: str | None = None
    db: int = 0
    tls: bool = False
    tls_ca_file: str | None = None
    service_name: str = "mymaster"
    options: dict[str, str] = field(default_factory=dict)

    @property
    def cross_slot_ok(self) -> bool:
        """True when one Lua script may touch keys of different hash slots."""
        return self.mode != "cluster"


def _parse_hosts(netloc_hosts: str, default_port: int) -> list[tuple[str, int]]:
    hosts = []
    for part in netloc_hosts.split(","):
        part = part.strip()
        if not part:
            continue
        if part.startswith("["):  # [ipv6]:port
            host, _, rest = part[1:].partition("]")
            port = int(rest[1:]) if rest.startswith(":") else default_port
        elif ":" in part:
            host, _, port_s = part.rpartition(":")
            port = int(port_s)
        else:
            host, port = part, default_port
        hosts.append((host, port))
    if not hosts:
        raise ValueError("Redis URL names no host")
    return hosts


def parse_redis_url(
    url: str, *, sentinel_master: str = "mymaster", tls_ca_file: str | None = None
) -> RedisTarget:
    """Parse any of the supported URL forms (see the module docstring) into a target."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        raise ValueError(
            "Redis URL must start with redis://, rediss://, redis+sentinel:// or redis+cluster://"
        )
    scheme = scheme.lower()
    base, _, kind = scheme.partition("+")
    if base not in ("redis", "rediss") or kind not in ("", "sentinel", "cluster"):
        raise ValueError(f"unsupported Redis URL scheme {scheme!r}")
    # urlsplit cannot handle comma-separated host lists: split the netloc by hand
    netloc, slash, path_query = rest.partition("/")
    path, _, query = (slash + path_query).partition("?")
    if "?" in netloc:
        netloc, _, query = netloc.partition("?")
    userinfo, at, hostpart = netloc.rpartition("@")
    username = password = None
    if at:
        user_s, colon, pass_s = userinfo.partition(":")
        username = unquote(user_s) or None
        password = unquote(pass_s) if colon else None
        if not colon:  # redis://secret@host means a password alone
            password, username = username, None
    mode: RedisMode = "standalone" if kind == "" else kind  # type: ignore[assignment]
    default_port = 26379 if mode == "sentinel" else 6379
    hosts = _parse_hosts(hostpart, default_port)
    options = {k: v[-1] for k, v in parse_qs(query).items()}
    segments = [s for s in path.split("/") if s]
    db = 0
    service_name = sentinel_master
    if mode == "sentinel":
        if segments:
            service_name = unquote(segments[0])
        if len(segments) > 1:
            db = int(segments[1])
    elif segments:
        db = int(segments[0])
    if "db" in options:
        db = int(options["db"])
    if mode == "standalone" and len(hosts) > 1:
        raise ValueError("several hosts need redis+sentinel:// or redis+cluster://")
    if mode == "cluster" and db != 0:
        raise ValueError("Redis Cluster has only database 0")
    return RedisTarget(
        mode=mode,
        hosts=hosts,
        username=username,
        password=password,
        db=db,
        tls=base == "rediss",
        tls_ca_file=options.get("ssl_ca_certs", tls_ca_file),
        service_name=service_name,
        options=options,
    )


def target_from_settings(settings: CommonSettings) -> RedisTarget:
    """The target of ``REDIS_URL`` when set, else of ``REDIS__HOST``/``PORT``/... parts."""
    rs = settings.redis
    target = parse_redis_url(
        settings.effective_redis_url, sentinel_master=rs.sentinel_master, tls_ca_file=rs.tls_ca_file
    )
    if rs.tls and not target.tls:
        target = RedisTarget(**{**target.__dict__, "tls": True})
    return target


def _connection_kwargs(target: RedisTarget, settings: CommonSettings) -> dict[str, Any]:
    rs = settings.redis
    kwargs: dict[str, Any] = {
        "username": target.username,
        "password": target.password,
        "socket_timeout": rs.socket_timeout_s,
        "socket_connect_timeout": rs.connect_timeout_s,
        "retry": Retry(NoBackoff(), 1),
        "decode_responses": True,
        "health_check_interval": 0,
    }
    if target.tls:
        kwargs["ssl"] = True
        if target.tls_ca_file:
            kwargs["ssl_ca_certs"] = target.tls_ca_file
        if target.options.get("ssl_cert_reqs"):
            kwargs["ssl_cert_reqs"] = target.options["ssl_cert_reqs"]
    return kwargs


def create_redis(
    settings: CommonSettings, *, target: RedisTarget | None = None, binary: bool = False
) -> Any:
    """An async client (``redis.asyncio.Redis`` or ``RedisCluster``) for ``settings``.

    Connections are opened lazily, so this never fails because Redis is down. ``binary``:
    replies as bytes over RESP2 (the Redis vector store: raw FLOAT32 vectors, flat FT.*
    replies), with the same timeouts, pool size and TLS as every other client.
    """
    target = target or target_from_settings(settings)
    kwargs = _connection_kwargs(target, settings)
    if binary:
        kwargs.update(decode_responses=False, protocol=2)
    max_connections = settings.redis.max_connections
    if target.mode == "cluster":
        return RedisCluster(
            startup_nodes=[ClusterNode(h, p) for h, p in target.hosts],
            max_connections=max_connections,
            **kwargs,
        )
    if target.mode == "sentinel":
        sentinel_kwargs = {k: v for k, v in kwargs.items() if k != "decode_responses"}
        sentinel = Sentinel(  # type: ignore[no-untyped-call]
            target.hosts, sentinel_kwargs=sentinel_kwargs, **kwargs
        )
        return sentinel.master_for(
            target.service_name, db=target.db, max_connections=max_connections
        )
    host, port = target.hosts[0]
    # a blocking pool: under a burst, callers wait briefly for a connection instead of
    # failing with "too many connections"
    if kwargs.pop("ssl", False):
        kwargs["connection_class"] = aioredis.SSLConnection
    pool = aioredis.BlockingConnectionPool(
        host=host,
        port=port,
        db=target.db,
        max_connections=max_connections,
        timeout=settings.redis.connect_timeout_s,
        **kwargs,
    )
    return aioredis.Redis(connection_pool=pool)


def describe_target(target: RedisTarget) -> str:
    """A log-safe description (no secrets)."""
    hosts = ",".join(f"{h}:{p}" for h, p in target.hosts)
    extra = f" master={target.service_name}" if target.mode == "sentinel" else ""
    return f"{target.mode} {hosts} db={target.db} tls={target.tls}{extra}"


__all__ = [
    "RedisTarget",
    "create_redis",
    "describe_target",
    "parse_redis_url",
    "target_from_settings",
]
