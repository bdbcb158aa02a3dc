"""JSON request bodies as both services accept them: a JSON document as given, every object's
keys unique.

Duplicate keys are refused (400 `duplicate-key`, naming the key) rather than letting the last
one win: for an idempotency-keyed write, a proxy or a log reader that takes the first value
would see another change than the one applied. Media types: `application/json` and the
`application/*+json` family, except the ones whose body is not the document itself (a merge
patch, a JSON patch): a body without a type is refused (415), not guessed at.

The store's update route checks its body itself (`check_unique_keys` on the raw bytes it
already holds); apps that let FastAPI parse bodies install `UniqueKeysMiddleware`.
"""

import json
from typing import Any

from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from http_edge.problems import ProblemError, Problems

NOT_A_DOCUMENT = frozenset({"application/merge-patch+json", "application/json-patch+json"})
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})


class DuplicateKey(ValueError):
    def __init__(self, key: str) -> None:
        super().__init__(f"duplicate key {key!r}")
        self.key = key


def _unique_pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    document = dict(pairs)
    if len(document) != len(pairs):
        seen: set[str] = set()
        for key, _value in pairs:
            if key in seen:
                raise DuplicateKey(key)
            seen.add(key)
    return document


def check_unique_keys(raw: bytes) -> None:
    """Raise `DuplicateKey` if any object in the JSON text `raw` repeats a key. Text that is not
    JSON passes: the parser that follows answers it as malformed."""
    try:
        json.loads(raw, object_pairs_hook=_unique_pairs)
    except (ValueError, RecursionError) as exc:
        if isinstance(exc, DuplicateKey):
            raise


def duplicate_key_problem(exc: DuplicateKey) -> ProblemError:
    return ProblemError(
        400,
        "duplicate-key",
        "Duplicate key",
        f"The key {exc.key!r} appears twice in one object; send each key once.",
        field=exc.key,
    )


def media_type(content_type: str | None) -> str | None:
    if content_type is None:
        return None
    return content_type.split(";", 1)[0].strip().lower()


def is_json_document(content_type: str | None) -> bool:
    """`application/json` or `application/*+json`, but not a patch format; no type is not."""
    media = media_type(content_type)
    if media is None or media in NOT_A_DOCUMENT:
        return False
    return media == "application/json" or (
        media.startswith("application/") and media.endswith("+json")
    )


def unsupported_media_type() -> ProblemError:
    return ProblemError(
        415,
        "unsupported-media-type",
        "Unsupported media type",
        "Send the body as application/json.",
    )


class UniqueKeysMiddleware:
    """Refuses a JSON body with a repeated key before the app parses it (the body is read here,
    within the body limit outside, and handed on unchanged)."""

    def __init__(self, app: ASGIApp, *, problems: Problems) -> None:
        self.app = app
        self.problems = problems

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in _BODY_METHODS:
            await self.app(scope, receive, send)
            return
        content_type = None
        for name, value in scope["headers"]:
            if name == b"content-type":
                content_type = value.decode("latin-1")
                break
        media = media_type(content_type)
        if media is None or not (media == "application/json" or media.endswith("+json")):
            await self.app(scope, receive, send)
            return
        chunks: list[bytes] = []
        while True:
            message = await receive()
            if message["type"] != "http.request":  # gone: let the app find out
                replay: list[Message] = [message]
                break
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                replay = [{"type": "http.request", "body": b"".join(chunks), "more_body": False}]
                break
        if replay[0]["type"] == "http.request":
            try:
                check_unique_keys(replay[0]["body"])
            except DuplicateKey as exc:
                request = Request(scope, receive, send)
                response = self.problems.from_error(request, duplicate_key_problem(exc))
                await response(scope, receive, send)
                return

        async def replaying_receive() -> Message:
            if replay:
                return replay.pop()
            return await receive()

        await self.app(scope, replaying_receive, send)
