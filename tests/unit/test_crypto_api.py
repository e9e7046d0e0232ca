"""bot.matrix.crypto.api: requests through the client's public send, account data, and the
cross-signing upload's user-interactive auth (against a fake; Synapse in integration)."""

from __future__ import annotations

import pytest
from crypto_fakes import FakeClient, FakeResponse

from bot.matrix.crypto.api import (
    get_account_data,
    put_account_data,
    query_keys,
    request,
    upload_cross_signing_keys,
    upload_signatures,
)
from bot.matrix.crypto.cross_signing_key import CrossSigningKeys
from bot.matrix.crypto.errors import CrossSigningError


async def test_request_sends_json_with_the_token_and_releases_the_response():
    client = FakeClient()
    resp = FakeResponse(200, {"ok": True})
    client.responses.append(resp)
    assert await request(client, "POST", "/x", {"a": 1}) == (200, {"ok": True})
    method, path, body, headers = client.calls[0]
    assert (method, path, body) == ("POST", "/_matrix/client/v3/x", {"a": 1})
    assert headers == {"Authorization": "Bearer TOKEN", "Content-Type": "application/json"}
    assert resp.released


async def test_request_turns_a_non_object_or_unparsable_body_into_an_empty_dict():
    client = FakeClient()
    client.responses += [FakeResponse(502, ValueError("html")), FakeResponse(200, [1, 2])]
    assert await request(client, "GET", "/x") == (502, {})
    assert await request(client, "GET", "/x") == (200, {})
    assert "Content-Type" not in client.calls[0][3]


async def test_account_data_round_trip_and_missing_is_none():
    client = FakeClient()
    assert await get_account_data(client, "m.secret_storage.default_key") is None
    await put_account_data(client, "m.secret_storage.default_key", {"key": "K"})
    assert await get_account_data(client, "m.secret_storage.default_key") == {"key": "K"}
    path = client.calls[1][1]
    assert path.endswith("/user/%40bot%3Aexample.org/account_data/m.secret_storage.default_key")


async def test_server_errors_name_the_call_and_the_errcode():
    client = FakeClient()
    client.responses += [
        FakeResponse(500, {"errcode": "M_UNKNOWN", "error": "boom"}),
        FakeResponse(403, {"errcode": "M_FORBIDDEN"}),
        FakeResponse(429, {"errcode": "M_LIMIT_EXCEEDED"}),
        FakeResponse(400, {"errcode": "M_BAD_JSON"}),
    ]
    with pytest.raises(CrossSigningError, match="/keys/query failed: HTTP 500 M_UNKNOWN boom"):
        await query_keys(client, ["@a:x"])
    with pytest.raises(CrossSigningError, match="reading account data t: HTTP 403 M_FORBIDDEN"):
        await get_account_data(client, "t")
    with pytest.raises(CrossSigningError, match="writing account data t: HTTP 429"):
        await put_account_data(client, "t", {})
    with pytest.raises(CrossSigningError, match="uploading signatures failed: HTTP 400"):
        await upload_signatures(client, {})


async def test_upload_answers_a_password_challenge_with_the_session():
    client = FakeClient()
    keys = CrossSigningKeys.generate(client.user_id)
    assert await upload_cross_signing_keys(client, keys, "pw") is True
    assert client.uploaded is not None
    assert client.uploaded["auth"] == {
        "type": "m.login.password",
        "identifier": {"type": "m.id.user", "user": client.user_id},
        "password": "pw",
        "session": "S1",
    }
    assert client.uploaded["master_key"] == keys.key_object("master")


async def test_upload_without_challenge_reports_no_uia():
    client = FakeClient()
    client.responses.append(FakeResponse(200, {}))
    keys = CrossSigningKeys.generate(client.user_id)
    assert await upload_cross_signing_keys(client, keys, None) is False


async def test_upload_refusals_say_what_to_do():
    keys = CrossSigningKeys.generate("@bot:example.org")
    client = FakeClient()
    with pytest.raises(CrossSigningError, match="rejected the bot's password") as info:
        await upload_cross_signing_keys(client, keys, "hunter2-wrong")
    assert "hunter2" not in str(info.value)
    with pytest.raises(CrossSigningError, match="none was given"):
        await upload_cross_signing_keys(FakeClient(), keys, "")
    oidc = FakeClient()
    oidc.uia_flows = [{"stages": ["org.matrix.cross_signing_reset"]}]
    with pytest.raises(CrossSigningError, match="account management page") as info:
        await upload_cross_signing_keys(oidc, keys, "pw")
    assert "org.matrix.cross_signing_reset" in str(info.value)
