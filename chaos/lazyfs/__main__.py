"""`python -m chaos.lazyfs mount --backing DIR --mount DIR --control SOCKET [--debug]`

Serves LazyFS in the foreground until unmounted (`fusermount3 -u DIR`, or SIGTERM/SIGINT,
both of which sync everything first; SIGKILL is a cut). The control socket answers JSON lines
(`{"cmd": "ping" | "stats" | "cut"}`). Exits 0 after an unmount, 1 when the mount is refused,
2 on bad arguments or a backing directory LazyFS cannot hold.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from chaos.lazyfs.control import ControlServer, LazyFSError
from chaos.lazyfs.model import LazyFS


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m chaos.lazyfs", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    mount = commands.add_parser("mount", help="serve a LazyFS mount in the foreground")
    mount.add_argument("--backing", type=Path, required=True, help="the directory it keeps")
    mount.add_argument("--mount", type=Path, required=True, help="an empty mount point")
    mount.add_argument("--control", type=Path, required=True, help="the control socket's path")
    mount.add_argument("--debug", action="store_true", help="libfuse's request trace")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="lazyfs %(levelname)s %(message)s")
    log = logging.getLogger("lazyfs")
    backing: Path = args.backing.resolve()
    mountpoint: Path = args.mount.resolve()
    if not mountpoint.is_dir():
        log.error("mount point %s is not a directory", mountpoint)
        return 2
    if mountpoint == backing or backing.is_relative_to(mountpoint):
        log.error("the backing directory %s may not be inside the mount point", backing)
        return 2
    try:
        model = LazyFS(backing)
        server = ControlServer(args.control, model)
    except (OSError, LazyFSError) as exc:
        log.error("%s", exc)
        return 2
    try:
        # Imported here: loading libfuse fails on a machine without it, and --help should not.
        from chaos.lazyfs.fuse_ops import run_fuse
    except OSError as exc:
        log.error("cannot load libfuse3: %s", exc)
        server.close()
        return 1
    server.start()
    log.info("serving %s at %s, control %s", backing, mountpoint, args.control)
    try:
        run_fuse(model, mountpoint, debug=args.debug)
    except RuntimeError as exc:
        log.error("mount refused: %s", exc)
        return 1
    finally:
        server.close()
    log.info("unmounted %s", mountpoint)
    return 0


if __name__ == "__main__":
    sys.exit(main())
