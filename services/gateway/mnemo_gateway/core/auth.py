"""Who is calling, and which user's memory a request may touch.

* ``none``: development. The user id comes from the request (path, body, header) or the
  configured default user.
* ``api-key``: keys from ``AUTH__API_KEYS_FILE`` (one ``key tenant [user]`` per line; a
  mounted Secret in Kubernetes, re-read when it changes). A key acts for any user of its
  tenant, or, with the third column, for exactly one user.
* ``jwt``: ``Authorization: Bearer <token>`` signed with ``AUTH__JWT_SECRET`` (HS256) or a
  key of ``AUTH__JWKS_FILE``; the user is the ``sub`` claim.

The memory-service user id names the mode, the tenant and the user (:func:`encode_user_id`):
``n.USER`` (none), ``k.TENANT.USER`` (api-key), ``j.SUB`` (jwt). A tenant never contains
``.``, so the encoding is injective and reverses (:func:`decode_user_id`): no user of
one mode or tenant can name another's data, even when gateways of different modes share
one memory service (ADR 0012).

The credential is read from ``Authorization: Bearer`` or ``x-api-key`` (what the Anthropic
SDK sends), so both SDKs work unchanged. Keys are compared in constant time and never logged.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import re
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
from mnemo_common.ids import InvalidIdError, validate_id

from .config import AuthMode, AuthSettings
from .errors import ApiError, valid_id

log = logging.getLogger(__name__)

TENANT_RE = re.compile(r"^[A-Za-z0-9_-]{1,32}$")
#: path/body alias for "the calling user"
ME = "me"
#: the namespace tag of each mode in memory-service user ids (never contains ".")
MODE_TAGS = {AuthMode.NONE: "n", AuthMode.API_KEY: "k", AuthMode.JWT: "j"}
_TAG_MODES = {tag: mode for mode, tag in MODE_TAGS.items()}
#: memory-service user ids are ids (mnemo_common.ids): at most this long
MAX_MEMORY_USER_ID = 128


def encode_user_id(mode: AuthMode, tenant: str | None, user: str) -> str:
    """The memory-service user id of ``user`` (a valid id) authenticated by ``mode``
    (and, in api-key mode, of ``tenant``, which matches TENANT_RE and has no ``.``)."""
    if mode is AuthMode.API_KEY:
        if tenant is None or not TENANT_RE.fullmatch(tenant):
            raise ValueError("api-key identities need a tenant matching TENANT_RE")
        return f"{MODE_TAGS[mode]}.{tenant}.{user}"
    if tenant is not None:
        raise ValueError(f"{mode.value} identities have no tenant")
    return f"{MODE_TAGS[mode]}.{user}"


def decode_user_id(value: str) -> tuple[AuthMode, str | None, str] | None:
    """(mode, tenant, user) of a memory-service user id, None when it is not one."""
    tag, sep, rest = value.partition(".")
    mode = _TAG_MODES.get(tag)
    if mode is None or not sep or not rest:
        return None
    if mode is AuthMode.API_KEY:
        tenant, sep, user = rest.partition(".")
        if not sep or not user or not TENANT_RE.fullmatch(tenant):
            return None
        return mode, tenant, user
    return mode, None, rest


@dataclass(frozen=True)
class Identity:
    """The authenticated caller."""

    mode: AuthMode
    # the one user this identity is (jwt sub, a pinned api key); None = may name users
    user_id: str | None = None
    # api-key tenant; memory user ids are prefixed with it
    tenant: str | None = None
    # a default for requests that name no user (auth none)
    default_user_id: str | None = None

    def memory_user_id(self, requested: str | None, field: str = "user_id") -> str:
        """The memory-service user id for a request that names ``requested`` (or nobody).

        Raises 403 when the identity is bound to another user, 422 for a bad id.
        """
        if requested in ("", ME):
            requested = None
        if requested is not None:
            valid_id(requested, field)
        if self.user_id is not None:
            if requested is not None and requested != self.user_id:
                raise ApiError(
                    403,
                    "forbidden",
                    "this credential may not access another user's data",
                    field=field,
                )
            user = self.user_id
        elif requested is not None:
            user = requested
        elif self.default_user_id:
            user = self.default_user_id
        else:
            raise ApiError(422, "invalid_id", f"{field} is required", field=field)
        namespaced = encode_user_id(self.mode, self.tenant, user)
        if len(namespaced) > MAX_MEMORY_USER_ID:
            room = MAX_MEMORY_USER_ID - (len(namespaced) - len(user))
            raise ApiError(
                422,
                "invalid_id",
                f"{field} is too long: at most {room} characters with this authentication",
                field=field,
            )
        return namespaced

    def public_user_id(self, memory_user_id: str) -> str:
        """The user id as the caller knows it (without the mode and tenant namespace)."""
        parsed = decode_user_id(memory_user_id)
        if parsed is not None and parsed[:2] == (self.mode, self.tenant):
            return parsed[2]
        return memory_user_id


@dataclass(frozen=True)
class _KeyEntry:
    digest: bytes
    tenant: str
    user_id: str | None


class ApiKeyStore:
    """Keys from a file, reloaded when the file changes; lookups in constant time."""

    def __init__(self, path: str) -> None:
        self.path = Path(path)
        self._entries: list[_KeyEntry] = []
        self._mtime: float | None = None
        self._lock = threading.Lock()
        self._load()

    def _load(self) -> None:
        mtime = os.stat(self.path).st_mtime
        entries: list[_KeyEntry] = []
        for lineno, raw in enumerate(self.path.read_text().splitlines(), 1):
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            parts = line.split()
            key, tenant = parts[0], parts[1] if len(parts) > 1 else "default"
            user = parts[2] if len(parts) > 2 else None
            if not TENANT_RE.fullmatch(tenant):
                raise ValueError(f"{self.path}:{lineno}: tenant must match {TENANT_RE.pattern}")
            if user is not None:
                validate_id(user, f"{self.path}:{lineno} user")
            entries.append(_KeyEntry(hashlib.sha256(key.encode()).digest(), tenant, user))
        self._entries, self._mtime = entries, mtime
        log.info("api keys loaded", extra={"keys": len(entries), "path": str(self.path)})

    def lookup(self, key: str) -> _KeyEntry | None:
        try:
            if os.stat(self.path).st_mtime != self._mtime:
                with self._lock:
                    self._load()
        except (OSError, ValueError):
            log.exception("api keys file could not be re-read; keeping the previous keys")
        digest = hashlib.sha256(key.encode()).digest()
        found = None
        for entry in self._entries:  # no early exit: time does not depend on the match
            if hmac.compare_digest(entry.digest, digest):
                found = entry
        return found


class JwtVerifier:
    """Verifies bearer tokens with an HS256 secret or the keys of a JWKS file."""

    def __init__(self, settings: AuthSettings) -> None:
        self.secret = settings.jwt_secret.get_secret_value() if settings.jwt_secret else None
        self.jwks: jwt.PyJWKSet | None = None
        if settings.jwks_file:
            self.jwks = jwt.PyJWKSet.from_json(Path(settings.jwks_file).read_text())
        self.audience = settings.jwt_audience
        self.issuer = settings.jwt_issuer
        self.required = ["sub", "exp"] if settings.jwt_require_exp else ["sub"]

    def subject(self, token: str) -> str:
        try:
            header = jwt.get_unverified_header(token)
            key: Any
            if header.get("alg") == "HS256" and self.secret is not None:
                key, algorithms = self.secret, ["HS256"]
            elif self.jwks is not None:
                key = self._jwk(header.get("kid"))
                algorithms = ["RS256", "RS384", "RS512", "ES256", "ES384", "EdDSA"]
            else:
                raise jwt.InvalidTokenError(f"algorithm {header.get('alg')!r} is not accepted")
            claims = jwt.decode(
                token,
                key,
                algorithms=algorithms,
                audience=self.audience,
                issuer=self.issuer,
                options={"require": self.required, "verify_aud": self.audience is not None},
            )
        except jwt.PyJWTError as exc:
            raise ApiError(
                401,
                "invalid_token",
                f"bearer token rejected: {exc}",
                headers={"WWW-Authenticate": "Bearer"},
            ) from None
        sub = str(claims["sub"])
        try:
            validate_id(sub, "sub")
            room = MAX_MEMORY_USER_ID - len(encode_user_id(AuthMode.JWT, None, ""))
            if len(sub) > room:
                raise InvalidIdError("sub", f"is longer than {room} characters")
            return sub
        except InvalidIdError as exc:
            raise ApiError(
                401,
                "invalid_token",
                f"token subject unusable as a user id: {exc.reason}",
                headers={"WWW-Authenticate": "Bearer"},
            ) from None

    def _jwk(self, kid: str | None) -> Any:
        assert self.jwks is not None
        for k in self.jwks.keys:
            if kid is None or k.key_id == kid:
                return k.key
        raise jwt.InvalidTokenError(f"no key with kid {kid!r} in the JWKS")


class Authenticator:
    """Turns request headers into an :class:`Identity` for the configured mode."""

    def __init__(self, settings: AuthSettings, default_user_id: str | None) -> None:
        self.mode = settings.mode
        self.default_user_id = default_user_id or None
        self.keys = (
            ApiKeyStore(settings.api_keys_file)
            if (settings.mode is AuthMode.API_KEY and settings.api_keys_file)
            else None
        )
        self.jwt = JwtVerifier(settings) if settings.mode is AuthMode.JWT else None

    @staticmethod
    def credential(headers: Any) -> str | None:
        auth = headers.get("authorization")
        if auth and auth.lower().startswith("bearer "):
            return str(auth[7:].strip()) or None
        key = headers.get("x-api-key")
        return str(key).strip() if key else None

    def authenticate(self, headers: Any) -> Identity:
        if self.mode is AuthMode.NONE:
            return Identity(AuthMode.NONE, default_user_id=self.default_user_id)
        cred = self.credential(headers)
        if not cred:
            raise ApiError(
                401,
                "unauthenticated",
                "send a credential: 'Authorization: Bearer ...' or 'x-api-key'",
                headers={"WWW-Authenticate": "Bearer"},
            )
        if self.mode is AuthMode.API_KEY:
            assert self.keys is not None
            entry = self.keys.lookup(cred)
            if entry is None:
                raise ApiError(
                    401,
                    "invalid_api_key",
                    "the API key is not valid",
                    headers={"WWW-Authenticate": "Bearer"},
                )
            return Identity(AuthMode.API_KEY, user_id=entry.user_id, tenant=entry.tenant)
        assert self.jwt is not None
        return Identity(AuthMode.JWT, user_id=self.jwt.subject(cred))


def describe(identity: Identity) -> dict[str, Any]:
    """What /v1/me tells the caller about itself (no secrets)."""
    return {
        "auth_mode": identity.mode.value,
        "user_id": identity.user_id,
        "tenant": identity.tenant,
        "default_user_id": identity.default_user_id,
    }


__all__ = [
    "ME",
    "ApiKeyStore",
    "Authenticator",
    "Identity",
    "JwtVerifier",
    "decode_user_id",
    "describe",
    "encode_user_id",
]
