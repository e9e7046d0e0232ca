"""Fixtures for unit tests."""

from __future__ import annotations

from pathlib import Path

import pytest
from unit_helpers import Setup, make_setup


@pytest.fixture
def setup(tmp_path: Path) -> Setup:
    """A complete, valid carebot setup in tmp_path (config.yaml, roster.yaml, policies/)."""
    return make_setup(tmp_path)
