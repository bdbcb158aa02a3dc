"""What request handlers depend on: the runtime the lifespan builds, as `Annotated` aliases."""

import sqlite3
from dataclasses import dataclass, field
from typing import Annotated, Any

from fastapi import Depends, Request

from store_service.config import Settings
from store_service.storage.writer import Writer


@dataclass
class StoreRuntime:
    """Everything the API process owns, built in the lifespan and closed with it."""

    settings: Settings
    writer: Writer
    reader: sqlite3.Connection
    # Filled by the sync wiring: the Celery app used to enqueue sync runs, and friends.
    extras: dict[str, Any] = field(default_factory=dict)


def get_runtime(request: Request) -> StoreRuntime:
    runtime: StoreRuntime = request.app.state.runtime
    return runtime


RuntimeDep = Annotated[StoreRuntime, Depends(get_runtime)]
