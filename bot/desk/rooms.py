"""The practitioner's Space and desk room as they are created (bodies of POST /createRoom).

Unencrypted state only holds roster ids and the practitioner's name (already in the pair-room
names); requests and patient names travel in the desk's encrypted messages.
"""

from __future__ import annotations

from typing import Any

from bot.matrix.rooms import MEGOLM, STATE_LEVEL, creator_is_privileged

SPACE_STATE = "carebot.space"
DESK_STATE = "carebot.desk"
SPACE_CHILD = "m.space.child"
DESK_ORDER = "0desk"  # m.space.child "order": the desk first, then the pair rooms


def _power(bot: str, practitioner: str, room_version: str, events_default: int, extra: dict[str, int]) -> dict[str, Any]:
    users = {practitioner: 0}
    if not creator_is_privileged(room_version):
        users[bot] = STATE_LEVEL
    return {
        "users": users,
        "users_default": 0,
        "events_default": events_default,
        "state_default": STATE_LEVEL,
        "invite": STATE_LEVEL,
        "kick": STATE_LEVEL,
        "ban": STATE_LEVEL,
        "redact": STATE_LEVEL,
        "notifications": {"room": STATE_LEVEL},
        "events": {"m.room.redaction": 0, "m.reaction": 0, **extra},
    }


def _private(history: str) -> list[dict[str, Any]]:
    return [
        {"type": "m.room.join_rules", "state_key": "", "content": {"join_rule": "invite"}},
        {"type": "m.room.guest_access", "state_key": "", "content": {"guest_access": "forbidden"}},
        {"type": "m.room.history_visibility", "state_key": "", "content": {"history_visibility": history}},
    ]


def space_body(*, bot: str, practitioner_mxid: str, practitioner_id: str, name: str, topic: str, room_version: str) -> dict[str, Any]:
    """A Space (creation content type m.space) holding the practitioner's rooms; only the bot
    changes its children."""
    return {
        "visibility": "private",
        "name": name,
        "topic": topic,
        "invite": [practitioner_mxid],
        "is_direct": False,
        "initial_state": [
            *_private("invited"),
            {"type": SPACE_STATE, "state_key": "", "content": {"practitioner": practitioner_id}},
        ],
        "power_level_content_override": _power(bot, practitioner_mxid, room_version, STATE_LEVEL, {SPACE_STATE: STATE_LEVEL, SPACE_CHILD: STATE_LEVEL}),
        "creation_content": {"type": "m.space", "m.federate": True},
    }


def desk_body(*, bot: str, practitioner_mxid: str, practitioner_id: str, name: str, topic: str, room_version: str) -> dict[str, Any]:
    """The encrypted desk room: the bot and the practitioner only."""
    return {
        "visibility": "private",
        "name": name,
        "topic": topic,
        "invite": [practitioner_mxid],
        "is_direct": False,
        "initial_state": [
            {"type": "m.room.encryption", "state_key": "", "content": {"algorithm": MEGOLM}},
            *_private("invited"),
            {"type": DESK_STATE, "state_key": "", "content": {"practitioner": practitioner_id}},
        ],
        "power_level_content_override": _power(bot, practitioner_mxid, room_version, 0, {DESK_STATE: STATE_LEVEL}),
        "creation_content": {"m.federate": True},
    }


def child_content(via: str, *, order: str | None = None, suggested: bool = False) -> dict[str, Any]:
    """m.space.child content (`via`: the bot's server: v12 room ids name none); an empty
    content removes the child (spec)."""
    content: dict[str, Any] = {"via": [via]}
    if order:
        content["order"] = order
    if suggested:
        content["suggested"] = True
    return content
