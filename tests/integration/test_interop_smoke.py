"""Element's crypto stack (matrix-js-sdk + Rust crypto) talks to itself on our Synapse.

Proves the interop peer works before carebot is put opposite it: two js users, both
cross-signed, both in "exclude insecure devices" mode (MSC4153, OnlySignedDevicesIsolationMode),
exchange encrypted messages in both directions.
"""

from __future__ import annotations

import pytest

from tests.integration.helpers import element_user

pytestmark = [pytest.mark.integration, pytest.mark.interop]



async def _cross_signed_peer(name: str, homeserver, new_user):
    who = new_user(name)
    return await element_user(name, who, homeserver.url), who[0]


async def test_two_element_peers_exchange_encrypted_messages(homeserver, new_user):
    alice, alice_id = await _cross_signed_peer("alice", homeserver, new_user)
    try:
        bob, bob_id = await _cross_signed_peer("bob", homeserver, new_user)
        try:
            room_id = await alice.create_room(invite=[bob_id], encrypted=True)
            assert (await bob.wait_invite(timeout=30)) == room_id
            await bob.join(room_id)
            assert (await bob.state(room_id, "m.room.encryption"))["algorithm"] == "m.megolm.v1.aes-sha2"

            # Bob sees Alice's device as cross-signed by Alice (not verified by Bob: no one has
            # verified anyone, which is exactly the case "exclude insecure devices" must allow).
            trust = await bob.device_trust(alice_id, alice.device_id)
            assert trust["known"] and trust["signedByOwner"], trust
            assert not trust["crossSigningVerified"] and not trust["locallyVerified"], trust

            await alice.send(room_id, "hello bob, from alice")
            got = await bob.wait_message(room_id, sender=alice_id, contains="hello bob", timeout=30)
            assert got["decrypted"] and got["encrypted"], got
            assert got["content"]["body"] == "hello bob, from alice"
            assert "decryptionError" not in got

            await bob.send(room_id, "hi alice", html="<b>hi</b> alice")
            back = await alice.wait_message(room_id, sender=bob_id, contains="hi alice", timeout=30)
            assert back["decrypted"], back
            assert back["content"]["formatted_body"] == "<b>hi</b> alice"
        finally:
            await bob.close()
    finally:
        await alice.close()
