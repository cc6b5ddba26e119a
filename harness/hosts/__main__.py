"""`python -m harness.hosts cleanup`: remove leftovers of crashed harness runs."""

from __future__ import annotations

import argparse
import sys

from .base import HostError
from .cleanup import cleanup


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m harness.hosts",
                                     description="Manage the harness's virtual hosts.")
    commands = parser.add_subparsers(dest="command", required=True)
    clean = commands.add_parser("cleanup", help="remove the netns, links, processes and dirs "
                                "that crashed runs left (names starting with tgh-); needs root")
    clean.add_argument("--wait", type=float, default=0.0, metavar="SECONDS",
                       help="wait this long for an active harness run to finish (default: "
                       "refuse at once while one is active)")
    args = parser.parse_args(argv)
    try:
        removed = cleanup(timeout=args.wait)
    except HostError as exc:
        print(f"harness.hosts cleanup: {exc}", file=sys.stderr)
        return 1
    for line in removed:
        print(f"removed {line}")
    if not removed:
        print("nothing to remove")
    return 0


if __name__ == "__main__":
    sys.exit(main())
