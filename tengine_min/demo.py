"""`tengine demo`: the whole stack on this machine, running the demo jobnet for real.

Validates the examples, starts a private broker, the core and the console (each its own
process, as in production), loads the examples, runs `demo` (fork/join, a sub-jobnet, an
expansion, a finally) with a live tree until it ends, and says where to look. With a terminal
the stack stays up for the console until Ctrl-C; without one (or with --no-keep) it stops.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from contextlib import ExitStack
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
DEMO_JOBNET = "demo"


def add_demo_command(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("demo", help="the demo: the whole stack running the demo jobnet")
    p.add_argument("--state-dir", type=Path, default=Path(".tengine-demo"),
                   help="where the demo keeps its broker, store and logs (default .tengine-demo)")
    p.add_argument("--port", type=int, default=0, help="console port (default: a free one)")
    keep = p.add_mutually_exclusive_group()
    keep.add_argument("--keep", dest="keep", action="store_true", default=None,
                      help="keep the stack up after the run until Ctrl-C (default with a terminal)")
    keep.add_argument("--no-keep", dest="keep", action="store_false",
                      help="stop everything once the run has ended")
    p.add_argument("--examples", type=Path, default=EXAMPLES, help=argparse.SUPPRESS)
    p.set_defaults(func=cmd_demo)


def _tengine(*args: str, env: dict[str, str]) -> int:
    """`tengine ARGS...` as its own process on this terminal, as a person would run it."""
    from .processes import tengine_command

    sys.stdout.flush()  # what the demo printed comes before what the command prints
    return subprocess.run(tengine_command(*args), env=env).returncode


def cmd_demo(args: argparse.Namespace) -> int:
    from rich.console import Console

    from .broker import Broker
    from .config import load_settings
    from .model.render import render_template
    from .ports import free_port
    from .processes import spawn, stop, tengine_command, wait_http

    console = Console()
    state = args.state_dir.expanduser().absolute()
    (state / "log").mkdir(parents=True, exist_ok=True)
    os.environ["TENGINE_STATE_DIR"] = str(state)
    os.environ["TENGINE_EXAMPLES"] = str(args.examples)  # the job scripts find themselves here
    env = dict(os.environ)
    bin_dir = Path(sys.executable).parent
    keep = sys.stdin.isatty() if args.keep is None else args.keep

    console.rule(f"[bold]1. validate {args.examples}")
    if _tengine("validate", str(args.examples), env=env) != 0:
        return 1
    from .model.loader import load

    print(render_template(load([args.examples]), DEMO_JOBNET), end="")

    settings = load_settings()
    with ExitStack() as stack:
        console.rule("[bold]2. start the broker, the core and the console")
        if not settings.amqp_url:
            broker = Broker(settings.broker_dir)
            broker.start()
            stack.callback(broker.stop)
            print(f"broker: {broker.url.replace('guest:guest@', '')} (log {broker.node_log})")
        core = spawn(tengine_command("core"), env, state / "log" / "core.out")
        stack.callback(stop, core)
        # A free port can be taken by someone else before the console binds it: with a port of
        # our choosing, try another one.
        for attempt in range(1 if args.port else 3):
            port = args.port or free_port()
            web = spawn(tengine_command("console", "--port", str(port)), env,
                        state / "log" / "console.out")
            stack.callback(stop, web)
            url = f"http://127.0.0.1:{port}"
            try:
                wait_http(f"{url}/api/executions", web, timeout=60)
                break
            except RuntimeError:
                if attempt == 2 or args.port:
                    print((state / "log" / "console.out").read_text()[-3000:],
                          file=sys.stderr)
                    raise
        print(f"core: pid {core.pid} (log {settings.core_log})\nconsole: {url}/")

        console.rule("[bold]3. load the examples and run the demo jobnet")
        if _tengine("load", str(args.examples), env=env) != 0:
            return 1
        code = _tengine("run", DEMO_JOBNET, "--wait", env=env)

        console.rule("[bold]4. where to look")
        print(f"state dir:        {state}\n"
              f"core log:         {settings.core_log}\n"
              f"watcher log:      {settings.watcher_state_dir}/log/watcher.log\n"
              f"job output:       {settings.watcher_state_dir}/jobs/<job id>/\n"
              f"console:          {url}/executions  (execution list)\n"
              f"                  {url}/events      (event notification screen)\n"
              f"command line:     TENGINE_STATE_DIR={state} {bin_dir}/tengine jobs")
        if keep:
            console.print("The stack stays up for the console. [bold]Ctrl-C[/] stops it.")
            try:
                while core.poll() is None and web.poll() is None:
                    time.sleep(0.5)
            except KeyboardInterrupt:
                pass
        console.rule("[bold]stopping")
    return code
