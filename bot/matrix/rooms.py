"""Pair rooms: what a room for one (patient, practitioner) pair looks like when it is created.

Everything here goes into unencrypted room state, so it holds roster ids and the public
emergency line only — never a patient's name or anything medical.
"""

from __future__ import annotations

from typing import Any

PAIR_STATE = "carebot.pair"
MEGOLM = "m.megolm.v1.aes-sha2"

# Practitioners may redact (remove a message sent by mistake); patients talk; only the bot
# invites, kicks or changes state.
PRACTITIONER_LEVEL = 50
STATE_LEVEL = 100


def creator_is_privileged(room_version: str) -> bool:
    """Room version 12 (MSC4289) gives creators unlimited power outside power_levels.users."""
    try:
        return int(room_version) >= 12
    except ValueError:
        return False


def power_levels(bot: str, patient: str, practitioner: str, room_version: str) -> dict[str, Any]:
    users = {practitioner: PRACTITIONER_LEVEL, patient: 0}
    if not creator_is_privileged(room_version):
        users[bot] = STATE_LEVEL
    return {
        "users": users,
        "users_default": 0,
        "events_default": 0,
        "state_default": STATE_LEVEL,
        "invite": STATE_LEVEL,
        "kick": STATE_LEVEL,
        "ban": STATE_LEVEL,
        "redact": PRACTITIONER_LEVEL,
        "notifications": {"room": STATE_LEVEL},
        "events": {
            "m.room.name": STATE_LEVEL,
            "m.room.topic": STATE_LEVEL,
            "m.room.avatar": STATE_LEVEL,
            "m.room.power_levels": STATE_LEVEL,
            "m.room.history_visibility": STATE_LEVEL,
            "m.room.encryption": STATE_LEVEL,
            "m.room.pinned_events": STATE_LEVEL,
            "m.room.tombstone": STATE_LEVEL,
            "m.room.server_acl": STATE_LEVEL,
            "m.room.canonical_alias": STATE_LEVEL,
            "m.room.join_rules": STATE_LEVEL,
            "m.room.guest_access": STATE_LEVEL,
            PAIR_STATE: STATE_LEVEL,
            "m.room.redaction": 0,
            "m.reaction": 0,
        },
    }


def create_room_body(
    *,
    bot: str,
    patient_mxid: str,
    practitioner_mxid: str,
    patient_id: str,
    practitioner_id: str,
    name: str,
    topic: str,
    room_version: str,
) -> dict[str, Any]:
    """The body of POST /createRoom for a pair room."""
    return {
        "visibility": "private",
        "name": name,
        "topic": topic,
        "invite": [patient_mxid, practitioner_mxid],
        "is_direct": False,
        "initial_state": [
            {"type": "m.room.encryption", "state_key": "", "content": {"algorithm": MEGOLM}},
            {"type": "m.room.join_rules", "state_key": "", "content": {"join_rule": "invite"}},
            {"type": "m.room.guest_access", "state_key": "", "content": {"guest_access": "forbidden"}},
            {
                "type": "m.room.history_visibility",
                "state_key": "",
                "content": {"history_visibility": "invited"},
            },
            {
                "type": PAIR_STATE,
                "state_key": "",
                "content": {"patient": patient_id, "practitioner": practitioner_id},
            },
        ],
        "power_level_content_override": power_levels(
            bot, patient_mxid, practitioner_mxid, room_version
        ),
        "creation_content": {"m.federate": True},
    }


# A closed room (its pair left the roster) is read-only for both members, history kept: every
# event needs the bot's level. Re-opening puts back the levels the room was created with.
_MEMBER_EVENTS = ("m.room.redaction", "m.reaction")


def closed_power_levels(current: dict[str, Any]) -> dict[str, Any]:
    content = dict(current)
    content["events_default"] = STATE_LEVEL
    content["events"] = {**current.get("events", {}), **{t: STATE_LEVEL for t in _MEMBER_EVENTS}}
    return content


def open_power_levels(current: dict[str, Any]) -> dict[str, Any]:
    content = dict(current)
    content["events_default"] = 0
    content["events"] = {**current.get("events", {}), **{t: 0 for t in _MEMBER_EVENTS}}
    return content

