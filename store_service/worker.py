"""`celery -A store_service.worker worker|beat`: the Celery app of `store_service.sync`.

`app` is built on first access (the module `__getattr__` of `store_service.sync.celery_app`),
so importing this module reads no settings and opens no connection.
"""

from store_service.sync.celery_app import __getattr__, create_celery

__all__ = ["__getattr__", "create_celery"]
