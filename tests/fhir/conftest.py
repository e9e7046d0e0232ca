"""Every test in tests/fhir talks to the Medplum test server."""

import pytest


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/fhir/" in str(item.fspath).replace("\\", "/"):
            item.add_marker(pytest.mark.fhir)
