"""The outbox's send slots: at most N holders; waiting replies go before waiting background
notices, unless a notice has waited too long; a cancelled waiter leaks no slot."""

from __future__ import annotations

import asyncio

from bot.runtime.send_slots import SendSlots


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


async def hold(slots: SendSlots, name: str, order: list[str], release: asyncio.Event, background: bool = False) -> None:
    async with slots.slot(background=background):
        order.append(name)
        await release.wait()


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def test_never_more_holders_than_slots():
    slots, order, release = SendSlots(2), [], asyncio.Event()
    tasks = [asyncio.create_task(hold(slots, str(n), order, release)) for n in range(5)]
    await settle()
    assert order == ["0", "1"] and slots.waiting == 3
    release.set()
    await asyncio.gather(*tasks)
    assert order == ["0", "1", "2", "3", "4"] and slots.waiting == 0


async def busy_then_notice_then_reply(slots: SendSlots, order: list[str]):  # noqa: ANN201
    """One slot taken ("busy", until `first` is set), then a background desk notice and a reply
    waiting for it, in that order (both until `rest` is set)."""
    first, rest = asyncio.Event(), asyncio.Event()
    busy = asyncio.create_task(hold(slots, "busy", order, first))
    await settle()
    notice = asyncio.create_task(hold(slots, "desk", order, rest, background=True))
    await settle()
    reply = asyncio.create_task(hold(slots, "reply", order, rest))
    await settle()
    return first, rest, (busy, notice, reply)


async def test_a_waiting_reply_goes_before_a_background_notice_that_waited_first():
    slots, order = SendSlots(1, clock=Clock()), []
    first, rest, waiting = await busy_then_notice_then_reply(slots, order)
    rest.set()
    first.set()
    await asyncio.gather(*waiting)
    assert order == ["busy", "reply", "desk"]


async def test_a_background_notice_that_waited_too_long_takes_its_turn():
    clock = Clock()
    slots, order = SendSlots(1, max_wait_s=5.0, clock=clock), []
    first, rest, waiting = await busy_then_notice_then_reply(slots, order)
    clock.now = 5.0
    rest.set()
    first.set()
    await asyncio.gather(*waiting)
    assert order == ["busy", "desk", "reply"]


async def test_a_cancelled_waiter_leaks_no_slot():
    slots, order, release = SendSlots(1), [], asyncio.Event()
    busy = asyncio.create_task(hold(slots, "busy", order, release))
    await settle()
    gone = asyncio.create_task(hold(slots, "gone", order, release))
    await settle()
    gone.cancel()
    await asyncio.gather(gone, return_exceptions=True)
    release.set()
    await busy
    await asyncio.wait_for(hold(slots, "after", order, release), 1)
    assert order == ["busy", "after"] and slots.waiting == 0


async def test_a_waiter_cancelled_as_it_is_granted_passes_the_slot_on():
    slots, order, release = SendSlots(1), [], asyncio.Event()
    held = slots.slot()
    await held.__aenter__()
    granted = asyncio.create_task(hold(slots, "granted", order, release))
    await settle()
    await held.__aexit__(None, None, None)  # the slot goes to `granted`...
    granted.cancel()  # ...which is cancelled before it runs
    await asyncio.gather(granted, return_exceptions=True)
    release.set()
    await asyncio.wait_for(hold(slots, "after", order, release), 1)
    assert order == ["after"] and slots.waiting == 0


async def test_a_slot_released_just_after_its_waiter_was_cancelled_is_not_lost():
    slots, order, release = SendSlots(1), [], asyncio.Event()
    held = slots.slot()
    await held.__aenter__()
    gone = asyncio.create_task(hold(slots, "gone", order, release))
    await settle()
    gone.cancel()  # its handler has not run yet when the slot is released
    await held.__aexit__(None, None, None)
    await asyncio.gather(gone, return_exceptions=True)
    release.set()
    await asyncio.wait_for(hold(slots, "after", order, release), 1)
    assert order == ["after"] and slots.waiting == 0
