"""The clinic bridge in the running bot (only when `fhir.url` is set): the roster comes from
the FHIR server, Task writes are queued with each request or decision (conversation.py), the
clinic's decisions reach the pair room through the outbox, and a changed roster is reconciled
like a reloaded roster file."""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable
from typing import Any

import structlog

from bot.care.roster import Pair, Roster
from bot.care.service import CareService, Reply
from bot.config import Config
from bot.fhir.auth import AuthError
from bot.fhir.bridge import Bridge
from bot.fhir.client import FhirRejected
from bot.fhir.decisions import ClinicDecisions
from bot.fhir.source import NoRoster
from bot.matrix.messages import notice
from bot.runtime.conversation import reply_content
from bot.runtime.shared import TO, LiveState, Wake, txn_for
from bot.store import Store
from bot.yamlutil import ConfigErrors

log = structlog.get_logger("carebot")


async def open_bridge(config: Config, store: Store) -> Bridge | None:
    """The bridge with its first roster (or the saved copy); None without `fhir.url`."""
    if config.fhir is None:
        return None
    bridge = Bridge.from_config(config, store)
    try:
        await bridge.start()
    except NoRoster as exc:
        raise ConfigErrors([config.error("fhir.url", str(exc))]) from None
    except (AuthError, FhirRejected) as exc:  # credentials or permissions: the admin must act
        key = "fhir.token_file" if config.fhir.token_file else "fhir.smart" if config.fhir.smart else "fhir.url"
        raise ConfigErrors([config.error(key, f"the FHIR server did not let the bot read the roster: {exc}")]) from None
    return bridge


def attach_bridge(
    bridge: Bridge, store: Store, state: LiveState, service: CareService, wake: Wake,
    reconcile: Callable[[], Awaitable[None]],
) -> None:
    async def enqueue(room_id: str, pair: Pair, replies: list[Reply], key: str) -> None:
        for n, reply in enumerate(replies):
            if reply.text:
                content = reply_content(reply, pair, None)
            else:  # only for the practitioner
                content = notice(reply.for_practitioner or "", mentions=[(pair.practitioner.matrix_id, pair.practitioner.display_name)])
                content[TO] = [pair.patient.matrix_id, pair.practitioner.matrix_id]
            await store.enqueue(txn_for(key, str(n)), room_id, content)

    async def on_roster(roster: Roster) -> None:
        state.care = dataclasses.replace(state.care, roster=roster)
        log.info("fhir.roster.applied", pairs=len(roster.verified_pairs()))
        await reconcile()

    bridge.attach(ClinicDecisions(store, service, lambda: state.care, enqueue, wake), on_roster)


def bridge_roster(bridge: Any) -> Callable[[], Roster | None]:
    return lambda: bridge.build.roster if bridge is not None and bridge.build is not None else None


__all__ = ["Bridge", "attach_bridge", "bridge_roster", "open_bridge"]
