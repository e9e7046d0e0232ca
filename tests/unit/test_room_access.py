"""A closed pair room is read-only for both members; re-opening restores the created levels."""

from bot.matrix.rooms import STATE_LEVEL, closed_power_levels, open_power_levels, power_levels

DOC, PAT, BOT = "@dr:x", "@pat:x", "@bot:x"


def can_post(levels: dict, user: str, event_type: str = "m.room.message") -> bool:
    need = levels.get("events", {}).get(event_type, levels.get("events_default", 0))
    return levels["users"].get(user, levels.get("users_default", 0)) >= need


def test_closing_leaves_only_the_bot_able_to_post_react_or_redact_and_reopening_restores_it():
    created = power_levels(BOT, PAT, DOC, "10")
    closed = closed_power_levels(created)
    for user in (PAT, DOC):
        for kind in ("m.room.message", "m.room.encrypted", "m.reaction", "m.room.redaction"):
            assert not can_post(closed, user, kind), (user, kind)
    assert can_post(closed, BOT) and closed["users"][BOT] == STATE_LEVEL
    assert open_power_levels(closed) == created
    assert created == power_levels(BOT, PAT, DOC, "10")  # the input is not changed in place
