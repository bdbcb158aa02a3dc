"""Big outboxes, fast: a store database with N final changes (the history) and M pending ones,
written with SQL into a template built once and copied per repetition.

    uv run python -m loadtests.history --final 10000000 --pending 1000000 --ids v4

The schema is the real one (the migrations run first); the rows are written with
`INSERT … SELECT` from a recursive CTE in transactions of a million, with the journal off and a
large page cache (a template is a disposable build product, not a store: it is made durable
and switched to WAL at the end). Rows look like the API's: its response body shape, its
columns, 1,000 SKUs; the history is `synced`, finalized in the last three days (inside the
default 7-day retention) except the oldest `expired` ones, finalized eight days ago. The
SKUs' pending totals on `inventory_items` match the pending rows.

`ids` is the shape of the operation_ids: `v7` time-ordered (a 48-bit millisecond prefix, as a
UUIDv7), so each new id lands at the end of the unique index; `v4` random (UUIDv4), so each
lands at a random leaf. Templates live in `reports/history-cache/`, named by their row counts,
id kind and schema revision; `--prune` deletes the others.
"""

import argparse
import shutil
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
CACHE = REPO / "reports" / "history-cache"
SKUS = 1000
CHUNK = 1_000_000
ID_KINDS = ("v7", "v4")
DAY = 86_400.0

# Per id kind: an SQL expression of the row number `i` and its time `t` (Unix seconds).
# v7: the millisecond prefix is strictly increasing in i (rows are >= 1 ms apart), so unique.
_V7 = (
    "printf('%08x-%04x-7%03x-%s-%s', (CAST(t * 1000 AS INTEGER) >> 16) & 4294967295, "
    "CAST(t * 1000 AS INTEGER) & 65535, i & 4095, "
    "'8' || substr(lower(hex(randomblob(2))), 2), lower(hex(randomblob(6))))"
)
_V4 = (
    "lower(hex(randomblob(4))) || '-' || lower(hex(randomblob(2))) || '-4' || "
    "substr(lower(hex(randomblob(2))), 2) || '-' || '9' || substr(lower(hex(randomblob(2))), 2)"
    " || '-' || lower(hex(randomblob(6)))"
)
OPERATION_ID_SQL = {"v7": _V7, "v4": _V4}


@dataclass(frozen=True)
class HistorySpec:
    final: int  # synced changes (the history)
    pending: int  # changes still to send, newest
    ids: str = "v7"
    expired: int = 0  # of the final ones, how many are past the retention (purge fodder)

    def name(self, revision: str) -> str:
        return f"history-f{self.final}-p{self.pending}-x{self.expired}-{self.ids}-rev{revision}.db"


def schema_revision() -> str:
    """The newest migration's revision id: part of a template's name (the store's own constant,
    which tests/unit/test_migrations.py holds to Alembic's head)."""
    from store_service.storage import db

    return db.SCHEMA_REVISION


def _insert_rows(
    conn: sqlite3.Connection,
    *,
    first: int,
    count: int,
    start_time: float,
    step: float,
    final: bool,
    ids: str,
) -> None:
    """Rows first .. first+count-1 (1-based ids), the i-th at start_time + (i - first) * step."""
    status = "synced" if final else "pending"
    finalized = "t + 1.5" if final else "NULL"
    central_version = "i / 1000" if final else "NULL"
    sql = f"""
        WITH RECURSIVE n(i) AS (SELECT ? UNION ALL SELECT i + 1 FROM n WHERE i < ?),
        r(i, t, sku, delta) AS (
            SELECT i, ? + (i - ?) * ?, printf('SKU-%05d', i % {SKUS} + 1), 1 + i % 5 FROM n
        ),
        -- MATERIALIZED: the id is drawn once per row, then used in two columns (a flattened
        -- subquery would call randomblob() again for each use).
        o AS MATERIALIZED (SELECT r.*, {OPERATION_ID_SQL[ids]} AS op FROM r)
        INSERT INTO changes (id, operation_id, sku, delta, expected_version, status, attempts,
            next_attempt_at, last_error, central_version, base_version, rebases, resolution,
            first_sent_at, finalized_at, created_at, updated_at, request_id, response_status,
            response_body)
        SELECT i, op, sku, delta, NULL, '{status}', 0, t, NULL, {central_version},
            {central_version}, 0, NULL, {"t + 1.0" if final else "NULL"}, {finalized}, t,
            {"t + 1.5" if final else "t"}, lower(hex(randomblob(16))), 200,
            printf('{{"sku":"%s","quantity":%d,"version":%d,"operation_id":"%s","delta":%d,'
                   || '"sync_status":"pending"}}', sku, 100 + i % 97, i / {SKUS}, op, delta)
        FROM o
    """
    last = first + count - 1
    conn.execute(sql, (first, last, start_time, first, step))


def build(path: Path, spec: HistorySpec, *, now: float | None = None) -> float:
    """Write the database at `path` (replaced); returns the seconds it took."""
    from store_service.config import Settings
    from store_service.storage import db

    if spec.ids not in ID_KINDS:
        raise ValueError(f"ids must be one of {ID_KINDS}")
    started = time.monotonic()
    now = time.time() if now is None else now
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".partial")
    for leftover in (partial, Path(f"{partial}-wal"), Path(f"{partial}-shm")):
        leftover.unlink(missing_ok=True)
    db.migrate(Settings(database_url=f"sqlite:///{partial}"))
    conn = sqlite3.connect(partial, isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode = OFF")  # a build product: rebuilt, not recovered
        conn.execute("PRAGMA synchronous = OFF")
        conn.execute("PRAGMA cache_size = -2000000")  # 2 GB: the random unique index stays hot
        conn.execute("PRAGMA temp_store = MEMORY")
        # The final states' counts are set once at the end, not by a trigger per row.
        (insert_trigger,) = conn.execute(
            "SELECT sql FROM sqlite_master WHERE name = 'tr_changes_count_insert'"
        ).fetchone()
        conn.execute("DROP TRIGGER tr_changes_count_insert")
        # The history: the expired part eight days back, the rest within the last three days.
        plan = []
        if spec.expired:
            plan.append((spec.expired, now - 8 * DAY - 3600, 3600 / spec.expired, True))
        fresh = spec.final - spec.expired
        if fresh:
            plan.append((fresh, now - 3 * DAY, (3 * DAY - 7200) / fresh, True))
        if spec.pending:
            plan.append((spec.pending, now - 3600, 3000 / spec.pending, False))
        first = 1
        for count, start_time, step, final in plan:
            for offset in range(0, count, CHUNK):
                n = min(CHUNK, count - offset)
                conn.execute("BEGIN")
                _insert_rows(
                    conn,
                    first=first,
                    count=n,
                    start_time=start_time + offset * step,
                    step=step,
                    final=final,
                    ids=spec.ids,
                )
                conn.execute("COMMIT")
                first += n
        conn.execute("BEGIN")
        conn.execute(
            "INSERT INTO inventory_items (sku, quantity, version, pending_delta, pending_count, "
            "central_quantity, central_version, last_synced_at, created_at, updated_at) "
            "SELECT printf('SKU-%05d', k), 100, 1, 0, 0, NULL, NULL, NULL, ?, ? "
            f"FROM (WITH RECURSIVE s(k) AS (SELECT 1 UNION ALL SELECT k + 1 FROM s "
            f"WHERE k < {SKUS}) SELECT k FROM s)",
            (now, now),
        )
        conn.execute(
            "UPDATE inventory_items SET pending_delta = p.total, pending_count = p.n, "
            "quantity = quantity + p.total FROM (SELECT sku, sum(delta) AS total, count(*) AS n "
            "FROM changes WHERE status = 'pending' GROUP BY sku) AS p "
            "WHERE inventory_items.sku = p.sku"
        )
        conn.execute(
            "UPDATE change_counts SET n = (SELECT count(*) FROM changes "
            "WHERE changes.status = change_counts.status)"
        )
        conn.execute(insert_trigger)
        conn.execute("COMMIT")
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = FULL")
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        conn.close()
    partial.replace(path)
    return time.monotonic() - started


def template(spec: HistorySpec, *, cache: Path = CACHE) -> tuple[Path, float | None]:
    """The cached template for `spec`, built if missing: (path, build seconds or None)."""
    path = cache / spec.name(schema_revision())
    if path.exists():
        return path, None
    print(f"  building {path.name} ...", flush=True)
    seconds = build(path, spec)
    print(f"  built in {seconds:.1f} s ({path.stat().st_size / 2**30:.2f} GiB)", flush=True)
    return path, seconds


def copy_to(source: Path, dest: Path) -> float:
    """A fresh copy of a template (no WAL beside it); returns the seconds it took."""
    started = time.monotonic()
    dest.parent.mkdir(parents=True, exist_ok=True)
    for leftover in (Path(f"{dest}-wal"), Path(f"{dest}-shm")):
        leftover.unlink(missing_ok=True)
    shutil.copyfile(source, dest)
    return time.monotonic() - started


def prune(keep: set[Path], *, cache: Path = CACHE) -> list[Path]:
    """Delete cached templates not in `keep` (old schema revisions, sizes no longer used)."""
    removed = []
    for path in cache.glob("history-*.db"):
        if path not in keep:
            path.unlink()
            removed.append(path)
    return removed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m loadtests.history", description=__doc__)
    parser.add_argument("--final", type=int, default=1_000_000)
    parser.add_argument("--pending", type=int, default=0)
    parser.add_argument("--expired", type=int, default=0)
    parser.add_argument("--ids", choices=ID_KINDS, default="v7")
    parser.add_argument("--rebuild", action="store_true")
    parser.add_argument("--prune", action="store_true", help="delete every other template")
    args = parser.parse_args(argv)
    spec = HistorySpec(args.final, args.pending, args.ids, args.expired)
    path = CACHE / spec.name(schema_revision())
    if args.rebuild:
        path.unlink(missing_ok=True)
    path, seconds = template(spec)
    if args.prune:
        for removed in prune({path}):
            print(f"  deleted {removed.name}")
    print(path if seconds is None else f"{path} (built in {seconds:.1f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
