"""Serving the console: `run_console(settings)` runs it with uvicorn in the foreground;
`python -m tengine_min.console` is its command line, and `add_console_command(subparsers)` adds
the same as `tengine console`.

The console writes one line per fact to `<state dir>/log/console.log` (what it was asked and
did: commands sent, status changes, publish failures).
"""

from __future__ import annotations

import argparse
import logging
import sys

import uvicorn

from ..config import ConfigError, load_settings
from ..logfmt import kv, setup_file_logger
from ..store.db import StoreConfigError
from .app import LOGGER, create_app
from .settings import ConsoleConfigError, ConsoleSettings

EXIT_OK, EXIT_USAGE = 0, 2


def console_logger(settings: ConsoleSettings) -> logging.Logger:
    return setup_file_logger(LOGGER, settings.runtime.log_dir / "console.log",
                             settings.runtime.log_level)


def run_console(settings: ConsoleSettings) -> None:
    """Serve until SIGINT/SIGTERM. Raises ConsoleConfigError before listening when the access
    settings are unsafe (a non-loopback address without credentials)."""
    log = console_logger(settings)
    app = create_app(settings)
    log.info("console listening %s", kv(host=settings.host, port=settings.port,
                                        auth=settings.has_credentials,
                                        state_dir=settings.runtime.state_dir))
    config = uvicorn.Config(app, host=settings.host, port=settings.port,
                            log_level=settings.runtime.log_level.lower(), access_log=False)
    uvicorn.Server(config).run()
    log.info("console stopped %s", kv(host=settings.host, port=settings.port))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tengine console",
                                     description="the web console (screens and JSON API)")
    add_arguments(parser)
    return parser


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--state-dir",
                        help="state dir (default $TENGINE_STATE_DIR, else ./.tengine)")
    parser.add_argument("--config", help="TOML settings file (default <state dir>/tengine.toml)")
    parser.add_argument("--resources", help="servers and credentials file "
                                            "(default <state dir>/resources.toml)")
    parser.add_argument("--host", help="address to listen on (default $TENGINE_CONSOLE_HOST, "
                                       "else 127.0.0.1)")
    parser.add_argument("--port", type=int, help="port (default $TENGINE_CONSOLE_PORT, "
                                                 "else 8180)")


def settings_from_args(args: argparse.Namespace) -> ConsoleSettings:
    from pathlib import Path

    runtime = load_settings(args.state_dir, args.config)
    resources = Path(args.resources).expanduser().absolute() if args.resources else None
    return ConsoleSettings.from_env(runtime, host=args.host, port=args.port,
                                    resources_file=resources)


def add_console_command(subparsers: argparse._SubParsersAction) -> None:
    """Add `tengine console` to `tengine`'s parser (the lead wires it in cli.py)."""
    parser = subparsers.add_parser("console", help="the web console (screens and JSON API)")
    add_arguments(parser)
    parser.set_defaults(func=cmd_console)


def main(argv: list[str] | None = None) -> int:
    return cmd_console(build_parser().parse_args(argv))


def cmd_console(args: argparse.Namespace) -> int:
    try:
        settings = settings_from_args(args)
        print(f"tengine console: http://{settings.host}:{settings.port}/ "
              f"(state dir {settings.runtime.state_dir})", file=sys.stderr, flush=True)
        run_console(settings)
    except (ConfigError, ConsoleConfigError, StoreConfigError) as exc:
        print(f"tengine console: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return 130
    return EXIT_OK
