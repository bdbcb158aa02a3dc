"""The store's sync queue as RabbitMQ sees it: messages waiting and consumers attached.

A passive `queue.declare` answers both without creating or changing anything (AMQP 0-9-1
`declare-ok` carries the message and consumer counts). "Messages piling up with no consumer"
is `messages > 0 and consumers == 0`: the store publishes sync requests and no worker takes
them. The count is of messages ready for delivery; one a worker holds unacknowledged is not in
it. The filesystem development broker has no consumer count: it is not measured.
"""

from dataclasses import dataclass

from store_service.config import Settings
from store_service.sync.names import broker_url, is_amqp


@dataclass(frozen=True, slots=True)
class QueueStats:
    queue: str
    messages: int
    consumers: int
    declared: bool = True  # False: no worker or publisher has declared the queue yet

    @property
    def piling_up(self) -> bool:
        """Messages waiting and nobody consuming them."""
        return self.messages > 0 and self.consumers == 0

    def describe(self) -> str:
        if not self.declared:
            return f"queue {self.queue} not declared yet (no worker has started)"
        if self.piling_up:
            return f"{self.messages} message(s) waiting on {self.queue} with no consumer"
        return f"{self.messages} message(s) waiting on {self.queue}, {self.consumers} consumer(s)"


def measured(settings: Settings) -> bool:
    """Whether the broker can say (RabbitMQ can; the filesystem dev broker cannot)."""
    return is_amqp(broker_url(settings))


def queue_stats(settings: Settings, *, timeout: float) -> QueueStats:
    """Depth and consumers of `settings.sync_queue`; raises when the broker is unreachable."""
    from kombu.connection import Connection  # here: the API imports kombu only when it asks

    name = settings.sync_queue
    with Connection(broker_url(settings), connect_timeout=timeout) as conn:
        channel = conn.channel()
        try:
            answer = channel.queue_declare(queue=name, passive=True)
        except conn.channel_errors as exc:
            # 404 NOT_FOUND closes the channel: the queue does not exist (yet).
            if getattr(exc, "code", None) == 404:
                return QueueStats(name, 0, 0, declared=False)
            raise
        return QueueStats(name, int(answer.message_count), int(answer.consumer_count))
