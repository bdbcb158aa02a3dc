"""Health verdicts: database down is `down` (503), anything else is `degraded` (200), and the
network probes are cached so health polling cannot hammer central or the broker."""

import asyncio
from pathlib import Path

from store_service.api.health import (
    DEGRADED,
    DOWN,
    OK,
    HealthChecker,
    HealthStatus,
    Probe,
    http_status,
)
from store_service.config import Settings
from store_service.storage import db
from tests.support.store_db import make_settings


def _settings(tmp_path: Path, **overrides: object) -> Settings:
    return make_settings(tmp_path / "store.db", central_url="http://127.0.0.1:9", **overrides)


def _ok(_settings: Settings) -> tuple[HealthStatus, str | None]:
    return OK, None


def _probes(**replaced: Probe) -> dict[str, Probe]:
    from store_service.api.health import PROBES

    return {**PROBES, "broker": _ok, "central": _ok, "worker": _ok, **replaced}


async def test_a_missing_database_is_down_and_answers_503(tmp_path: Path) -> None:
    status, components = await HealthChecker(_settings(tmp_path), _probes()).check()
    assert components["database"].status == DOWN
    assert status == DOWN
    assert http_status(status) == 503


async def test_central_down_with_a_good_database_is_degraded_with_200(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    await asyncio.to_thread(db.migrate, settings)
    probes = _probes(central=lambda _s: (DOWN, "ConnectError"))
    status, components = await HealthChecker(settings, probes).check()
    assert components["database"].status == OK
    assert components["central"].detail == "ConnectError"
    assert status == DEGRADED
    assert http_status(status) == 200


async def test_every_component_ok_is_ok(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    await asyncio.to_thread(db.migrate, settings)
    status, components = await HealthChecker(settings, _probes()).check()
    assert status == OK
    assert set(components) == {"database", "broker", "central", "worker", "backlog"}
    assert all(component.latency_ms >= 0 for component in components.values())


async def test_a_probe_that_raises_is_down_without_leaking_a_url(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    await asyncio.to_thread(db.migrate, settings)

    def broken(_settings: Settings) -> tuple[HealthStatus, str | None]:
        raise OSError("cannot reach amqp://guest:s3cret@broker:5672//")

    _status, components = await HealthChecker(settings, _probes(broker=broken)).check()
    assert components["broker"].status == DOWN
    assert "s3cret" not in (components["broker"].detail or "")


async def test_network_probes_are_reused_within_the_cache_window(tmp_path: Path) -> None:
    settings = _settings(tmp_path, health_cache_seconds=60)
    await asyncio.to_thread(db.migrate, settings)
    calls = {"central": 0, "broker": 0}

    def counting(name: str) -> Probe:
        def probe(_settings: Settings) -> tuple[HealthStatus, str | None]:
            calls[name] += 1
            return OK, None

        return probe

    checker = HealthChecker(
        settings, _probes(central=counting("central"), broker=counting("broker"))
    )
    for _ in range(5):
        await checker.check()
    assert calls == {"central": 1, "broker": 1}
