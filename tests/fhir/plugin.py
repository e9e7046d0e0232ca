"""pytest fixtures for the test FHIR server (Medplum, in memory): one node process per session,
emptied before each test that uses it. Loaded from tests/conftest.py."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from bot.fhir.devserver import MedplumServer


@pytest.fixture(scope="session")
def medplum_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MedplumServer]:
    server = MedplumServer(log_path=tmp_path_factory.mktemp("medplum") / "server.log").start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def medplum(medplum_server: MedplumServer) -> Iterator[MedplumServer]:
    """The FHIR server, empty and up; brought back up after a test that took it down."""
    medplum_server.reset()
    try:
        yield medplum_server
    finally:
        if medplum_server.is_down:
            medplum_server.up()
