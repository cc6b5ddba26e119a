"""A whole Tengine cluster on this machine, for one test or by hand (`python -m harness up`).

    with Cluster(servers=2) as cluster:        # broker, servers, links, core, console
        s1 = cluster.server("s1")
        run = cluster.run("long_job", server=s1)
        cluster.faults.cut(s1.ssh)                 # every fault goes through cluster.faults
        job = run.wait_for_job("/long_job/j1", phase="error")

What runs, and how it is wired:

- a private RabbitMQ node (`tengine_min.broker.Broker`), or one shared across tests;
- N virtual servers (`harness.hosts.LocalBackend`: network namespaces running the real sshd);
- per server two Toxiproxy links (`harness.links`): ``ssh-<server>`` (core -> the server's sshd)
  and ``amqp-<server>`` (the server's watchers -> the broker, listening on the bridge's gateway);
- `tengine core` and `tengine console` as processes of their own, on one state dir whose
  `tengine.toml` holds the short but production-shaped settings and whose `resources.toml`
  names the servers (ssh transport, through their links) and their credentials;
- the observers: a bus recorder, a phase poller on the console's API, the logs;
- `history` (harness.history): what the test did and saw; `faults` (harness.faults).

`down()` ends the faults still in effect and removes everything, trying every step even when one
fails, and says what it could not.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Self

import pika
import psutil

from harness.hosts import LocalBackend
from harness.links import Links
from tengine_min.broker import Broker
from tengine_min.bus import topology
from tengine_min.ports import free_port

from .faults import Faults, Process
from .history import ClusterStep, History, LogFact, Operation
from .logs import CoreLog, line_fact, line_job, line_time
from .observers import ConsoleClient, RunView, event_summary
from .processes import ManagedProcess, kill_all, processes_mentioning
from .recorders import BusRecorder, PhasePoller
from .report import Evidence
from .servers import Server
from .waiting import wait_for

REPO = Path(__file__).resolve().parent.parent
WORK_PREFIX = "tengine-harness-"  # not the hosts' "tgh-": their cleanup removes /tmp/tgh-*
START_TIMEOUT = 30.0  # s for the core or the console to be ready

# Short but production-shaped: the same settings a user sets, only shorter times.
DEFAULT_SETTINGS: dict[str, Any] = {
    "heartbeat_interval": 1,
    "heartbeat_expiry": 5,
    "publish_retry_count": 30,
    "publish_retry_interval": 0.5,
    "command_retry_count": 0,
    "command_retry_interval": 1,
    "command_timeout": 30,
    "watcher_start_timeout": 20,
    "relay_poll_interval": 0.2,
    "schedule_interval": 0.2,
    "shutdown_grace": 5,
    "log_level": "DEBUG",
}

# Scripts of the standard test jobs (run by the server's shell as the test user).
TEST_SCRIPTS = {
    "test_job": "echo tengine harness test job on $MM_SERVER_NAME",
    "long_job": "sleep 10",
}


class ClusterError(RuntimeError):
    """The cluster could not be brought up or taken down; the message says which part and why."""




# --- the cluster ----------------------------------------------------------------------------------


class Cluster:
    """Broker, servers, links, core and console; `up()` starts them, `down()` removes them."""

    def __init__(self, servers: int | Sequence[str] = 1, *,
                 settings: Mapping[str, Any] | None = None, broker: Broker | None = None,
                 history: History | None = None, transport: str = "ssh") -> None:
        self.server_names = ([f"s{i}" for i in range(1, servers + 1)]
                             if isinstance(servers, int) else list(servers))
        self.settings = {**DEFAULT_SETTINGS, **(settings or {})}
        self.history = history or History()
        self.transport = transport
        self.work_dir: Path | None = None
        self.broker: Broker | None = broker
        self.owns_broker = broker is None
        self.backend: LocalBackend | None = None
        self.links: Links | None = None
        self.servers: dict[str, Server] = {}
        self.core: ManagedProcess | None = None
        self.console_process: ManagedProcess | None = None
        self.console: ConsoleClient | None = None
        self.recorder: BusRecorder | None = None
        self.poller: PhasePoller | None = None
        self.runs: list[RunView] = []
        self.started_pids: set[int] = set()
        self.faults = Faults(self)
        self.up_seconds: float | None = None
        self._core_runs = 0

    # -- paths --

    @property
    def state_dir(self) -> Path:
        return self._work() / "state"

    @property
    def known_hosts_file(self) -> Path:
        return self._work() / "known_hosts"

    @property
    def core_log(self) -> CoreLog:
        return CoreLog(self.state_dir / "log" / "core.log")

    def _work(self) -> Path:
        if self.work_dir is None:
            raise ClusterError("the cluster is not up")
        return self.work_dir

    def env(self) -> dict[str, str]:
        """The environment of the cluster's processes: this one's, without any TENGINE_ or MM_
        variable, and the state dir. Everything else comes from the state dir's files."""
        env = {k: v for k, v in os.environ.items() if not k.startswith(("TENGINE_", "MM_"))}
        env["TENGINE_STATE_DIR"] = str(self.state_dir)
        return env

    # -- up and down --

    def __enter__(self) -> Self:
        return self.up()

    def __exit__(self, *exc_info: object) -> None:
        self.down()

    def up(self) -> Self:
        started = time.monotonic()
        self.history.add(ClusterStep(step="bringing up",
                                     detail=f"{len(self.server_names)} server(s)"))
        try:
            self._up()
        except BaseException:
            try:
                self.down()
            except ClusterError as exc:
                self.history.note(f"teardown after a failed start: {exc}")
            raise
        self.up_seconds = time.monotonic() - started
        self.history.add(ClusterStep(step="cluster up", seconds=self.up_seconds))
        return self

    def _up(self) -> None:
        self.work_dir = Path(tempfile.mkdtemp(prefix=WORK_PREFIX, dir="/tmp"))
        self.work_dir.chmod(0o755)  # the broker runs as the rabbitmq user and must get in
        self.state_dir.mkdir()
        # The broker boots (seconds) while the servers are made.
        broker_error: list[BaseException] = []
        broker_thread = threading.Thread(target=self._start_broker, args=(broker_error,),
                                         name="broker-start")
        broker_thread.start()
        try:
            self.backend = LocalBackend()
            started = time.monotonic()
            # The first create waits for the hosts lock while another run holds the hosts.
            hosts = [self.backend.create(name) for name in self.server_names]
            self.history.add(ClusterStep(step="servers ready",
                                         seconds=time.monotonic() - started,
                                         detail="including any wait for the hosts lock"))
        finally:
            broker_thread.join()
        if broker_error:
            raise broker_error[0]
        assert self.broker is not None
        self.links = Links().start()
        if self.links.server is not None and self.links.server.process is not None:
            self.started_pids.add(self.links.server.process.pid)
        for host in hosts:
            ssh = self.links.link(f"ssh-{host.name}", "127.0.0.1:0",
                                  f"{host.address}:{host.ssh_port}")
            amqp = self.links.link(f"amqp-{host.name}", f"{self.backend.gateway}:0",
                                   f"127.0.0.1:{self.broker.amqp_port}")
            self.servers[host.name] = Server(host, ssh, amqp, history=self.history,
                                             known_hosts=self.known_hosts_file)
            self.history.add(ClusterStep(step="server ready", source=host.name,
                                         detail=f"{host.name} at {host.address}: ssh via "
                                                f"{ssh.listen}, broker via {amqp.listen}"))
        self.known_hosts_file.write_text("".join(h.known_hosts_line() + "\n" for h in hosts))
        self._write_settings()
        self._write_resources()
        self.start_core()
        self.start_console()
        self.recorder = BusRecorder(self.broker.url, self.history,
                                    float(self.settings["heartbeat_interval"]))
        self.recorder.start()
        assert self.console is not None  # start_console() set it
        self.poller = PhasePoller(self.console, self.history)
        self.poller.start()

    def _start_broker(self, errors: list[BaseException]) -> None:
        started = time.monotonic()
        try:
            if self.broker is None:
                self.broker = Broker(self._work() / "broker")
                self.broker.start()
            else:  # shared: running again after a test that stopped it, and empty
                self.broker.start()
                purge_event_queue(self.broker.url)
            self.history.add(ClusterStep(step="broker ready", seconds=time.monotonic() - started,
                                         source="broker"))
        except BaseException as exc:  # noqa: BLE001 - handed to the main thread
            errors.append(exc)

    def _write_settings(self) -> None:
        assert self.broker is not None
        values = {**self.settings, "amqp_url": self.broker.url}
        lines = ["# written by the harness: the cluster's settings"]
        lines += [f"{key} = {json.dumps(value)}" for key, value in values.items()]
        (self.state_dir / "tengine.toml").write_text("\n".join(lines) + "\n")

    def _write_resources(self) -> None:
        """One ssh server and one password credential per server, both named after it."""
        assert self.backend is not None
        watcher = str(Path(sys.prefix) / "bin" / "tengine-watcher")
        lines = ["# written by the harness: the cluster's servers, reached through their links"]
        for server in self.servers.values():
            host = server.host
            lines += [
                f"[servers.{server.name}]",
                f"transport = {json.dumps(self.transport)}",
                'address = "127.0.0.1"',
                f"ssh_port = {server.ssh.port}",
                f"host_key = {json.dumps(host.host_key)}",
                f"amqp_url = \"amqp://guest:guest@{server.amqp.listen}/%2F\"",
                f"watcher_command = {json.dumps(watcher)}",
                f"watcher_state_dir = {json.dumps(host.state_dir)}",
                "",
                f"[credentials.{server.name}]",
                'type = "ssh_password"',
                f"username = {json.dumps(host.user)}",
                f"password = {json.dumps(host.password)}",
                "",
            ]
        (self.state_dir / "resources.toml").write_text("\n".join(lines))

    def start_core(self) -> ManagedProcess:
        """Start `tengine core` and wait for its `core ready` line."""
        self._core_runs += 1
        core = ManagedProcess("core", [sys.executable, "-m", "tengine_min.cli", "core"],
                              self.env(), self._work() / f"core-{self._core_runs}.out",
                              self.state_dir).start()
        self.core = core
        self.started_pids.add(core.pid)
        try:
            wait_for(lambda: not core.alive() or
                     self.core_log.matching(rf"core ready pid={core.pid}\b"),
                     timeout=START_TIMEOUT, what=f"core {core.pid} to be ready")
        except AssertionError:
            core.stop()
            raise ClusterError(f"the core did not get ready in {START_TIMEOUT:g} s:\n"
                               f"{core.log_tail()}") from None
        if not core.alive():
            raise ClusterError(f"the core exited with {core.returncode}:\n"
                               f"{core.log_tail()}")
        self.history.add(ClusterStep(step="core ready", pid=core.pid, source="core"))
        return core

    def start_console(self, port: int | None = None) -> ManagedProcess:
        """Start `tengine console` (on `port`, else a free one) and wait until it answers."""
        port = port or free_port()
        console = ManagedProcess("console", [sys.executable, "-m", "tengine_min.console",
                                             "--port", str(port)],
                                 self.env(), self._work() / "console.out", self.state_dir).start()
        self.console_process = console
        self.started_pids.add(console.pid)
        url = f"http://127.0.0.1:{port}"
        # Started again on its port: the same client, so the poller and the runs keep it.
        client = self.console if self.console and self.console.url == url else ConsoleClient(url)
        try:
            wait_for(lambda: not console.alive() or client.answers(), timeout=START_TIMEOUT,
                     what="the console to answer", interval=0.1)
        except AssertionError:
            console.stop()
            raise ClusterError(f"the console did not answer in {START_TIMEOUT:g} s:\n"
                               f"{console.log_tail()}") from None
        if not console.alive():
            raise ClusterError(f"the console exited with {console.returncode}:\n"
                               f"{console.log_tail()}")
        self.console = client
        self.history.add(ClusterStep(step="console ready", pid=console.pid,
                                     detail=f"at {client.url}", source="console"))
        return console

    def down(self) -> None:
        """Remove everything; every step is tried, the failures are raised together."""
        started = time.monotonic()
        errors: list[str] = []

        def attempt(what: str, step: Callable[[], object]) -> None:
            try:
                step()
            except Exception as exc:  # noqa: BLE001 - teardown reports every failure at the end
                errors.append(f"{what}: {type(exc).__name__}: {exc}")

        attempt("end the faults still in effect", self.faults.teardown)
        if self.poller is not None:
            attempt("stop the phase poller", self.poller.stop)
        if self.recorder is not None:
            attempt("stop the bus recorder", self.recorder.stop)
        for process in (self.console_process, self.core):
            if process is not None:
                attempt(f"stop the {process.name}", process.stop)
        if self.console is not None:
            self.console.close()
        if self.links is not None:
            attempt("stop the links", self.links.close)
        if self.backend is not None:
            attempt("remove the servers", self.backend.destroy_all)
        if self.broker is not None:
            if self.owns_broker:
                attempt("stop the broker", self.broker.stop)
            elif not self.broker.status()["running"]:
                attempt("start the shared broker again", self.broker.start)
        attempt("kill what is left", self._kill_leftover_processes)
        if self.work_dir is not None:
            shutil.rmtree(self.work_dir, ignore_errors=True)
        self.poller = self.recorder = self.console = None
        self.links = self.backend = None
        self.servers.clear()
        self.history.add(ClusterStep(step="cluster down", seconds=time.monotonic() - started))
        if errors:
            raise ClusterError("cluster teardown left things behind: " + "; ".join(errors))

    def _kill_leftover_processes(self) -> None:
        kill_all(self.leftover_processes())

    def leftover_processes(self) -> list[psutil.Process]:
        """Live processes the cluster started, or that name its work dir."""
        found: dict[int, psutil.Process] = {}
        for pid in self.started_pids:
            try:
                proc = psutil.Process(pid)
                if proc.status() != psutil.STATUS_ZOMBIE:
                    found[pid] = proc
            except psutil.NoSuchProcess:
                pass
        if self.work_dir is not None:
            found.update((proc.pid, proc) for proc in processes_mentioning(self.work_dir))
        return list(found.values())

    # -- what a scenario uses --

    def server(self, name: str) -> Server:
        try:
            return self.servers[name]
        except KeyError:
            raise ClusterError(f"no server {name!r} in this cluster (it has "
                               f"{', '.join(self.servers) or 'none'})") from None

    def start_again(self, process: Process) -> ManagedProcess:
        """Start the core or the console again after it was killed (`faults.restart`)."""
        if process is self.core:
            return self.start_core()
        if process is self.console_process and self.console is not None:
            return self.start_console(port=int(self.console.url.rpartition(":")[2]))
        raise ClusterError(f"{process!r} is not the cluster's core or console")

    def add_resources(self, toml: str) -> None:
        """Add servers or credentials to the resource file, and restart the core cleanly so that
        it reads them (tengined reads its resources at start, as Tengine's did)."""
        path = self.state_dir / "resources.toml"
        path.write_text(path.read_text() + "\n" + toml)
        assert self.core is not None
        self.core.stop()
        self.start_core()
        self.history.add(Operation(action="reload", value="resources added",
                                   source="harness"))

    def load(self, definition: str, name: str = "definitions.yaml") -> None:
        """Validate and store jobnet definitions (YAML text) with `tengine load`."""
        path = self._work() / name
        path.write_text(definition)
        done = subprocess.run([sys.executable, "-m", "tengine_min.cli", "load", str(path)],
                              env=self.env(), capture_output=True, text=True, timeout=60)
        if done.returncode != 0:
            raise ClusterError(f"tengine load {path} exited {done.returncode}:\n"
                               f"{done.stdout}{done.stderr}")

    def define_job(self, jobnet: str, server: Server | str, script: str, *,
                   credential: str | None = None) -> None:
        """Store a root jobnet `jobnet` with one job `j1` running `script` on `server` (a
        server's name may name one of the resources only), as `credential` (default: the
        server's own)."""
        name = server if isinstance(server, str) else server.name
        self.load(one_job_definition(jobnet, name, script, credential), f"{jobnet}.yaml")

    def run(self, jobnet: str, *, server: Server | None = None, script: str | None = None,
            timeout_min: int | None = None) -> RunView:
        """Run a jobnet from the console, as a person would (``POST /api/jobnets/{name}/run``).

        With `server`, the jobnet is first stored as one job ``j1`` on that server running
        `script` (default: the standard script of that name in TEST_SCRIPTS)."""
        if self.console is None or self.poller is None:
            raise ClusterError("the cluster is not up")
        if server is not None:
            if script is None:
                if jobnet not in TEST_SCRIPTS:
                    raise ClusterError(f"no standard script for {jobnet!r} (known: "
                                       f"{', '.join(TEST_SCRIPTS)}); give script=")
                script = TEST_SCRIPTS[jobnet]
            self.define_job(jobnet, server, script)
        body = {"timeout_min": timeout_min} if timeout_min else None
        answer = self.console.post(f"/api/jobnets/{jobnet}/run", body)
        run = RunView(self.console, answer["execution_id"], self.history, poller=self.poller)
        self.runs.append(run)
        self.poller.watch(run.execution_id)
        self.history.add(Operation(action="run", path=jobnet, execution=run.execution_id,
                                   source="console"))
        return run

    # -- evidence at the end of a scenario --

    def gather_evidence(self, screenshot: Callable[[str], bytes] | None = None) -> Evidence:
        """Job states, event rows, watcher log lines (also into the history) and a screenshot
        of the last run's monitor. `screenshot(url) -> bytes` takes it (see report)."""
        evidence = Evidence()
        if self.poller is not None:
            self.poller.poll_once()
        job_ids: set[str] = set()
        for run in self.runs:
            try:
                jobs = run.jobs()
                evidence.jobs += [job.as_row() for job in jobs]
                job_ids |= {job.id for job in jobs}
                evidence.events += [
                    {"occurred_at": row["occurred_at"], "level": row["level"],
                     "event_type_name": row["event_type_name"],
                     "source_name": row["source_name"], "summary": event_summary(row)}
                    for row in run.events()]
            except Exception as exc:  # noqa: BLE001 - the console may be down (a fault)
                evidence.notes.append(f"console not readable for {run.execution_id}: {exc}")
        for server in self.servers.values():
            try:
                lines = server.log.read()
            except Exception as exc:  # noqa: BLE001 - report what could not be read
                evidence.notes.append(f"watcher log of {server.name} not readable: {exc}")
                continue
            if job_ids:
                lines = [line for line in lines if any(f"job_id={i}" in line for i in job_ids)]
            evidence.watcher_log[server.name] = lines
            for line in lines:
                self.history.add(LogFact(host=server.name, job=line_job(line),
                                         fact=line_fact(line), line=line, source=server.name,
                                         at=line_time(line) or time.time()))
        if screenshot is not None and self.runs and self.console is not None:
            url = f"{self.console.url}/executions/{self.runs[-1].execution_id}"
            try:
                evidence.screenshot_png = screenshot(url)
            except Exception as exc:  # noqa: BLE001 - no browser: the report says so
                evidence.notes.append(f"no screenshot of {url}: {exc}")
        return evidence


def purge_event_queue(url: str) -> None:
    """Empty Tengine's queue on a shared broker, so a cluster never sees a former one's events."""
    connection = pika.BlockingConnection(topology.connection_parameters(url, 5))
    try:
        channel = connection.channel()
        topology.declare(channel)
        channel.queue_purge(topology.QUEUE_NAME)
    finally:
        connection.close()


def one_job_definition(jobnet: str, server: str, script: str,
                       credential: str | None = None) -> str:
    """A root jobnet with one job ``j1``, in the YAML form of `tengine load`; the credential is
    the server's own (named after it) unless given."""
    return (f"jobnets:\n"
            f"  - jobnet: {json.dumps(jobnet)}\n"
            f"    server: {json.dumps(server)}\n"
            f"    credential: {json.dumps(credential or server)}\n"
            f"    children:\n"
            f"      - job: j1\n"
            f"        script: {json.dumps(script)}\n")
