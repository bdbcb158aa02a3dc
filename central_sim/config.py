"""central_sim settings: one object read from `CENTRAL_SIM_*` environment variables (or `.env`).

Service identities and secrets come only from configuration (`CENTRAL_SIM_SERVICES` or the JSON
file named by `CENTRAL_SIM_SERVICES_FILE`); the development defaults live in `.env.example` and
docker-compose, never in this code.
"""

import json
from pathlib import Path
from typing import Annotated

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict


class ConfigError(RuntimeError):
    """Startup configuration is missing or invalid; the message says what to set."""


def sqlite_database_path(url: str) -> str:
    """`sqlite:///rel/path` -> `rel/path`, `sqlite:////abs` -> `/abs`, `sqlite://` -> memory.

    Parsed by hand: importing SQLAlchemy for this would add a second to every startup.
    """
    scheme, sep, rest = url.partition("://")
    if not sep or scheme.split("+", 1)[0] != "sqlite":
        raise ValueError("CENTRAL_SIM_DATABASE_URL must be a sqlite:/// URL")
    path = rest.split("?", 1)[0]
    path = path[1:] if path.startswith("/") else path
    return path or ":memory:"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="CENTRAL_SIM_", env_file=".env", env_file_encoding="utf-8", extra="ignore"
    )

    host: str = Field("127.0.0.1", description="Bind address for `python -m central_sim`.")
    port: int = Field(8000, ge=1, le=65535, description="Port for `python -m central_sim`.")
    database_url: str = Field(
        "sqlite:///data/central.db",
        description="SQLite URL; a file, so the simulator's state survives its restart.",
    )
    jwt_secret: SecretStr = Field(description="HS256 signing secret for access tokens.")
    jwt_audience: str = Field(
        "central-inventory", description="`aud` claim put in access tokens and required on them."
    )
    jwt_issuer: str = Field(
        "central-sim", description="`iss` claim put in access tokens and required on them."
    )
    admin_token: SecretStr = Field(description="Bearer token guarding the /_sim control API.")
    token_ttl_seconds: int = Field(900, ge=1, le=86_400, description="Access token lifetime.")
    idempotency_retention_seconds: int = Field(
        86_400,
        ge=1,
        description="How long an applied Idempotency-Key is remembered; older ones are purged.",
    )
    max_batch_items: int = Field(
        1000, ge=1, le=100_000, description="Bulk-sync items per request (more get 413)."
    )
    max_body_bytes: int = Field(1_048_576, ge=1024, description="Larger request bodies get 413.")
    # NoDecode: the raw string is parsed by the validator below so a bad value gets our message.
    services: Annotated[dict[str, SecretStr] | None, NoDecode] = Field(
        None, description='Service identities as JSON: {"name": "secret", ...}.'
    )
    services_file: Path | None = Field(
        None,
        description="Path to a JSON file shaped like SERVICES; inline SERVICES wins per name.",
    )
    competing_writer_service: str = Field(
        "order-service", description="Identity the simulated competing writer journals as."
    )
    console_session_secret: SecretStr = Field(
        SecretStr(""),
        description="Signs /_sim/console session cookies; empty: a random one per process.",
    )
    console_session_max_age_seconds: int = Field(
        8 * 3600,
        ge=60,
        le=30 * 86_400,
        description="Console sessions end this long after sign-in.",
    )
    console_poll_seconds: float = Field(
        2.0, ge=0.2, le=60, description="How often the panel refreshes its live parts."
    )
    random_seed: int | None = Field(None, description="Seed fault dice for reproducible runs.")
    log_level: str = Field(
        "INFO", description="DEBUG, INFO, WARNING or ERROR (JSON lines; secrets never logged)."
    )

    @field_validator("services", mode="before")
    @classmethod
    def _parse_services_json(cls, value: object) -> object:
        if isinstance(value, str):
            if not value.strip():
                return None
            try:
                return json.loads(value)
            except json.JSONDecodeError as exc:
                raise ValueError(f"CENTRAL_SIM_SERVICES is not valid JSON: {exc}") from exc
        return value

    @field_validator("services_file", mode="before")
    @classmethod
    def _blank_file_is_none(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("jwt_secret", "admin_token")
    @classmethod
    def _not_blank(cls, value: SecretStr) -> SecretStr:
        if not value.get_secret_value().strip():
            raise ValueError("must not be empty")
        return value

    @field_validator("database_url")
    @classmethod
    def _sqlite_only(cls, value: str) -> str:
        sqlite_database_path(value)
        return value

    def database_path(self) -> str:
        """The SQLite file path (or `:memory:`) named by `database_url`."""
        return sqlite_database_path(self.database_url)

    def service_secrets(self) -> dict[str, str]:
        """Known identities; inline SERVICES wins over SERVICES_FILE. Raises ConfigError if none."""
        services: dict[str, str] = {}
        if self.services_file is not None:
            try:
                raw = json.loads(self.services_file.read_text(encoding="utf-8"))
            except (OSError, json.JSONDecodeError) as exc:
                raise ConfigError(f"cannot read CENTRAL_SIM_SERVICES_FILE: {exc}") from exc
            if not isinstance(raw, dict) or not all(
                isinstance(k, str) and isinstance(v, str) for k, v in raw.items()
            ):
                raise ConfigError('CENTRAL_SIM_SERVICES_FILE must hold {"name": "secret", ...}')
            services.update(raw)
        if self.services:
            services.update({k: v.get_secret_value() for k, v in self.services.items()})
        services = {name: secret for name, secret in services.items() if name and secret}
        if not services:
            raise ConfigError(
                "no service identities configured: set CENTRAL_SIM_SERVICES to a JSON object "
                '{"service-name": "secret", ...} or CENTRAL_SIM_SERVICES_FILE to such a file '
                "(see .env.example for the development defaults)"
            )
        return services


def load_settings() -> Settings:
    """Read settings from the environment, turning pydantic's errors into one clear ConfigError."""

    try:
        return Settings()  # required fields come from the environment
    except ValidationError as exc:
        problems = "; ".join(
            f"CENTRAL_SIM_{'.'.join(str(p) for p in err['loc']).upper()}: {err['msg']}"
            for err in exc.errors()
        )
        raise ConfigError(f"invalid central_sim configuration: {problems}") from exc
