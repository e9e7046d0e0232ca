"""Shared fixtures: one real Synapse for the whole session, and ways to get users on it."""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import pytest

from bot.db.devpg import PostgresServer
from bot.devserver import Homeserver

pytest_plugins = ["tests.fhir.plugin"]

_counter = itertools.count(1)


@pytest.fixture(scope="session")
def homeserver(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Homeserver]:
    hs = Homeserver(tmp_path_factory.mktemp("synapse"))
    hs.start()
    try:
        yield hs
    finally:
        hs.stop()


@pytest.fixture
def new_user(homeserver: Homeserver):
    """Register a fresh account: `new_user("alice")` -> (user_id, password). Names never clash."""

    def make(prefix: str = "user") -> tuple[str, str]:
        localpart = f"{prefix}{next(_counter)}"
        password = f"pw-{localpart}-secret"
        return homeserver.register(localpart, password), password

    return make


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """One throwaway PostgreSQL cluster per test session (per xdist worker)."""
    server = PostgresServer()
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def pg_url(postgres: PostgresServer) -> str:
    """A fresh, empty PostgreSQL database for one test."""
    return postgres.create_database()


@pytest.fixture(params=["sqlite", "postgres"])
def store_url(request: pytest.FixtureRequest) -> str | None:
    """Run a test on both stores: None (SQLite in storage.path) or a fresh PostgreSQL database."""
    if request.param == "sqlite":
        return None
    return str(request.getfixturevalue("pg_url"))


@pytest.fixture
def open_store(store_url: str | None, tmp_path):
    """`await open_store()`: a migrated Store on the backend of this parametrisation."""
    from bot.store import Store

    async def make(schema: str = "carebot_test"):
        return await Store.for_config(tmp_path / "data", store_url, schema, "@carebot:test")

    return make
