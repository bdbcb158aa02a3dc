"""Request dependencies: the runtime, bearer-token auth, admin auth, and per-request faults."""

import asyncio
from dataclasses import dataclass
from typing import Annotated

import structlog
from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from central_sim.auth import TokenError, same_secret, verify_token
from central_sim.problems import ProblemError
from central_sim.runtime import Runtime

log = structlog.get_logger("central_sim.auth")
BEARER_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="central-sim"'}
_service_bearer = HTTPBearer(auto_error=False, scheme_name="ServiceToken")
_admin_bearer = HTTPBearer(auto_error=False, scheme_name="AdminToken")


def get_runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]


def _unauthorized(detail: str, slug: str = "invalid-token") -> ProblemError:
    return ProblemError(401, slug, "Unauthorized", detail, headers=BEARER_CHALLENGE)


def authenticated_service(
    rt: RuntimeDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_service_bearer)],
) -> str:
    """The service named by a valid bearer token (401 problem otherwise)."""
    if credentials is None or credentials.scheme.lower() != "bearer":
        rt.metrics.auth_failures.labels("missing_token").inc()
        raise _unauthorized("an Authorization: Bearer <token> header is required")
    try:
        claims = verify_token(
            credentials.credentials, key=rt.signing_key, policy=rt.token_policy, now=rt.clock()
        )
    except TokenError as exc:
        rt.metrics.auth_failures.labels("invalid_token").inc()
        log.info("token_refused", reason=str(exc))
        raise _unauthorized(str(exc)) from exc
    service = str(claims["sub"])
    if not rt.active(service):
        rt.metrics.auth_failures.labels("unknown_service").inc()
        raise _unauthorized("token subject is not a known service or was revoked")
    return service


ServiceDep = Annotated[str, Depends(authenticated_service)]


def require_admin(
    rt: RuntimeDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_admin_bearer)],
) -> None:
    presented = credentials.credentials if credentials is not None else ""
    if not presented or not same_secret(rt.settings.admin_token.get_secret_value(), presented):
        rt.metrics.auth_failures.labels("admin").inc()
        raise _unauthorized("a valid admin bearer token is required", slug="invalid-admin-token")


@dataclass(frozen=True)
class Caller:
    """A /v1 caller after injected faults: who it is, and whether to lose the response."""

    service: str
    drop_response: bool


async def _request_faults(rt: Runtime, service: str) -> None:
    """Injected auth failure, latency, throttling and errors, in that order."""
    faults = rt.faults
    knobs = faults.faults
    if faults.roll(knobs.auth_failure_rate):
        rt.metrics.faults.labels("auth_failure").inc()
        raise _unauthorized("token refused (injected auth failure)")
    delay = faults.latency_seconds()
    if delay > 0:
        rt.metrics.faults.labels("latency").inc()
        await asyncio.sleep(delay)
    if faults.roll(knobs.throttle_rate):
        rt.metrics.faults.labels("throttle").inc()
        raise ProblemError(
            429,
            "too-many-requests",
            "Too many requests",
            "throttled (injected); retry after the Retry-After delay",
            headers={"Retry-After": str(knobs.throttle_retry_after_seconds)},
        )
    if faults.roll(knobs.error_rate):
        rt.metrics.faults.labels("error").inc()
        raise ProblemError(
            503, "service-unavailable", "Service unavailable", "injected error; nothing applied"
        )


async def reader(rt: RuntimeDep, service: ServiceDep) -> str:
    await _request_faults(rt, service)
    return service


async def writer(rt: RuntimeDep, service: ServiceDep) -> Caller:
    await _request_faults(rt, service)
    drop = rt.faults.roll(rt.faults.faults.drop_response_rate)
    return Caller(service=service, drop_response=drop)


ReaderDep = Annotated[str, Depends(reader)]
WriterDep = Annotated[Caller, Depends(writer)]
AdminDep = Depends(require_admin)
