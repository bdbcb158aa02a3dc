"""Store service settings: one object, read from `STORE_*` environment variables (or `.env`)."""

import json
from functools import lru_cache
from pathlib import Path
from typing import Annotated

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from store_service.domain import ConflictStrategy, SqliteSynchronous


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="STORE_", env_file=".env", env_file_encoding="utf-8", extra="ignore"
    )

    # Storage
    database_url: str = Field(
        "sqlite:///data/store.db", description="SQLAlchemy URL of the store's SQLite file."
    )
    migrate_on_startup: bool = Field(
        True, description="Run Alembic migrations when the API starts (development convenience)."
    )
    sqlite_synchronous: SqliteSynchronous = Field(
        SqliteSynchronous.FULL,
        description="FULL: a commit is fsynced before it is acknowledged. "
        "OFF-UNSAFE-FOR-TESTS loses acknowledged changes at power loss: only for the chaos "
        "suite's negative control, never in production.",
    )

    # Broker; unset means kombu's filesystem transport under data_dir (development only).
    broker_url: str | None = Field(None, description="RabbitMQ URL, e.g. amqp://guest@host//.")
    data_dir: Path = Field(Path("data"), description="Folder for dev broker files and state.")

    # Central service
    central_url: str = Field("http://127.0.0.1:8000", description="Base URL of central.")
    central_service_name: str = Field("inventory-service", description="Identity at central.")
    central_service_secret: SecretStr = Field(
        SecretStr(""), description="Secret for the identity at central (never logged)."
    )
    central_connect_timeout_seconds: float = Field(
        3.0, gt=0, description="Connect timeout for calls to central."
    )
    central_read_timeout_seconds: float = Field(
        10.0, gt=0, description="Read timeout for calls to central."
    )
    central_idempotency_window_seconds: int = Field(
        86_400, description="How long central keeps idempotency keys; older unsent changes park."
    )

    # Sync
    sync_interval_seconds: float = Field(
        900, gt=0, description="Beat schedules a sync run this often."
    )
    sync_batch_size: int = Field(
        1000, ge=1, le=1000, description="Changes per bulk-sync call (central takes at most 1000)."
    )
    sync_time_budget_seconds: float = Field(120, gt=0, description="How long one run may drain.")
    sync_lease_seconds: float = Field(300, gt=0, description="Lease on the sync; expires on crash.")
    sync_soon_seconds: float | None = Field(
        None, description="If set, a change schedules a sync this many seconds later (debounced)."
    )
    conflict_strategy: ConflictStrategy = Field(
        ConflictStrategy.REBASE, description="rebase, central_wins or manual (docs/design.md)."
    )
    rebase_max_attempts: int = Field(5, ge=1, description="Rebases per change before parking.")
    backoff_base_seconds: float = Field(1.0, gt=0, description="First retry delay.")
    backoff_cap_seconds: float = Field(300.0, gt=0, description="Longest retry delay.")
    sync_queue: str = Field(
        "store.sync",
        pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$",
        description="Broker queue for sync tasks; one per store when stores share a broker.",
    )

    # API authentication (docs/api.md, Security): off while no key is set.
    api_keys: Annotated[frozenset[SecretStr], NoDecode] = Field(
        frozenset(),
        description="API keys for /v1 (comma-separated or a JSON list); empty: no auth (dev).",
    )
    api_allow_anonymous_reads: bool = Field(
        False, description="With keys set, let GET /v1/local/* through without one."
    )

    # The operator console at /console (docs/console.md)
    console_session_secret: SecretStr = Field(
        SecretStr(""),
        description="Signs console session cookies; empty: a random one per process.",
    )
    console_session_max_age_seconds: int = Field(
        8 * 3600,
        ge=60,
        le=30 * 86_400,
        description="Console sessions end this long after sign-in.",
    )
    console_poll_seconds: float = Field(
        2.0, ge=0.2, le=60, description="How often console pages refresh their live parts."
    )

    # Update rules
    allow_negative_stock: bool = Field(False, description="Let stock go below zero.")
    max_body_bytes: int = Field(16_384, ge=256, description="Largest request body accepted.")
    idempotency_retention_seconds: int = Field(
        7 * 86_400, ge=0, description="How long a final change's operation_id is kept for replay."
    )

    # Observability (docs/operations.md)
    worker_metrics_port: int = Field(
        9102, ge=0, le=65535, description="Worker's Prometheus port (0: no metrics server)."
    )
    worker_metrics_host: str = Field("127.0.0.1", description="Address the worker metrics bind.")
    worker_heartbeat_seconds: float = Field(
        10.0, gt=0, description="How often the worker writes its heartbeat (stale after 3x)."
    )
    health_cache_seconds: float = Field(
        5.0, ge=0, description="How long broker/central probes are reused by health checks."
    )
    health_backlog_max_age_seconds: float = Field(
        1800.0, gt=0, description="Oldest pending change older than this: health is degraded."
    )

    # Logging
    log_level: str = Field("INFO", description="DEBUG, INFO, WARNING or ERROR.")
    log_json: bool = Field(True, description="JSON lines (false: console format).")

    @field_validator("api_keys", mode="before")
    @classmethod
    def _split_keys(cls, value: object) -> object:
        """`k1,k2` or `["k1", "k2"]` from the environment; blanks dropped."""
        if isinstance(value, str):
            text = value.strip()
            items = json.loads(text) if text.startswith("[") else text.split(",")
            return frozenset(str(item).strip() for item in items if str(item).strip())
        return value

    @property
    def database_path(self) -> Path:
        """The SQLite file path named by `database_url`."""
        scheme, sep, rest = self.database_url.partition(":///")
        database = rest.split("?", 1)[0]
        if not sep or scheme.split("+", 1)[0] != "sqlite" or database in ("", ":memory:"):
            raise ValueError("STORE_DATABASE_URL must name a SQLite file: sqlite:///path/to.db")
        return Path(database)


@lru_cache
def get_settings() -> Settings:
    return Settings()
