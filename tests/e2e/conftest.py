"""Fixtures for the end-to-end tests: the `keng` process as a user runs it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.keng_process import KengHome, keng_home


@pytest.fixture
def home(tmp_path: Path) -> Iterator[KengHome]:
    """An empty data directory on SQLite; a service still running at the end is killed."""
    h = keng_home(tmp_path)
    yield h
    h.kill()
