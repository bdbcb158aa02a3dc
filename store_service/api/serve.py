"""Run the store API: `python -m store_service.serve [--host H] [--port 8001]`.

Unlike the bare `uvicorn store_service.main:app` command, logging is configured before
uvicorn starts, so even its start-up lines are JSON through the one structlog configuration
(`log_config=None`: uvicorn installs no handlers of its own). Access logs stay off: request
rate, status and latency are in `/metrics`, and one line per request would tax the hot path.
"""

import argparse

import uvicorn

from http_edge.server import uvicorn_options
from store_service.config import get_settings
from store_service.logs import configure_logging

# The standard asyncio loop, not uvloop: under 64 busy connections uvloop served ~1% of requests
# 10-30x slower than the median (p99 300-800 ms, even for a trivial FastAPI route), asyncio
# kept p99 within ~1.5x of the median for ~7% less throughput (docs/performance.md).
EVENT_LOOP = "asyncio"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Serve the store API with JSON logs.")
    parser.add_argument("--host", default="127.0.0.1", help="bind address (0.0.0.0 in Docker)")
    parser.add_argument("--port", type=int, default=8001)
    args = parser.parse_args(argv)
    settings = get_settings()
    configure_logging(settings.log_level, json=settings.log_json)
    uvicorn.run(
        "store_service.main:app",
        host=args.host,
        port=args.port,
        log_config=None,
        access_log=False,
        proxy_headers=False,
        loop=EVENT_LOOP,
        **uvicorn_options(),  # h11, header limit, deadline (docs/api.md#security-and-limits)
    )


if __name__ == "__main__":
    main()
