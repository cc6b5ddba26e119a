"""``tengine-watcher run|kill|status|resend``: the job host's side of the job system.

Exit codes: 0 done (also for a duplicate start or a kill with nothing to stop); 1 the request
was understood but could not be carried out (start not confirmed, result not published);
2 bad usage or an unknown job id; 126 / 127 the script is not executable / not found.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar
from urllib.parse import urlsplit

from .jobdir import BadJobId, UnknownJob, resolve_state_dir
from .procs import parse_signal
from .publish import default_amqp_url

Number = TypeVar("Number", int, float)

_SIZE_RE = re.compile(r"^\s*(\d+)\s*([KMGT]?)(i?B)?\s*$", re.IGNORECASE)
_UNITS = {"": 1, "K": 1024, "M": 1024**2, "G": 1024**3, "T": 1024**4}


def byte_size(text: str) -> int:
    """``1048576``, ``64K``, ``10M``, ``1GiB`` -> bytes."""
    match = _SIZE_RE.match(text)
    if not match:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a size (use bytes, or a number with K, M, G: 10M)")
    return int(match.group(1)) * _UNITS[match.group(2).upper()]


def non_negative(kind: type[Number]) -> Callable[[str], Number]:
    """An argparse type: `kind` (int, float) of the text, refused when below zero."""
    def convert(text: str) -> Number:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a {kind.__name__}") from None
        if value < 0:
            raise argparse.ArgumentTypeError(f"{text!r} must not be negative")
        return value
    return convert


def amqp_url(text: str) -> str:
    parts = urlsplit(text)
    if parts.scheme not in ("amqp", "amqps") or not parts.hostname:
        raise argparse.ArgumentTypeError(
            "expected amqp://user:password@host:port/vhost "
            "(e.g. amqp://guest:guest@127.0.0.1:5672/%2F)")
    return text


def signal_list(text: str) -> list:
    try:
        signals = [parse_signal(word) for word in text.split(",") if word.strip()]
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    if not signals:
        raise argparse.ArgumentTypeError("give at least one signal, e.g. KILL or TERM,KILL")
    return signals


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tengine-watcher",
        description="Run, watch, stop and report the jobs of this host (Tengine's job agent).")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument("--job-id", required=True, help="the runtime job's id")
        p.add_argument("--state-dir", help="state dir (default $TENGINE_WATCHER_STATE_DIR or "
                                           "~/.tengine-watcher)")

    def publishing(p: argparse.ArgumentParser, defaults: bool) -> None:
        p.add_argument("--amqp-url", type=amqp_url,
                       default=default_amqp_url() if defaults else None,
                       help="broker URL (default $TENGINE_AMQP_URL or a local broker)")
        p.add_argument("--publish-retry-count", type=non_negative(int),
                       default=30 if defaults else None, help="retries of the finished event")
        p.add_argument("--publish-retry-interval", type=non_negative(float),
                       default=1.0 if defaults else None, help="seconds between retries")

    run = sub.add_parser("run", help="start a script once per job id and print PID=<n>",
                         usage="%(prog)s --job-id ID [options] -- SCRIPT [ARGS...]")
    common(run)
    publishing(run, defaults=True)
    run.add_argument("--heartbeat-interval", type=non_negative(float), default=5.0,
                     help="seconds between heartbeats (0: none)")
    run.add_argument("--output-cap", type=byte_size, default=None,
                     help="bytes of each stream kept in its spool file (default: all)")
    run.add_argument("--execution-id", help="default $MM_SCHEDULE_ID")
    run.add_argument("--root-jobnet-id", help="default $MM_ROOT_JOBNET_ID")
    run.add_argument("--server-name", help="default $MM_SERVER_NAME")
    run.add_argument("--start-timeout", type=non_negative(float), default=600.0,
                     help="seconds to wait for the watchdog's report (default 600)")
    run.add_argument("script", nargs="*", help="the script and its arguments, after --")

    kill = sub.add_parser("kill", help="signal a job's process group")
    common(kill)
    kill.add_argument("--signals", type=signal_list, default=signal_list("KILL"),
                      help="signals in order, comma-separated (default KILL)")
    kill.add_argument("--interval", type=non_negative(float), default=5.0,
                      help="seconds to wait for the job to stop after each signal (default 5)")

    status = sub.add_parser("status", help="what this host knows about a job")
    common(status)
    status.add_argument("--json", action="store_true", help="one JSON object, for the core")

    resend = sub.add_parser("resend", help="publish a finished result not yet published")
    common(resend)
    publishing(resend, defaults=False)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    name = f"tengine-watcher {args.command}"
    try:
        state_dir = resolve_state_dir(args.state_dir)
        if args.command == "run":
            return _run(args, state_dir, parser)
        if args.command == "kill":
            from .kill import kill
            return kill(state_dir, args.job_id, args.signals, args.interval,
                        out=sys.stdout, err=sys.stderr)
        if args.command == "status":
            from .status import status
            return status(state_dir, args.job_id, as_json=args.json, out=sys.stdout)
        from .status import resend
        return resend(state_dir, args.job_id, out=sys.stdout, err=sys.stderr,
                      amqp_url=args.amqp_url, retry_count=args.publish_retry_count,
                      retry_interval=args.publish_retry_interval)
    except (UnknownJob, BadJobId) as exc:
        print(f"{name}: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:
        from .run import StartFailed
        if isinstance(exc, StartFailed):
            print(f"{name}: {exc}", file=sys.stderr)
            return 1
        if isinstance(exc, OSError):  # e.g. a state dir we may not write
            where = f" ({exc.filename})" if exc.filename else ""
            print(f"{name}: {exc.strerror or exc}{where}", file=sys.stderr)
            return 1
        raise


def _run(args: argparse.Namespace, state_dir: Path,
         parser: argparse.ArgumentParser) -> int:
    from .run import JobIdentity, RunOptions, run

    if not args.script:
        parser.error("run: give the script to run after --, e.g. run --job-id j1 -- /path/x.sh")
    options = RunOptions(amqp_url=args.amqp_url, heartbeat_interval=args.heartbeat_interval,
                         publish_retry_count=args.publish_retry_count,
                         publish_retry_interval=args.publish_retry_interval,
                         output_cap=args.output_cap)
    identity = JobIdentity.from_env(args.execution_id, args.root_jobnet_id, args.server_name)
    return run(state_dir, args.job_id, args.script, options, identity,
               start_timeout=args.start_timeout, out=sys.stdout, err=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
