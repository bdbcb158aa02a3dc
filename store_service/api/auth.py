"""Optional API-key authentication for `/v1/local/*`, and its OpenAPI declaration.

Off while `STORE_API_KEYS` is empty (local development): then no dependency is installed at all,
so the hot path pays nothing and the OpenAPI declares no security (an API that declares auth it
does not enforce is a lie Schemathesis' `ignored_auth` check would rightly catch).

With keys set, every `/v1/local/*` route needs one, as `Authorization: Bearer <key>` or
`X-API-Key: <key>`. `STORE_API_ALLOW_ANONYMOUS_READS=true` lets GET requests through without
one (for dashboards on a trusted network); writes, the sync trigger, refresh and the operator
actions always need it. Keys are compared in constant time: the presented key is hashed, and its
digest compared with `hmac.compare_digest` against every configured key's digest (no early exit,
so the time says nothing about which key or how many characters matched).
"""

import hashlib
import hmac
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from fastapi import Request
from pydantic import SecretStr

from store_service.api.problems import PROBLEM_JSON, ProblemError

BEARER_SCHEME = "ApiKeyBearer"
HEADER_SCHEME = "ApiKeyHeader"
API_KEY_HEADER = "X-API-Key"
CHALLENGE = {"WWW-Authenticate": 'Bearer realm="store-service"'}
SAFE_METHODS = frozenset({"GET", "HEAD"})
SECURED_PREFIX = "/v1/local/"


def _digest(key: str) -> bytes:
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).digest()


class ApiKeys:
    """The configured keys as SHA-256 digests; the plain keys are not kept."""

    def __init__(self, keys: Iterable[SecretStr]) -> None:
        self._digests = [_digest(key.get_secret_value()) for key in keys]

    def __bool__(self) -> bool:
        return bool(self._digests)

    def accepts(self, presented: str) -> bool:
        candidate = _digest(presented)
        matched = False
        for digest in self._digests:  # every key, always: no early exit
            matched |= hmac.compare_digest(candidate, digest)
        return matched

    def match(self, presented: str) -> bytes | None:
        """The digest naming the key presented, when it is accepted (the console's sign-in)."""
        return _digest(presented) if self.accepts(presented) else None

    @property
    def digests(self) -> tuple[bytes, ...]:
        return tuple(self._digests)


def presented_key(request: Request) -> str | None:
    """The key from `Authorization: Bearer <key>` or `X-API-Key`, if either is present."""
    authorization = request.headers.get("authorization")
    if authorization:
        scheme, _, credentials = authorization.partition(" ")
        if scheme.lower() == "bearer" and credentials.strip():
            return credentials.strip()
    return request.headers.get(API_KEY_HEADER) or None


def _unauthorized(detail: str) -> ProblemError:
    return ProblemError(401, "unauthorized", "Unauthorized", detail, headers=CHALLENGE)


def api_key_dependency(
    keys: ApiKeys, *, allow_anonymous_reads: bool
) -> Callable[[Request], Awaitable[None]]:
    """A router dependency refusing requests without a valid key (async: no threadpool hop)."""

    async def require_api_key(request: Request) -> None:
        if allow_anonymous_reads and request.method in SAFE_METHODS:
            return
        key = presented_key(request)
        if key is None:
            raise _unauthorized(
                f"Send an API key as `Authorization: Bearer <key>` or `{API_KEY_HEADER}`."
            )
        if not keys.accepts(key):
            # Never echo the key: error bodies and logs must not carry secrets.
            raise _unauthorized("The API key is not valid.")

    return require_api_key


def declare_security(schema: dict[str, Any], *, allow_anonymous_reads: bool) -> None:
    """Add the security schemes, and a `security` requirement plus a 401 problem response to
    every `/v1/local/*` operation that needs a key."""
    components = schema.setdefault("components", {})
    components.setdefault("securitySchemes", {}).update(
        {
            BEARER_SCHEME: {
                "type": "http",
                "scheme": "bearer",
                "description": "An API key from STORE_API_KEYS as a bearer token.",
            },
            HEADER_SCHEME: {
                "type": "apiKey",
                "in": "header",
                "name": API_KEY_HEADER,
                "description": "An API key from STORE_API_KEYS.",
            },
        }
    )
    unauthorized = {
        "description": "Missing or invalid API key",
        "headers": {"WWW-Authenticate": {"description": "`Bearer`", "schema": {"type": "string"}}},
        "content": {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}},
    }
    for path, item in schema.get("paths", {}).items():
        if not path.startswith(SECURED_PREFIX):
            continue
        for method, operation in item.items():
            if allow_anonymous_reads and method.upper() in SAFE_METHODS:
                continue
            # Either scheme will do: two alternative requirement objects.
            operation["security"] = [{BEARER_SCHEME: []}, {HEADER_SCHEME: []}]
            operation.setdefault("responses", {})["401"] = unauthorized
