#!/usr/bin/env python3
"""`python bin/worker_healthcheck.py`: the container healthcheck of `store_service.sync.healthcheck`
(installed as the console script `store-worker-healthcheck`)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from store_service.sync.healthcheck import main

if __name__ == "__main__":
    sys.exit(main())
