"""The roster source: reads the clinic's FHIR server, builds the roster, keeps the last good one.

`sync()` reads Patients, Practitioners, PractitionerRoles, Encounters and MedicationRequests
page by page, each resource parsed with its fhir.resources R4B model and kept as a small
record of what the roster needs (bot/fhir/facts.py). The first sync (and every `full_every`-th, and a SIGHUP) reads everything; the
others ask only for what changed (`_lastUpdated=ge<cursor>`, the cursor being the newest
`meta.lastUpdated` the server returned, so the bot's clock does not matter) and merge it into
what it had. A full read is what notices deleted resources. Each resource is parsed with the
fhir.resources R4B models: one that does not parse is skipped and reported like any other
unusable resource.

`start()` is the start-up: a sync, saved to the store as the last good roster; if the server
cannot be reached, the saved roster (with a log line saying so and how old it is).
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import structlog
from fhir.resources.R4B.encounter import Encounter
from fhir.resources.R4B.medicationrequest import MedicationRequest
from fhir.resources.R4B.patient import Patient
from fhir.resources.R4B.practitioner import Practitioner
from fhir.resources.R4B.practitionerrole import PractitionerRole
from pydantic import ValidationError

from bot.fhir.client import FhirClient, FhirUnavailable
from bot.fhir.facts import fact
from bot.fhir.mapping import Problem, RosterBuild, build_roster, roster_from_json, roster_to_json

log = structlog.get_logger(__name__)

MODELS: dict[str, Any] = {
    "Patient": Patient,
    "Practitioner": Practitioner,
    "PractitionerRole": PractitionerRole,
    "Encounter": Encounter,
    "MedicationRequest": MedicationRequest,
}
SNAPSHOT = "roster"


class NoRoster(Exception):
    """The server is unreachable and no roster was ever saved: the bot cannot start."""


class FhirRosterSource:
    def __init__(self, client: FhirClient, store: Any = None, page_size: int = 500, full_every: int = 60) -> None:
        self.client = client
        self.store = store
        self.page_size = page_size
        self.full_every = full_every
        self._cache: dict[str, dict[str, Any]] = {t: {} for t in MODELS}
        self._invalid: dict[str, dict[str, Problem]] = {t: {} for t in MODELS}
        self._cursor: dict[str, str] = {}
        self._seen: dict[str, dict[str, str]] = {t: {} for t in MODELS}  # id -> meta.lastUpdated
        self._syncs = 0
        self.last: RosterBuild | None = None

    async def sync(self, full: bool = False) -> RosterBuild:
        """Read the server (everything, or what changed) and build the roster. Raises FhirError.

        Each page is parsed as it arrives (only records are kept, not the JSON), into a staging
        area that replaces or updates the cache only once every type was read. When nothing
        changed, the roster in force is returned as it is (not rebuilt).
        """
        full = full or self._syncs % self.full_every == 0
        staged: dict[str, tuple[dict[str, Any], dict[str, Problem], str]] = {}
        seen_now: dict[str, dict[str, str]] = {}
        for rtype, model in MODELS.items():
            params: dict[str, Any] = {}
            if not full and rtype in self._cursor:
                params["_lastUpdated"] = "ge" + self._cursor[rtype]
            good: dict[str, Any] = {}
            bad: dict[str, Problem] = {}
            updated: dict[str, str] = {}
            cursor = self._cursor.get(rtype, "")
            seen = self._seen[rtype]
            async for page in self.client.pages(rtype, params, self.page_size):
                if not full:  # `ge` returns the newest ones again: skip the versions already had
                    page = [raw for raw in page if seen.get(str(raw.get("id"))) != _updated(raw) or not _updated(raw)]
                # Parsing is CPU work: in a thread, so the bot's replies are not held up.
                for raw_updated, rid, parsed in await asyncio.to_thread(_parse_page, rtype, model, page):
                    cursor = max(cursor, raw_updated)
                    updated[rid] = raw_updated
                    if isinstance(parsed, Problem):
                        bad[rid] = parsed
                    else:
                        good[rid] = parsed
            staged[rtype] = (good, bad, cursor)
            seen_now[rtype] = updated
        if not full and self.last is not None and not any(g or b for g, b, _c in staged.values()):
            self._syncs += 1
            return self.last  # nothing changed on the server
        for rtype, (good, bad, cursor) in staged.items():
            if full:
                self._cache[rtype], self._invalid[rtype], self._seen[rtype] = good, bad, seen_now[rtype]
            else:
                self._seen[rtype].update(seen_now[rtype])
                for rid in good:
                    self._invalid[rtype].pop(rid, None)
                for rid in bad:
                    self._cache[rtype].pop(rid, None)
                self._cache[rtype].update(good)
                self._invalid[rtype].update(bad)
            if cursor:
                self._cursor[rtype] = cursor
        del staged
        self._syncs += 1
        build = await asyncio.to_thread(build_roster, *(list(self._cache[t].values()) for t in MODELS))
        build.problems[:0] = [p for t in MODELS for p in self._invalid[t].values()]
        for t in MODELS:
            if self._invalid[t]:
                build.counts[f"{t}.skipped"] += len(self._invalid[t])
        self.last = build
        (log.info if full else log.debug)(
            "fhir.roster.synced",
            full=full,
            practitioners=len(build.roster.practitioners),
            patients=len(build.roster.patients),
            verified_pairs=len(build.roster.verified_pairs()),
            skipped=len(build.problems),
            first_skipped=[p.resource for p in build.problems[:5]],
        )
        return build

    async def start(self) -> RosterBuild:
        """The roster at start-up: from the server, else the last good one kept in the store."""
        try:
            build = await self.sync(full=True)
        except FhirUnavailable as exc:
            saved = await self.store.fhir_state(SNAPSHOT) if self.store is not None else None
            if saved is None:
                raise NoRoster(
                    f"the FHIR server {self.client.url} cannot be reached ({exc}) and no roster from it was saved yet; "
                    "check fhir.url and that the server is up, then start again"
                ) from None
            data, saved_at = saved
            log.warning("fhir.roster.saved_copy_used", reason=str(exc)[:200], saved_age_s=round(time.time() - saved_at))
            self.last = roster_from_json(data)
            return self.last
        await self.save(build)
        return build

    async def save(self, build: RosterBuild) -> None:
        if self.store is not None:
            async with self.store.transaction():
                await self.store.save_fhir_state(SNAPSHOT, roster_to_json(build))


def _updated(raw: dict[str, Any]) -> str:
    value = (raw.get("meta") or {}).get("lastUpdated")
    return value if isinstance(value, str) else ""


def _parse_page(rtype: str, model: Any, page: list[dict[str, Any]]) -> list[tuple[str, str, Any]]:
    return [(_updated(raw), *_parse(rtype, model, raw)) for raw in page]


def _parse(rtype: str, model: Any, raw: dict[str, Any]) -> tuple[str, Any]:
    """(id, the resource's record) or (id, Problem) when it does not parse as an R4 resource.

    Validated with the R4B model, kept as a small record (bot/fhir/facts.py)."""
    rid = str(raw.get("id", "?"))
    try:
        return rid, fact(model.model_validate(raw))
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(x) for x in err["loc"])
        return rid, Problem(f"{rtype}/{rid}", f"not a valid FHIR R4 {rtype} ({where}: {err['msg']})")
