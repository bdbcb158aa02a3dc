"""The recorded history of a run: every store request with its outcome, thread-safe to append.

An outcome is what the *client* can know: `ok` (HTTP 200: acknowledged), `refused` (a 4xx: the
store said no and changed nothing), or `unknown` (a timeout, a connection error or a 5xx: the
change may or may not have been applied; the client retries it under the same operation_id).
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any, Literal, TypeAlias

Outcome: TypeAlias = Literal["ok", "refused", "unknown"]
# sell/receive: unconditional deltas; versioned: carries the version just read (may race);
# stale: carries an older version and must be refused with 409; resend: repeats an
# acknowledged operation with the same payload and must be replayed.
OpKind: TypeAlias = Literal["sell", "receive", "versioned", "stale", "resend"]


@dataclass(frozen=True, slots=True)
class StoreRequest:
    operation_id: str
    sku: str
    delta: int
    version: int | None
    kind: OpKind
    attempt: int  # 1 for the first send of this request, 2.. for client retries of unknowns
    outcome: Outcome
    status_code: int | None
    replayed: bool
    started_at: float
    ended_at: float
    error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> StoreRequest:
        return cls(**data)


class History:
    """Append-only list of requests, shared by the traffic threads."""

    def __init__(self, requests: Iterable[StoreRequest] = ()) -> None:
        self._lock = threading.Lock()
        self._requests: list[StoreRequest] = list(requests)
        self._settled = sum(r.outcome != "unknown" for r in self._requests)

    def record(self, request: StoreRequest) -> None:
        with self._lock:
            self._requests.append(request)
            self._settled += request.outcome != "unknown"

    def settled(self) -> int:
        """Requests with a definite answer (acknowledged or refused): the traffic's progress."""
        with self._lock:
            return self._settled

    def requests(self) -> list[StoreRequest]:
        with self._lock:
            return list(self._requests)

    def __len__(self) -> int:
        with self._lock:
            return len(self._requests)
