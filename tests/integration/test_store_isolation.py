"""A reply queued by a transaction that is cancelled (the bot stopped mid-transaction) is never
sent: the outbox reads only committed rows (its in-memory queue changes only on commit)."""

from __future__ import annotations

import asyncio
import contextlib

import pytest

from bot.matrix.messages import notice
from bot.runtime.shared import TO
from tests.integration.helpers import make_clinic, replying_to, running_bot

pytestmark = pytest.mark.integration


def _seen_doomed(patient) -> bool:
    return any("never sent" in s.content.get("body", "") for s in patient.seen)


async def _until(predicate) -> None:
    while not predicate():
        await asyncio.sleep(0.01)


async def _outbox_empty(bot) -> bool:
    return await bot.store.outbox() == []


async def _until_async(predicate) -> None:
    while not await predicate():
        await asyncio.sleep(0.05)


async def test_a_reply_of_a_cancelled_transaction_is_never_sent(homeserver, new_user, tmp_path):
    clinic = make_clinic(tmp_path, homeserver, new_user)
    patient = await clinic.user(clinic.patient, "patient").start()
    try:
        async with running_bot(clinic.config_path) as bot:
            room_id = await patient.wait_room()
            await patient.wait_for(lambda s: s.content.get("carebot.disclaimer") is True)
            await asyncio.wait_for(_until_async(lambda: _outbox_empty(bot)), 30)
            outbox = bot.running.outbox
            doomed = notice("never sent: its transaction is cancelled")
            doomed[TO] = [clinic.patient[0], clinic.practitioner[0]]
            with pytest.raises(asyncio.CancelledError):
                async with bot.store.transaction():
                    await bot.store.enqueue("txn-doomed", room_id, doomed)
                    looked = outbox.looked
                    outbox.wake()
                    # Held open until the outbox has read its queue again, and a little longer:
                    # it either skips this uncommitted row (right) or sends it (the bug).
                    await asyncio.wait_for(_until(lambda: outbox.looked > looked), 30)
                    with contextlib.suppress(asyncio.TimeoutError):
                        await asyncio.wait_for(_until(lambda: _seen_doomed(patient)), 2)
                    raise asyncio.CancelledError  # cancelled mid-transaction
            # A later command's answer arrives: the outbox is FIFO per room, so anything
            # queued before it has been sent by then.
            barrier = await patient.send(room_id, "!aide")
            await patient.wait_for(replying_to(barrier))
            assert not _seen_doomed(patient)
    finally:
        await patient.close()
