"""The desk's components, built together (none when `desk.enabled` is false)."""

from __future__ import annotations

from dataclasses import dataclass

from nio import AsyncClient

from bot.care.service import CareService
from bot.config import Config
from bot.desk.calendar import BusinessCalendar
from bot.desk.clock import DeskClock
from bot.desk.service import DeskService
from bot.desk.turnaround import Turnaround
from bot.runtime.desk_room import DeskRelay, DeskRoom, Desks
from bot.runtime.desk_schedule import DeskSchedule
from bot.runtime.desks import DeskKeeper
from bot.runtime.shared import LiveState, Wake
from bot.store import Store


@dataclass(frozen=True)
class DeskParts:
    desks: Desks
    keeper: DeskKeeper
    room: DeskRoom
    relay: DeskRelay
    schedule: DeskSchedule


def desk_parts(
    config: Config, store: Store, client: AsyncClient, state: LiveState, care_service: CareService, room_version: str, *, wake: Wake
) -> DeskParts | None:
    c = config.desk
    if not c.enabled:
        return None
    turnaround = Turnaround(BusinessCalendar(c.holidays_country, c.holidays_subdivision), c.zone, c.digest_time, c.reminder_business_days)
    desks = Desks(store, state, DeskService(store, care_service, turnaround, via=client.user_id.split(":", 1)[1]), DeskClock(), wake)
    keeper = DeskKeeper(client, store, state, c, room_version=room_version, max_concurrent=config.rooms.max_concurrent_creations)
    return DeskParts(desks, keeper, DeskRoom(client, desks), DeskRelay(desks), DeskSchedule(client, desks))


def device_display_name(client: AsyncClient, user_id: str, device_id: str) -> str:
    """The name a device's owner gave it, else its id."""
    try:
        device = client.device_store[user_id][device_id]
    except (KeyError, AttributeError, TypeError):
        return device_id
    return getattr(device, "display_name", None) or device_id
