"""The installed matrix-nio still has the private API bot/matrix/nio_private.py relies on."""

import ast
from pathlib import Path

from nio import AsyncClient

from bot.matrix import nio_private

BOT = Path(__file__).resolve().parents[2] / "bot"


def test_installed_nio_has_every_private_call_the_adapter_uses():
    assert nio_private.missing() == []


def test_adapter_builds_paths_and_keeps_bookkeeping_per_client():
    assert nio_private.path(["createRoom"], {"access_token": "t"}) == "/_matrix/client/v3/createRoom?access_token=t"
    one, two = AsyncClient("https://hs.example", "@a:hs.example"), AsyncClient("https://hs.example", "@b:hs.example")
    asked = nio_private.per_client(one, "asked", dict)
    asked["@x:hs.example"] = 1.0
    assert nio_private.per_client(one, "asked", dict) is asked
    assert nio_private.per_client(two, "asked", dict) == {}


def test_no_module_but_the_adapter_touches_nio_private_api():
    offenders = []
    for path in BOT.rglob("*.py"):
        if path.name == "nio_private.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Attribute) and node.attr in ("_send", "_build_path", "__dict__"):
                offenders.append(f"{path.relative_to(BOT.parent)}:{node.lineno} .{node.attr}")
    assert offenders == []


def _forward(sender: str, forwarder_key: str, session_sender_key: str, session_id: str = "S1"):
    from nio.events import ForwardedRoomKeyEvent

    payload = {
        "type": "m.forwarded_room_key",
        "sender": sender,
        "content": {
            "algorithm": "m.megolm.v1.aes-sha2", "room_id": "!r:hs", "session_id": session_id,
            "sender_key": session_sender_key, "sender_claimed_ed25519_key": "ed", "session_key": "x",
            "forwarding_curve25519_key_chain": [],
        },
    }
    return ForwardedRoomKeyEvent.from_dict(payload, sender, forwarder_key)


def test_a_key_forwarded_by_the_sessions_own_device_is_accepted_only_when_asked(tmp_path):
    from nio.crypto import OlmDevice
    from nio.crypto.key_request import OutgoingKeyRequest

    client = AsyncClient("https://hs", "@bot:hs", device_id="BOT", store_path=str(tmp_path))
    client.restore_login("@bot:hs", "BOT", "token")
    olm = client.olm
    olm.device_store.add(OlmDevice("@alice:hs", "PHONE", {"ed25519": "ed", "curve25519": "cu-phone"}))
    olm.device_store.add(OlmDevice("@alice:hs", "OTHER", {"ed25519": "ed2", "curve25519": "cu-other"}))
    nio_private.accept_forwards_from_session_owner(client)
    nio_private.accept_forwards_from_session_owner(client)  # installing twice changes nothing

    own = _forward("@alice:hs", "cu-phone", "cu-phone")
    assert not olm._should_accept_forward("@alice:hs", "cu-phone", own)  # noqa: SLF001 - never asked
    olm.outgoing_key_requests["S1"] = OutgoingKeyRequest("S1", "S1", "!r:hs", "m.megolm.v1.aes-sha2")
    someone_else = _forward("@alice:hs", "cu-other", "cu-phone")  # another device hands over PHONE's session
    assert not olm._should_accept_forward("@alice:hs", "cu-other", someone_else)  # noqa: SLF001
    assert not nio_private.forwarded_by_owner(client, "!r:hs", "cu-phone", "S1")
    assert olm._should_accept_forward("@alice:hs", "cu-phone", own)  # noqa: SLF001
    assert nio_private.forwarded_by_owner(client, "!r:hs", "cu-phone", "S1")


async def test_a_room_key_request_goes_to_the_senders_devices_and_the_bots_own(monkeypatch):
    import json

    sent: list[tuple] = []

    async def fake_send(client, response_class, method, path, data=None, response_data=None):
        sent.append((response_class.__name__, method, path, json.loads(data), response_data))
        return None

    monkeypatch.setattr(nio_private, "send", fake_send)
    client = AsyncClient("https://hs", "@bot:hs", device_id="BOT")
    client.user_id, client.access_token = "@bot:hs", "t"
    await nio_private.request_room_key(client, "!r:hs", "@alice:hs", "cu-phone", "S1")
    ((name, method, path, body, data),) = sent
    assert name == "RoomKeyRequestResponse" and method == "PUT" and "/sendToDevice/m.room_key_request/" in path
    assert set(body["messages"]) == {"@alice:hs", "@bot:hs"}
    content = body["messages"]["@alice:hs"]["*"]
    assert content["action"] == "request" and content["requesting_device_id"] == "BOT"
    assert content["body"] == {"algorithm": "m.megolm.v1.aes-sha2", "session_id": "S1", "room_id": "!r:hs", "sender_key": "cu-phone"}
    assert data == ("S1", "S1", "!r:hs", "m.megolm.v1.aes-sha2")  # registered with nio like its own request


async def test_the_bot_asks_once_per_session_and_installs_the_owner_forward_check(tmp_path, monkeypatch):
    from nio import MegolmEvent

    from bot.matrix import client as matrix_client

    asked: list[tuple] = []

    async def fake_request(client, room_id, sender, sender_key, session_id):
        asked.append((room_id, sender, sender_key, session_id))
        from nio.responses import RoomKeyRequestResponse

        response = RoomKeyRequestResponse(session_id, session_id, room_id, "m.megolm.v1.aes-sha2")
        await client.receive_response(response)  # what nio's transport does with the answer
        return response

    monkeypatch.setattr(nio_private, "request_room_key", fake_request)
    client = AsyncClient("https://hs", "@bot:hs", device_id="BOT", store_path=str(tmp_path))
    client.restore_login("@bot:hs", "BOT", "token")
    event = MegolmEvent.from_dict({
        "type": "m.room.encrypted", "event_id": "$e", "sender": "@alice:hs", "origin_server_ts": 1,
        "content": {"algorithm": "m.megolm.v1.aes-sha2", "ciphertext": "x", "sender_key": "cu-phone",
                    "session_id": "S1", "device_id": "PHONE"},
    })
    assert await matrix_client.request_room_key(client, "!r:hs", event) is True
    assert await matrix_client.request_room_key(client, "!r:hs", event) is False  # already asked
    assert asked == [("!r:hs", "@alice:hs", "cu-phone", "S1")]
    assert getattr(client.olm, "_carebot_owner_forwards", False)
