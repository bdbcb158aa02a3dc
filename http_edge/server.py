"""How both services are served: uvicorn with the edge protocol and its limits.

    python -m http_edge.server store_service.main:app --host 127.0.0.1 --port 8001

`uvicorn_options()` is what `store_service.serve` and `python -m central_sim` pass to
`uvicorn.run`; this command is the same server for any ASGI app path (the harness starts both
services with it). The limits and what each refusal looks like: docs/api.md#security-and-limits.
"""

import argparse
from typing import Any

import uvicorn

from http_edge.protocol import MAX_HEADER_BYTES, REQUEST_TIMEOUT_SECONDS, edge_protocol

KEEP_ALIVE_SECONDS = 5
"""An idle kept-alive connection is closed after this long (uvicorn's default)."""


def uvicorn_options(
    *,
    max_header_bytes: int = MAX_HEADER_BYTES,
    request_timeout: float = REQUEST_TIMEOUT_SECONDS,
) -> dict[str, Any]:
    """`uvicorn.run` keywords: the edge protocol, the header limit and the timeouts."""
    return {
        "http": edge_protocol(request_timeout=request_timeout),
        "h11_max_incomplete_event_size": max_header_bytes,
        "timeout_keep_alive": KEEP_ALIVE_SECONDS,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Serve an ASGI app with the edge protocol.")
    parser.add_argument("app", help="module:attribute (module:function with --factory)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--factory", action="store_true", help="APP is a function making it")
    parser.add_argument("--loop", default="auto")
    parser.add_argument("--no-access-log", action="store_true")
    parser.add_argument("--max-header-bytes", type=int, default=MAX_HEADER_BYTES)
    parser.add_argument("--request-timeout", type=float, default=REQUEST_TIMEOUT_SECONDS)
    args = parser.parse_args(argv)
    uvicorn.run(
        args.app,
        host=args.host,
        port=args.port,
        factory=args.factory,
        loop=args.loop,
        access_log=not args.no_access_log,
        **uvicorn_options(
            max_header_bytes=args.max_header_bytes, request_timeout=args.request_timeout
        ),
    )


if __name__ == "__main__":
    main()
