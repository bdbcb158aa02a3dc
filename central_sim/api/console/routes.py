"""The simulator panel's routes. Signed in with the admin token (the same secret as `/_sim`);
every action is a POST with the session's CSRF token; answers carry the consoles' security
headers (`http_edge.console`). Handlers are plain `def`: they run in the threadpool, like the
`/_sim` routes, because the operations take the database lock."""

import hashlib
from collections.abc import Callable, Mapping
from typing import Annotated, Any, TypeVar

import structlog
from fastapi import APIRouter, Depends, Request
from pydantic import ValidationError
from starlette.datastructures import FormData
from starlette.responses import Response

from central_sim import operations
from central_sim.api.deps import RuntimeDep
from central_sim.auth import same_secret
from central_sim.competing import CompetingWriterConfig
from central_sim.config import Settings
from central_sim.faults import Faults, FaultsUpdate
from central_sim.problems import PROBLEMS, ProblemError
from central_sim.runtime import Runtime
from http_edge.console.edge import Access, ConsoleEdge, Visitor, is_htmx
from http_edge.console.session import SessionCodec
from http_edge.problems import validation_errors

PREFIX = "/_sim/console"
STOCK_SHOWN = 50
JOURNAL_SHOWN = 30
log = structlog.get_logger("central_sim.console")

# The knobs the form edits, with how a field's text becomes the knob's value. conflict_next
# (a map) is edited as one SKU and a count; token_ttl_seconds empty means "the configured TTL".
RATE_KNOBS = (
    "conflict_rate",
    "error_rate",
    "throttle_rate",
    "drop_response_rate",
    "auth_failure_rate",
)
INT_KNOBS = ("latency_ms", "latency_jitter_ms", "throttle_retry_after_seconds")


def session_codec(settings: Settings) -> SessionCodec:
    return SessionCodec(
        settings.console_session_secret.get_secret_value(),
        salt="sim-console",
        cookie="sim_console",
        path=PREFIX,
        max_age_seconds=settings.console_session_max_age_seconds,
    )


def build_console(admin_token: Callable[[], str]) -> tuple[APIRouter, ConsoleEdge]:
    """The panel's router and its edge. Settings are read in the app's lifespan, so the
    lifespan calls `configure(edge, settings)`; `admin_token()` is the configured token."""

    def material() -> bytes:
        return hashlib.sha256(admin_token().encode()).digest()

    def check(presented: str) -> bytes | None:
        return material() if same_secret(admin_token(), presented) else None

    edge = ConsoleEdge(
        prefix=PREFIX,
        title="central_sim panel",
        templates_package="central_sim.api.console",
        problems=PROBLEMS,
        codec=session_codec(Settings.model_construct()),  # replaced by `configure`
        access=Access(
            auth_on=True,  # the admin token is required configuration
            anonymous_reads=False,
            check_credential=check,
            # A changed admin token ends the sessions signed in with the old one.
            principal_valid=lambda principal: principal == edge.codec.principal_id(material()),
            credential_label="admin token",
        ),
        poll_seconds=2.0,
    )
    router = edge.router()
    Reader = Annotated[Visitor, Depends(edge.reader)]
    Actor = Annotated[Visitor, Depends(edge.actor)]

    def controls(request: Request, rt: Runtime, visitor: Visitor, done: str) -> Response:
        log.info("console_action", action=done)
        if is_htmx(request):
            return edge.page(request, "_controls.html", visitor, **_controls(rt), done=done)
        return edge.redirect(request, visitor, PREFIX)

    @router.get("")
    def panel(request: Request, rt: RuntimeDep, visitor: Reader) -> Response:
        return edge.page(
            request, "panel.html", visitor, **{**_live(rt), **_controls(rt)}, done=None
        )

    @router.get("/fragments/live")
    def live(request: Request, rt: RuntimeDep, visitor: Reader) -> Response:
        return edge.page(request, "_live.html", visitor, **_live(rt))

    @router.post("/faults")
    async def set_faults(request: Request, rt: RuntimeDep, visitor: Actor) -> Response:
        update = _faults_update(await request.form())
        operations.update_faults(rt, update)
        return controls(request, rt, visitor, "faults set")

    @router.post("/faults/clear")
    def clear_faults(request: Request, rt: RuntimeDep, visitor: Actor) -> Response:
        operations.update_faults(rt, None)
        return controls(request, rt, visitor, "faults cleared")

    @router.post("/rotate-signing-key")
    def rotate(request: Request, rt: RuntimeDep, visitor: Actor) -> Response:
        operations.rotate_signing_key(rt)
        rt.metrics.faults.labels("key_rotation").inc()
        return controls(request, rt, visitor, "signing key rotated")

    @router.post("/services/{service}/{verb}")
    def revoke(
        request: Request, service: str, verb: str, rt: RuntimeDep, visitor: Actor
    ) -> Response:
        if verb not in ("revoke", "restore"):
            raise ProblemError(404, "not-found", "Not Found", "revoke or restore a service.")
        try:
            operations.set_revoked(rt, service, revoked=verb == "revoke")
        except operations.UnknownService as exc:
            raise ProblemError(404, "unknown-service", "Unknown service", str(exc)) from None
        return controls(request, rt, visitor, f"service {verb}d")

    @router.post("/competing-writer/start")
    async def start_writer(request: Request, rt: RuntimeDep, visitor: Actor) -> Response:
        config = _competing_config(await request.form())
        rt.competing.start(config)
        return controls(request, rt, visitor, "competing writer started")

    @router.post("/competing-writer/stop")
    def stop_writer(request: Request, rt: RuntimeDep, visitor: Actor) -> Response:
        rt.competing.stop("stopped")
        return controls(request, rt, visitor, "competing writer stopped")

    return router, edge


def configure(edge: ConsoleEdge, settings: Settings) -> None:
    """The panel's session and polling from the settings the lifespan read."""
    edge.codec = session_codec(settings)
    edge.poll_seconds = settings.console_poll_seconds


# --- reads ---------------------------------------------------------------------------------


def _live(rt: Runtime) -> dict[str, Any]:
    return {
        "stats": operations.stats(rt),
        "stock": operations.list_stock(rt, after_sku=None, limit=STOCK_SHOWN),
        "journal": operations.journal_tail(rt, limit=JOURNAL_SHOWN),
        "competing": rt.competing.status(),
    }


def _controls(rt: Runtime) -> dict[str, Any]:
    return {
        "faults": operations.current_faults(rt),
        "services": sorted(rt.services),
        "revoked": set(rt.revoked),
        "competing": rt.competing.status(),
        "rate_knobs": RATE_KNOBS,
        "int_knobs": INT_KNOBS,
        "descriptions": {
            name: field.description or name for name, field in Faults.model_fields.items()
        },
    }


# --- forms → the operations' typed inputs (a bad field: a 422 problem, nothing changes) ------


def _field(form: FormData, name: str) -> str:
    value = form.get(name)
    return value.strip() if isinstance(value, str) else ""


def _number(form: FormData, name: str, kind: type[int] | type[float]) -> int | float | None:
    text = _field(form, name)
    if not text:
        return None
    try:
        return kind(text)
    except ValueError:
        raise _invalid(name, f"{name}: {text!r} is not a number") from None


def _faults_update(form: FormData) -> FaultsUpdate:
    values: dict[str, Any] = {}
    for name in RATE_KNOBS:
        values[name] = _number(form, name, float)
    for name in INT_KNOBS:
        values[name] = _number(form, name, int)
    values["token_ttl_seconds"] = _number(form, "token_ttl_seconds", int)  # empty: configured
    sku, count = _field(form, "conflict_sku"), _number(form, "conflict_count", int)
    if sku:
        values["conflict_next"] = {sku: 1 if count is None else count}
    present = {k: v for k, v in values.items() if v is not None or k == "token_ttl_seconds"}
    return _validated(FaultsUpdate, present)


def _competing_config(form: FormData) -> CompetingWriterConfig:
    skus = [s.strip() for s in _field(form, "skus").split(",") if s.strip()]
    values: dict[str, Any] = {"skus": skus}
    for name, kind in (("rate_per_second", float), ("max_seconds", float)):
        number = _number(form, name, kind)
        if number is not None:
            values[name] = float(number)
    for name in ("min_delta", "max_delta"):
        number = _number(form, name, int)
        if number is not None:
            values[name] = number
    return _validated(CompetingWriterConfig, values)


M = TypeVar("M", FaultsUpdate, CompetingWriterConfig)


def _validated(model: type[M], values: Mapping[str, Any]) -> M:
    try:
        return model.model_validate(values)
    except ValidationError as exc:
        errors = validation_errors(list(exc.errors()))
        detail = "; ".join(f"{e['field'] or 'form'}: {e['message']}" for e in errors[:5])
        raise _invalid(errors[0]["field"] if errors else None, detail) from None


def _invalid(field: str | None, detail: str) -> ProblemError:
    return ProblemError(
        422, "validation-error", "Invalid request", detail + "; nothing changed.", field=field
    )
