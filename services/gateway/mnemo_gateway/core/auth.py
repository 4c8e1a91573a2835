"""Who is calling, and which user's memory a request may touch.

* ``none``: development. The user id comes from the request (path, body, header) or the
  configured default user.
* ``api-key``: keys from ``AUTH__API_KEYS_FILE`` (one ``key tenant [user]`` per line; a
  mounted Secret in Kubernetes, re-read when it changes). A key acts for any user of its
  tenant — memory user ids are namespaced ``tenant.user`` so tenants never meet — or, with
  the third column, for exactly one user.
* ``jwt``: ``Authorization: Bearer <token>`` signed with ``AUTH__JWT_SECRET`` (HS256) or a
  key of ``AUTH__JWKS_FILE``; the user is the ``sub`` claim.

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
from .errors import ApiError, invalid_id

log = logging.getLogger(__name__)

TENANT_RE = re.compile(r"^[A-Za-z0-9_-]{1,32}$")
#: path/body alias for "the calling user"
ME = "me"


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
            try:
                validate_id(requested, field)
            except InvalidIdError as exc:
                raise invalid_id(exc) from None
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
        if self.tenant is not None:
            user = f"{self.tenant}.{user}"
            if len(user) > 128:
                raise ApiError(
                    422, "invalid_id", f"{field} is too long for this tenant", field=field
                )
        return user

    def public_user_id(self, memory_user_id: str) -> str:
        """The user id as the caller knows it (without the tenant prefix)."""
        if self.tenant is not None and memory_user_id.startswith(self.tenant + "."):
            return memory_user_id[len(self.tenant) + 1 :]
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
            return validate_id(sub, "sub")
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


__all__ = ["ME", "ApiKeyStore", "Authenticator", "Identity", "JwtVerifier", "describe"]
