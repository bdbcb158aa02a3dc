"""Access tokens (HS256 JWTs via pyjwt) and constant-time credential checks. No HTTP here."""

import hmac
import secrets
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import jwt

ALGORITHM = "HS256"
REQUIRED_CLAIMS = ["sub", "aud", "iss", "iat", "exp", "jti"]
# Compared against when the service name is unknown, so the answer takes the same time.
_DUMMY_SECRET = secrets.token_urlsafe(32)


class TokenError(Exception):
    """A token that must be refused; the message is safe to show the caller."""


@dataclass(frozen=True)
class TokenPolicy:
    audience: str
    issuer: str


def issue_token(
    *, service: str, key: str, policy: TokenPolicy, ttl_seconds: int, now: float
) -> str:
    issued = int(now)
    claims = {
        "sub": service,
        "aud": policy.audience,
        "iss": policy.issuer,
        "iat": issued,
        "exp": issued + ttl_seconds,
        "jti": str(uuid.uuid4()),
    }
    return jwt.encode(claims, key, algorithm=ALGORITHM)


def verify_token(token: str, *, key: str, policy: TokenPolicy, now: float) -> dict[str, Any]:
    """Claims of a valid token at time `now`; TokenError for anything else. The algorithm is
    pinned, so `alg: none` and algorithm-confusion tokens are refused before any signature
    check. Expiry is judged against `now` (the simulator's clock), not PyJWT's own."""
    try:
        claims: dict[str, Any] = jwt.decode(
            token,
            key,
            algorithms=[ALGORITHM],
            audience=policy.audience,
            issuer=policy.issuer,
            options={
                "require": REQUIRED_CLAIMS,
                "verify_signature": True,
                "verify_exp": False,
                "verify_iat": False,
            },
        )
    except jwt.InvalidAudienceError as exc:
        raise TokenError("token audience is not accepted") from exc
    except jwt.InvalidIssuerError as exc:
        raise TokenError("token issuer is not accepted") from exc
    except jwt.InvalidAlgorithmError as exc:
        raise TokenError("token algorithm is not accepted") from exc
    except jwt.InvalidSignatureError as exc:
        raise TokenError("token signature is invalid") from exc
    except jwt.MissingRequiredClaimError as exc:
        raise TokenError(f"token lacks the {exc.claim!r} claim") from exc
    except jwt.InvalidTokenError as exc:
        raise TokenError("token is malformed or invalid") from exc
    if not isinstance(claims["exp"], int) or claims["exp"] <= now:
        raise TokenError("token expired")
    return claims


def credentials_valid(services: Mapping[str, str], name: str, secret: str) -> bool:
    """Constant-time check of a service's secret (the same work for unknown names)."""
    expected = services.get(name)
    matches = hmac.compare_digest(
        (expected or _DUMMY_SECRET).encode(), secret.encode("utf-8", "surrogatepass")
    )
    return expected is not None and matches


def same_secret(expected: str, presented: str) -> bool:
    return hmac.compare_digest(expected.encode(), presented.encode("utf-8", "surrogatepass"))


def new_signing_key() -> str:
    return secrets.token_urlsafe(48)
