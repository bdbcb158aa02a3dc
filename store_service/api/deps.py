"""What request handlers depend on: the runtime the lifespan builds, as an `Annotated` alias."""

import sqlite3
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from store_service.api.health import HealthChecker
from store_service.config import Settings
from store_service.storage.writer import Writer
from store_service.sync.central import CentralClient
from store_service.sync.publisher import SyncPublisher


@dataclass
class StoreRuntime:
    """Everything the API process owns, built in the lifespan and closed with it."""

    settings: Settings
    writer: Writer  # every write of this process, group-committed
    reader: sqlite3.Connection  # read-only connection for the routes' reads
    publisher: SyncPublisher  # asks the worker for sync runs
    central: CentralClient  # for refresh: fetch central's stock now
    health: HealthChecker


def get_runtime(request: Request) -> StoreRuntime:
    runtime: StoreRuntime = request.app.state.runtime
    return runtime


RuntimeDep = Annotated[StoreRuntime, Depends(get_runtime)]
