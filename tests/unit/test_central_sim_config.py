"""Settings: the SQLite URL forms the simulator accepts."""

import pytest

from central_sim.config import sqlite_database_path


@pytest.mark.parametrize(
    ("url", "path"),
    [
        ("sqlite:///data/central.db", "data/central.db"),
        ("sqlite:////tmp/central.db", "/tmp/central.db"),
        ("sqlite+pysqlite:///x.db?mode=rwc", "x.db"),
        ("sqlite://", ":memory:"),
        ("sqlite:///:memory:", ":memory:"),
    ],
)
def test_sqlite_urls_name_a_file_or_memory(url: str, path: str) -> None:
    assert sqlite_database_path(url) == path


@pytest.mark.parametrize("url", ["postgresql://host/db", "data/central.db"])
def test_other_databases_are_refused(url: str) -> None:
    with pytest.raises(ValueError, match="sqlite"):
        sqlite_database_path(url)
