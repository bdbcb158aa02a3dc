"""The store console's routes: pages, live fragments and the operator's actions.

Pages render whole; each live part is also a fragment (`/console/fragments/…`) that htmx polls
every `console_poll_seconds`, so nothing reloads the page. Reads go through the API's read-only
connection and the health checker; Retry and Discard call `operator.act`, the function the JSON
API's routes call. The router is built by `http_edge.console.ConsoleEdge`: every answer gets the
console's security headers, every refusal becomes a problem document, no middleware is added.
"""

import asyncio
import time
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from starlette.responses import Response

from http_edge.console.edge import Access, ConsoleEdge, Visitor, is_htmx
from http_edge.console.session import SessionCodec
from store_service import operator
from store_service.api.auth import ApiKeys
from store_service.api.deps import RuntimeDep, StoreRuntime
from store_service.api.problems import PROBLEMS, ProblemError
from store_service.config import Settings
from store_service.domain import ChangeState, OperatorAction
from store_service.storage import items, outbox
from store_service.sync import heartbeat
from store_service.sync.status import summary

PREFIX = "/console"
CONFLICTS_SHOWN = 100
RECENT_SHOWN = 100
# Console path and query values: any text a database row may hold, bounded.
AnyId = Annotated[str, Query(max_length=256)]


def build_console(settings: Settings, keys: ApiKeys) -> APIRouter:
    """The console's router for an app with these settings and API keys."""
    codec = SessionCodec(
        settings.console_session_secret.get_secret_value(),
        salt="store-console",
        cookie="store_console",
        path=PREFIX,
        max_age_seconds=settings.console_session_max_age_seconds,
    )

    def principal_valid(principal: str) -> bool:
        # A key removed from STORE_API_KEYS ends the sessions signed in with it.
        return any(codec.principal_id(digest) == principal for digest in keys.digests)

    edge = ConsoleEdge(
        prefix=PREFIX,
        title="Store console",
        templates_package="store_service.api.console",
        problems=PROBLEMS,
        codec=codec,
        access=Access(
            auth_on=bool(keys),
            anonymous_reads=settings.api_allow_anonymous_reads,
            check_credential=keys.match,
            principal_valid=principal_valid,
            credential_label="API key",
        ),
        poll_seconds=settings.console_poll_seconds,
    )
    router = edge.router()
    Reader = Annotated[Visitor, Depends(edge.reader)]
    Actor = Annotated[Visitor, Depends(edge.actor)]

    # --- pages --------------------------------------------------------------------------------

    @router.get("")
    async def overview(request: Request, runtime: RuntimeDep, visitor: Reader) -> Response:
        return edge.page(
            request,
            "overview.html",
            visitor,
            **await _status(runtime),
            conflicts=_conflicts(runtime),
        )

    @router.get("/changes")
    async def changes(
        request: Request,
        runtime: RuntimeDep,
        visitor: Reader,
        sku: AnyId = "",
        operation_id: AnyId = "",
        state: AnyId = "",
    ) -> Response:
        search = _search_terms(sku, operation_id, state)
        return edge.page(
            request,
            "changes.html",
            visitor,
            search=search,
            changes=_search(runtime, search),
            states=list(ChangeState),
            query=request.url.query,  # the fragment polls the same search
        )

    @router.get("/items/{sku:path}")
    async def item(request: Request, sku: str, runtime: RuntimeDep, visitor: Reader) -> Response:
        return edge.page(request, "item.html", visitor, sku=sku, **_item(runtime, sku))

    # --- live fragments (htmx polls these) -----------------------------------------------------

    @router.get("/fragments/status")
    async def status_fragment(request: Request, runtime: RuntimeDep, visitor: Reader) -> Response:
        return edge.page(request, "_status.html", visitor, **await _status(runtime))

    @router.get("/fragments/conflicts")
    async def conflicts_fragment(
        request: Request, runtime: RuntimeDep, visitor: Reader
    ) -> Response:
        return edge.page(request, "_conflicts.html", visitor, conflicts=_conflicts(runtime))

    @router.get("/fragments/changes")
    async def changes_fragment(
        request: Request,
        runtime: RuntimeDep,
        visitor: Reader,
        sku: AnyId = "",
        operation_id: AnyId = "",
        state: AnyId = "",
    ) -> Response:
        search = _search_terms(sku, operation_id, state)
        changes = _search(runtime, search)
        return edge.page(request, "_changes.html", visitor, search=search, changes=changes)

    @router.get("/fragments/items/{sku:path}")
    async def item_fragment(
        request: Request, sku: str, runtime: RuntimeDep, visitor: Reader
    ) -> Response:
        return edge.page(request, "_item.html", visitor, sku=sku, **_item(runtime, sku))

    # --- the operator's actions ----------------------------------------------------------------

    @router.post("/changes/{operation_id:path}/{action}")
    async def act(
        request: Request,
        operation_id: str,
        action: OperatorAction,
        runtime: RuntimeDep,
        visitor: Actor,
    ) -> Response:
        # The JSON API's function: same transaction, same refusals (404, 409), same log line.
        change = await operator.act(runtime.writer, action, operation_id, via="console")
        if is_htmx(request):  # the conflicts panel as it stands now, and what happened
            done = f"{action.capitalize()}: change {operation_id} is now {change['status']}."
            conflicts = _conflicts(runtime)
            return edge.page(request, "_conflicts.html", visitor, conflicts=conflicts, done=done)
        return edge.redirect(request, visitor, PREFIX)

    return router


# --- reads (the API's read-only connection; small and bounded) ----------------------------------


async def _status(runtime: StoreRuntime) -> dict[str, Any]:
    health, components = await runtime.health.check()
    beat = await asyncio.to_thread(_heartbeat, runtime)
    now = time.time()
    return {
        "summary": summary(runtime.reader, now=now),
        "health": health,
        "components": components,
        "heartbeat": beat,
        "heartbeat_age": None if beat is None else max(0.0, now - float(beat["at"])),
        "states": list(ChangeState),
    }


def _heartbeat(runtime: StoreRuntime) -> dict[str, Any] | None:
    return heartbeat.read(runtime.reader)


def _conflicts(runtime: StoreRuntime) -> list[dict[str, Any]]:
    """Parked changes, newest first, each with its SKU's local view (central's and local
    quantity and version)."""
    parked = outbox.recent_changes(
        runtime.reader, status=ChangeState.CONFLICT, sku=None, limit=CONFLICTS_SHOWN
    )
    views = {sku: items.get_item(runtime.reader, sku) for sku in {c["sku"] for c in parked}}
    return [{**change, "item": views[change["sku"]]} for change in parked]


def _search_terms(sku: str, operation_id: str, state: str) -> dict[str, Any]:
    """The search form's fields; an empty state is "any" (the form's first option)."""
    try:
        status = ChangeState(state) if state else None
    except ValueError:
        raise ProblemError(
            422,
            "validation-error",
            "Invalid request",
            f"state must be one of {', '.join(ChangeState)} or empty.",
        ) from None
    return {"sku": sku.strip(), "operation_id": operation_id.strip(), "state": status}


def _search(runtime: StoreRuntime, search: dict[str, Any]) -> list[dict[str, Any]]:
    if search["operation_id"]:  # unique: the one change, if it matches the other filters
        change = outbox.get_change(runtime.reader, search["operation_id"])
        found = [] if change is None else [change]
        return [
            c
            for c in found
            if (not search["sku"] or c["sku"] == search["sku"])
            and (search["state"] is None or c["status"] == search["state"])
        ]
    return outbox.recent_changes(
        runtime.reader, status=search["state"], sku=search["sku"] or None, limit=RECENT_SHOWN
    )


def _item(runtime: StoreRuntime, sku: str) -> dict[str, Any]:
    item = items.get_item(runtime.reader, sku)
    changes = outbox.recent_changes(runtime.reader, status=None, sku=sku, limit=RECENT_SHOWN)
    if item is None and not changes:
        raise ProblemError(404, "sku-not-found", "SKU not found", f"No local stock for {sku}.")
    return {"item": item, "changes": changes}
