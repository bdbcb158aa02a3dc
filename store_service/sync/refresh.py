"""Learn central's stock for SKUs on demand and fold it into the local view.

A new store starts empty: this, and the sync run's own results, are how it learns central's
stock. Command line:

    uv run store-refresh --all        # every SKU the store knows
    uv run store-refresh SKU [SKU …]  # the given SKUs (or `python -m store_service.refresh`)

Its warnings are JSON log lines; the summary is the command's answer, printed as text.
"""

import argparse
import sqlite3
import sys
import time
from collections.abc import Sequence

import structlog

from store_service import local_view
from store_service.config import Settings, get_settings
from store_service.logs import configure_logging
from store_service.storage import items
from store_service.storage.db import connect, transaction
from store_service.sync.central import CentralAuthFailed, CentralClient, CentralUnavailable

log = structlog.get_logger(__name__)


def fetch(client: CentralClient, sku: str) -> tuple[int, int]:
    """Central's (quantity, version) for a SKU; a SKU central never saw is (0, 0)."""
    item = client.get_inventory(sku)
    return (0, 0) if item is None else (item.quantity, item.version)


def refresh_sku(conn: sqlite3.Connection, client: CentralClient, sku: str) -> bool:
    """Fetch one SKU from central, then fold it into the local view in a short write
    transaction; False when deferred because central may hold a change of the SKU the store
    still counts as pending
    (`local_view.refresh`: the sync batch brings central's figures then)."""
    quantity, version = fetch(client, sku)
    with transaction(conn):
        return local_view.refresh(
            conn, sku, central_quantity=quantity, central_version=version, now=time.time()
        )


def refresh_many(settings: Settings, skus: Sequence[str] | None) -> tuple[int, list[str]]:
    """Refresh the given SKUs (all known ones when None); returns (refreshed, failed SKUs)."""
    conn = connect(settings.database_path, synchronous=settings.sqlite_synchronous)
    refreshed, failed = 0, []
    try:
        with CentralClient.from_settings(settings) as client:
            for sku in items.known_skus(conn) if skus is None else skus:
                try:
                    refresh_sku(conn, client, sku)
                    refreshed += 1
                except CentralUnavailable as exc:
                    log.warning("refresh_failed", sku=sku, error=str(exc))
                    failed.append(sku)
    finally:
        conn.close()
    return refreshed, failed


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Refresh the local view from central's stock.")
    parser.add_argument("skus", nargs="*", help="SKUs to refresh")
    parser.add_argument("--all", action="store_true", help="refresh every SKU the store knows")
    args = parser.parse_args(argv)
    if args.all == bool(args.skus):
        parser.error("give SKUs or --all (not both)")
    settings = get_settings()
    configure_logging(settings.log_level, json=settings.log_json)
    try:
        refreshed, failed = refresh_many(settings, None if args.all else args.skus)
    except CentralAuthFailed as exc:
        print(f"central refused the store's credentials: {exc}", file=sys.stderr)
        return 2
    print(f"refreshed {refreshed} SKU(s); {len(failed)} failed")
    for sku in failed:
        print(f"  failed: {sku}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
