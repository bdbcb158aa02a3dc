"""The real services the integration and chaos suites stand on: RabbitMQ and Toxiproxy."""

import socket
import socketserver
import threading
import time
import uuid
from collections.abc import Iterator

import amqp.exceptions
import pytest
from kombu.connection import Connection
from kombu.entity import Exchange, Queue

from chaos.toxiproxy import Proxy, ToxiproxyClient, cut, fault
from harness.processes import free_port
from tests.support.services import rabbitmq_url, toxiproxy  # noqa: F401 (fixtures)

pytestmark = pytest.mark.integration

LATENCY_MS = 300


# --- RabbitMQ -----------------------------------------------------------------------------


def test_rabbitmq_round_trips_a_confirmed_message_through_a_durable_quorum_queue(
    rabbitmq_url: str,  # noqa: F811
) -> None:
    name = f"test-services-{uuid.uuid4().hex[:8]}"
    exchange = Exchange(name, type="direct", durable=True)
    queue = Queue(
        name,
        exchange,
        routing_key=name,
        durable=True,
        queue_arguments={"x-queue-type": "quorum"},
    )
    with Connection(
        rabbitmq_url, transport_options={"confirm_publish": True}, connect_timeout=5
    ) as conn:
        conn.ensure_connection(max_retries=3)
        channel = conn.channel()
        try:
            producer = conn.Producer(channel)
            producer.publish(
                {"hello": "broker"},
                exchange=exchange,
                routing_key=name,
                declare=[queue],
                serializer="json",
                delivery_mode=2,
            )
            # confirm_publish puts the channel in confirm mode: publish() returned only after
            # the broker acknowledged the message.
            assert channel._confirm_selected

            bound = queue(channel)
            message = None
            deadline = time.monotonic() + 10
            while message is None and time.monotonic() < deadline:
                message = bound.get(no_ack=False)
                if message is None:
                    time.sleep(0.05)
            assert message is not None, "the published message never arrived"
            assert message.decode() == {"hello": "broker"}
            message.ack()

            # The queue really is a quorum queue: declaring it as a classic one is refused.
            check = conn.channel()
            with pytest.raises(amqp.exceptions.PreconditionFailed):
                check.queue_declare(name, durable=True, arguments={"x-queue-type": "classic"})
        finally:
            cleanup = conn.channel()
            cleanup.queue_delete(name)
            cleanup.exchange_delete(name)


# --- Toxiproxy ----------------------------------------------------------------------------


class _Echo(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        while data := self.request.recv(65536):
            self.request.sendall(data)


class _EchoServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True


@pytest.fixture
def echo_port() -> Iterator[int]:
    port = free_port()
    server = _EchoServer(("127.0.0.1", port), _Echo)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield port
    server.shutdown()
    server.server_close()


@pytest.fixture
def echo_proxy(
    toxiproxy: ToxiproxyClient,  # noqa: F811
    echo_port: int,
) -> Iterator[Proxy]:
    name = f"echo-{uuid.uuid4().hex[:8]}"
    proxy = toxiproxy.create_proxy(name, f"127.0.0.1:{free_port()}", f"127.0.0.1:{echo_port}")
    yield proxy
    toxiproxy.delete_proxy(name, missing_ok=True)


def round_trip(port: int, payload: bytes = b"ping", timeout: float = 5.0) -> tuple[bytes, float]:
    """Send payload through a fresh connection and read it back; (bytes, seconds)."""
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(payload)
        received = b""
        while len(received) < len(payload):
            chunk = sock.recv(65536)
            if not chunk:
                break
            received += chunk
    return received, time.monotonic() - started


def test_toxiproxy_passes_bytes_through_a_proxy(
    toxiproxy: ToxiproxyClient,  # noqa: F811
    echo_proxy: Proxy,
) -> None:
    assert toxiproxy.version()
    assert echo_proxy.enabled
    assert round_trip(echo_proxy.listen_port, b"hello through toxiproxy")[0] == (
        b"hello through toxiproxy"
    )


def test_create_proxy_replaces_an_existing_proxy_of_the_same_name(
    toxiproxy: ToxiproxyClient,  # noqa: F811
    echo_proxy: Proxy,
) -> None:
    toxiproxy.add_toxic(echo_proxy.name, "latency", {"latency": 10})
    replaced = toxiproxy.create_proxy(echo_proxy.name, echo_proxy.listen, echo_proxy.upstream)
    assert replaced.toxics == ()
    assert round_trip(replaced.listen_port)[0] == b"ping"


def test_latency_toxic_delays_the_response_by_at_least_its_latency(
    toxiproxy: ToxiproxyClient,  # noqa: F811
    echo_proxy: Proxy,
) -> None:
    toxic = toxiproxy.add_toxic(echo_proxy.name, "latency", {"latency": LATENCY_MS, "jitter": 0})
    assert toxic.name == "latency_downstream"
    assert toxic.attributes["latency"] == LATENCY_MS

    data, elapsed = round_trip(echo_proxy.listen_port)

    assert data == b"ping"
    assert elapsed >= LATENCY_MS / 1000

    toxiproxy.remove_toxic(echo_proxy.name, toxic.name)
    assert toxiproxy.list_toxics(echo_proxy.name) == []


def test_reset_peer_toxic_resets_the_connection(
    toxiproxy: ToxiproxyClient,  # noqa: F811
    echo_proxy: Proxy,
) -> None:
    with fault(toxiproxy, echo_proxy.name, "reset_peer", {"timeout": 0}, stream="upstream"):
        try:
            data, _ = round_trip(echo_proxy.listen_port)
        except ConnectionResetError:
            data = b""
        assert data == b"", "no bytes come back through a reset connection"

    assert round_trip(echo_proxy.listen_port)[0] == b"ping"


def test_disable_is_a_full_cut_and_enable_heals_it(
    toxiproxy: ToxiproxyClient,  # noqa: F811
    echo_proxy: Proxy,
) -> None:
    port = echo_proxy.listen_port
    established = socket.create_connection(("127.0.0.1", port), timeout=5)
    established.sendall(b"before")
    assert established.recv(64) == b"before"

    toxiproxy.disable(echo_proxy.name)
    try:
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", port), timeout=2).close()
        # The open connection is dropped too: EOF or a reset, never an echo.
        try:
            established.sendall(b"during")
            assert established.recv(64) == b""
        except (ConnectionResetError, BrokenPipeError):
            pass
    finally:
        established.close()
        toxiproxy.enable(echo_proxy.name)

    assert toxiproxy.get_proxy(echo_proxy.name).enabled
    assert round_trip(port)[0] == b"ping"


def test_fault_removes_its_toxic_even_when_the_block_raises(
    toxiproxy: ToxiproxyClient,  # noqa: F811
    echo_proxy: Proxy,
) -> None:
    def fail_during_fault() -> None:
        with fault(toxiproxy, echo_proxy.name, "latency", {"latency": LATENCY_MS}, name="slow"):
            assert [t.name for t in toxiproxy.list_toxics(echo_proxy.name)] == ["slow"]
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        fail_during_fault()

    assert toxiproxy.list_toxics(echo_proxy.name) == []
    assert round_trip(echo_proxy.listen_port)[0] == b"ping"


def test_cut_reenables_the_proxy_even_when_the_block_raises(
    toxiproxy: ToxiproxyClient,  # noqa: F811
    echo_proxy: Proxy,
) -> None:
    def fail_during_cut() -> None:
        with cut(toxiproxy, echo_proxy.name) as disabled:
            assert not disabled.enabled
            with pytest.raises(ConnectionRefusedError):
                round_trip(echo_proxy.listen_port)
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        fail_during_cut()

    assert toxiproxy.get_proxy(echo_proxy.name).enabled
    assert round_trip(echo_proxy.listen_port)[0] == b"ping"
