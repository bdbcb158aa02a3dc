"""The store API's problem documents (RFC 9457, built by `http_edge.problems`): its `type` base
URI, and the one table that says which problem each refusal of the store becomes."""

from fastapi import FastAPI

from http_edge.problems import (
    PROBLEM_JSON,
    SLUG_STATE,
    ProblemError,
    Problems,
    Refusals,
    problem_responses,
)
from store_service.domain import (
    ChangeNotFound,
    ChangeNotInConflict,
    InsufficientStock,
    OperationReused,
    VersionMismatch,
)
from store_service.storage.faults import StorageUnavailable
from store_service.sync.central import CentralAuthFailed, CentralUnavailable
from store_service.sync.publisher import SyncNotQueued

__all__ = ["PROBLEMS", "PROBLEM_JSON", "SLUG_STATE", "ProblemError", "problem_responses"]

PROBLEMS = Problems("https://store-service.dev/problems/")
RETRY_AFTER_SECONDS = 5


# One builder per refusal: alike in form (every RFC 9457 document is), each with its own
# fields; a shared template would hide which fields a client gets for which refusal.
def _version_conflict(exc: VersionMismatch) -> ProblemError:
    return ProblemError(
        409,
        "version-conflict",
        "Version conflict",
        f"Expected version {exc.expected}, the current version is {exc.item.version}.",
        field="version",
        current_quantity=exc.item.quantity,
        current_version=exc.item.version,
    )


def _insufficient_stock(exc: InsufficientStock) -> ProblemError:
    return ProblemError(
        409,
        "insufficient-stock",
        "Insufficient stock",
        f"Quantity {exc.item.quantity} cannot take a delta of {exc.delta}.",
        field="delta",
        current_quantity=exc.item.quantity,
        current_version=exc.item.version,
    )


def _operation_reused(exc: OperationReused) -> ProblemError:
    return ProblemError(
        422,
        "operation-id-reused",
        "operation_id reused with a different payload",
        str(exc),
        field="operation_id",
        original={
            "sku": exc.stored["sku"],
            "delta": exc.stored["delta"],
            "version": exc.stored["expected_version"],
        },
    )


def _change_not_found(exc: ChangeNotFound) -> ProblemError:
    return ProblemError(
        404, "operation-not-found", "Operation not found", f"No change {exc.operation_id}."
    )


def _not_in_conflict(exc: ChangeNotInConflict) -> ProblemError:
    return ProblemError(
        409,
        "change-not-in-conflict",
        "Change is not parked in conflict",
        f"Only a change in `conflict` can be retried or discarded; this one is {exc.status}.",
        current_status=exc.status.value,
    )


def _central_unavailable(exc: CentralUnavailable) -> ProblemError:
    return ProblemError(
        503,
        "central-unavailable",
        "Central unavailable",
        f"Central could not be reached ({exc.failure.kind}); nothing was changed.",
        headers={"Retry-After": str(int(exc.failure.retry_after or RETRY_AFTER_SECONDS))},
    )


def _central_auth_failed(_exc: CentralAuthFailed) -> ProblemError:
    return ProblemError(
        503,
        "central-auth-failed",
        "Central refused the store's credentials",
        "Check STORE_CENTRAL_SERVICE_NAME / STORE_CENTRAL_SERVICE_SECRET; nothing changed.",
        headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
    )


def _sync_not_queued(_exc: SyncNotQueued) -> ProblemError:
    # Not a refusal: the run may still have been queued (a late confirm), and either way the
    # changes are in SQLite, where the next beat or trigger finds them.
    return ProblemError(
        503,
        "broker-unavailable",
        "Broker unavailable",
        "The broker did not confirm the sync request in time. Nothing is lost: the changes are "
        "stored locally and the next scheduled sync sends them. Retry later to sync sooner.",
        headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
    )


STORAGE_RETRY_AFTER_SECONDS = 10


def _storage_unavailable(exc: StorageUnavailable) -> ProblemError:
    # Not a refusal of the request: the store could not write. For a full disk, a read-only or
    # vanished file the change was not recorded; an I/O error in the commit's fsync leaves that
    # unknown, so the advice is the one that is right either way.
    return ProblemError(
        503,
        "storage-unavailable",
        "Storage unavailable",
        f"The store's database cannot take writes ({exc.condition}). Retry with the same "
        "operation_id: a change that was recorded is answered as a replay.",
        headers={"Retry-After": str(STORAGE_RETRY_AFTER_SECONDS)},
        condition=exc.condition.value,
    )


REFUSALS: Refusals = {
    VersionMismatch: _version_conflict,
    InsufficientStock: _insufficient_stock,
    OperationReused: _operation_reused,
    ChangeNotFound: _change_not_found,
    ChangeNotInConflict: _not_in_conflict,
    CentralUnavailable: _central_unavailable,
    CentralAuthFailed: _central_auth_failed,
    SyncNotQueued: _sync_not_queued,
    StorageUnavailable: _storage_unavailable,
}


def install_problem_handlers(app: FastAPI) -> None:
    PROBLEMS.install(app, refusals=REFUSALS)
