"""What the desks say on their own, checked every housekeeping round against the desk clock:
the morning digest, reminders about old requests, and the pending list again when a new
device of the practitioner appears (it cannot read what was sent before it existed)."""

from __future__ import annotations

import structlog
from nio import AsyncClient

from bot.desk.service import DeskPost
from bot.runtime.desk_room import Desks
from bot.runtime.shared import txn_for

log = structlog.get_logger("carebot")


class DeskSchedule:
    def __init__(self, client: AsyncClient, desks: Desks) -> None:
        self._client = client
        self._desks = desks
        self._devices: dict[str, set[str]] = {}  # practitioner id -> devices already caught up

    async def tick(self) -> None:
        """One round: reads first, and a transaction only for a desk with something to post."""
        d = self._desks
        care = d.state.care
        now = d.clock.now()
        turnaround = d.service.turnaround
        morning = turnaround.morning_open(now)
        today = turnaround.local(now).date()
        for record in await d.store.desks():
            practitioner = care.roster.practitioner(record.practitioner_id)
            if practitioner is None or record.desk_room_id is None or not self._joined(record.desk_room_id, practitioner.matrix_id):
                continue
            pid = practitioner.id
            posts: list[tuple[DeskPost, str]] = []
            digest = False
            if morning:  # digest and reminders only in the business-morning window
                pending = await d.store.pending_for_practitioner(pid)
                if turnaround.digest_due(now, await d.store.last_digest(pid), len(pending)):
                    posts.append((await d.service.digest(care, practitioner, now), txn_for("digest", pid, today.isoformat())))
                    digest = True
                reminded = await d.store.reminded([r.id for r in pending])
                for post in await d.service.reminders(care, practitioner, now, reminded):
                    posts.append((post, txn_for("reminder", str(post.request.id))))
            new_devices = await self._new_devices(practitioner)
            if new_devices:
                t = d.service.text(care, practitioner)
                listing = await d.service.listing(care, practitioner, now)
                posts.append((DeskPost(t.get("desk_catch_up") + "\n" + listing), txn_for("catch-up", pid, *sorted(new_devices))))
            if not posts:
                continue
            async with d.store.transaction():
                for post, txn in posts:
                    await d.post(practitioner, post, txn, mention=True, room_id=record.desk_room_id)
                    if post.request is not None:
                        await d.store.mark_reminded(post.request.id)
                if digest:
                    await d.store.set_last_digest(pid, today)
            log.info("desk.scheduled_posts", practitioner=pid, posts=len(posts), new_devices=len(new_devices))
            d.wake()

    def _joined(self, room_id: str, mxid: str) -> bool:
        """Not merely invited. (With lazy-loaded members, a practitioner silent for long may be
        missing from `users` after a restart: only a pending invite counts against them.)"""
        room = self._client.rooms.get(room_id)
        return room is not None and mxid not in room.invited_users

    async def _new_devices(self, practitioner) -> set[str]:  # noqa: ANN001
        """Devices of the practitioner the desk has not caught up yet (none the first time:
        the devices they had when they joined the desk read its welcome)."""
        d = self._desks
        olm = getattr(self._client, "olm", None)
        if olm is None:
            return set()
        now_ids = {dev.id for dev in olm.device_store.active_user_devices(practitioner.matrix_id)}
        known = self._devices.get(practitioner.id)
        if known is None:
            known = self._devices[practitioner.id] = await d.store.desk_devices(practitioner.id)
        new = now_ids - known
        if not new:
            return set()
        first_time = not known
        async with d.store.transaction():
            await d.store.add_desk_devices(practitioner.id, new)
        known |= new
        return set() if first_time else new
