"""The runtime commands of `tengine`: broker, core, up, load, run, stop, jobs, events.

Exit codes as everywhere in `tengine`: 0 all good; 1 understood but refused or failed (a
definition with errors, a stop of something finished, an execution that ended in error);
2 bad usage or input that cannot be used (an unknown id or jobnet, a bad config file).
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import sys
import time
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any

from .config import ConfigError, Settings, load_settings
from .events import names as ev
from .events.envelope import Event
from .model import phases as ph
from .resources import ResourceError, Resources, load_resources

if TYPE_CHECKING:  # imported where used, so that `tengine --help` starts fast
    import subprocess

    from rich.tree import Tree
    from sqlalchemy import Connection, Engine

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
LEVELS = ("debug", "info", "warn", "error", "fatal")


class CommandFailed(Exception):
    """Ends a command with a message on stderr and an exit code."""

    def __init__(self, message: str, code: int = EXIT_FAILED) -> None:
        super().__init__(message)
        self.code = code


# --- wiring -----------------------------------------------------------------------------------


def add_runtime_commands(subparsers: argparse._SubParsersAction) -> None:
    """Add the runtime sub-commands to `tengine`'s parser."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--state-dir",
                        help="state dir (default $TENGINE_STATE_DIR, else ./.tengine)")
    common.add_argument("--config", help="TOML settings file (default <state dir>/tengine.toml)")
    with_resources = argparse.ArgumentParser(add_help=False)
    with_resources.add_argument("--resources", help="servers and credentials file "
                                                    "(default <state dir>/resources.toml)")

    p = subparsers.add_parser("broker", parents=[common],
                              help="start, stop or show the private RabbitMQ node")
    p.add_argument("action", choices=("start", "stop", "status"))
    p.set_defaults(func=_guarded(cmd_broker))

    p = subparsers.add_parser("core", parents=[common, with_resources],
                              help="run the core in the foreground (Ctrl-C stops it)")
    p.set_defaults(func=_guarded(cmd_core))

    p = subparsers.add_parser("up", parents=[common, with_resources],
                              help="broker, console and core in one foreground command "
                                   "(Ctrl-C stops all)")
    p.add_argument("--console-port", type=int, default=8180,
                   help="port of the console on 127.0.0.1 (default 8180)")
    p.add_argument("--no-console", dest="console", action="store_false",
                   help="do not start the console")
    p.set_defaults(func=_guarded(cmd_up))

    p = subparsers.add_parser("load", parents=[common, with_resources],
                              help="validate definitions and store their root jobnets "
                                   "(all or nothing)")
    p.add_argument("paths", nargs="+", metavar="PATH", help="definition files or directories")
    p.set_defaults(func=_guarded(cmd_load))

    p = subparsers.add_parser("run", parents=[common], help="start an execution of a stored "
                                                            "root jobnet; prints its id")
    p.add_argument("jobnet", metavar="JOBNET", help="root jobnet name")
    p.add_argument("--wait", action="store_true",
                   help="show the tree live until the execution ends; exit 0 on success")
    p.add_argument("--timeout", type=_minutes, metavar="MIN",
                   help="force stop the execution after MIN minutes (強制停止設定)")
    p.add_argument("--alert", type=_minutes, metavar="MIN",
                   help="fire an alert event after MIN minutes (警告設定)")
    p.set_defaults(func=_guarded(cmd_run))

    p = subparsers.add_parser("stop", parents=[common],
                              help="force stop an execution, a jobnet or a job (user_stop)")
    p.add_argument("id", metavar="ID", help="an execution id, a jobnet id or a job id")
    p.set_defaults(func=_guarded(cmd_stop))

    p = subparsers.add_parser("jobs", parents=[common],
                              help="list executions, or show the tree of one")
    p.add_argument("id", nargs="?", metavar="ID", help="an execution id or the id of a "
                                                       "jobnet or job in it")
    p.add_argument("--limit", type=_positive, default=20, help="executions listed (default 20)")
    p.set_defaults(func=_guarded(cmd_jobs))

    p = subparsers.add_parser("events", parents=[common], help="the events the core received")
    p.add_argument("--level", choices=LEVELS, default="debug",
                   help="show this level and above (default: all)")
    p.add_argument("--limit", type=_positive, default=50, help="newest N (default 50)")
    p.set_defaults(func=_guarded(cmd_events))


def _guarded(command: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    """Turn the errors a user can cause into a message and an exit code (no traceback)."""
    from .broker import BrokerError
    from .store.db import StoreConfigError
    from .store.repo import StoreError

    def run(args: argparse.Namespace) -> int:
        try:
            return command(args)
        except CommandFailed as exc:
            print(f"tengine {args.command}: {exc}", file=sys.stderr)
            return exc.code
        except (ConfigError, ResourceError, StoreConfigError) as exc:
            print(f"tengine {args.command}: {exc}", file=sys.stderr)
            return EXIT_USAGE
        except (BrokerError, StoreError) as exc:
            print(f"tengine {args.command}: {exc}", file=sys.stderr)
            return EXIT_FAILED

    return run


def _minutes(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of minutes") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text!r}: minutes must be >= 0 (0 = none)")
    return value


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} must be at least 1")
    return value


def _settings(args: argparse.Namespace) -> Settings:
    return load_settings(args.state_dir, args.config)


def _engine(settings: Settings) -> Engine:
    from .store.db import engine_for

    return engine_for(settings.store_target())


# --- broker, core, up ---------------------------------------------------------------------------


def cmd_broker(args: argparse.Namespace) -> int:
    from .broker import Broker
    from .bus.topology import redact

    settings = _settings(args)
    if settings.amqp_url:
        where = "TENGINE_AMQP_URL" if os.environ.get("TENGINE_AMQP_URL") else settings.source
        message = (f"the broker {redact(settings.amqp_url)} (from {where}) is used: "
                   f"there is no private node")
        if args.action == "status":
            print(message)
            return EXIT_OK
        raise CommandFailed(f"{message} to {args.action}", EXIT_USAGE)
    broker = Broker(settings.broker_dir)
    if args.action == "start":
        broker.start()
        print(f"broker running: {broker.url} (node log {broker.node_log})")
    elif args.action == "stop":
        broker.stop()
        print(f"broker stopped ({broker.state_dir})")
    else:
        status = broker.status()
        for key, value in status.items():
            print(f"{key}: {value}")
        return EXIT_OK if status["running"] else EXIT_FAILED
    return EXIT_OK


def cmd_core(args: argparse.Namespace) -> int:
    settings = _settings(args)
    resources = load_resources(args.resources, settings.state_dir)
    _run_core(settings, resources, banner=[])
    return EXIT_OK


def cmd_up(args: argparse.Namespace) -> int:
    from .broker import Broker

    settings = _settings(args)
    resources = load_resources(args.resources, settings.state_dir)
    broker = None
    banner = []
    if not settings.amqp_url:
        broker = Broker(settings.broker_dir)
        print(f"tengine up: starting the broker in {broker.state_dir} ...", file=sys.stderr)
        broker.start()
        banner.append(f"broker log: {broker.node_log}")
    console = None
    try:
        if args.console:
            console = _start_console(settings, args.console_port)
            banner.append(f"console: http://127.0.0.1:{args.console_port}/")
        _run_core(settings, resources, banner=banner)
    finally:
        if console is not None:
            from .processes import stop

            stop(console)
        if broker is not None:
            print("tengine up: stopping the broker ...", file=sys.stderr)
            broker.stop()
    return EXIT_OK


def _start_console(settings: Settings, port: int) -> subprocess.Popen[bytes]:
    """`tengine console` beside the core, as its own process (it only reads the store and
    publishes commands), waited for until it answers."""
    from .processes import spawn, tengine_command, wait_http

    env = dict(os.environ, TENGINE_STATE_DIR=str(settings.state_dir))
    process = spawn(tengine_command("console", "--port", str(port)), env,
                    settings.state_dir / "log" / "console.out")
    try:
        wait_http(f"http://127.0.0.1:{port}/api/executions", process, timeout=60)
    except RuntimeError:
        from .processes import stop

        stop(process)
        raise CommandFailed(f"the console did not start on port {port}: see "
                            f"{settings.state_dir / 'log' / 'console.out'}") from None
    return process


def _run_core(settings: Settings, resources: Resources, *, banner: list[str]) -> None:
    """Run the core in this process until SIGTERM or SIGINT."""
    from .bus.topology import redact
    from .core.service import CoreService

    service = CoreService(settings, resources)
    previous = {sig: signal.signal(sig, lambda *_: service.request_stop())
                for sig in (signal.SIGTERM, signal.SIGINT)}
    store = redact(settings.db_url) if settings.db_url else settings.state_dir / "tengine.db"
    lines = [f"state dir: {settings.state_dir}", f"core log: {settings.core_log}",
             f"broker: {redact(service.url)}", f"store: {store}",
             f"resources: {resources.source}", f"settings: {settings.source}", *banner,
             "Ctrl-C stops."]
    print("tengine core\n  " + "\n  ".join(lines), file=sys.stderr, flush=True)
    try:
        service.run()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    print("tengine core: stopped", file=sys.stderr)


# --- load, run, stop ------------------------------------------------------------------------------


def cmd_load(args: argparse.Namespace) -> int:
    from .model.loader import load
    from .model.validator import runnable_roots, validate
    from .store import repo
    from .store.db import write_transaction

    settings = _settings(args)
    defs = load(args.paths)
    problems = validate(defs, resources=_resources_to_check(args, settings))
    for problem in problems:
        print(problem)
    errors = [p for p in problems if p.severity == "error"]
    if errors:
        # All or nothing: a file set with an error stores nothing, so the store never holds a
        # half of a set whose jobnets expand each other.
        raise CommandFailed(f"{len(errors)} error(s) in {len(defs.files)} file(s): nothing "
                            f"stored")
    if not defs.roots:
        raise CommandFailed(f"no root jobnet found in {', '.join(args.paths)}: nothing stored")
    runnable = runnable_roots(defs, problems)
    engine = _engine(settings)
    with write_transaction(engine) as conn:
        names = repo.save_templates(conn, defs, [r for r in defs.roots if r.name in runnable])
    print(f"stored {len(names)} root jobnet(s): {', '.join(names)}")
    return EXIT_OK


def _resources_to_check(args: argparse.Namespace, settings: Settings) -> Resources | None:
    """The resources whose server and credential names a load checks: `--resources`, else the
    state dir's file. Without a file there is nothing the core is sure to use (it may be
    started with --resources), so names are left to the run-time check, and a note says so."""
    from .resources import find_resources_file

    if args.resources is None and find_resources_file(settings.state_dir) is None:
        print(f"tengine load: no resources file in {settings.state_dir} (or --resources): "
              f"server and credential names are not checked now; a job naming an unknown "
              f"one fails when it runs", file=sys.stderr)
        return None
    return load_resources(args.resources, settings.state_dir)


def cmd_run(args: argparse.Namespace) -> int:
    from .commands import CannotRun, UnknownJobnet, new_execution
    from .store import repo
    from .store.db import write_transaction

    settings = _settings(args)
    engine = _engine(settings)
    try:
        execution, event = new_execution(engine, settings, args.jobnet, source=_me(),
                                         sender=f"tengine-cli:{_me()}")
    except UnknownJobnet as exc:
        raise CommandFailed(str(exc), EXIT_USAGE) from None
    except CannotRun as exc:
        raise CommandFailed(str(exc)) from None
    with write_transaction(engine) as conn:
        repo.create_execution(conn, execution, timeout_min=args.timeout, alert_min=args.alert)
        outbox_id = repo.enqueue(conn, event)
    print(execution.id, flush=True)
    publish_stored(settings, engine, outbox_id, event)
    if not args.wait:
        return EXIT_OK
    return watch_execution(engine, execution.id)


def publish_stored(settings: Settings, engine: Engine, outbox_id: int,
                   event: Event) -> bool:
    """Publish an event already in the outbox, with confirms, and mark it published. When the
    broker cannot be reached the row stays: the core's relay publishes it later."""
    import logging

    from .bus.publisher import Publisher, PublishFailed
    from .bus.topology import redact
    from .store import repo
    from .store.db import write_transaction

    url = settings.broker_url()
    log = logging.getLogger("tengine.cli")
    try:
        with Publisher(url, retry_count=settings.publish_retry_count,
                       retry_interval=settings.publish_retry_interval, logger=log) as publisher:
            publisher.publish(event)
    except (PublishFailed, ValueError) as exc:
        print(f"tengine: {event.event_type_name} is stored but not yet published to "
              f"{redact(url)} ({exc}); the core publishes it once the broker is reachable",
              file=sys.stderr)
        return False
    with write_transaction(engine) as conn:
        repo.mark_published(conn, [outbox_id])
    return True


def cmd_stop(args: argparse.Namespace) -> int:
    from .model.execution import SCRIPT_KINDS
    from .store import repo
    from .store.db import write_transaction

    settings = _settings(args)
    engine = _engine(settings)
    with engine.connect() as conn:
        execution = repo.get_execution(conn, args.id)
        vertex = None
        if execution is None:
            vertex = repo.get_vertex(conn, args.id)
            if vertex is None:
                raise CommandFailed(f"no execution, jobnet or job with id {args.id!r} "
                                    f"(see `tengine jobs`)", EXIT_USAGE)
            execution = repo.require_execution(conn, vertex.execution_id)
        parent = (repo.get_vertex(conn, vertex.parent_id)
                  if vertex is not None and vertex.parent_id else None)
    props: dict[str, Any] = {"execution_id": execution.id,
                             "root_jobnet_id": execution.root_jobnet_id,
                             "root_jobnet_name_path": "/" + execution.root_jobnet_name,
                             "target_jobnet_id": execution.root_jobnet_id,
                             "target_jobnet_name_path": "/" + execution.root_jobnet_name,
                             "stop_reason": ph.USER_STOP}
    if vertex is None:
        what, phase, name = "execution", execution.phase, ev.STOP_EXECUTION
        label = f"execution {execution.id} of /{execution.root_jobnet_name}"
        source = f"execution:{_me()}/{execution.root_jobnet_id}/{execution.id}"
        stoppable = ph.STOPPABLE
    elif vertex.kind in SCRIPT_KINDS:
        what, phase, name = "job", vertex.phase, ev.STOP_JOB
        label = f"job {vertex.name_path}"
        props.update(target_jobnet_id=parent.id if parent else None,
                     target_jobnet_name_path=parent.name_path if parent else None,
                     target_job_id=vertex.id, target_job_name_path=vertex.name_path)
        source = f"job:{_me()}/{execution.root_jobnet_id}/{vertex.id}"
        stoppable = ph.STOPPABLE | {ph.DYING}  # a job: a stop again re-sends a failed kill
    elif vertex.kind in ("jobnet", "finally"):
        what, phase, name = "jobnet", vertex.phase, ev.STOP_JOBNET
        label = f"jobnet {vertex.name_path}"
        props.update(target_jobnet_id=vertex.id, target_jobnet_name_path=vertex.name_path)
        source = f"job:{_me()}/{execution.root_jobnet_id}/{vertex.id}"
        stoppable = ph.STOPPABLE
    else:
        raise CommandFailed(f"{vertex.name_path} is a {vertex.kind}: it runs only as part of "
                            f"its hadoop_job_run; stop that instead")
    if phase not in stoppable:
        why = ("it has not started" if phase == ph.INITIALIZED else
               "it is already being stopped" if phase == ph.DYING else "it has already ended")
        raise CommandFailed(f"{label} is {ph.human_label(phase, None, 'en')} "
                            f"({ph.human_label(phase)}): {why}, nothing to stop")
    event = Event(event_type_name=name, source_name=source, sender_name=f"tengine-cli:{_me()}",
                  properties=props)
    with write_transaction(engine) as conn:
        outbox_id = repo.enqueue(conn, event)
    publish_stored(settings, engine, outbox_id, event)
    print(f"stop requested: {label} ({what} {args.id}, {name})")
    return EXIT_OK


def _me() -> str:
    return f"{socket.gethostname()}/{os.getpid()}"


# --- jobs, events, --wait -------------------------------------------------------------------------


def phase_label(phase: str, stop_reason: str | None) -> str:
    """`エラー終了(強制停止済) / error (force stopped)`."""
    ja = ph.human_label(phase, stop_reason, "ja")
    return f"{ja} / {ph.human_label(phase, stop_reason, 'en')}"


def execution_tree(conn: Connection, execution_id: str) -> Tree:
    """The execution as a rich Tree: one node per jobnet/job with its phase label and, for
    jobs, pid, exit status and reason."""
    from rich.markup import escape
    from rich.tree import Tree

    from .store import repo

    execution = repo.require_execution(conn, execution_id)
    label = phase_label(execution.phase, execution.stop_reason)
    head = f"[bold]execution {execution.id}[/] {escape(label)}"
    tree = Tree(head)
    nodes: dict[str | None, Tree] = {None: tree}
    for vertex in repo.execution_vertices(conn, execution_id):
        parts = [f"[bold]{escape(vertex.name)}[/]", escape(phase_label(vertex.phase,
                                                                      vertex.stop_reason))]
        if vertex.pid is not None:
            parts.append(f"pid={vertex.pid}")
        if vertex.exit_status is not None:
            parts.append(f"exit={vertex.exit_status}")
        if vertex.signal:
            parts.append(f"signal={escape(vertex.signal)}")
        if vertex.reason:
            parts.append(f"reason={escape(_one_line(vertex.reason))}")
        parts.append(f"[dim]{vertex.id}[/]")
        parent = nodes.get(vertex.parent_id, tree)
        nodes[vertex.id] = parent.add("  ".join(parts))
    return tree


def watch_execution(engine: Engine, execution_id: str, poll: float = 0.5) -> int:
    """Show the tree live until the execution ends: 0 success, 1 otherwise."""
    from rich.console import Console
    from rich.live import Live

    from .store import repo

    console = Console(width=None if sys.stdout.isatty() else 200)
    try:
        with Live(console=console, refresh_per_second=4) as live:
            while True:
                with engine.connect() as conn:
                    live.update(execution_tree(conn, execution_id))
                    phase = repo.require_execution(conn, execution_id).phase
                if phase in ph.FINAL:
                    break
                time.sleep(poll)
        if not console.is_terminal:
            console.line()  # the last frame of a non-terminal Live ends without a newline
    except KeyboardInterrupt:
        print(f"tengine run: stopped watching; execution {execution_id} goes on "
              f"(`tengine jobs {execution_id}`)", file=sys.stderr)
        return 130
    return EXIT_OK if phase == ph.SUCCESS else EXIT_FAILED


def cmd_jobs(args: argparse.Namespace) -> int:
    from rich.console import Console
    from sqlalchemy import select

    from .store import repo
    from .store.schema import executions

    settings = _settings(args)
    engine = _engine(settings)
    console = Console(width=None if sys.stdout.isatty() else 200)
    with engine.connect() as conn:
        if args.id:
            execution = repo.get_execution(conn, args.id)
            if execution is None:
                vertex = repo.get_vertex(conn, args.id)
                if vertex is None:
                    raise CommandFailed(f"no execution, jobnet or job with id {args.id!r}",
                                        EXIT_USAGE)
                execution = repo.require_execution(conn, vertex.execution_id)
            console.print(execution_tree(conn, execution.id))
            return EXIT_OK
        # Newest first; the store has no listing function yet, so a plain query here.
        rows = conn.execute(select(executions).order_by(executions.c.created_at.desc())
                            .limit(args.limit)).all()
    if not rows:
        print("no executions yet (start one with `tengine run JOBNET`)")
        return EXIT_OK
    for row in rows:
        print(f"{row.id}  {row.root_jobnet_name}  {phase_label(row.phase, row.stop_reason)}  "
              f"created={_time(row.created_at)} started={_time(row.started_at)} "
              f"finished={_time(row.finished_at)}")
    return EXIT_OK


def cmd_events(args: argparse.Namespace) -> int:
    from sqlalchemy import select

    from .store.schema import events

    settings = _settings(args)
    engine = _engine(settings)
    wanted = LEVELS[LEVELS.index(args.level):]
    with engine.connect() as conn:
        rows = conn.execute(select(events).where(events.c.level.in_(wanted))
                            .order_by(events.c.occurred_at.desc(), events.c.id.desc())
                            .limit(args.limit)).all()
    for row in rows:
        props = row.properties or {}
        target = (props.get("target_job_name_path") or props.get("target_jobnet_name_path")
                  or props.get("root_jobnet_name_path") or "")
        line = (f"{_time(row.occurred_at)}  {row.level:<5}  {row.event_type_name}  "
                f"key={row.key}")
        if target:
            line += f"  target={target}"
        if props.get("message"):
            line += f"  message={_one_line(str(props['message']))}"
        print(line)
    return EXIT_OK


def _time(value: datetime | None) -> str:
    return value.isoformat(timespec="seconds") if value else "-"


def _one_line(text: str, limit: int = 300) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit] + "..."
