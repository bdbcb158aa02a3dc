"""`python -m central_sim`: serve the simulator on CENTRAL_SIM_HOST:CENTRAL_SIM_PORT (8000)."""

import sys

import uvicorn

from central_sim.config import ConfigError, load_settings
from http_edge.server import uvicorn_options


def main() -> int:
    try:
        settings = load_settings()
        settings.service_secrets()
    except ConfigError as exc:
        print(f"central_sim: {exc}", file=sys.stderr)
        return 2
    uvicorn.run(
        "central_sim.main:app",
        host=settings.host,
        port=settings.port,
        access_log=False,
        **uvicorn_options(),  # the edge protocol and limits (docs/security.md)
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
