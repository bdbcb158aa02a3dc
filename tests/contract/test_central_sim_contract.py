"""Schemathesis over central_sim in-process (ASGI; the lifespan starts with the first call).

The service token comes through the real flow (POST /auth/token, configured in
schemathesis.toml as dynamic auth); /_sim uses the admin token. Examples, coverage, fuzzing,
then the stateful phase over the links (seed -> read, adjust -> read). The competing writer the
fuzzer may start is stopped at the end, so it never outlives the module.
"""

import secrets
import sqlite3
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from pydantic import SecretStr
from schemathesis.python import asgi

from central_sim import storage
from central_sim.config import Settings
from central_sim.main import create_app
from tests.contract import checks  # registers the custom checks
from tests.contract.support import (
    CASES,
    OPERATION_TIMEOUT_SECONDS,
    load_config,
    stateful_settings,
)

pytestmark = pytest.mark.contract
SECRETS = {"inventory-service": secrets.token_urlsafe(32), "order-service": "o" * 40}
ADMIN_TOKEN = secrets.token_urlsafe(24)
WORKDIR = Path(tempfile.mkdtemp(prefix="central-contract-"))
# schemathesis.toml reads these (${VAR}) when the config loads; the replay checks read the
# journal with the admin one while the tests run. Set only for those moments: other tests
# start real processes that inherit os.environ.
CONTRACT_ENV = {
    "STORE_CENTRAL_SERVICE_SECRET": SECRETS["inventory-service"],
    checks.ADMIN_TOKEN_ENV: ADMIN_TOKEN,
}

app = create_app(
    Settings(
        database_url=f"sqlite:///{WORKDIR / 'central.db'}",
        jwt_secret=SecretStr(secrets.token_urlsafe(48)),
        admin_token=SecretStr(ADMIN_TOKEN),
        services={name: SecretStr(secret) for name, secret in SECRETS.items()},
        services_file=None,
        log_level="WARNING",
    )
)
with pytest.MonkeyPatch.context() as _env:
    for _name, _value in CONTRACT_ENV.items():
        _env.setenv(_name, _value)
    schema = schemathesis.openapi.from_dict(app.openapi(), config=load_config(title="central_sim"))
schema.app = app


def _stop_competing_writer() -> None:
    runtime = getattr(app.state, "runtime", None)
    if runtime is not None:
        runtime.competing.stop("stopped")


def _restore_identities() -> None:
    """Undo a revocation the fuzzer made (`/_sim/services/{name}/revoke`): left in place, every
    later call would get 401 for a reason no schema check can see."""
    runtime = getattr(app.state, "runtime", None)
    if runtime is not None:
        runtime.revoked.clear()


@pytest.fixture(scope="module", autouse=True)
def _lifespan() -> Iterator[None]:
    with pytest.MonkeyPatch.context() as env:
        for name, value in CONTRACT_ENV.items():
            env.setenv(name, value)
        yield
        _stop_competing_writer()
        asgi.shutdown_lifespans()


@schema.parametrize()
@pytest.mark.timeout(OPERATION_TIMEOUT_SECONDS)
def test_central_operations_keep_their_contract(case: schemathesis.Case) -> None:
    CASES["central_sim"] += 1
    try:
        case.call_and_validate()
    finally:
        _restore_identities()


def _empty_central() -> None:
    """Forget stock, journal, idempotency records and stats, as `POST /_sim/reset` does."""
    conn = sqlite3.connect(WORKDIR / "central.db", isolation_level=None, timeout=30)
    try:
        conn.execute("BEGIN IMMEDIATE")  # waits out the app's own writer, if it is writing
        storage.clear_all(conn)
        conn.execute("COMMIT")
    finally:
        conn.close()


@pytest.mark.timeout(OPERATION_TIMEOUT_SECONDS)
def test_central_call_sequences_keep_their_contract() -> None:
    class Counted(schema.as_state_machine()):  # type: ignore[misc]
        def setup(self) -> None:
            # Every scenario starts from an empty central, as the store's do (see there):
            # rows left by earlier scenarios make Hypothesis's draws meet other answers and
            # report a flaky strategy instead of testing. Straight to the file: the ASGI
            # lifespan, and with it the app's runtime, may be closed between scenarios.
            if (WORKDIR / "central.db").exists():  # created by the first call's lifespan
                _empty_central()
                CASES["central_sim stateful resets"] += 1

        def after_call(self, response: Any, case: Any) -> None:
            CASES["central_sim stateful"] += 1
            _restore_identities()
            super().after_call(response, case)

    # A writer the fuzzer started would move stock under the scenarios' feet.
    _stop_competing_writer()
    Counted.run(settings=stateful_settings())
    assert CASES["central_sim stateful"] > 0


def test_the_semantic_checks_ran() -> None:
    assert checks.RAN["central_adjust_semantics"] > 0
    assert checks.RAN["central_bulk_sync_semantics"] > 0
