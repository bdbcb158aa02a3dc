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
