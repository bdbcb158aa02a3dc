"""Real RabbitMQ and Toxiproxy for the integration and chaos tests.

They are found through the environment `.ci/run` exports (`STORE_TEST_BROKER_URL`,
`TOXIPROXY_URL`) or the loopback defaults, and started by `scripts/services/*.sh ensure`. In CI
a missing service fails the test; elsewhere it skips with the command that starts it. Where a
Docker engine answers and no broker is configured or running, RabbitMQ comes from
testcontainers instead (that path never runs on the CI machines, which have no engine).

Use the fixtures from a test module or conftest with
`from tests.support.services import rabbitmq_url, toxiproxy`.
"""

import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import urlsplit

import pytest

from chaos.node import via
from chaos.toxiproxy import ToxiproxyClient, ToxiproxyError
from harness.processes import port_open
from tests.support.processes import REPO_ROOT, require

DEFAULT_BROKER_URL = "amqp://guest:guest@127.0.0.1:5672//"
DEFAULT_TOXIPROXY_URL = "http://127.0.0.1:8474"
RABBITMQ_SCRIPT = REPO_ROOT / "scripts" / "services" / "rabbitmq.sh"
TOXIPROXY_SCRIPT = REPO_ROOT / "scripts" / "services" / "toxiproxy.sh"
RABBITMQ_IMAGE = "rabbitmq:3.13-alpine"


def broker_url() -> str:
    return os.environ.get("STORE_TEST_BROKER_URL", DEFAULT_BROKER_URL)


def toxiproxy_url() -> str:
    return os.environ.get("TOXIPROXY_URL", DEFAULT_TOXIPROXY_URL)


def host_port(url: str, default_port: int) -> tuple[str, int]:
    parts = urlsplit(url)
    return parts.hostname or "127.0.0.1", parts.port or default_port


def docker_available() -> bool:
    """A Docker engine answers (not just a `docker` CLI on the PATH)."""
    if shutil.which("docker") is None:
        return False
    try:
        result = subprocess.run(["docker", "info"], capture_output=True, timeout=5, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return result.returncode == 0


def rabbitmq_service(action: str, *, timeout: float = 180.0) -> None:
    """Run `scripts/services/rabbitmq.sh <action>` (ensure, start, stop, restart)."""
    subprocess.run(["bash", str(RABBITMQ_SCRIPT), action], check=True, timeout=timeout)


def rabbitmq_restart() -> None:
    """Restart the local broker process (the chaos tests' RabbitMQ restart)."""
    rabbitmq_service("restart")


@pytest.fixture(scope="session")
def rabbitmq_url() -> Iterator[str]:
    """AMQP URL of a running RabbitMQ: the configured/local one, or a testcontainer."""
    url = broker_url()
    if port_open(*host_port(url, 5672)):
        yield url
        return
    if "STORE_TEST_BROKER_URL" not in os.environ and docker_available():
        from testcontainers.community.rabbitmq import RabbitMqContainer

        with RabbitMqContainer(RABBITMQ_IMAGE) as container:
            host = container.get_container_host_ip()
            port = container.get_exposed_port(container.port)
            yield f"amqp://{container.username}:{container.password}@{host}:{port}//"
        return
    require(False, f"RabbitMQ at {url}", f"bash {RABBITMQ_SCRIPT.relative_to(REPO_ROOT)} ensure")


def _toxiproxy_answers(client: ToxiproxyClient) -> bool:
    try:
        client.version()
    except ToxiproxyError:
        return False
    return True


def require_toxiproxy(client: ToxiproxyClient) -> None:
    require(
        _toxiproxy_answers(client),
        f"Toxiproxy at {client.base_url}",
        f"bash {TOXIPROXY_SCRIPT.relative_to(REPO_ROOT)} ensure",
    )


@dataclass
class BrokerProxy:
    """A Toxiproxy proxy of the test's own in front of the real RabbitMQ; `url` is the AMQP URL
    through it. Only this proxy is touched (never `reset`), so tests sharing the Toxiproxy
    server are left alone."""

    client: ToxiproxyClient
    name: str
    url: str

    @classmethod
    def create(
        cls, client: ToxiproxyClient, broker: str, prefix: str = "test-broker"
    ) -> "BrokerProxy":
        parts = urlsplit(broker)
        name = f"{prefix}-{uuid.uuid4().hex[:10]}"
        # Port 0: the server binds a free port itself, so parallel runs never collide.
        proxy = client.create_proxy(
            name, "127.0.0.1:0", f"{parts.hostname or '127.0.0.1'}:{parts.port or 5672}"
        )
        return cls(client, name, via(broker, proxy))

    def restart(self) -> None:
        """A broker restart as its clients see it: every open connection cut, then the broker
        reachable again (the connections are not restored)."""
        self.client.disable(self.name)
        self.client.enable(self.name)

    def delete(self) -> None:
        self.client.delete_proxy(self.name, missing_ok=True)


@pytest.fixture
def broker_proxy(rabbitmq_url: str) -> Iterator[BrokerProxy]:
    """A private proxy in front of RabbitMQ, deleted after the test."""
    with ToxiproxyClient(toxiproxy_url()) as client:
        require_toxiproxy(client)
        proxy = BrokerProxy.create(client, rabbitmq_url)
        try:
            yield proxy
        finally:
            proxy.delete()


@pytest.fixture
def toxiproxy() -> Iterator[ToxiproxyClient]:
    """A client for the running Toxiproxy; every proxy enabled, no toxics, before and after."""
    with ToxiproxyClient(toxiproxy_url()) as client:
        require_toxiproxy(client)
        client.reset()
        try:
            yield client
        finally:
            client.reset()
