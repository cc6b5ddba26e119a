"""``python -m harness up``: the scenarios' cluster, brought up by hand for exploring.

    sudo .venv/bin/python -m harness up --servers 2 --set heartbeat_expiry=10

Prints how to reach everything (console, state dir for `tengine` commands, servers over ssh,
toxiproxy API, logs), stores the standard jobnets ``test_job`` and ``long_job`` on the first
server, and waits; Ctrl-C (or SIGTERM) takes everything down again.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
import tomllib

from harness.hosts.base import HostError
from tengine_min.broker import BrokerError

from .cluster import TEST_SCRIPTS, Cluster, ClusterError


def _setting(text: str) -> tuple[str, object]:
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise argparse.ArgumentTypeError(f"{text!r}: expected KEY=VALUE, e.g. "
                                         f"heartbeat_expiry=10")
    try:  # a TOML value: 10, 0.5, "text", ["TERM", "KILL"]
        parsed = tomllib.loads(f"v = {value}")["v"]
    except tomllib.TOMLDecodeError:
        parsed = value  # a bare word: a string
    return key.strip(), parsed


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m harness",
                                     description="the fault-injection harness, by hand")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    up = sub.add_parser("up", help="bring a cluster up and keep it until Ctrl-C")
    up.add_argument("--servers", type=int, default=2, help="virtual servers (default 2)")
    up.add_argument("--set", dest="settings", type=_setting, action="append", default=[],
                    metavar="KEY=VALUE", help="a tengine.toml setting, e.g. "
                                              "heartbeat_expiry=10 (repeatable)")
    return parser


def describe(cluster: Cluster) -> str:
    """How to reach every part of a running cluster."""
    assert cluster.broker is not None and cluster.console is not None
    assert cluster.core is not None and cluster.links is not None
    state = cluster.state_dir
    lines = [
        "tengine harness cluster is up "
        f"({cluster.up_seconds:.1f} s). Ctrl-C takes it down.",
        "",
        f"  console        {cluster.console.url}/executions   (API: {cluster.console.url}/docs)",
        f"  state dir      {state}",
        f"  tengine CLI    export TENGINE_STATE_DIR={state}; .venv/bin/tengine jobs",
        f"  broker         {cluster.broker.url}   (node log {cluster.broker.node_log})",
        f"  core log       {state / 'log' / 'core.log'}   (pid {cluster.core.pid})",
        f"  settings       {state / 'tengine.toml'}",
        f"  resources      {state / 'resources.toml'}",
        f"  toxiproxy API  {cluster.links.url}   (toxiproxy-python or curl "
        f"{cluster.links.url}/proxies)",
        "",
        "  jobnets stored: " + ", ".join(f"{name} ({script!r})"
                                        for name, script in TEST_SCRIPTS.items()),
        "",
    ]
    for server in cluster.servers.values():
        host = server.host
        lines += [
            f"  server {server.name}: {host.address}",
            f"    ssh          ssh -i {host.key_file} -o UserKnownHostsFile="
            f"{cluster.known_hosts_file} {host.user}@{host.address}   "
            f"(password {host.password})",
            f"    links        ssh {server.ssh.name}: {server.ssh.listen} -> "
            f"{server.ssh.upstream};  amqp {server.amqp.name}: {server.amqp.listen} -> "
            f"{server.amqp.upstream}",
            f"    watcher log  {server.state_dir_on_disk / 'log' / 'watcher.log'}",
        ]
    return "\n".join(lines)


def cmd_up(args: argparse.Namespace) -> int:
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    cluster = Cluster(args.servers, settings=dict(args.settings))
    try:
        cluster.up()
        first = next(iter(cluster.servers.values()))
        for name, script in TEST_SCRIPTS.items():
            cluster.define_job(name, first, script)
        print(describe(cluster), flush=True)
        stop.wait()
        print("taking the cluster down ...", file=sys.stderr, flush=True)
    finally:
        cluster.down()
    left = cluster.leftover_processes()
    if left:
        print(f"cluster down, but processes are left: {[p.pid for p in left]}", file=sys.stderr)
        return 1
    print("cluster down: no process of it is left", file=sys.stderr)
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return cmd_up(args)
    except (ClusterError, HostError, BrokerError) as exc:  # e.g. not root, no rabbitmq-server
        print(f"python -m harness {args.command}: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
