"""RabbitMQ housekeeping for the harness: every run uses its own durable sync queue, and the
harness reads a queue's depth and consumers from the broker itself."""

from dataclasses import dataclass

from kombu.connection import Connection
from kombu.entity import Exchange, Queue


@dataclass(frozen=True, slots=True)
class QueueDepth:
    messages: int  # ready messages (published, not yet delivered to a consumer)
    consumers: int


def delete_queue(broker_url: str, name: str) -> None:
    """Remove a run's durable quorum queue and its exchange (they would pile up otherwise)."""
    with Connection(broker_url, connect_timeout=5) as conn:
        channel = conn.default_channel
        Queue(name, Exchange(name, type="topic"), routing_key=name).bind(channel).delete()
        Exchange(name, type="topic").bind(channel).delete()


def delete_queue_quietly(broker_url: str, name: str) -> None:
    """`delete_queue` at the end of a run: a broker already gone is reported, not raised."""
    try:
        delete_queue(broker_url, name)
    except Exception as exc:
        print(f"could not delete queue {name}: {exc!r}")


class BrokerView:
    """RabbitMQ's own count of messages and consumers per queue (a passive `queue.declare`: it
    never creates a queue), over one connection kept open for repeated reads."""

    def __init__(self, broker_url: str) -> None:
        self._conn = Connection(broker_url, connect_timeout=5)

    def depth(self, name: str) -> QueueDepth:
        channel = self._conn.default_channel
        ok = channel.queue_declare(queue=name, passive=True)
        return QueueDepth(messages=int(ok.message_count), consumers=int(ok.consumer_count))

    def close(self) -> None:
        self._conn.release()


def queue_depth(broker_url: str, name: str) -> QueueDepth:
    """One read of `name`'s depth (see BrokerView for repeated reads)."""
    view = BrokerView(broker_url)
    try:
        return view.depth(name)
    finally:
        view.close()
