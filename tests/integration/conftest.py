"""Integration fixtures shared by modules: a real central_sim per module and a client to it."""

from collections.abc import Iterator

import httpx
import pytest

from harness.central import CentralSim, start_central


@pytest.fixture(scope="module")
def sim(
    tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Iterator[CentralSim]:
    """One central_sim subprocess per test module (start-up costs seconds)."""
    started = start_central(tmp_path_factory.mktemp(request.module.__name__.rsplit(".", 1)[-1]))
    yield started
    started.stop()


@pytest.fixture
def http(sim: CentralSim) -> Iterator[httpx.Client]:
    """A client to the module's central_sim, reset before and after the test."""
    sim.reset()
    with httpx.Client(base_url=sim.base_url, timeout=10.0) as client:
        yield client
    sim.reset()
