"""RabbitMQ housekeeping for the harness: every run uses its own durable sync queue."""

from kombu.connection import Connection
from kombu.entity import Exchange, Queue


def delete_queue(broker_url: str, name: str) -> None:
    """Remove a run's durable quorum queue and its exchange (they would pile up otherwise)."""
    with Connection(broker_url, connect_timeout=5) as conn:
        channel = conn.default_channel
        Queue(name, Exchange(name, type="topic"), routing_key=name).bind(channel).delete()
        Exchange(name, type="topic").bind(channel).delete()
