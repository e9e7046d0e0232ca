"""The one door to the clinic's FHIR server: fhirpy's async client, with auth and error kinds.

fhirpy does the HTTP, the search parameters and the URLs of the pages (`Bundle.link[next]`,
checked to stay on the server's base URL). Two FHIR interactions it has no public call for — conditional
create with the `If-None-Exist` header and versioned update with `If-Match` — go through its
`_do_request` here and nowhere else.

Errors come out as two kinds: `FhirUnavailable` (no answer, a timeout, a 5xx-style outcome:
try again later) and `FhirRejected` (the server said no: fix the data or the config);
`VersionConflict` is the `If-Match` refusal (412).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any, Protocol

import aiohttp
from fhirpy import AsyncFHIRClient
from fhirpy.base.utils import parse_pagination_url
from fhirpy.base.exceptions import (
    AuthorizationError,
    ForbiddenError,
    MultipleResourcesFound,
    OperationOutcome,
    ResourceNotFound,
)

# OperationOutcome issue codes that mean "try again later".
_TRANSIENT = {"transient", "exception", "timeout", "throttled", "lock-error", "no-store", "incomplete"}


class Auth(Protocol):
    async def header(self) -> str | None: ...
    def invalidate(self) -> None: ...


class FhirError(Exception):
    pass


class FhirUnavailable(FhirError):
    """The server did not answer usefully; the same call may work later."""


class FhirRejected(FhirError):
    """The server refused the call; retrying the same call will not help."""


class VersionConflict(FhirRejected):
    """`If-Match` failed: the resource changed on the server since it was read."""


class NotFound(FhirRejected):
    pass


def _outcome_text(exc: OperationOutcome) -> str:
    resource = getattr(exc, "resource", None)
    if resource:
        issues = resource.get("issue") or []
        texts = [((i.get("details") or {}).get("text") or i.get("diagnostics") or i.get("code") or "") for i in issues]
        return "; ".join(t for t in texts if t)[:300] or "refused"
    return str(exc)[:300]


def _transient(exc: OperationOutcome) -> bool:
    resource = getattr(exc, "resource", None)
    if not resource:
        return True  # not a FHIR answer at all (a proxy's error page…)
    return any((i.get("code") in _TRANSIENT) for i in resource.get("issue") or [])


class FhirClient:
    def __init__(self, url: str, auth: Auth | None = None, timeout_s: float = 30.0) -> None:
        self.url = url.rstrip("/")
        self._auth = auth
        self._client = AsyncFHIRClient(
            self.url,
            aiohttp_config={"timeout": aiohttp.ClientTimeout(total=timeout_s)},
            dump_resource=lambda r: dict(r),
        )

    async def _call(self, make: Any) -> Any:
        """Run `make()` (a coroutine factory) with auth; one retry with a fresh token on 401."""
        for attempt in (1, 2):
            self._client.authorization = await self._auth.header() if self._auth else None
            try:
                return await make()
            except AuthorizationError as exc:
                if self._auth is None or attempt == 2:
                    raise FhirRejected(f"the FHIR server refused our credentials (401): {str(exc)[:200]}") from None
                self._auth.invalidate()
            except ForbiddenError as exc:
                raise FhirRejected(f"the FHIR server forbids this (403): {str(exc)[:200]}") from None
            except ResourceNotFound as exc:
                raise NotFound(str(exc)[:300]) from None
            except MultipleResourcesFound as exc:  # fhirpy's name for HTTP 412
                raise VersionConflict(str(exc)[:300]) from None
            except OperationOutcome as exc:
                if _transient(exc):
                    raise FhirUnavailable(_outcome_text(exc)) from None
                raise FhirRejected(_outcome_text(exc)) from None
            except (aiohttp.ClientError, asyncio.TimeoutError, OSError, json.JSONDecodeError) as exc:
                raise FhirUnavailable(f"{type(exc).__name__}: {str(exc)[:200]}") from None
        raise AssertionError("unreachable")

    # -- reads ---------------------------------------------------------------------------
    async def pages(self, resource_type: str, params: dict[str, Any] | None = None, page_size: int = 500) -> AsyncIterator[list[dict[str, Any]]]:
        """The matching resources one search page at a time, following Bundle.link[next].

        fhirpy builds each URL (and refuses a next link off the server's base URL); the pages
        are read as JSON, without fhirpy's resource wrappers, which cost a third of a sync.
        """
        path: str = resource_type
        query: dict[str, Any] | None = {**(params or {}), "_count": page_size}
        while True:
            bundle = await self._call(lambda p=path, q=query: self._client._fetch_resource(p, q))
            yield [e["resource"] for e in bundle.get("entry") or [] if isinstance(e, dict) and "resource" in e]
            next_url = next((link.get("url") for link in bundle.get("link") or [] if link.get("relation") == "next"), None)
            if not next_url:
                return
            path, query = parse_pagination_url(next_url)

    async def search(self, resource_type: str, params: dict[str, Any] | None = None, page_size: int = 500) -> list[dict[str, Any]]:
        """Every resource matching `params`, all pages."""
        return [r async for page in self.pages(resource_type, params, page_size) for r in page]

    async def read(self, resource_type: str, resource_id: str) -> dict[str, Any]:
        async def run() -> dict[str, Any]:
            return dict(await self._client._do_request("get", f"{resource_type}/{resource_id}"))

        return dict(await self._call(run))

    async def metadata(self) -> dict[str, Any]:
        async def run() -> dict[str, Any]:
            return dict(await self._client._do_request("get", "metadata"))

        return dict(await self._call(run))

    # -- writes --------------------------------------------------------------------------
    async def create_once(self, resource: dict[str, Any], if_none_exist: str) -> tuple[dict[str, Any], bool]:
        """Conditional create: the existing match, or a new resource. (resource, created)."""

        async def run() -> tuple[Any, int]:
            return await self._client._do_request(
                "post", resource["resourceType"], data=resource, extra_headers={"If-None-Exist": if_none_exist}, returning_status=True
            )

        data, status = await self._call(run)
        return dict(data), status == 201

    async def update(self, resource: dict[str, Any], version_id: str | None) -> dict[str, Any]:
        """PUT with `If-Match: W/"<version>"` (no condition when version_id is None)."""
        headers = {"If-Match": f'W/"{version_id}"'} if version_id else None

        async def run() -> Any:
            return await self._client._do_request(
                "put", f"{resource['resourceType']}/{resource['id']}", data=resource, extra_headers=headers
            )

        return dict(await self._call(run))
