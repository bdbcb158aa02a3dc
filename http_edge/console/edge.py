"""`ConsoleEdge`: what an app's HTML console shares with the other's (see the package doc).

Every console response, pages, fragments, redirects, static files and refusals alike, leaves
through the console's route class, which adds the security headers (`SECURITY_HEADERS`: a
strict Content-Security-Policy with no inline script or style, `X-Frame-Options: DENY`, …) and
turns any exception into the app's problem document: an HTML page for a browser's navigation,
`application/problem+json` for htmx and other clients (console.js shows its title and detail).
No middleware: the rest of the app pays nothing for the console.
"""

import json
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Query, Request
from fastapi.routing import APIRoute
from jinja2 import ChoiceLoader, Environment, PackageLoader, StrictUndefined, select_autoescape
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.staticfiles import StaticFiles

from http_edge.console.session import CSRF_FIELD, Session, SessionCodec, csrf_matches
from http_edge.problems import ProblemError, Problems

STATIC_DIR = Path(__file__).resolve().parent / "static"
CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self'",
        "connect-src 'self'",  # htmx's requests
        "form-action 'self'",
        "frame-ancestors 'none'",
        "base-uri 'none'",
    ]
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cross-Origin-Opener-Policy": "same-origin",
}
NO_STORE = "no-store"  # pages hold business data: never kept in caches


@dataclass(frozen=True, slots=True)
class Visitor:
    """Who is looking, and what they may do: read the pages, act (POST) on them."""

    session: Session
    fresh: bool  # the session was made for this request: the response must set the cookie
    auth_on: bool  # credentials are configured: signing in means something
    can_read: bool
    can_act: bool


@dataclass(frozen=True)
class Access:
    """An app's rules: whether credentials are configured, whether reads are open without a
    session, and how a credential and a session's principal are checked."""

    auth_on: bool
    anonymous_reads: bool
    # The credential presented at sign-in → the bytes naming it (None: refused).
    check_credential: Callable[[str], bytes | None]
    # A session's principal still names a configured credential (rotation ends sessions).
    principal_valid: Callable[[str], bool]
    credential_label: str  # "API key", "admin token"


class LoginRequired(Exception):
    """A page needs a session: a browser is sent to the sign-in form, htmx gets a 401."""


def wants_html(request: Request) -> bool:
    """A browser navigating (not htmx, not an API client): refusals are shown as a page."""
    return request.headers.get("hx-request") != "true" and "text/html" in request.headers.get(
        "accept", ""
    )


def is_htmx(request: Request) -> bool:
    return request.headers.get("hx-request") == "true"


def utc(ts: float | None) -> str:
    if ts is None:
        return "—"
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def iso(ts: float | None) -> str:
    return "" if ts is None else datetime.fromtimestamp(ts, UTC).isoformat(timespec="seconds")


def duration(seconds: float | None) -> str:
    """12 s, 4 min 2 s, 3 h 5 min, 2 d 1 h."""
    if seconds is None:
        return "—"
    s = max(0, int(seconds))
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60} s"
    if s < 86400:
        return f"{s // 3600} h {s % 3600 // 60} min"
    return f"{s // 86400} d {s % 86400 // 3600} h"


class ConsoleEdge:
    """One app's console: templates, session, access rules, the router with its route class."""

    def __init__(
        self,
        *,
        prefix: str,
        title: str,
        templates_package: str,
        problems: Problems,
        codec: SessionCodec,
        access: Access,
        poll_seconds: float,
    ) -> None:
        self.prefix = prefix
        self.title = title
        self.problems = problems
        self.codec = codec
        self.access = access
        self.poll_seconds = poll_seconds
        self.env = Environment(
            loader=ChoiceLoader(
                [
                    PackageLoader(templates_package, "templates"),
                    PackageLoader("http_edge.console", "templates"),
                ]
            ),
            # Every template is HTML: every value is escaped unless marked safe (none is).
            autoescape=select_autoescape(default=True, default_for_string=True),
            undefined=StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self.env.filters.update(utc=utc, iso=iso, duration=duration, urlpart=_urlpart)
        self.env.globals.update(prefix=prefix, console_title=title)
        self._static = StaticFiles(directory=STATIC_DIR)

    # --- who is looking ---------------------------------------------------------------------

    def visitor(self, request: Request) -> Visitor:
        session = self.codec.load(request)
        fresh = session is None
        if session is None or (
            session.principal is not None and not self.access.principal_valid(session.principal)
        ):
            fresh, session = True, self.codec.new(None)
        if not self.access.auth_on:
            return Visitor(session, fresh, auth_on=False, can_read=True, can_act=True)
        signed_in = session.signed_in
        return Visitor(
            session,
            fresh,
            auth_on=True,
            can_read=signed_in or self.access.anonymous_reads,
            can_act=signed_in,
        )

    async def reader(self, request: Request) -> Visitor:
        """Dependency of every page and fragment: a visitor who may read."""
        visitor = self.visitor(request)
        if not visitor.can_read:
            raise LoginRequired
        return visitor

    async def actor(self, request: Request) -> Visitor:
        """Dependency of every action (POST): the form's CSRF token first, then the right to
        act; either refusal changes nothing."""
        visitor = self.visitor(request)
        form = await request.form()
        _require_csrf(visitor, form.get(CSRF_FIELD), "Reload the page and try again.")
        if not visitor.can_act:
            raise _login_problem(self.access.credential_label)
        return visitor

    # --- answers ----------------------------------------------------------------------------

    def page(
        self,
        request: Request,
        template: str,
        visitor: Visitor,
        *,
        status: int = 200,
        headers: Mapping[str, str] | None = None,
        **context: Any,
    ) -> HTMLResponse:
        html = self.env.get_template(template).render(
            request_path=request.url.path,
            visitor=visitor,
            csrf=visitor.session.csrf,
            csrf_field=CSRF_FIELD,
            poll_ms=int(self.poll_seconds * 1000),
            credential_label=self.access.credential_label,
            **context,
        )
        response = HTMLResponse(html, status_code=status, headers=headers)
        if visitor.fresh:
            self.codec.store(response, visitor.session, request)
        return response

    def redirect(self, request: Request, visitor: Visitor | None, to: str) -> RedirectResponse:
        response = RedirectResponse(to, status_code=303)
        if visitor is not None and visitor.fresh:
            self.codec.store(response, visitor.session, request)
        return response

    def error(self, request: Request, exc: Exception) -> Response:
        """A refusal as a problem document: a page for a navigation, JSON otherwise."""
        if isinstance(exc, LoginRequired):
            if wants_html(request):
                target = f"{self.prefix}/login?next={quote(request.url.path, safe='/')}"
                return self.redirect(request, None, target)
            exc = _login_problem(self.access.credential_label)
        problem = self.problems.answer(request, exc)
        if not wants_html(request):
            return problem
        body = _json_body(problem)
        visitor = self.visitor(request)
        return self.page(
            request,
            "problem.html",
            visitor,
            status=problem.status_code,
            headers={k: v for k, v in problem.headers.items() if k.lower() == "www-authenticate"},
            problem=body,
        )

    # --- the router -------------------------------------------------------------------------

    def router(self) -> APIRouter:
        """The console's router (not in OpenAPI), with its static files at `/static/…`."""
        edge = self

        class ConsoleRoute(APIRoute):
            def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
                handler = super().get_route_handler()

                async def console_handler(request: Request) -> Response:
                    try:
                        response = await handler(request)
                    except Exception as exc:
                        response = edge.error(request, exc)
                    return secure(response)

                return console_handler

        router = APIRouter(prefix=self.prefix, route_class=ConsoleRoute, include_in_schema=False)

        @router.get("/login")
        async def login_form(
            request: Request, target: Annotated[str, Query(alias="next", max_length=2048)] = ""
        ) -> Response:
            visitor = self.visitor(request)
            if not visitor.auth_on or visitor.can_act:
                return self.redirect(request, visitor, self._next(target))
            return self.page(request, "login.html", visitor, next=self._next(target), problem=None)

        @router.post("/login")
        async def login(request: Request) -> Response:
            visitor = self.visitor(request)
            form = await request.form()
            token, credential, target = (form.get(k) for k in (CSRF_FIELD, "credential", "next"))
            target = self._next(target if isinstance(target, str) else "")
            _require_csrf(visitor, token, "Reload the sign-in page and try again.")
            material = (
                self.access.check_credential(credential)
                if isinstance(credential, str) and credential
                else None
            )
            if material is None:
                problem = {
                    "type": self.problems.base + "invalid-console-credentials",
                    "title": "Sign-in refused",
                    "status": 401,
                    "detail": f"That {self.access.credential_label} is not valid.",
                }
                # The form again, with the refusal: the credential is never echoed.
                return self.page(
                    request, "login.html", visitor, status=401, next=target, problem=problem
                )
            signed_in = Visitor(
                self.codec.new(self.codec.principal_id(material)),
                fresh=True,  # a new session (and CSRF token) at every sign-in
                auth_on=True,
                can_read=True,
                can_act=True,
            )
            return self.redirect(request, signed_in, target)

        @router.post("/logout")
        async def logout(
            request: Request, visitor: Annotated[Visitor, Depends(self.actor)]
        ) -> Response:
            response = RedirectResponse(
                f"{self.prefix}/login" if visitor.auth_on else self.prefix, status_code=303
            )
            self.codec.clear(response, request)
            return response

        @router.api_route("/static/{path:path}", methods=["GET", "HEAD"])
        async def static(path: str, request: Request) -> Response:
            response = await self._static.get_response(path, request.scope)
            response.headers["Cache-Control"] = "no-cache"  # revalidate (ETag): small files
            return response

        return router

    def _next(self, target: str) -> str:
        """Where to go after signing in: a console path, never another site."""
        if target.startswith(self.prefix) and not target.startswith("//") and "\\" not in target:
            return target
        return self.prefix


def secure(response: Response) -> Response:
    for name, value in SECURITY_HEADERS.items():
        response.headers[name] = value
    response.headers.setdefault("Cache-Control", NO_STORE)
    return response


def _require_csrf(visitor: Visitor, token: object, advice: str) -> None:
    """The form's token is the session's (a session made for this very request has none)."""
    session = None if visitor.fresh else visitor.session
    if not csrf_matches(session, token if isinstance(token, str) else None):
        raise ProblemError(
            403,
            "csrf-token-invalid",
            "CSRF token missing or invalid",
            f"{advice} Nothing was changed.",
        )


def _login_problem(credential_label: str) -> ProblemError:
    return ProblemError(
        401,
        "console-sign-in-required",
        "Sign in required",
        f"Sign in to the console with an {credential_label} first; nothing was changed.",
    )


def _json_body(response: JSONResponse) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(bytes(response.body))
    return body


def _urlpart(value: object) -> str:
    """A value as one URL path segment (every reserved character escaped)."""
    return quote(str(value), safe="")
