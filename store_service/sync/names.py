"""Names and limits the API's publisher and the worker's Celery app share, in a module that
imports nothing heavy: the API imports Celery only with its first publish."""

from store_service.config import Settings

SYNC_TASK = "store_service.sync"
# How long a publish (a trigger from the API) may wait for the broker before giving up: the
# API answers 503 then, and nothing is lost because the changes live in SQLite.
BROKER_CONNECT_TIMEOUT_SECONDS = 3.0


def is_amqp(broker_url: str) -> bool:
    return broker_url.split("://", 1)[0] in {"amqp", "amqps", "pyamqp"}


def broker_url(settings: Settings) -> str:
    return settings.broker_url or "filesystem://"
