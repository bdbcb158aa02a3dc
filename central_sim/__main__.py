"""`python -m central_sim [--host H] [--port P] [--env-file F]` (console script `central-sim`):
serve the simulator on CENTRAL_SIM_HOST:CENTRAL_SIM_PORT (8000), the options winning over the
settings; `--env-file .env.example` runs it on the development values.

Logging is configured before uvicorn starts (`log_config=None`: uvicorn installs no handlers
of its own), so its start-up lines are JSON like every other line.
"""

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

import structlog
import uvicorn
from dotenv import dotenv_values

from central_sim.config import ConfigError, load_settings
from central_sim.logs import configure_logging
from http_edge.server import uvicorn_options

log = structlog.get_logger("central_sim")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Serve central_sim with JSON logs.")
    parser.add_argument("--host", help="bind address (default CENTRAL_SIM_HOST, 127.0.0.1)")
    parser.add_argument("--port", type=int, help="port (default CENTRAL_SIM_PORT, 8000)")
    parser.add_argument(
        "--env-file", type=Path, help="read settings from this file instead of .env"
    )
    args = parser.parse_args(argv)
    if args.env_file is not None:
        if not args.env_file.is_file():
            parser.error(f"no such env file: {args.env_file}")
        # Into the environment (what is already set wins): the app reads its settings again
        # when uvicorn imports it.
        for name, value in dotenv_values(args.env_file).items():
            if value is not None:
                os.environ.setdefault(name, value)
    try:
        settings = load_settings()
        settings.service_secrets()
    except ConfigError as exc:
        configure_logging()
        log.error("central_sim_config_invalid", error=str(exc))
        return 2
    configure_logging(settings.log_level)
    uvicorn.run(
        "central_sim.main:app",
        host=args.host or settings.host,
        port=args.port or settings.port,
        log_config=None,
        access_log=False,
        **uvicorn_options(),  # the edge protocol and limits (docs/api.md#security-and-limits)
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
