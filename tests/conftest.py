"""Fixtures shared by every test level: real services (RabbitMQ, Toxiproxy) and their helpers."""

import pytest
from kombu.transport import filesystem, virtual

pytest_plugins = ["tests.support.services"]


@pytest.fixture(autouse=True)
def _fresh_filesystem_broker_state() -> None:
    """kombu's filesystem transport remembers declared exchanges in a class attribute, so a
    second test with a new broker folder would skip declaring its exchange there and its
    messages would be dropped. Each test starts with a fresh memory (dev transport only)."""
    filesystem.Transport.global_state = virtual.BrokerState()
