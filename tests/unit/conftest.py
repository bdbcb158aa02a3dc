"""Unit fixtures: a store database file with the current schema, and settings that point at it."""

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from store_service.config import Settings
from tests.support.store_db import make_database, make_settings


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "store.db"


@pytest.fixture
def conn(db_path: Path) -> Iterator[sqlite3.Connection]:
    connection = make_database(db_path)
    yield connection
    connection.close()


@pytest.fixture
def settings(db_path: Path) -> Settings:
    return make_settings(db_path)
