"""The chaos suite's CI-sized run settings, one place for every scenario test."""

from pathlib import Path
from typing import Any

from chaos.runner import RunConfig


def ci_config(
    ops: int, broker_url: str, toxiproxy_url: str, keep_dir: Path, **more: Any
) -> RunConfig:
    """Small and bounded: 10 SKUs, 4 clients, 90 s to converge; reports kept in `keep_dir`."""
    return RunConfig(
        ops=ops,
        skus=10,
        concurrency=4,
        converge_timeout=90.0,
        broker_url=broker_url,
        toxiproxy_url=toxiproxy_url,
        keep_dir=keep_dir,
        **more,
    )
