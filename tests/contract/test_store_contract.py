"""Schemathesis over the store API in-process (ASGI; the lifespan starts with the first call),
API keys on.

Examples, coverage and fuzzing run per operation (`schema.parametrize()`); the stateful phase
follows the OpenAPI links (update -> status, update -> item, ...). Every built-in check plus the
custom ones in tests/contract/checks.py. Refresh talks to a real central_sim subprocess.
"""

import secrets
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from pydantic import SecretStr
from schemathesis.python import asgi

from harness.processes import free_port
from store_service.api.app import create_app
from store_service.storage.db import connect
from tests.contract import checks  # registers the custom checks
from tests.contract.support import (
    CASES,
    OPERATION_TIMEOUT_SECONDS,
    load_config,
    start_sim_on_port,
    stateful_settings,
)
from tests.support.store_db import make_settings

pytestmark = pytest.mark.contract
API_KEY = secrets.token_urlsafe(24)
AUTH = {"openapi": {"ApiKeyBearer": {"bearer": API_KEY}, "ApiKeyHeader": {"api_key": API_KEY}}}
CENTRAL_PORT = free_port()
SERVICES = {"inventory-service": secrets.token_urlsafe(32), "order-service": "o" * 40}
WORKDIR = Path(tempfile.mkdtemp(prefix="store-contract-"))

# Built at import (pytest collects the operations from it); nothing runs until the first call.
app = create_app(
    make_settings(
        WORKDIR / "store.db",
        api_keys=frozenset({SecretStr(API_KEY)}),
        central_url=f"http://127.0.0.1:{CENTRAL_PORT}",
        central_service_secret=SecretStr(SERVICES["inventory-service"]),
        log_level="WARNING",
    )
)
schema = schemathesis.openapi.from_dict(
    app.openapi(), config=load_config(title="Store Service", auth=AUTH)
)
schema.app = app


@pytest.fixture(scope="module", autouse=True)
def _central_and_lifespan() -> Iterator[None]:
    sim = start_sim_on_port(WORKDIR / "central", CENTRAL_PORT, SERVICES)
    yield
    asgi.shutdown_lifespans()
    sim.stop()


@schema.parametrize()
@pytest.mark.timeout(OPERATION_TIMEOUT_SECONDS)
def test_store_operations_keep_their_contract(case: schemathesis.Case) -> None:
    CASES["store"] += 1
    case.call_and_validate()


def _empty_store() -> None:
    conn = connect(WORKDIR / "store.db")
    try:
        with conn:
            conn.execute("BEGIN IMMEDIATE")  # waits out the app's writer, if it is writing
            for table in ("changes", "inventory_items", "leases", "sync_state"):
                conn.execute(f"DELETE FROM {table}")  # noqa: S608 (fixed table names)
    finally:
        conn.close()


@pytest.mark.timeout(OPERATION_TIMEOUT_SECONDS)
def test_store_call_sequences_keep_their_contract() -> None:
    class Counted(schema.as_state_machine()):  # type: ignore[misc]
        def setup(self) -> None:
            # Every scenario starts from an empty store. The links fill Hypothesis's bundles
            # from the answers, so rows left by earlier scenarios made the same draws meet
            # other answers and rules appear or vanish between scenarios, which Hypothesis
            # reports as a flaky strategy (FlakyStrategyDefinition) instead of testing.
            if (WORKDIR / "store.db").exists():  # created by the first call's lifespan
                _empty_store()

        def after_call(self, response: Any, case: Any) -> None:
            CASES["store stateful"] += 1
            super().after_call(response, case)

    Counted.run(settings=stateful_settings())
    assert CASES["store stateful"] > 0


def test_the_semantic_checks_ran() -> None:
    """Replay, stale version and reused id were exercised, not skipped for lack of a 200."""
    assert checks.RAN["store_update_semantics"] > 0
