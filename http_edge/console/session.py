"""The console's session: a signed cookie holding who signed in and the CSRF token.

Signed and timestamped by itsdangerous (`URLSafeTimedSerializer`, HMAC-SHA1 over a key derived
from the secret and a per-app salt), so the server keeps no session table. Chosen over
Starlette's `SessionMiddleware` because that middleware would wrap every request of the app
(the store's update path included) and re-signs the cookie on every response, a sliding
expiry that a console polling every few seconds would extend for ever; here the cookie is
written at sign-in only and expires a fixed time after it (`max_age`, checked on every read).

The cookie is `HttpOnly`, `SameSite=Strict`, scoped to the console's path, and `Secure` when
the request came over HTTPS. Its content is readable (base64 JSON): it holds a random CSRF token
and an opaque principal (an HMAC under the secret, never a key or a digest of one).

CSRF: every form carries the session's token (synchronizer token); a POST whose token does not
match, or that has no session, changes nothing. Anonymous visitors get a session too (no
principal), so the sign-in form itself is protected.
"""

import hashlib
import hmac
import secrets
from dataclasses import dataclass

from itsdangerous import BadData, URLSafeTimedSerializer
from starlette.requests import Request
from starlette.responses import Response

CSRF_FIELD = "csrf_token"


@dataclass(frozen=True, slots=True)
class Session:
    csrf: str
    principal: str | None  # None: anonymous (no key or token presented yet)

    @property
    def signed_in(self) -> bool:
        return self.principal is not None


class SessionCodec:
    """Reads, writes and clears one app's console session cookie."""

    def __init__(
        self, secret: str, *, salt: str, cookie: str, path: str, max_age_seconds: int
    ) -> None:
        # No configured secret: a random one per process (sessions end with a restart).
        self._secret = secret or secrets.token_urlsafe(32)
        self._serializer = URLSafeTimedSerializer(self._secret, salt=salt)
        self.cookie = cookie
        self.path = path
        self.max_age = max_age_seconds

    def principal_id(self, material: bytes) -> str:
        """An opaque, stable name for a credential: HMAC-SHA256 under the session secret."""
        return hmac.new(self._secret.encode(), material, hashlib.sha256).hexdigest()[:32]

    def new(self, principal: str | None) -> Session:
        return Session(csrf=secrets.token_urlsafe(32), principal=principal)

    def load(self, request: Request) -> Session | None:
        """The request's session; None when absent, tampered with, expired or malformed."""
        raw = request.cookies.get(self.cookie)
        if not raw:
            return None
        try:
            data = self._serializer.loads(raw, max_age=self.max_age)
        except BadData:  # bad signature, expired, not base64/JSON
            return None
        if not isinstance(data, dict):
            return None
        csrf, principal = data.get("c"), data.get("p")
        if not isinstance(csrf, str) or not (principal is None or isinstance(principal, str)):
            return None
        return Session(csrf=csrf, principal=principal)

    def store(self, response: Response, session: Session, request: Request) -> None:
        response.set_cookie(
            self.cookie,
            self._serializer.dumps({"c": session.csrf, "p": session.principal}),
            max_age=self.max_age,
            path=self.path,
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
        )

    def clear(self, response: Response, request: Request) -> None:
        response.delete_cookie(
            self.cookie,
            path=self.path,
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
        )


def csrf_matches(session: Session | None, presented: str | None) -> bool:
    """The form's token is the session's (constant time); no session, no match."""
    if session is None or not presented:
        return False
    return hmac.compare_digest(session.csrf.encode(), presented.encode("utf-8", "surrogatepass"))
