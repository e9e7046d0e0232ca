"""A reply queued by a transaction that is cancelled (the bot stopped mid-transaction) is never
sent: the outbox reads only committed rows."""

from __future__ import annotations

import asyncio

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
            # Start from a quiet outbox, so that the only one to wait for the lock below is
            # the outbox reading its queue.
            await asyncio.wait_for(_until_async(lambda: _outbox_empty(bot)), 30)
            doomed = notice("never sent: its transaction is cancelled")
            doomed[TO] = [clinic.patient[0], clinic.practitioner[0]]
            with pytest.raises(asyncio.CancelledError):
                async with bot.store.transaction():
                    await bot.store.enqueue("txn-doomed", room_id, doomed)
                    bot.running.outbox.wake()
                    # Held open until the outbox has tried to read: it either waits for this
                    # transaction (the fix) or reads past it and sends the row (the bug).
                    await asyncio.wait_for(_until(lambda: bot.store.waiting > 0 or _seen_doomed(patient)), 30)
                    raise asyncio.CancelledError  # cancelled mid-transaction
            # A later command's answer arrives: the outbox is FIFO per room, so anything
            # queued before it has been sent by then.
            barrier = await patient.send(room_id, "!aide")
            await patient.wait_for(replying_to(barrier))
            assert not _seen_doomed(patient)
    finally:
        await patient.close()
