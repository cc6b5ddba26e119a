"""A private RabbitMQ node (Debian's ``rabbitmq-server``) under a state dir of its own.

The node never touches the system node: it has its own node name, AMQP port, distribution port,
epmd (started by us on its own port), data, logs, config, plugins and feature-flags files, all under
``state_dir``. The chosen ports are kept in ``state_dir/broker.json`` so that ``stop()`` then
``start()`` brings back the same node with its durable queue and persistent messages.

Every process we start carries ``TENGINE_BROKER_DIR=<state dir>`` in its environment; ``stop()``
and ``kill()`` find the node's processes by that mark, so they work from any process (a CLI, the
harness) and leave no ``beam`` behind. See docs/broker.md for the layout.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import grp
import ipaddress
import json
import logging
import os
import pwd
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import psutil

from tengine_min.logfmt import kv
from tengine_min.ports import NoFreePort, free_port

RABBITMQ_SERVER = Path("/usr/lib/rabbitmq/bin/rabbitmq-server")
EPMD = "epmd"
RABBITMQ_USER = "rabbitmq"
MARK_VARIABLE = "TENGINE_BROKER_DIR"
SETTINGS_FILE = "broker.json"
LOCK_FILE = "broker.lock"
# Ports are drawn below Linux's ephemeral range (32768..60999) so that an outgoing connection can
# never be holding our port when the node restarts; the system node's well-known ports are skipped.
PORT_RANGE = (20000, 32000)
RESERVED_PORTS = {25672}

log = logging.getLogger("tengine.broker")


class BrokerError(RuntimeError):
    """The private node could not be prepared, started or stopped; the message says why."""


@dataclass(frozen=True)
class BrokerSettings:
    """What identifies the node; persisted so that a restart reuses it."""

    node_name: str
    amqp_port: int
    dist_port: int
    epmd_port: int
    bind_host: str


def amqp_url(state_dir: str | Path) -> str:
    """The broker to use: ``TENGINE_AMQP_URL`` when set, else the private node of ``state_dir``."""
    external = os.environ.get("TENGINE_AMQP_URL", "").strip()
    if external:
        return external
    return Broker(Path(state_dir)).url


class Broker:
    """A private RabbitMQ node whose files all live under ``state_dir``.

    Needs root (the node runs as the ``rabbitmq`` user, like Debian's own script) or to be the
    ``rabbitmq`` user. ``state_dir`` belongs to the broker: it is chowned to ``rabbitmq``, so give
    it a folder of its own (e.g. ``<tengine state dir>/broker``).
    """

    def __init__(
        self,
        state_dir: Path,
        *,
        amqp_port: int | None = None,
        node_name: str | None = None,
        bind_host: str = "127.0.0.1",
    ) -> None:
        self.state_dir = Path(state_dir).resolve()
        _check_ipv4(bind_host)
        self.settings = self._load_or_choose_settings(amqp_port, node_name, bind_host)
        self._server: subprocess.Popen[bytes] | None = None
        self._epmd: subprocess.Popen[bytes] | None = None

    # ------------------------------------------------------------------ layout

    @property
    def client_host(self) -> str:
        """Where clients connect: the bind address, or loopback when bound to every address."""
        host = self.settings.bind_host
        return "127.0.0.1" if host in ("0.0.0.0", "localhost") else host

    @property
    def url(self) -> str:
        return f"amqp://guest:guest@{self.client_host}:{self.settings.amqp_port}/%2F"

    @property
    def node_name(self) -> str:
        return self.settings.node_name

    @property
    def amqp_port(self) -> int:
        return self.settings.amqp_port

    @property
    def log_dir(self) -> Path:
        return self.state_dir / "log"

    @property
    def node_log(self) -> Path:
        return self.log_dir / "node.log"

    @property
    def startup_log(self) -> Path:
        return self.log_dir / "startup.log"

    def _load_or_choose_settings(
        self, amqp_port: int | None, node_name: str | None, bind_host: str
    ) -> BrokerSettings:
        path = self.state_dir / SETTINGS_FILE
        if path.exists():
            try:
                stored = BrokerSettings(**json.loads(path.read_text()))
            except (ValueError, TypeError) as exc:
                raise BrokerError(f"{path}: not a broker settings file ({exc}); "
                                  "remove the state dir to start afresh") from exc
            for asked, kept, what in (
                (amqp_port, stored.amqp_port, "AMQP port"),
                (node_name, stored.node_name, "node name"),
            ):
                if asked is not None and asked != kept:
                    raise BrokerError(
                        f"{self.state_dir} holds a node with {what} {kept!r}, not {asked!r}: "
                        "use another state dir or drop the argument"
                    )
            return stored
        chosen: set[int] = set(RESERVED_PORTS)
        try:
            amqp = amqp_port if amqp_port is not None else free_port(exclude=chosen,
                                                                     within=PORT_RANGE)
            chosen.add(amqp)
            dist = free_port(exclude=chosen, within=PORT_RANGE)
            chosen.add(dist)
            epmd = free_port(exclude=chosen, within=PORT_RANGE)
        except NoFreePort as exc:
            raise BrokerError(str(exc)) from exc
        settings = BrokerSettings(
            node_name=node_name or f"tengine-{amqp}@localhost",
            amqp_port=amqp,
            dist_port=dist,
            epmd_port=epmd,
            bind_host=bind_host,
        )
        try:
            self.state_dir.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(".tmp")
            tmp.write_text(json.dumps(settings.__dict__, indent=2) + "\n")
            tmp.replace(path)  # atomic: a reader never sees half a settings file
        except OSError as exc:
            raise BrokerError(f"cannot write {path}: {exc.strerror}") from exc
        return settings

    def _environment(self) -> dict[str, str]:
        """Every RABBITMQ_* location points into the state dir: nothing is shared with the system
        node."""
        s = self.state_dir
        env = {
            "PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
            "LANG": "C.UTF-8",
            "HOME": str(s / "home"),  # the Erlang cookie lives here, private to this node
            MARK_VARIABLE: str(s),
            "RABBITMQ_NODENAME": self.settings.node_name,
            "RABBITMQ_DIST_PORT": str(self.settings.dist_port),
            "ERL_EPMD_PORT": str(self.settings.epmd_port),
            "RABBITMQ_CONF_ENV_FILE": str(s / "etc" / "rabbitmq-env.conf"),
            "RABBITMQ_CONFIG_FILE": str(s / "etc" / "rabbitmq.conf"),
            "RABBITMQ_ADVANCED_CONFIG_FILE": str(s / "etc" / "advanced.config"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(s / "etc" / "enabled_plugins"),
            "RABBITMQ_MNESIA_BASE": str(s / "mnesia"),
            "RABBITMQ_FEATURE_FLAGS_FILE": str(s / "mnesia" / "feature_flags"),
            "RABBITMQ_LOG_BASE": str(s / "log"),
            "RABBITMQ_LOGS": str(self.node_log),
            "RABBITMQ_PID_FILE": str(s / "run" / "node.pid"),
            "ERL_CRASH_DUMP": str(s / "log" / "erl_crash.dump"),
            # We run epmd ourselves; the node must not spawn an untracked one.
            "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS": (
                "-start_epmd false -kernel inet_dist_use_interface {127,0,0,1}"
            ),
        }
        return env

    def _config_text(self) -> str:
        host = self.settings.bind_host
        lines = [
            "# written by tengine_min.broker; rewritten at every start",
            f"listeners.tcp.default = {host}:{self.settings.amqp_port}",
            "log.console = false",
            "log.file.level = info",
        ]
        if _is_loopback(host):
            # guest may only log in over loopback (RabbitMQ's default): every client, including the
            # harness's proxy for job hosts, connects to 127.0.0.1.
            lines.append("loopback_users.guest = true")
        else:
            # Asked to listen beyond loopback: guest must work from there too.
            lines.append("loopback_users = none")
        return "\n".join(lines) + "\n"

    def _prepare_dirs(self) -> None:
        user = _rabbitmq_account()
        s = self.state_dir
        try:
            for sub in ("etc", "mnesia", "log", "run", "home"):
                (s / sub).mkdir(parents=True, exist_ok=True)
            (s / "etc" / "rabbitmq.conf").write_text(self._config_text())
            (s / "etc" / "enabled_plugins").write_text("[].\n")  # no plugins
            (s / "etc" / "rabbitmq-env.conf").write_text(
                "# empty: every setting comes from the environment\n")
            for path in [s, *s.rglob("*")]:
                os.chown(path, user.pw_uid, user.pw_gid, follow_symlinks=False)
        except OSError as exc:
            raise BrokerError(f"cannot prepare the broker dir {s}: {exc}") from exc
        _check_reachable(s, user)

    # ------------------------------------------------------------------ processes

    def _our_processes(self) -> list[psutil.Process]:
        """Every live process started for this node (found by the mark in its environment)."""
        mark = str(self.state_dir)
        found = []
        for proc in psutil.process_iter(["pid"]):
            try:
                if proc.status() == psutil.STATUS_ZOMBIE:
                    continue
                if proc.environ().get(MARK_VARIABLE) == mark:
                    found.append(proc)
            except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
                continue
        return found

    def _split(self, procs: list[psutil.Process]
               ) -> tuple[list[psutil.Process], list[psutil.Process]]:
        """(node processes, epmd processes)."""
        node: list[psutil.Process] = []
        epmd: list[psutil.Process] = []
        for proc in procs:
            try:
                (epmd if proc.name() == EPMD else node).append(proc)
            except psutil.NoSuchProcess:
                continue
        return node, epmd

    def _beam(self, procs: list[psutil.Process] | None = None) -> psutil.Process | None:
        for proc in procs if procs is not None else self._our_processes():
            try:
                if proc.name().startswith("beam"):
                    return proc
            except psutil.NoSuchProcess:
                continue
        return None

    def _reap(self) -> None:
        for popen in (self._server, self._epmd):
            if popen is not None:
                popen.poll()

    def status(self) -> dict:
        """running: the node's beam process is alive (it may still be booting or shutting down)."""
        beam = self._beam()
        return {
            "running": beam is not None,
            "pid": beam.pid if beam else None,
            "amqp_port": self.settings.amqp_port,
            "node": self.settings.node_name,
            "state_dir": str(self.state_dir),
            "url": self.url,
        }

    def accepts_connections(self, timeout: float = 2.0) -> bool:
        """Whether the node answers an AMQP protocol header with Connection.Start right now."""
        return _amqp_answers(self.client_host, self.settings.amqp_port, timeout)

    @contextlib.contextmanager
    def _exclusive(self) -> Iterator[None]:
        """One start/stop at a time per state dir, across processes (harness, CLI, tests)."""
        self.state_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.state_dir / LOCK_FILE, os.O_RDONLY | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # releases the lock

    def start(self, timeout: float = 60) -> None:
        """Start the node (or find it running) and return once AMQP accepts a connection."""
        if not RABBITMQ_SERVER.exists():
            raise BrokerError(
                f"{RABBITMQ_SERVER} not found: install Debian's broker "
                "(apt-get install rabbitmq-server)"
            )
        _rabbitmq_account()  # fails early, and clearly, without root
        deadline = time.monotonic() + timeout
        with self._exclusive():
            self._start(deadline)

    def _start(self, deadline: float) -> None:
        node, epmd = self._split(self._our_processes())
        if node:
            self._wait_ready(deadline)
            return
        self._prepare_dirs()
        self._check_ports_free(epmd_running=bool(epmd), deadline=deadline)
        log.info("broker starting %s", kv(node=self.settings.node_name,
                                             port=self.settings.amqp_port,
                                             state_dir=self.state_dir))
        try:
            if not epmd:
                self._start_epmd(deadline)
            self._start_server()
            self._wait_ready(deadline)
        except BaseException:
            self._kill_everything()  # a failed start leaves nothing running behind
            raise
        log.info("broker started %s", kv(node=self.settings.node_name, url=self.url))

    def _check_ports_free(self, epmd_running: bool, deadline: float) -> None:
        """Each port must be free. A port still held is waited for (at most 10 s, within the
        start deadline): right after a kill() or stop() the old node's sockets may outlive its
        process for a moment, and a restart must not fail on that."""
        ports = [("AMQP", self.settings.bind_host, self.settings.amqp_port),
                 ("distribution", "127.0.0.1", self.settings.dist_port)]
        if not epmd_running:
            ports.append(("epmd", "127.0.0.1", self.settings.epmd_port))
        wait_until = min(deadline, time.monotonic() + PORT_RELEASE_WAIT)
        for what, address, port in ports:
            problem = _bind_problem(port, address)
            while problem and "is taken" in problem and time.monotonic() < wait_until:
                time.sleep(0.2)
                problem = _bind_problem(port, address)
            if problem:
                raise BrokerError(f"cannot use the {what} port of node {self.settings.node_name}: "
                                  f"{problem}")

    def _spawn(self, argv: list[str], log_name: str) -> subprocess.Popen[bytes]:
        user = _rabbitmq_account()
        switch = os.getuid() != user.pw_uid
        with open(self.log_dir / log_name, "ab") as out:
            try:
                return subprocess.Popen(
                    argv,
                    env=self._environment(),
                    cwd=self.state_dir,
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,  # own process group: our crash never takes it down
                    user=user.pw_uid if switch else None,
                    group=user.pw_gid if switch else None,
                    extra_groups=[] if switch else None,
                )
            except OSError as exc:
                raise BrokerError(f"cannot run {argv[0]}: {exc}") from exc

    def _start_epmd(self, deadline: float) -> None:
        port = self.settings.epmd_port
        self._epmd = self._spawn([EPMD, "-port", str(port), "-address", "127.0.0.1"], "epmd.log")
        while not _port_accepts(port):
            if self._epmd.poll() is not None:
                raise BrokerError(f"epmd on port {port} exited with {self._epmd.returncode}:\n"
                                  f"{_tail(self.log_dir / 'epmd.log')}")
            if time.monotonic() > deadline:
                raise BrokerError(f"epmd did not listen on port {port} in time")
            time.sleep(0.05)

    def _start_server(self) -> None:
        self._server = self._spawn([str(RABBITMQ_SERVER)], "startup.log")

    def _wait_ready(self, deadline: float) -> None:
        while True:
            if self.accepts_connections(timeout=2.0):
                return
            self._reap()
            node, _ = self._split(self._our_processes())
            if not node:
                raise BrokerError(f"node {self.settings.node_name} exited during start-up\n"
                                  f"{self._log_tails()}")
            if time.monotonic() > deadline:
                raise BrokerError(f"node {self.settings.node_name} did not accept AMQP "
                                  f"connections on port {self.settings.amqp_port} in time\n"
                                  f"{self._log_tails()}")
            time.sleep(0.2)

    def _log_tails(self) -> str:
        return (f"--- {self.startup_log} (tail) ---\n{_tail(self.startup_log)}\n"
                f"--- {self.node_log} (tail) ---\n{_tail(self.node_log)}")

    def stop(self, timeout: float = 30) -> None:
        """Stop the node gracefully (SIGTERM: RabbitMQ flushes its queues), then its epmd."""
        deadline = time.monotonic() + timeout
        with self._exclusive():
            self._stop(deadline)

    def _stop(self, deadline: float) -> None:
        node, _ = self._split(self._our_processes())
        beam = self._beam(node)
        if beam is not None:
            log.info("broker stopping %s", kv(node=self.settings.node_name, pid=beam.pid))
            _signal(beam, signal.SIGTERM)
            if not self._wait_gone(lambda: self._split(self._our_processes())[0], deadline):
                log.warning("broker did not stop in time, killing %s",
                            kv(node=self.settings.node_name))
        self._kill_everything()
        left = self._our_processes()
        if left:
            raise BrokerError(f"processes of node {self.settings.node_name} survived stop: "
                              f"{[p.pid for p in left]}")
        if beam is not None:
            log.info("broker stopped %s", kv(node=self.settings.node_name))

    def kill(self) -> None:
        """SIGKILL the node (a crash); its epmd stays, as it would after a real crash."""
        node, _ = self._split(self._our_processes())
        log.info("broker killed %s", kv(node=self.settings.node_name,
                                         pids=",".join(str(p.pid) for p in node)))
        self._kill_node_processes()

    def _kill_everything(self) -> None:
        """The node's processes first (SIGKILL), then epmd (SIGTERM, SIGKILL if it lingers)."""
        self._kill_node_processes()
        _, epmd = self._split(self._our_processes())
        for proc in epmd:
            _signal(proc, signal.SIGTERM)
        if not self._wait_gone(self._our_processes, time.monotonic() + 5):
            for proc in self._our_processes():
                _signal(proc, signal.SIGKILL)
            self._wait_gone(self._our_processes, time.monotonic() + 5)
        self._reap()

    def _kill_node_processes(self) -> None:
        node, _ = self._split(self._our_processes())
        for proc in node:
            _signal(proc, signal.SIGKILL)
        deadline = time.monotonic() + 10
        # By pid, not by the mark in the environment: a killed beam that is still freeing its
        # memory can no longer show its environment, yet it has not exited (and holds its port).
        self._wait_gone(lambda: _still_running(node), deadline)
        self._wait_gone(lambda: self._split(self._our_processes())[0], deadline)
        self._reap()

    def _wait_gone(self, remaining: Callable[[], list[psutil.Process]], deadline: float) -> bool:
        while remaining():
            self._reap()
            if time.monotonic() > deadline:
                return False
            time.sleep(0.1)
        return True


# ---------------------------------------------------------------------- helpers


def _still_running(procs: list[psutil.Process]) -> list[psutil.Process]:
    """Those of `procs` that have not exited yet (a zombie has exited)."""
    running = []
    for proc in procs:
        try:
            if proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE:
                running.append(proc)
        except (psutil.NoSuchProcess, psutil.ZombieProcess):
            continue
    return running


def _rabbitmq_account() -> pwd.struct_passwd:
    try:
        user = pwd.getpwnam(RABBITMQ_USER)
    except KeyError:
        raise BrokerError(
            "no 'rabbitmq' user on this machine: install Debian's broker "
            "(apt-get install rabbitmq-server)"
        ) from None
    if os.getuid() not in (0, user.pw_uid):
        raise BrokerError(
            "starting a private RabbitMQ node needs root (to run it as the rabbitmq user) "
            "or the rabbitmq user itself; or set TENGINE_AMQP_URL to use an existing broker"
        )
    return user


def _check_reachable(state_dir: Path, user: pwd.struct_passwd) -> None:
    """The rabbitmq user must be able to walk down to the state dir (pytest's tmp dirs are 0700)."""
    groups = {user.pw_gid} | {g.gr_gid for g in grp.getgrall() if user.pw_name in g.gr_mem}
    for folder in reversed(state_dir.parents):
        st = folder.stat()
        if st.st_uid == user.pw_uid:
            ok = st.st_mode & 0o100
        elif st.st_gid in groups:
            ok = st.st_mode & 0o010
        else:
            ok = st.st_mode & 0o001
        if not ok:
            raise BrokerError(
                f"the rabbitmq user cannot enter {folder} (mode {oct(st.st_mode & 0o777)}), so it "
                f"cannot reach {state_dir}: put the broker state dir under a searchable path "
                "such as /tmp"
            )


def _is_loopback(host: str) -> bool:
    return host == "localhost" or host.startswith("127.")


def _check_ipv4(host: str) -> None:
    if host == "localhost":
        return
    try:
        ipaddress.IPv4Address(host)
    except ValueError:
        raise BrokerError(f"bind_host {host!r} is not an IPv4 address (e.g. 127.0.0.1)") from None


PORT_RELEASE_WAIT = 10.0  # seconds a restart waits for the old node's ports to be released


def _bind_problem(port: int, host: str = "127.0.0.1") -> str | None:
    """Why nothing could listen on host:port right now, or None when it could."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                return (f"{host}:{port} is taken by another process "
                        f"(see `ss -ltnp | grep {port}`); stop it or use another state dir")
            if exc.errno == errno.EADDRNOTAVAIL:
                return f"{host} is not an address of this machine"
            return f"cannot listen on {host}:{port}: {exc.strerror}"
    return None


def _amqp_answers(host: str, port: int, timeout: float) -> bool:
    """Send the AMQP 0-9-1 protocol header; a ready broker replies with a method frame (type 1)."""
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            sock.sendall(b"AMQP\x00\x00\x09\x01")
            return sock.recv(1) == b"\x01"
    except OSError:
        return False


def _port_accepts(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def _signal(proc: psutil.Process, signum: int) -> None:
    with contextlib.suppress(psutil.NoSuchProcess, psutil.ZombieProcess):
        proc.send_signal(signum)


def _tail(path: Path, lines: int = 40) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError as exc:
        return f"(cannot read: {exc.strerror})"
    return "\n".join(text.splitlines()[-lines:])
