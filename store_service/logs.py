"""One structlog configuration for API, worker and beat: JSON lines with bound context."""

import json as stdlib_json
import logging
import sys
import time
from contextvars import ContextVar
from typing import Any

import orjson
import structlog

request_id_var: ContextVar[str | None] = ContextVar("request_id", default=None)

_SECRET_KEYS = frozenset(
    {"secret", "service_secret", "password", "token", "access_token", "authorization"}
)


def _redact_secrets(
    _logger: object, _method: str, event_dict: structlog.typing.EventDict
) -> structlog.typing.EventDict:
    """Last line of defence: a field named like a secret never reaches the output."""
    for key in event_dict.keys() & _SECRET_KEYS:
        event_dict[key] = "[redacted]"
    return event_dict


# Datetimes and dataclasses go through `default` (structlog's repr fallback), as with `json`.
_ORJSON_OPTIONS = (
    orjson.OPT_NON_STR_KEYS | orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS
)


def _render_bytes(obj: Any, default: Any = None, **kwargs: Any) -> bytes:
    """JSONRenderer's serializer: orjson (several times faster than `json.dumps`), falling back
    to the standard library for what orjson refuses (e.g. integers beyond 64 bits). Bytes:
    what structlog's BytesLogger writes without re-encoding."""
    try:
        return orjson.dumps(obj, default=default, option=_ORJSON_OPTIONS)
    except TypeError:
        return stdlib_json.dumps(obj, default=default, **kwargs).encode()


def _dumps(obj: Any, default: Any = None, **kwargs: Any) -> str:
    """The same as text, for the stdlib handler and a stdout without a byte buffer."""
    return _render_bytes(obj, default, **kwargs).decode()


def _add_request_id(
    _logger: object, _method: str, event_dict: structlog.typing.EventDict
) -> structlog.typing.EventDict:
    """The id of the HTTP request or Celery task being served, read from `request_id_var`.

    The middleware and the worker set that variable anyway (the update path and the central
    client read it); binding the same id into structlog's context as well cost two more
    context writes per request, and every log line then searched the whole context for it.
    """
    request_id = request_id_var.get()
    if request_id is not None:
        event_dict.setdefault("request_id", request_id)
    return event_dict


class _UtcTimestamper:
    """ISO 8601 UTC timestamps with microseconds ("2026-11-25T22:18:49.123456Z").

    structlog's `TimeStamper(fmt="iso", utc=True)` builds and formats a datetime for every
    line; here the date and time of day are formatted once per second and only the fraction
    per line (measured: about half the cost). The cache is one tuple, replaced whole, so
    threads logging at once never pair one second's fraction with another second's text.
    """

    __slots__ = ("_cached",)

    def __init__(self) -> None:
        self._cached: tuple[int, str] = (-1, "")

    def __call__(
        self, _logger: object, _method: str, event_dict: structlog.typing.EventDict
    ) -> structlog.typing.EventDict:
        now = time.time()
        second = int(now)
        cached = self._cached
        if cached[0] != second:
            cached = (second, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second)))
            self._cached = cached
        event_dict["timestamp"] = f"{cached[1]}.{int((now - second) * 1_000_000):06d}Z"
        return event_dict


def _add_logger_name(
    logger: object, _method: str, event_dict: structlog.typing.EventDict
) -> structlog.typing.EventDict:
    """The logger's name, for structlog's own loggers and stdlib records alike."""
    record = event_dict.get("_record")
    name = record.name if record is not None else getattr(logger, "name", None)
    if name is not None:
        event_dict["logger"] = name
    return event_dict


class _NamedWriteLogger(structlog.WriteLogger):
    """A WriteLogger that knows its name (structlog's BytesLogger does; this one does not)."""

    def __init__(self, name: str | None) -> None:
        super().__init__(sys.stdout)
        self.name = name


class _NamedWriteLoggerFactory:
    def __call__(self, *args: Any) -> _NamedWriteLogger:
        return _NamedWriteLogger(args[0] if args else None)


def _shared_processors() -> list[structlog.typing.Processor]:
    return [
        structlog.contextvars.merge_contextvars,
        _add_request_id,
        structlog.stdlib.add_log_level,
        _add_logger_name,
        _UtcTimestamper(),
        _redact_secrets,
    ]


def signal_safe_line(event: str, *, logger: str, level: str = "info") -> bytes:
    """One JSON log line built without the logging machinery (no lock is taken: safe inside a
    signal handler), in the shape of every other line."""
    now = time.time()
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now))
    fraction = int((now - int(now)) * 1_000_000)
    line = {
        "event": event,
        "level": level,
        "logger": logger,
        "timestamp": f"{stamp}.{fraction:06d}Z",
    }
    return orjson.dumps(line) + b"\n"


def configure_logging(level: str = "INFO", *, json: bool = True) -> None:
    """Route structlog and the standard library (uvicorn, celery, alembic) through one renderer.

    Our own events go the short way: a level-filtering structlog logger renders the line and
    writes it (one orjson call, no `logging.LogRecord`, no handler chain: measured at about
    half the cost per line of the stdlib route, and the update path logs one line per request).
    Other libraries' stdlib records go through a `ProcessorFormatter` with the same processors,
    so every line on stdout has one shape.
    """
    numeric_level = logging.getLevelName(level.upper())
    shared = _shared_processors()
    renderer: structlog.typing.Processor = (
        structlog.processors.JSONRenderer(serializer=_dumps)
        if json
        else structlog.dev.ConsoleRenderer(colors=False)
    )
    native_renderer = renderer
    logger_factory: _NamedWriteLoggerFactory | structlog.BytesLoggerFactory
    logger_factory = _NamedWriteLoggerFactory()
    if json and hasattr(sys.stdout, "buffer"):
        native_renderer = structlog.processors.JSONRenderer(serializer=_render_bytes)
        logger_factory = structlog.BytesLoggerFactory(sys.stdout.buffer)
    structlog.configure(
        processors=[*shared, structlog.processors.format_exc_info, native_renderer],
        logger_factory=logger_factory,
        wrapper_class=structlog.make_filtering_bound_logger(numeric_level),
        cache_logger_on_first_use=True,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            renderer,
        ],
    )
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(numeric_level)
    # Python warnings (e.g. Celery's SecurityWarning) become log lines too, not raw stderr text.
    logging.captureWarnings(True)
    for name in ("uvicorn", "uvicorn.error", "celery", "alembic"):
        logger = logging.getLogger(name)
        logger.handlers[:] = []
        logger.propagate = True
    # No access log: request rate, status and latency are in /metrics. uvicorn decides per
    # connection from `hasHandlers()`, which sees the root handler through propagation, so the
    # logger must not propagate (its `--no-access-log` is undone by a later configuration).
    access = logging.getLogger("uvicorn.access")
    access.handlers[:] = []
    access.propagate = False
