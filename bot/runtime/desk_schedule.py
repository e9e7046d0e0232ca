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
        d = self._desks
        care = d.state.care
        now = d.clock.now()
        turnaround = d.service.turnaround
        for record in await d.store.desks():
            practitioner = care.roster.practitioner(record.practitioner_id)
            if practitioner is None or record.desk_room_id is None or not self._joined(record.desk_room_id, practitioner.matrix_id):
                continue
            pid = practitioner.id
            pending = await d.store.pending_for_practitioner(pid)
            today = turnaround.local(now).date()
            queued = 0
            async with d.store.transaction():
                if turnaround.digest_due(now, await d.store.last_digest(pid), len(pending)):
                    post = await d.service.digest(care, practitioner, now)
                    await d.post(practitioner, post, txn_for("digest", pid, today.isoformat()), mention=True, room_id=record.desk_room_id)
                    await d.store.set_last_digest(pid, today)
                    queued += 1
                reminded = await d.store.reminded([r.id for r in pending])
                for post in await d.service.reminders(care, practitioner, now, reminded):
                    await d.post(practitioner, post, txn_for("reminder", str(post.request.id)), mention=True, room_id=record.desk_room_id)
                    await d.store.mark_reminded(post.request.id)
                    queued += 1
                queued += await self._new_devices(practitioner, record.desk_room_id)
            if queued:
                log.info("desk.scheduled_posts", practitioner=pid, posts=queued)
                d.wake()

    def _joined(self, room_id: str, mxid: str) -> bool:
        room = self._client.rooms.get(room_id)
        return room is not None and mxid in room.users and mxid not in room.invited_users

    async def _new_devices(self, practitioner, desk_room_id: str) -> int:  # noqa: ANN001
        """Devices of the practitioner the desk has not caught up yet get the pending list."""
        d = self._desks
        olm = getattr(self._client, "olm", None)
        if olm is None:
            return 0
        now_ids = {dev.id for dev in olm.device_store.active_user_devices(practitioner.matrix_id)}
        known = self._devices.get(practitioner.id)
        if known is None:
            known = self._devices[practitioner.id] = await d.store.desk_devices(practitioner.id)
        new = now_ids - known
        if not new:
            return 0
        first_time = not known  # their devices when the desk began: the welcome covered them
        await d.store.add_desk_devices(practitioner.id, new)
        known |= new
        if first_time:
            return 0
        care = d.state.care
        t = d.service.text(care, practitioner)
        listing = await d.service.listing(care, practitioner, d.clock.now())
        post = DeskPost(t.get("desk_catch_up") + "\n" + listing)
        await d.post(practitioner, post, txn_for("catch-up", practitioner.id, *sorted(new)), mention=True, room_id=desk_room_id)
        log.info("desk.new_device_caught_up", practitioner=practitioner.id, devices=len(new))
        return 1
