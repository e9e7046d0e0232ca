"""SMART Backend Services and bearer-token auth, against a token endpoint run in the test."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import jwt
import pytest
from aiohttp import web
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from bot.fhir.auth import ASSERTION_TYPE, AuthError, BearerTokenFile, SmartBackendAuth
from bot.fhir.client import FhirClient, FhirRejected


def _pem(key: Any) -> str:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()).decode()


class Endpoint:
    """A token endpoint that checks the client assertion like a SMART server, and a FHIR search
    that records the Authorization header it gets."""

    def __init__(self, public_key: Any, algorithm: str) -> None:
        self.public_key = public_key
        self.algorithm = algorithm
        self.issued: list[str] = []
        self.seen_auth: list[str | None] = []
        self.jtis: set[str] = set()
        self.url = ""
        self.refuse_next = 0

    async def token(self, request: web.Request) -> web.Response:
        form = await request.post()
        if form.get("grant_type") != "client_credentials" or form.get("client_assertion_type") != ASSERTION_TYPE:
            return web.json_response({"error": "invalid_request"}, status=400)
        try:
            claims = jwt.decode(str(form["client_assertion"]), self.public_key, algorithms=[self.algorithm], audience=self.url + "/token")
        except jwt.PyJWTError as exc:
            return web.json_response({"error": "invalid_client", "error_description": str(exc)}, status=401)
        assert claims["iss"] == claims["sub"] == "carebot-client"
        assert claims["exp"] - time.time() <= 300 and claims["jti"] not in self.jtis
        self.jtis.add(claims["jti"])
        token = f"tok-{len(self.issued) + 1}"
        self.issued.append(token)
        return web.json_response({"access_token": token, "token_type": "bearer", "expires_in": 300, "scope": form["scope"]})

    async def search(self, request: web.Request) -> web.Response:
        self.seen_auth.append(request.headers.get("Authorization"))
        if self.refuse_next:
            self.refuse_next -= 1
            return web.json_response({"resourceType": "OperationOutcome", "issue": []}, status=401)
        return web.json_response({"resourceType": "Bundle", "type": "searchset", "entry": []})


@pytest.fixture(params=["RS384", "ES384"])
async def endpoint(request: pytest.FixtureRequest) -> AsyncIterator[tuple[Endpoint, str]]:
    algorithm = request.param
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048) if algorithm == "RS384" else ec.generate_private_key(ec.SECP384R1())
    ep = Endpoint(key.public_key(), algorithm)
    app = web.Application()
    app.router.add_post("/token", ep.token)
    app.router.add_get("/fhir/Patient", ep.search)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    ep.url = f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}"  # type: ignore[union-attr]
    try:
        yield ep, _pem(key)
    finally:
        await runner.cleanup()


async def test_smart_backend_services_gets_a_token_with_a_signed_assertion_and_uses_it(endpoint: tuple[Endpoint, str]) -> None:
    ep, pem = endpoint
    auth = SmartBackendAuth(ep.url + "/token", "carebot-client", pem, algorithm=ep.algorithm, key_id="k1")
    client = FhirClient(ep.url + "/fhir", auth)
    await client.search("Patient")
    await client.search("Patient")
    assert ep.issued == ["tok-1"]  # kept until it expires
    assert ep.seen_auth == ["Bearer tok-1", "Bearer tok-1"]


async def test_a_401_gets_a_fresh_token_once(endpoint: tuple[Endpoint, str]) -> None:
    ep, pem = endpoint
    client = FhirClient(ep.url + "/fhir", SmartBackendAuth(ep.url + "/token", "carebot-client", pem, algorithm=ep.algorithm))
    ep.refuse_next = 1
    await client.search("Patient")
    assert ep.seen_auth == ["Bearer tok-1", "Bearer tok-2"]
    ep.refuse_next = 2
    with pytest.raises(FhirRejected, match="credentials"):
        await client.search("Patient")


async def test_a_token_endpoint_that_refuses_the_key_says_what_to_check(endpoint: tuple[Endpoint, str]) -> None:
    ep, _pem_ok = endpoint
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048) if ep.algorithm == "RS384" else ec.generate_private_key(ec.SECP384R1())
    auth = SmartBackendAuth(ep.url + "/token", "carebot-client", _pem(other), algorithm=ep.algorithm)
    with pytest.raises(AuthError, match="fhir.smart.client_id"):
        await auth.header()


def test_only_rs384_and_es384_are_accepted() -> None:
    with pytest.raises(AuthError, match="RS384 or ES384"):
        SmartBackendAuth("https://x/token", "c", "k", algorithm="HS256")


async def test_bearer_token_file_is_sent_and_a_missing_file_names_the_key(tmp_path: Path) -> None:
    token = tmp_path / "token"
    token.write_text("secret-token\n")
    assert await BearerTokenFile(token).header() == "Bearer secret-token"
    with pytest.raises(AuthError, match="fhir.token_file"):
        await BearerTokenFile(tmp_path / "missing").header()


async def test_the_smart_keys_of_the_config_reach_the_token_endpoint(endpoint: tuple[Endpoint, str], tmp_path: Path) -> None:
    from bot.config import load_config
    from bot.fhir.setup import make_client

    ep, pem = endpoint
    (tmp_path / "carebot.pem").write_text(pem)
    path = tmp_path / "config.yaml"
    path.write_text(
        "homeserver: {url: 'http://127.0.0.1:1'}\nbot: {user_id: '@carebot:clinic.example'}\n"
        "storage: {path: ./data}\nroster: {path: ./roster.yaml}\npolicies: {path: ./policies}\n"
        f"fhir:\n  url: '{ep.url}/fhir'\n  smart:\n    token_url: '{ep.url}/token'\n    client_id: carebot-client\n"
        f"    private_key_file: carebot.pem\n    algorithm: {ep.algorithm}\n"
    )
    await make_client(load_config(path)).search("Patient")
    assert ep.seen_auth == ["Bearer tok-1"]


def test_an_unreadable_private_key_names_the_config_key(tmp_path: Path) -> None:
    from bot.config import load_config
    from bot.fhir.setup import make_client
    from bot.yamlutil import ConfigErrors

    path = tmp_path / "config.yaml"
    path.write_text(
        "homeserver: {url: 'http://127.0.0.1:1'}\nbot: {user_id: '@carebot:clinic.example'}\n"
        "storage: {path: ./data}\nroster: {path: ./roster.yaml}\npolicies: {path: ./policies}\n"
        "fhir:\n  url: 'https://ehr.example/fhir'\n  smart:\n    token_url: 'https://ehr.example/token'\n    client_id: c\n"
        "    private_key_file: missing.pem\n"
    )
    with pytest.raises(ConfigErrors) as caught:
        make_client(load_config(path))
    [error] = caught.value.errors
    assert error.key == "fhir.smart.private_key_file" and error.line == 11 and "missing.pem" in error.message
