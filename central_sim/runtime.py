"""Everything a running simulator owns, built in the app's lifespan and closed on shutdown."""

import hashlib
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from central_sim import storage
from central_sim.auth import TokenPolicy
from central_sim.competing import CompetingWriter
from central_sim.config import Settings
from central_sim.db import Database
from central_sim.faults import Faults, FaultState
from central_sim.metrics import Metrics

FAULTS_STATE = "faults"
SIGNING_KEY_STATE = "signing_key"
REVOKED_STATE = "revoked_services"


@dataclass
class Runtime:
    settings: Settings
    services: dict[str, str]
    db: Database
    faults: FaultState
    signing_key: str
    token_policy: TokenPolicy
    metrics: Metrics
    rng: random.Random
    competing: CompetingWriter
    # Wall-clock time for tokens and idempotency retention; tests pass their own clock.
    clock: Callable[[], float] = time.time
    last_purge: float = field(default=0.0)
    # Identities an operator revoked (the panel, or `/_sim/services/{name}/revoke`): their
    # secret and every token already issued to them are refused until restored. Persisted.
    revoked: set[str] = field(default_factory=set)

    def active(self, service: str) -> bool:
        return service in self.services and service not in self.revoked

    def close(self) -> None:
        self.competing.halt()
        self.db.close()


def configured_key_digest(settings: Settings) -> str:
    return hashlib.sha256(settings.jwt_secret.get_secret_value().encode()).hexdigest()


def open_runtime(
    settings: Settings, metrics: Metrics, clock: Callable[[], float] = time.time
) -> Runtime:
    """Open the database, restore faults, the signing key and the competing writer."""
    services = settings.service_secrets()  # fails clearly when no identity is configured
    db = Database(settings.database_path())
    rng = random.Random(settings.random_seed)  # fault dice, not security
    with db.read() as conn:
        saved_faults = storage.get_state(conn, FAULTS_STATE)
        saved_key = storage.get_state(conn, SIGNING_KEY_STATE)
        saved_revoked = storage.get_state(conn, REVOKED_STATE) or []
    # A rotated key outlives restarts, unless the operator configured a different secret since.
    signing_key = settings.jwt_secret.get_secret_value()
    if saved_key and saved_key.get("configured_sha256") == configured_key_digest(settings):
        signing_key = saved_key["key"]
    runtime = Runtime(
        settings=settings,
        services=services,
        db=db,
        faults=FaultState(Faults.model_validate(saved_faults or {}), rng),
        signing_key=signing_key,
        token_policy=TokenPolicy(audience=settings.jwt_audience, issuer=settings.jwt_issuer),
        metrics=metrics,
        rng=rng,
        competing=CompetingWriter(
            db=db, service=settings.competing_writer_service, rng=rng, metrics=metrics
        ),
        clock=clock,
        revoked=set(saved_revoked),
    )
    runtime.competing.resume()
    return runtime
