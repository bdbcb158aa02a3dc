"""The Alembic migrations build exactly the schema `store_service.models` declares, and undo."""

import sqlite3
from pathlib import Path

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine
from sqlalchemy.dialects import sqlite
from sqlalchemy.schema import CreateIndex

from store_service.config import Settings
from store_service.storage import db
from store_service.storage.tables import metadata
from tests.support.store_db import make_database


def _migrated(tmp_path: Path) -> Settings:
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'store.db'}", data_dir=tmp_path)
    db.migrate(settings)
    return settings


def _index_sql(path: Path) -> dict[str, str]:
    with sqlite3.connect(path) as conn:
        rows = conn.execute(
            "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL"
        ).fetchall()
    return {name: " ".join(sql.split()) for name, sql in rows}


def test_the_migrated_schema_has_no_difference_from_the_models(tmp_path: Path) -> None:
    settings = _migrated(tmp_path)
    engine = create_engine(f"sqlite:///{settings.database_path}")
    with engine.connect() as conn:
        differences = compare_metadata(MigrationContext.configure(conn), metadata)
    engine.dispose()
    assert differences == []


def test_every_index_has_the_columns_and_where_clause_the_models_declare(tmp_path: Path) -> None:
    # compare_metadata does not look at partial indexes' WHERE clauses; the SQL does.
    settings = _migrated(tmp_path)
    declared = {
        index.name: " ".join(str(CreateIndex(index).compile(dialect=sqlite.dialect())).split())
        for table in metadata.tables.values()
        for index in table.indexes
    }
    assert _index_sql(settings.database_path) == declared


def test_downgrading_to_the_start_and_upgrading_again_gives_the_same_schema(
    tmp_path: Path,
) -> None:
    settings = _migrated(tmp_path)
    before = _index_sql(settings.database_path)
    config = db.alembic_config(settings.database_url)
    command.downgrade(config, "base")
    assert _index_sql(settings.database_path) == {}
    command.upgrade(config, "head")
    assert _index_sql(settings.database_path) == before


def _trigger_sql(path: Path) -> dict[str, str]:
    with sqlite3.connect(path) as conn:
        rows = conn.execute("SELECT name, sql FROM sqlite_master WHERE type = 'trigger'").fetchall()
    return {name: " ".join(sql.split()) for name, sql in rows}


def test_the_count_triggers_are_the_ones_the_models_declare(tmp_path: Path) -> None:
    migrated = _migrated(tmp_path).database_path
    created = tmp_path / "created.db"
    make_database(created).close()
    assert _trigger_sql(migrated) == _trigger_sql(created)
    assert len(_trigger_sql(migrated)) == 3


def test_the_counts_migration_counts_the_changes_already_there(tmp_path: Path) -> None:
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'store.db'}", data_dir=tmp_path)
    config = db.alembic_config(settings.database_url)
    command.upgrade(config, "0005")
    with sqlite3.connect(settings.database_path) as conn:
        for i, status in enumerate(["synced", "synced", "rejected", "pending", "conflict"]):
            conn.execute(
                "INSERT INTO changes (operation_id, sku, delta, status, next_attempt_at, "
                "created_at, updated_at, response_status, response_body) "
                "VALUES (?, 'A', 1, ?, 0, 0, 0, 200, '{}')",
                (f"op-{i}", status),
            )
    command.upgrade(config, "head")
    with sqlite3.connect(settings.database_path) as conn:
        counts = dict(conn.execute("SELECT status, n FROM change_counts").fetchall())
    assert counts == {"synced": 2, "rejected": 1, "discarded": 0}


def test_the_schema_revision_the_store_knows_is_alembics_head(tmp_path: Path) -> None:
    from alembic.script import ScriptDirectory

    script = ScriptDirectory.from_config(db.alembic_config("sqlite://"))
    assert script.get_current_head() == db.SCHEMA_REVISION
    settings = _migrated(tmp_path)
    assert db.schema_revision(settings.database_path) == db.SCHEMA_REVISION


def test_a_database_at_an_older_revision_is_still_migrated(tmp_path: Path) -> None:
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'store.db'}", data_dir=tmp_path)
    assert db.schema_revision(settings.database_path) is None
    command.upgrade(db.alembic_config(settings.database_url), "0005")
    assert db.schema_revision(settings.database_path) == "0005"
    db.migrate(settings)
    assert db.schema_revision(settings.database_path) == db.SCHEMA_REVISION
