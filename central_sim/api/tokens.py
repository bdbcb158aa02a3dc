"""`POST /auth/token`: service credentials in, a short-lived bearer JWT out."""

import structlog
from fastapi import APIRouter

from central_sim.api.deps import BEARER_CHALLENGE, RuntimeDep
from central_sim.auth import credentials_valid, issue_token
from central_sim.problems import ProblemError, problem_responses
from central_sim.schemas import TokenRequest, TokenResponse

router = APIRouter(tags=["auth"])
log = structlog.get_logger("central_sim.auth")


@router.post(
    "/auth/token",
    response_model=TokenResponse,
    responses=problem_responses(401, 422),
    summary="Exchange service credentials for a bearer token",
)
async def issue(body: TokenRequest, rt: RuntimeDep) -> TokenResponse:
    valid = credentials_valid(rt.services, body.service_name, body.service_secret)
    if not valid or body.service_name in rt.revoked:  # one answer: revocation is not told apart
        rt.metrics.auth_failures.labels("credentials").inc()
        log.info("token_refused", reason="bad credentials")  # never the name/secret pair
        raise ProblemError(
            401,
            "invalid-credentials",
            "Invalid credentials",
            "unknown service, wrong secret or revoked identity",
            headers=BEARER_CHALLENGE,
        )
    ttl = rt.faults.faults.token_ttl_seconds or rt.settings.token_ttl_seconds
    token = issue_token(
        service=body.service_name,
        key=rt.signing_key,
        policy=rt.token_policy,
        ttl_seconds=ttl,
        now=rt.clock(),
    )
    rt.metrics.tokens.labels(body.service_name).inc()
    log.info("token_issued", service=body.service_name, expires_in=ttl)
    return TokenResponse(access_token=token, expires_in=ttl)
