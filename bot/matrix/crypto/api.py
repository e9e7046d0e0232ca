"""The homeserver calls of cross-signing and secret storage: /keys/query, account data,
signature upload, and cross-signing key upload with user-interactive auth.

matrix-nio has none of these endpoints; they go through the client's public ``send``
(its aiohttp session, its access token), never through nio internals.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import quote

from bot.matrix.crypto.cross_signing_key import CrossSigningKeys
from bot.matrix.crypto.errors import CrossSigningError

__all__ = [
    "describe",
    "get_account_data",
    "put_account_data",
    "query_keys",
    "request",
    "upload_cross_signing_keys",
    "upload_signatures",
]

_CLIENT_V3 = "/_matrix/client/v3"


async def request(
    client: Any, method: str, path: str, body: Any | None = None
) -> tuple[int, dict[str, Any]]:
    """(HTTP status, JSON object or {}) of ``method /_matrix/client/v3<path>``."""
    headers = {"Authorization": f"Bearer {client.access_token}"}
    data = None
    if body is not None:
        headers["Content-Type"] = "application/json"
        data = json.dumps(body)
    resp = await client.send(method, _CLIENT_V3 + path, data, headers)
    try:
        try:
            payload = await resp.json(content_type=None)
        except ValueError:
            payload = {}
        return resp.status, payload if isinstance(payload, dict) else {}
    finally:
        resp.release()


def describe(status: int, payload: Mapping[str, Any]) -> str:
    """``HTTP <status> <errcode> <error>`` for an error message."""
    code = payload.get("errcode", "?")
    err = payload.get("error", "")
    return f"HTTP {status} {code} {err}".strip()


async def query_keys(client: Any, user_ids: Iterable[str]) -> dict[str, Any]:
    """The /keys/query response for all devices of ``user_ids``."""
    body = {"device_keys": {u: [] for u in user_ids}, "timeout": 10000}
    status, payload = await request(client, "POST", "/keys/query", body)
    if status != 200:
        raise CrossSigningError(f"/keys/query failed: {describe(status, payload)}")
    return payload


def _account_data_path(user_id: str, type_: str) -> str:
    return f"/user/{quote(user_id, safe='')}/account_data/{quote(type_, safe='')}"


async def get_account_data(client: Any, type_: str) -> dict[str, Any] | None:
    """The client's own account data of ``type_``, or None if it has none."""
    status, payload = await request(client, "GET", _account_data_path(client.user_id, type_))
    if status == 404:
        return None
    if status != 200:
        raise CrossSigningError(f"reading account data {type_}: {describe(status, payload)}")
    return payload


async def put_account_data(client: Any, type_: str, content: Mapping[str, Any]) -> None:
    """Replace the client's own account data of ``type_``."""
    status, payload = await request(
        client, "PUT", _account_data_path(client.user_id, type_), content
    )
    if status != 200:
        raise CrossSigningError(f"writing account data {type_}: {describe(status, payload)}")


async def upload_signatures(
    client: Any, signed: Mapping[str, Mapping[str, Any]]
) -> dict[str, Any]:
    """POST /keys/signatures/upload (user id -> key id -> signed object); the response,
    whose ``failures`` the caller reads."""
    status, resp = await request(client, "POST", "/keys/signatures/upload", signed)
    if status != 200:
        raise CrossSigningError(f"uploading signatures failed: {describe(status, resp)}")
    return resp


async def upload_cross_signing_keys(
    client: Any, keys: CrossSigningKeys, password: str | None
) -> bool:
    """POST /keys/device_signing/upload, answering a password UIA challenge if one comes.

    Returns True if the homeserver asked for user-interactive auth.
    """
    body: dict[str, Any] = {
        "master_key": keys.key_object("master"),
        "self_signing_key": keys.key_object("self_signing"),
        "user_signing_key": keys.key_object("user_signing"),
    }
    status, payload = await request(client, "POST", "/keys/device_signing/upload", body)
    if status == 200:
        return False
    if status != 401 or "flows" not in payload:
        raise CrossSigningError(
            f"uploading cross-signing keys failed: {describe(status, payload)}"
        )
    flows = payload.get("flows") or []
    if not any(f.get("stages") == ["m.login.password"] for f in flows if isinstance(f, dict)):
        stages = sorted({s for f in flows if isinstance(f, dict) for s in f.get("stages", [])})
        raise CrossSigningError(
            "the homeserver wants user-interactive auth the bot cannot do "
            f"(stages offered: {', '.join(stages) or 'none'}). With an OIDC / MAS homeserver, "
            "approve the cross-signing reset for the bot account in its account "
            "management page, then restart the bot."
        )
    if not password:
        raise CrossSigningError(
            "the homeserver asks for the account password to publish cross-signing keys, "
            "and none was given"
        )
    body["auth"] = {
        "type": "m.login.password",
        "identifier": {"type": "m.id.user", "user": client.user_id},
        "password": password,
    }
    if payload.get("session"):
        body["auth"]["session"] = payload["session"]
    status, payload = await request(client, "POST", "/keys/device_signing/upload", body)
    if status == 200:
        return True
    if status == 401:
        raise CrossSigningError(
            "the homeserver rejected the bot's password while publishing cross-signing keys "
            f"({payload.get('errcode', '?')})"
        )
    raise CrossSigningError(f"uploading cross-signing keys failed: {describe(status, payload)}")
