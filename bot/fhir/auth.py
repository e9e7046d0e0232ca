"""Credentials for the FHIR server: a bearer token from a file, or SMART Backend Services.

SMART Backend Services (HL7 SMART App Launch 2, "Backend Services"): the bot asks the token
endpoint for an access token with the OAuth 2.0 client_credentials grant, authenticating with
a `private_key_jwt` client assertion signed with its private key (RS384 or ES384), signed by
PyJWT. The token is kept until a minute before it expires, or until the server answers 401.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from pathlib import Path
from typing import Any

import aiohttp
import jwt

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


class AuthError(Exception):
    """Credentials could not be obtained; the message says what to fix."""


class BearerTokenFile:
    """`Authorization: Bearer <token>` with the token read from a file (re-read after a 401)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._token: str | None = None

    async def header(self) -> str | None:
        if self._token is None:
            try:
                token = self.path.read_text(encoding="utf-8").strip()
            except OSError as exc:
                raise AuthError(f"cannot read the FHIR token file {self.path} ({exc.strerror}); check fhir.token_file") from None
            if not token:
                raise AuthError(f"the FHIR token file {self.path} is empty; put the bearer token in it (fhir.token_file)")
            self._token = token
        return f"Bearer {self._token}"

    def invalidate(self) -> None:
        self._token = None


class SmartBackendAuth:
    def __init__(
        self,
        token_url: str,
        client_id: str,
        private_key: str,
        algorithm: str = "RS384",
        key_id: str | None = None,
        scope: str = "system/*.read system/Task.write",
        clock: Any = time.time,
        timeout_s: float = 30.0,
    ) -> None:
        if algorithm not in ("RS384", "ES384"):
            raise AuthError(f"algorithm {algorithm!r} is not allowed by SMART Backend Services; use RS384 or ES384")
        self.token_url = token_url
        self.client_id = client_id
        self.algorithm = algorithm
        self.key_id = key_id
        self.scope = scope
        self._key = private_key
        self._clock = clock
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._token: str | None = None
        self._expires_at = 0.0
        self._lock = asyncio.Lock()

    @classmethod
    def from_key_file(cls, key_file: Path, **kw: Any) -> "SmartBackendAuth":
        try:
            key = key_file.read_text(encoding="utf-8")
        except OSError as exc:
            raise AuthError(f"cannot read the private key {key_file} ({exc.strerror}); check fhir.smart.private_key_file") from None
        return cls(private_key=key, **kw)

    def assertion(self) -> str:
        """The signed client assertion: iss = sub = client id, aud = token URL, 5 minutes, unique jti."""
        now = int(self._clock())
        claims = {"iss": self.client_id, "sub": self.client_id, "aud": self.token_url, "exp": now + 300, "iat": now, "jti": str(uuid.uuid4())}
        headers = {"kid": self.key_id} if self.key_id else None
        try:
            return jwt.encode(claims, self._key, algorithm=self.algorithm, headers=headers)
        except (ValueError, TypeError, jwt.PyJWTError) as exc:
            raise AuthError(f"cannot sign with the private key ({exc}); it must be a PEM {self.algorithm[:2]} private key (fhir.smart.private_key_file)") from None

    async def header(self) -> str | None:
        async with self._lock:
            if self._token is None or self._clock() >= self._expires_at:
                await self._fetch()
        return f"Bearer {self._token}"

    def invalidate(self) -> None:
        self._token = None

    async def _fetch(self) -> None:
        form = {
            "grant_type": "client_credentials",
            "scope": self.scope,
            "client_assertion_type": ASSERTION_TYPE,
            "client_assertion": self.assertion(),
        }
        try:
            async with aiohttp.ClientSession(timeout=self._timeout) as session:
                async with session.post(self.token_url, data=form, headers={"Accept": "application/json"}) as resp:
                    body = await resp.json(content_type=None)
                    status = resp.status
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError, ValueError) as exc:
            from bot.fhir.client import FhirUnavailable

            raise FhirUnavailable(f"token endpoint unreachable: {type(exc).__name__}") from None
        if status != 200 or not isinstance(body, dict) or "access_token" not in body:
            error = body.get("error_description") or body.get("error") if isinstance(body, dict) else None
            raise AuthError(f"the token endpoint {self.token_url} refused the client assertion (HTTP {status}: {error or 'no detail'}); "
                            "check fhir.smart.client_id, the key registered with the server and fhir.smart.algorithm")
        self._token = str(body["access_token"])
        self._expires_at = self._clock() + max(float(body.get("expires_in", 300)) - 60, 10)
