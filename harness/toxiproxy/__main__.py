"""``python -m harness.toxiproxy --host 127.0.0.1 --port 8474``: run the fallback server.

Flags as ``toxiproxy-server`` (``-host``, ``-port``, ``-config``, ``-seed``; ``--`` forms too).
``--port 0`` picks a free port. Once listening it prints one line to stdout,
``toxiproxy API listening on http://HOST:PORT``, which a parent process can wait for; logs go
to stderr. It stops cleanly on SIGINT or SIGTERM.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import random
import signal
import sys
from pathlib import Path

from .http_server import Request
from .proxy import ProxyError
from .server import ToxiproxyServer

READY_LINE = "toxiproxy API listening on http://{host}:{port}"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m harness.toxiproxy",
        description="A Toxiproxy-compatible TCP fault proxy (the harness's fallback server).")
    parser.add_argument("-host", "--host", default="localhost",
                        help="host for the API to listen on (default: localhost)")
    parser.add_argument("-port", "--port", type=int, default=8474,
                        help="port for the API to listen on, 0 for any free one (default: 8474)")
    parser.add_argument("-config", "--config", type=Path,
                        help="JSON file with a list of proxies to create on startup")
    parser.add_argument("-seed", "--seed", type=int, help="seed for the toxics' randomness")
    return parser.parse_args(argv)


async def populate_from(server: ToxiproxyServer, path: Path) -> None:
    """Create the proxies of a config file, as POST /populate would; exit with why if bad."""
    try:
        body = path.read_bytes()
    except OSError as error:
        raise SystemExit(f"error: cannot read config {path}: {error.strerror}") from error
    try:
        response = await server.populate(Request("POST", "/populate", {}, body))
    except ProxyError as error:
        raise SystemExit(f"error: config {path}: {error.message}") from error
    if response.status != 201:
        detail = json.loads(response.body).get("error", response.body.decode())
        raise SystemExit(f"error: config {path}: {detail}")


async def run(args: argparse.Namespace) -> None:
    server = ToxiproxyServer()
    try:
        host, port = await server.start(args.host, args.port)
    except OSError as error:
        raise SystemExit(
            f"error: cannot listen on {args.host}:{args.port}: {error.strerror or error}"
        ) from error
    try:
        if args.config is not None:
            await populate_from(server, args.config)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        # Ready only now: a SIGTERM right after this line must find the handler in place.
        print(READY_LINE.format(host=host, port=port), flush=True)
        await stop.wait()
    finally:
        await server.close()


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(message)s")
    if args.seed is not None:
        random.seed(args.seed)
    asyncio.run(run(args))


if __name__ == "__main__":
    main()
