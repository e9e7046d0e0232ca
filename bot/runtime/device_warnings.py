"""Tell the practitioner, once per device, that a member's device is not cross-signed."""

from __future__ import annotations

import structlog

from bot.matrix.messages import notice
from bot.runtime.shared import TO, LiveState, txn_for
from bot.store import Store

log = structlog.get_logger("carebot")


class DeviceWarnings:
    def __init__(self, store: Store, state: LiveState, bot_user_id: str, trust_mode: str) -> None:
        self._store = store
        self._state = state
        self._bot = bot_user_id
        self._text_key = "unsigned_device_" + trust_mode.replace("-", "_")
        self._warned: set[tuple[str, str, str]] = set()  # spares a query per message

    async def warn(self, room_id: str, unsigned: dict[str, list[str]]) -> None:
        """Queue the warnings; the caller wakes the outbox."""
        if not unsigned:
            return
        record = await self._store.room(room_id)
        if record is None:
            return
        care = self._state.care
        pair = care.roster.pair(record.patient_id, record.practitioner_id)
        if pair is None:
            return
        for mxid, devices in unsigned.items():
            if mxid == self._bot:
                continue
            name = pair.patient.display_name if mxid == pair.patient.matrix_id else pair.practitioner.display_name
            for device_id in devices:
                key = (room_id, mxid, device_id)
                if key in self._warned:
                    continue
                self._warned.add(key)
                async with self._store.transaction():
                    if await self._store.was_warned(*key):
                        continue
                    await self._store.mark_warned(*key)
                    text = care.texts.get(
                        self._text_key, care.locale_of(pair, pair.practitioner.matrix_id), who=name
                    )
                    content = notice(text, mentions=[(pair.practitioner.matrix_id, pair.practitioner.display_name)])
                    content[TO] = [pair.patient.matrix_id, pair.practitioner.matrix_id]
                    await self._store.enqueue(txn_for("unsigned", room_id, mxid, device_id), room_id, content)
                log.info("trust.unsigned_device", room_id=room_id, pair=f"{record.patient_id}/{record.practitioner_id}")
