"""The one place carebot reaches into matrix-nio's private API.

nio has no public call for: an arbitrary endpoint with a typed response (`AsyncClient._send`:
createRoom with creation_content keys, to-device messages to chosen devices, `m.room_key.withheld`,
room-key requests to the sender's devices), building an endpoint path (`Api._build_path`), a
place for per-client bookkeeping (the client's `__dict__`), the Megolm session that decrypted an
event (`Olm.inbound_group_store`: its forwarding chain and keys), and accepting a room key the
sending device forwards itself (`Olm._should_accept_forward` only takes forwards from the bot's
own devices). Everything else in carebot uses nio's public API. When nio is upgraded,
tests/unit/test_nio_private.py says whether what this module relies on is still there.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from nio import AsyncClient, RoomCreateResponse
from nio.api import Api
from nio.crypto import Olm
from nio.crypto.sessions import InboundGroupSession
from nio.responses import Response, RoomKeyRequestResponse

T = TypeVar("T")

# (owner, attribute, parameters the call passes by name) — checked by the unit test.
RELIED_ON: tuple[tuple[Any, str, tuple[str, ...]], ...] = (
    (AsyncClient, "_send", ("response_class", "method", "path", "data", "response_data")),
    (Api, "_build_path", ("path", "query_parameters")),
    (Olm, "_should_accept_forward", ("sender", "sender_key", "event")),
)

MEGOLM = "m.megolm.v1.aes-sha2"


def missing() -> list[str]:
    """What this module relies on and the installed nio lacks (empty when all is there)."""
    problems = []
    for owner, name, params in RELIED_ON:
        fn = getattr(owner, name, None)
        if not callable(fn):
            problems.append(f"{owner.__name__}.{name} is gone")
            continue
        have = inspect.signature(fn).parameters
        problems += [f"{owner.__name__}.{name} has no parameter {p!r}" for p in params if p not in have]
    return problems


def path(parts: Sequence[str], query: dict[str, Any] | None = None) -> str:
    """A client-server API path (`/_matrix/client/v3/...`) with its query string."""
    return Api._build_path(list(parts), query)  # noqa: SLF001


async def send(
    client: AsyncClient,
    response_class: type[Response],
    method: str,
    api_path: str,
    data: str | None = None,
    response_data: tuple[Any, ...] | None = None,
) -> Response:
    """A request through nio's own transport (retries, rate limits), parsed as `response_class`."""
    return await client._send(  # noqa: SLF001
        response_class, method, api_path, data, response_data=response_data
    )


async def create_room(client: AsyncClient, body: dict[str, Any]) -> Response:
    """POST /createRoom with the body as given (nio's room_create cannot set every key we need).
    A RoomCreateResponse, or nio's error response."""
    return await send(
        client,
        RoomCreateResponse,
        "POST",
        path(["createRoom"], {"access_token": client.access_token}),
        Api.to_json(body),
    )


async def capabilities(client: AsyncClient) -> dict[str, Any]:
    """GET /capabilities as JSON (raises on a transport or decoding error)."""
    resp = await client.send(
        "GET", path(["capabilities"]), headers={"Authorization": f"Bearer {client.access_token}"}
    )
    return dict(await resp.json())


def per_client(client: AsyncClient, name: str, factory: Callable[[], T]) -> T:
    """Bookkeeping kept on the client object itself, so it lives and dies with the login."""
    store = client.__dict__
    key = "_carebot_" + name
    if key not in store:
        store[key] = factory()
    return store[key]  # type: ignore[no-any-return]


def inbound_session(
    client: AsyncClient, room_id: str, sender_key: str, session_id: str
) -> InboundGroupSession | None:
    """The Megolm session the bot holds for (room, sender key, session id), or None."""
    olm = client.olm
    if olm is None:
        return None
    session = olm.inbound_group_store.get(room_id, sender_key, session_id)
    return session if isinstance(session, InboundGroupSession) else None


async def request_room_key(
    client: AsyncClient, room_id: str, sender: str, sender_key: str, session_id: str
) -> Response:
    """Send `m.room_key_request` for one session to every device of `sender` and of the bot's
    own user (nio's `request_room_key` asks only the latter). The request is registered with
    nio as its own would be, so a forwarded key answering it is considered at all."""
    content = {
        "action": "request",
        "body": {"algorithm": MEGOLM, "session_id": session_id, "room_id": room_id, "sender_key": sender_key},
        "request_id": session_id,
        "requesting_device_id": client.device_id,
    }
    messages: dict[str, dict[str, Any]] = {sender: {"*": content}}
    if client.user_id:
        messages.setdefault(client.user_id, {"*": content})
    method, api_path, data = Api.to_device(client.access_token, "m.room_key_request", {"messages": messages}, session_id)
    return await send(
        client, RoomKeyRequestResponse, method, api_path, data, response_data=(session_id, session_id, room_id, MEGOLM)
    )


def accept_forwards_from_session_owner(client: AsyncClient) -> None:
    """Also accept a forwarded room key that nio would refuse, when the device forwarding it is
    the one that created the session (its Olm curve25519 key is the session's sender key) and
    the bot asked for it. Each such key is remembered (`forwarded_by_owner`), so the trust
    check can tell it from a key forwarded by someone else: nio records both with the same
    forwarding chain (it appends the session's sender key, not the forwarder's)."""
    olm = client.olm
    if olm is None or getattr(olm, "_carebot_owner_forwards", False):
        return
    owner_forwards: set[tuple[str, str, str]] = per_client(client, "owner_forwards", set)
    original = olm._should_accept_forward  # noqa: SLF001

    def should_accept(sender: str, sender_key: str, event: Any) -> bool:
        if original(sender, sender_key, event):
            return True
        request = olm.outgoing_key_requests.get(event.session_id)
        if request is None or event.algorithm != MEGOLM:
            return False
        if (request.room_id, request.session_id) != (event.room_id, event.session_id):
            return False
        session_key = (event.source.get("content") or {}).get("sender_key")
        device = olm.device_store.device_from_sender_key(sender, sender_key)
        if device is None or device.deleted or session_key != sender_key:
            return False  # only the session's own device may hand it over
        owner_forwards.add((event.room_id, sender_key, event.session_id))
        return True

    olm._should_accept_forward = should_accept  # type: ignore[method-assign]  # noqa: SLF001
    olm._carebot_owner_forwards = True  # type: ignore[attr-defined]  # noqa: SLF001


def forwarded_by_owner(client: AsyncClient, room_id: str, sender_key: str, session_id: str) -> bool:
    """Whether this session reached the bot forwarded by the very device that created it."""
    owner_forwards: set[tuple[str, str, str]] = per_client(client, "owner_forwards", set)
    return (room_id, sender_key, session_id) in owner_forwards


def owner_forwarded_sessions(client: AsyncClient) -> set[tuple[str, str, str]]:
    """(room id, sender key, session id) of every session accepted from its own device."""
    return per_client(client, "owner_forwards", set)
