"""Sharing a room's Megolm key (bot/matrix/client.py `share_room_key`): a device that gives no
one-time key when claimed is left aside for a while, so that each reply does not claim again
and start a new Megolm session for every device of the pair."""

from __future__ import annotations

from dataclasses import dataclass, field

from bot.matrix import client as mclient
from bot.matrix import nio_private


@dataclass(frozen=True)
class Device:
    user_id: str
    id: str

    @property
    def curve25519(self) -> str:
        return "curve-" + self.id


@dataclass
class Session:
    id: str
    shared: bool = False
    expired: bool = False
    users_shared_with: set = field(default_factory=set)


class FakeOlm:
    """What share_room_key reads of nio's Olm machine; `keyless` devices never get a session."""

    def __init__(self, devices: list[Device], keyless: set[str]) -> None:
        self.devices = devices
        self.keyless = keyless
        self.sessions: set[str] = set()  # device ids with an Olm session
        self.outbound_group_sessions: dict[str, Session] = {}
        self.new_sessions = 0

        class Store:
            def active_user_devices(_, user_id: str):
                return [d for d in devices if d.user_id == user_id]

        self.device_store = Store()

    def is_device_blacklisted(self, device: Device) -> bool:
        return False

    def get_missing_sessions(self, users: list[str]) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for d in self.devices:
            if d.user_id in users and d.id != "BOT" and d.id not in self.sessions:
                out.setdefault(d.user_id, []).append(d.id)
        return out

    def share_group_session_parallel(self, room_id, users, ignore_unverified_devices=False):
        session = self.outbound_group_sessions.get(room_id)
        if session is None or session.shared:  # as nio does: a shared session is replaced
            self.new_sessions += 1
            session = self.outbound_group_sessions[room_id] = Session(f"s{self.new_sessions}")
        targets = {(d.user_id, d.id) for d in self.devices if d.user_id in users and d.id in self.sessions}
        if targets:
            yield targets, {"messages": {}}


class FakeClient:
    user_id = "@bot:x"
    device_id = "BOT"
    access_token = "token"

    def __init__(self, olm: FakeOlm) -> None:
        self.olm = olm
        self.claims = 0

    async def keys_query(self) -> None:
        pass

    async def keys_claim(self, missing: dict[str, list[str]]) -> None:
        self.claims += 1
        for devices in missing.values():
            self.olm.sessions.update(d for d in devices if d not in self.olm.keyless)


async def test_a_device_without_one_time_keys_does_not_make_every_reply_claim_and_rotate(monkeypatch):
    olm = FakeOlm(
        [Device("@pat:x", "PHONE"), Device("@doc:x", "LAPTOP"), Device("@doc:x", "OLDPHONE"), Device("@bot:x", "BOT")],
        keyless={"OLDPHONE"},
    )
    client = FakeClient(olm)

    async def send(cl, response_class, method, path, data, response_data):  # the to-device PUT
        room_id, sharing_with = response_data
        olm.outbound_group_sessions[room_id].users_shared_with |= sharing_with
        return object()

    monkeypatch.setattr(nio_private, "send", send)
    users = ["@pat:x", "@doc:x"]
    assert await mclient.share_room_key(client, "!r:x", users, ignore_unverified=True)  # type: ignore[arg-type]
    assert (client.claims, olm.new_sessions) == (1, 1)
    for _ in range(5):  # the replies that follow: same session, no claim
        assert not await mclient.share_room_key(client, "!r:x", users, ignore_unverified=True)  # type: ignore[arg-type]
    assert (client.claims, olm.new_sessions) == (1, 1)
    assert olm.outbound_group_sessions["!r:x"].users_shared_with == {("@pat:x", "PHONE"), ("@doc:x", "LAPTOP")}

    # Later the old phone is claimed again (it may have uploaded keys since) and, if it now
    # has a session, gets the key with a new Megolm session.
    olm.keyless.clear()
    monkeypatch.setattr(mclient.time, "monotonic", lambda: 10**9)
    assert await mclient.share_room_key(client, "!r:x", users, ignore_unverified=True)  # type: ignore[arg-type]
    assert (client.claims, olm.new_sessions) == (2, 2)
    assert ("@doc:x", "OLDPHONE") in olm.outbound_group_sessions["!r:x"].users_shared_with
