"""A fake homeserver behind the nio client's public ``send``, for the crypto unit tests.

It keeps account data in a dict and answers /keys/device_signing/upload with a password
UIA challenge, enough to exercise the request and secret-storage code paths without a
network. The real exchanges are covered against Synapse in tests/integration.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import unquote


class FakeResponse:
    def __init__(self, status: int, payload: Any) -> None:
        self.status = status
        self._payload = payload
        self.released = False

    async def json(self, content_type: str | None = None) -> Any:
        if isinstance(self._payload, Exception):
            raise self._payload
        return self._payload

    def release(self) -> None:
        self.released = True


class FakeClient:
    """``send`` routes account data and cross-signing upload; every call is recorded."""

    def __init__(self, user_id: str = "@bot:example.org", password: str = "pw") -> None:
        self.user_id = user_id
        self.device_id = "DEVICE"
        self.access_token = "TOKEN"
        self.password = password
        self.account_data: dict[str, dict[str, Any]] = {}
        self.calls: list[tuple[str, str, Any, dict[str, str]]] = []
        self.uploaded: dict[str, Any] | None = None
        self.uia_flows: list[dict[str, Any]] = [{"stages": ["m.login.password"]}]
        self.responses: list[FakeResponse] = []

    async def send(self, method: str, path: str, data: str | None, headers: dict[str, str]):
        body = json.loads(data) if data is not None else None
        self.calls.append((method, path, body, headers))
        if self.responses:
            return self.responses.pop(0)
        prefix = f"/_matrix/client/v3/user/{self.user_id.replace('@', '%40').replace(':', '%3A')}"
        if path.startswith(prefix + "/account_data/"):
            type_ = unquote(path.rsplit("/", 1)[1])
            if method == "PUT":
                self.account_data[type_] = body
                return FakeResponse(200, {})
            if type_ in self.account_data:
                return FakeResponse(200, self.account_data[type_])
            return FakeResponse(404, {"errcode": "M_NOT_FOUND"})
        if path.endswith("/keys/device_signing/upload"):
            auth = (body or {}).get("auth")
            if auth is None:
                return FakeResponse(401, {"flows": self.uia_flows, "session": "S1"})
            if auth.get("password") != self.password or auth.get("session") != "S1":
                return FakeResponse(401, {"errcode": "M_FORBIDDEN"})
            self.uploaded = body
            return FakeResponse(200, {})
        return FakeResponse(404, {"errcode": "M_UNRECOGNIZED"})
