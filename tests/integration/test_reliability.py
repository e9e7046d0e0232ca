"""Nothing lost, nothing repeated: SIGKILL at the worst moments, and a cut to the homeserver."""

from __future__ import annotations

import asyncio
import time

import pytest
import yaml

from bot.devserver import Homeserver
from tests.integration.helpers import (
    BotProcess, CuttableProxy, make_clinic, outbox_rows, replying_to, running_bot, store_counts,
)

pytestmark = pytest.mark.integration


async def wait_until(predicate, timeout: float, step: float = 0.2) -> None:
    async def poll() -> None:
        while not predicate():
            await asyncio.sleep(step)

    await asyncio.wait_for(poll(), timeout)


def bot_task_failed(bot) -> bool:
    """The bot is still running (its sync loop did not give up)."""
    return bot.sync_loop is None or bot.ready.is_set() is False




async def _count_after_barrier(patient, room_id: str, event_id: str) -> int:
    """Replies to `event_id` seen once a later command has been answered (the outbox is FIFO)."""
    barrier = await patient.send(room_id, "!aide")
    await patient.wait_for(replying_to(barrier))
    return sum(1 for s in patient.seen if replying_to(event_id)(s))


async def _outbox(config_path) -> list[dict]:
    """The contents of the bot's queued messages, read beside the running bot (either store)."""
    return [c for _, _, c in await outbox_rows(config_path)]


def _replies_to(event_id: str, contents: list[dict]) -> int:
    return sum(1 for c in contents if c.get("m.relates_to", {}).get("m.in_reply_to", {}).get("event_id") == event_id)


async def _outbox_drained(config_path, bot: BotProcess, timeout: float = 30.0) -> None:
    """Wait until the running bot has sent, and recorded as sent, everything queued so far.
    Stopping the bot earlier leaves queued what it had not started (by design: sent at the
    next start), e.g. the practitioner's warning about the patient's unsigned device, queued
    just after the message that revealed it."""
    async def drained() -> None:
        while await _outbox(config_path):
            await asyncio.sleep(0.2)

    try:
        await asyncio.wait_for(drained(), timeout)
    except asyncio.TimeoutError:
        raise AssertionError(f"outbox not drained in {timeout}s: {await _outbox(config_path)}\n" + "\n".join(bot.lines[-30:])) from None


@pytest.mark.parametrize("crash_at", ["after_commit", "after_send"])
async def test_sigkill_between_receiving_and_replying_loses_nothing_and_repeats_nothing(
    homeserver, new_user, tmp_path, crash_at, store_url
):
    clinic = make_clinic(tmp_path, homeserver, new_user, database=store_url)
    # One outbox item per command, so the crash point is met by the reply itself: with the
    # desk on, a new request also queues a desk notice in another room, sent in parallel, and
    # `after_send` could be met by that notice instead (the desk has its own tests).
    config = yaml.safe_load(clinic.config_path.read_text())
    config["desk"] = {"enabled": False}
    clinic.config_path.write_text(yaml.safe_dump(config))
    db_path = clinic.config_path  # the store is read through the config: SQLite or PostgreSQL
    patient = await clinic.user(clinic.patient, "patient").start()
    try:
        bot = await BotProcess(clinic.config_path).start()
        room_id = await patient.wait_room()
        try:
            await patient.wait_for(lambda s: s.content.get("carebot.disclaimer") is True)
        except TimeoutError:  # seen once under load (postgres, after_commit): keep the bot's side
            raise AssertionError("no banner within the wait; the bot's last lines:\n" + "\n".join(bot.lines[-60:])) from None
        # Everything sent before the crash run, so that its crash point is met by the reply
        # to the command and not by a message left over from this run.
        await _outbox_drained(db_path, bot)
        await bot.stop()

        bot = await BotProcess(clinic.config_path, {"CAREBOT_CRASH_AT": crash_at}).start()
        ask = await patient.send(room_id, "!renouveler Levothyroxine 75 µg")
        assert await bot.wait_exit() == -9  # killed at the crash point
        # Killed with the reply queued (after_commit: not sent; after_send: sent, not noted).
        queued = await _outbox(db_path)
        assert _replies_to(ask, queued) == 1, queued
        if crash_at == "after_send":
            await patient.wait_for(replying_to(ask))  # it did reach the homeserver

        bot = await BotProcess(clinic.config_path).start()
        reply = await patient.wait_for(replying_to(ask))
        assert reply.content["carebot.renewal"]["status"] == "pending"
        assert await _count_after_barrier(patient, room_id, ask) == 1
        await _outbox_drained(db_path, bot)
        await bot.stop()
        assert (await store_counts(clinic.config_path, "requests"))["requests"] == 1
        left = await outbox_rows(clinic.config_path)
        assert left == [], "\n".join(map(str, left)) + "\n" + "\n".join(bot.lines[-60:])
    finally:
        await patient.close()


async def test_homeserver_outage_then_catch_up_without_duplicates(new_user, tmp_path):
    hs = Homeserver(tmp_path / "hs")
    hs.start()
    proxy = await CuttableProxy(hs.port).start()
    patient = None
    try:
        users = iter(range(1000))
        clinic = make_clinic(tmp_path, hs, lambda p: (hs.register(f"{p}{next(users)}", "pw-long-1"), "pw-long-1"))
        config = yaml.safe_load(clinic.config_path.read_text())
        config["homeserver"]["url"] = proxy.url
        config["sync"] = {"timeout_ms": 1000, "backoff_max_s": 2}
        clinic.config_path.write_text(yaml.safe_dump(config))
        patient = await clinic.user(clinic.patient, "patient").start()
        async with running_bot(clinic.config_path) as bot:
            room_id = await patient.wait_room()
            await patient.wait_for(lambda s: s.content.get("carebot.disclaimer") is True)

            # The bot's link to the homeserver is cut; the patient keeps writing.
            proxy.cut()
            during = [
                await patient.send(room_id, "!renouveler Levothyroxine 75 µg"),
                await patient.send(room_id, "!statut"),
            ]
            # About 30 s without the homeserver: several failed syncs, with backoff.
            loop = bot.sync_loop
            assert loop is not None
            cut_at = time.monotonic()
            await wait_until(lambda: loop.failed_syncs >= 4 and time.monotonic() - cut_at >= 30, timeout=90)
            assert not bot_task_failed(bot)
            proxy.restore()
            for event_id in during:
                await patient.wait_for(replying_to(event_id), timeout=60)

            # The homeserver itself goes down and comes back; the bot keeps running.
            hs.stop()
            hs.start()
            later = await patient.send(room_id, "!statut")
            await patient.wait_for(replying_to(later), timeout=60)
            for event_id in during:
                assert await _count_after_barrier(patient, room_id, event_id) == 1
    finally:
        if patient:
            await patient.close()
        await proxy.close()
        hs.stop()


async def test_a_command_buried_under_more_than_a_sync_timeline_is_still_answered(homeserver, new_user, tmp_path):
    clinic = make_clinic(tmp_path, homeserver, new_user)
    patient = await clinic.user(clinic.patient, "patient").start()
    try:
        async with running_bot(clinic.config_path):
            room_id = await patient.wait_room()
            await patient.wait_for(lambda s: s.content.get("carebot.disclaimer") is True)
        # While the bot is down: a command, then more messages than one sync timeline holds.
        buried = await patient.send(room_id, "!statut")
        for n in range(110):
            await patient.send(room_id, f"message {n}")
        async with running_bot(clinic.config_path):
            reply = await patient.wait_for(replying_to(buried), timeout=60)
            assert "Vous n'avez pas de demande" in reply.content["body"]
    finally:
        await patient.close()
