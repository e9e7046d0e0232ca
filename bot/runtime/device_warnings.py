"""Tell the practitioner, once per device, that a device is not cross-signed.

With a desk (the default), the notice goes to the practitioner's desk — once per device for
all their rooms, naming the device — and never to a pair room. Without one, it goes to the
pair room where the device was met, through `PractitionerNotices` (the practitioner mentioned,
as for every notice meant for them).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import structlog

from bot.care.roster import Pair, Practitioner
from bot.desk.links import permalink
from bot.desk.service import DeskPost
from bot.runtime.desk_room import Desks
from bot.runtime.practitioner_notice import PractitionerNotices
from bot.runtime.shared import LiveState, txn_for
from bot.store import Store

log = structlog.get_logger("carebot")

DeviceName = Callable[[str, str], str]  # (user id, device id) -> display name (or the id)


class DeviceWarnings:
    def __init__(
        self, store: Store, state: LiveState, bot_user_id: str, trust_mode: str, notices: PractitionerNotices,
        desks: Desks | None = None, device_name: DeviceName | None = None,
    ) -> None:
        self._store = store
        self._state = state
        self._bot = bot_user_id
        self._mode = trust_mode.replace("-", "_")
        self._text_key = "unsigned_device_" + self._mode
        self._notices = notices  # the pair room's practitioner-facing path
        self._desks = desks  # None when `desk.enabled` is false
        self._device_name = device_name or (lambda _user, device: device)
        self._warned: set[tuple[str, str, str]] = set()  # spares a query per message

    async def warn(self, room_id: str, unsigned: dict[str, list[str]]) -> None:
        """Queue the warnings; the caller wakes the outbox."""
        if not unsigned:
            return
        care = self._state.care
        desks = self._desks
        record = await self._store.room(room_id)
        pair = care.roster.pair(record.patient_id, record.practitioner_id) if record is not None else None
        practitioner = pair.practitioner if pair is not None else None
        if record is None and desks is not None:
            desk = await self._store.desk_by_room(room_id)
            practitioner = care.roster.practitioner(desk.practitioner_id) if desk is not None else None
        if practitioner is None:
            return
        desk_id = await desks.room_of(practitioner.id) if desks is not None else None
        if desks is not None and desk_id is not None:
            await self._to_desk(desks, desk_id, practitioner, pair, room_id, unsigned)
        elif pair is not None:
            await self._to_pair_room(room_id, pair, unsigned)

    async def _once(self, key: tuple[str, str, str], queue: Callable[[], Awaitable[None]]) -> bool:
        """Queue a warning about (room, user, device) unless it was given already: remembered
        in memory and in the store, checked and marked in the transaction that queues it."""
        if key in self._warned:
            return False
        self._warned.add(key)
        async with self._store.transaction():
            if await self._store.was_warned(*key):
                return False
            await self._store.mark_warned(*key)
            await queue()
        return True

    async def _to_desk(
        self, desks: Desks, desk_id: str, practitioner: Practitioner, pair: Pair | None, room_id: str, unsigned: dict[str, list[str]]
    ) -> None:
        care = self._state.care
        locale = getattr(practitioner, "locale", None) or care.default_locale
        for mxid, devices in unsigned.items():
            if mxid == self._bot or (mxid != practitioner.matrix_id and pair is None):
                continue
            for device_id in devices:
                if mxid == practitioner.matrix_id:
                    text = care.texts.get("desk_own_device_" + self._mode, locale, device=self._device_name(mxid, device_id))
                else:
                    assert pair is not None  # skipped above otherwise
                    text = care.texts.get("desk_patient_device_" + self._mode, locale, patient=pair.patient.display_name, link=permalink(room_id, via=desks.service.via))

                async def post(text: str = text, device_id: str = device_id) -> None:
                    await desks.post(practitioner, DeskPost(text), txn_for("unsigned", desk_id, mxid, device_id), mention=True, room_id=desk_id)

                if await self._once((desk_id, mxid, device_id), post):
                    log.info("trust.unsigned_device", room_id=desk_id, practitioner=practitioner.id, own=mxid == practitioner.matrix_id)

    async def _to_pair_room(self, room_id: str, pair: Pair, unsigned: dict[str, list[str]]) -> None:
        care = self._state.care
        locale = care.locale_of(pair, pair.practitioner.matrix_id)
        for mxid, devices in unsigned.items():
            if mxid == self._bot:
                continue
            name = pair.patient.display_name if mxid == pair.patient.matrix_id else pair.practitioner.display_name
            text = care.texts.get(self._text_key, locale, who=name)
            for device_id in devices:

                async def tell(device_id: str = device_id) -> None:
                    await self._notices.notify(pair, room_id, text, "unsigned", mxid, device_id)

                if await self._once((room_id, mxid, device_id), tell):
                    log.info("trust.unsigned_device", room_id=room_id, pair=f"{pair.patient.id}/{pair.practitioner.id}")
