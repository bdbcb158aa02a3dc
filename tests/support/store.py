"""Start the store API as a real uvicorn process on a free port against a SQLite file."""

from dataclasses import dataclass
from pathlib import Path

from tests.support.processes import ManagedProcess, free_port, uvicorn_argv, wait_http_ok


@dataclass
class StoreApi:
    process: ManagedProcess
    base_url: str
    database: Path
    env: dict[str, str]

    def restart(self) -> None:
        self.process.stop()
        self.process.start()
        wait_http_ok(f"{self.base_url}/v1/local/inventory", self.process)


def store_env(database: Path, **overrides: str) -> dict[str, str]:
    """Environment for a store process on `database`, with test-friendly defaults."""
    env = {
        "STORE_DATABASE_URL": f"sqlite:///{database}",
        "STORE_DATA_DIR": str(database.parent),
        "STORE_LOG_LEVEL": "WARNING",
        "STORE_MIGRATE_ON_STARTUP": "true",
    }
    env.update(overrides)
    return env


def start_store_api(tmp_path: Path, *, port: int | None = None, **env: str) -> StoreApi:
    database = tmp_path / "store.db"
    port = port or free_port()
    full_env = store_env(database, **env)
    process = ManagedProcess(
        "store-api",
        uvicorn_argv("store_service.main:app", port),
        env=full_env,
        log_dir=tmp_path / "logs",
    ).start()
    base_url = f"http://127.0.0.1:{port}"
    wait_http_ok(f"{base_url}/v1/local/inventory", process)
    return StoreApi(process=process, base_url=base_url, database=database, env=full_env)
