"""The one place carebot reaches into matrix-nio's private API.

nio has no public call for: an arbitrary endpoint with a typed response (`AsyncClient._send`:
createRoom with creation_content keys, to-device messages to chosen devices, `m.room_key.withheld`),
building an endpoint path (`Api._build_path`), and a place for per-client bookkeeping (the
client's `__dict__`). Everything else in carebot uses nio's public API. When nio is upgraded,
tests/unit/test_nio_private.py says whether what this module relies on is still there.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from nio import AsyncClient, RoomCreateResponse
from nio.api import Api
from nio.responses import Response

T = TypeVar("T")

# (owner, attribute, parameters the call passes by name) — checked by the unit test.
RELIED_ON: tuple[tuple[Any, str, tuple[str, ...]], ...] = (
    (AsyncClient, "_send", ("response_class", "method", "path", "data", "response_data")),
    (Api, "_build_path", ("path", "query_parameters")),
)


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
