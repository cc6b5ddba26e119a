"""Every fault a test injects goes through `cluster.faults` (Jepsen's nemesis): one verb per
fault, each a `Nemesis` of one kind, in a module of its own in this package.

    with cluster.faults.cut(s1.ssh):          # a fault with an end: healed at the block's end
        ...
    cluster.faults.power_off(s1)              # or the plain call, ended later by the test:
    cluster.faults.power_on(s1)               # (or by the cluster going down)
    cut = cluster.faults.cut(s1.ssh, how)     # how: "cut" (refused/reset) or "blackhole"
    cut.end()

kind (module)                   verb                                        its end
link-cut, link-blackhole        cut(link, how="cut"), blackhole(link)       heal(link)
link-latency, link-bandwidth    latency(link, ms, jitter, stream),          heal(link)
                                bandwidth(link, kbps, stream)
host-down                       power_off(server)                           power_on(server)
host-partition                  partition(server)                           heal(server)
host-pause                      pause(server): a hung server                resume(server)
process-kill                    kill(process, sig=SIGKILL): cluster.core,   restart(process);
                                cluster.console_process, s1.watchdog(job)   none for a watchdog
process-pause                   pause(process)                              resume(process)
broker-stop, broker-kill        stop_broker(), kill_broker()                start_broker()
bad-target                      bad_target(what): S09-S11, the definition   none

`failpoint(target, name, ...)` arms a failpoint (see `failpoint.py`): not a fault itself, the
point of the protocol where a process is held while a fault strikes.

Every verb returns the `Nemesis` (a context manager that ends the fault); every step is in the
history (`harness.history.Fault`). `teardown()` ends, newest first, what is still in effect; the
cluster calls it before it goes down.

Adding a kind: a module here with a `Nemesis` subclass (its `kind`, its `name` for the
coverage matrix, `invoke` and `teardown`), its entry in `KINDS`, and a verb below.
"""

from __future__ import annotations

import signal
from typing import Protocol

from harness.history import History
from harness.links import Link
from harness.servers import Server, Watchdog
from tengine_min.broker import Broker

from .bad_target import BadTarget
from .base import FaultError, Nemesis, Process
from .broker_kill import BrokerKill
from .broker_stop import BrokerStop
from .failpoint import Failpoint, FailpointTarget
from .host_down import HostDown
from .host_partition import HostPartition
from .host_pause import HostPause
from .link_bandwidth import LinkBandwidth
from .link_blackhole import LinkBlackhole
from .link_cut import LinkCut
from .link_latency import LinkLatency
from .process_kill import ProcessKill
from .process_pause import ProcessPause

KINDS: dict[str, type[Nemesis]] = {kind.kind: kind for kind in (
    LinkCut, LinkBlackhole, LinkLatency, LinkBandwidth, HostDown, HostPartition, HostPause,
    ProcessKill, ProcessPause, BrokerStop, BrokerKill, BadTarget)}

# The two ways the scenarios cut a link: refused/reset, and a silent black hole.
LINK_CUTS = ("cut", "blackhole")
LINK_KINDS = (LinkCut, LinkBlackhole, LinkLatency, LinkBandwidth)


class FaultyCluster(Protocol):
    """What of a cluster the faults reach (harness.cluster.Cluster)."""

    history: History
    broker: Broker | None
    servers: dict[str, Server]

    def start_again(self, process: Process) -> object:
        """Start a killed process of the cluster (the core, the console) again."""


class Faults:
    """The faults of one cluster (see the module docstring)."""

    def __init__(self, cluster: FaultyCluster) -> None:
        self.cluster = cluster
        self.in_effect: list[Nemesis] = []

    def inject(self, nemesis: Nemesis) -> Nemesis:
        """Start a fault of any kind; the verbs below make the `Nemesis` and call this."""
        return nemesis.start(self.cluster.history, self.in_effect)

    # -- links --

    def cut(self, link: Link, how: str = "cut") -> Nemesis:
        """Cut a link: ``how="cut"`` refuses new connections and closes live ones,
        ``how="blackhole"`` drops everything and closes nothing (one of LINK_CUTS)."""
        if how not in LINK_CUTS:
            raise FaultError(f"a link is cut as one of {', '.join(LINK_CUTS)}, not {how!r}")
        kind = LinkCut if how == "cut" else LinkBlackhole
        protocol, server = self._link_owner(link)
        return self.inject(kind(link, protocol, source=server))

    def blackhole(self, link: Link) -> Nemesis:
        return self.cut(link, "blackhole")

    def latency(self, link: Link, ms: int, jitter: int = 0, stream: str = "both") -> Nemesis:
        protocol, server = self._link_owner(link)
        return self.inject(LinkLatency(link, protocol, source=server, ms=ms, jitter=jitter,
                                       stream=stream))

    def bandwidth(self, link: Link, kbps: int, stream: str = "both") -> Nemesis:
        protocol, server = self._link_owner(link)
        return self.inject(LinkBandwidth(link, protocol, source=server, kbps=kbps,
                                         stream=stream))

    def heal(self, target: Link | Server) -> None:
        """End every fault on a link, or the partition of a server."""
        if isinstance(target, Link):
            self._end(LINK_KINDS, target, f"link {target.name}")
        else:
            self._end((HostPartition,), target.host, f"server {target.name} partitioned")

    # -- hosts --

    def power_off(self, server: Server) -> Nemesis:
        return self.inject(HostDown(server.host))

    def power_on(self, server: Server) -> None:
        self._end((HostDown,), server.host, f"server {server.name} powered off")

    def partition(self, server: Server) -> Nemesis:
        return self.inject(HostPartition(server.host))

    # -- processes (and a hung server) --

    def pause(self, target: Process | Server) -> Nemesis:
        """SIGSTOP a process; a server: every process of it (a hung server)."""
        if isinstance(target, Server):
            return self.inject(HostPause(target.host))
        role, name, source = self._process_names(target)
        return self.inject(ProcessPause(target, role=role, target=name, source=source))

    def resume(self, target: Process | Server) -> None:
        if isinstance(target, Server):
            self._end((HostPause,), target.host, f"server {target.name} paused")
        else:
            self._end((ProcessPause,), target, f"{target.name} paused")

    def kill(self, process: Process, sig: signal.Signals = signal.SIGKILL) -> Nemesis:
        """Send `sig` (SIGKILL: a crash, SIGTERM: a clean stop) and wait until the process is
        gone. The core and the console come back with `restart`; a watchdog does not."""
        start_again = None if isinstance(process, Watchdog) else (
            lambda: self.cluster.start_again(process))
        role, name, source = self._process_names(process)
        return self.inject(ProcessKill(process, role=role, target=name, source=source, sig=sig,
                                       start_again=start_again))

    def restart(self, process: Process, sig: signal.Signals = signal.SIGKILL) -> None:
        """Start a killed core or console again; a running one is killed (`sig`) first."""
        if isinstance(process, Watchdog):
            raise FaultError(f"{process!r}: a watchdog is not restarted (a rerun of its job "
                             f"starts a new one)")
        killed: list[Nemesis] = [n for n in self.in_effect
                                 if isinstance(n, ProcessKill) and n.subject == process]
        if not killed and not process.alive():  # ended by itself (a failpoint's exit)
            self.cluster.start_again(process)
            return
        if not killed:
            killed = [self.kill(process, sig)]
        for nemesis in killed:
            nemesis.end()

    # -- the broker --

    def stop_broker(self) -> Nemesis:
        """Stop the queue gracefully (persistent messages survive)."""
        return self.inject(BrokerStop(self._broker()))

    def kill_broker(self) -> Nemesis:
        """SIGKILL the broker node (a crash)."""
        return self.inject(BrokerKill(self._broker()))

    def start_broker(self) -> None:
        self._end((BrokerStop, BrokerKill), self._broker(), "broker stopped or killed")

    # -- failpoints and bad targets --

    def failpoint(self, target: FailpointTarget, name: str, action: str = "pause", *,
                  when: str | None = None, job: str | None = None, nth: int = 1,
                  count: int | None = None) -> Failpoint:
        """A point in the core (``cluster.core``) or on a server; use it with ``with``.
        `when`, `job`, `nth`, `count`: only those hits act (see failpoint.py)."""
        return Failpoint(target, name, action, history=self.cluster.history, when=when,
                         job=job, nth=nth, count=count)

    def bad_target(self, what: str, source: str = "harness") -> Nemesis:
        """Record a target made wrong on purpose (a script, an address, a credential)."""
        return self.inject(BadTarget(what, source=source))

    # -- the end --

    def teardown(self) -> None:
        """End every fault still in effect, newest first; every one is tried, the failures
        are raised together."""
        errors = []
        for nemesis in reversed(list(self.in_effect)):
            try:
                nemesis.end()
            except Exception as exc:  # noqa: BLE001 - teardown reports every failure at the end
                errors.append(f"{nemesis!r}: {type(exc).__name__}: {exc}")
                if nemesis in self.in_effect:
                    self.in_effect.remove(nemesis)  # tried once: the cluster goes down anyway
        if errors:
            raise FaultError("faults still in effect could not be ended: " + "; ".join(errors))

    # -- helpers --

    def _end(self, kinds: tuple[type[Nemesis], ...], subject: object, what: str) -> None:
        found = [n for n in self.in_effect if isinstance(n, kinds) and n.subject == subject]
        if not found:
            raise FaultError(f"nothing to end: no fault in effect on {what}")
        for nemesis in reversed(found):
            nemesis.end()

    def _link_owner(self, link: Link) -> tuple[str, str]:
        """(protocol, server) of one of the cluster's links."""
        for server in self.cluster.servers.values():
            if link is server.ssh:
                return "ssh", server.name
            if link is server.amqp:
                return "amqp", server.name
        raise FaultError(f"{link!r} is not a link of this cluster's servers")

    def _process_names(self, process: Process) -> tuple[str, str, str]:
        """The role (how the coverage matrix names it), target and source of a process."""
        if isinstance(process, Watchdog):
            return "watcher", f"watchdog of {process.job_path}", process.server.name
        return process.name, process.name, process.name

    def _broker(self) -> Broker:
        if self.cluster.broker is None:
            raise FaultError("the cluster has no broker (it is not up)")
        return self.cluster.broker


__all__ = ["KINDS", "LINK_CUTS", "BadTarget", "BrokerKill", "BrokerStop", "Failpoint",
           "FailpointTarget", "FaultError", "Faults", "HostDown", "HostPartition", "HostPause",
           "LinkBandwidth", "LinkBlackhole", "LinkCut", "LinkLatency", "Nemesis", "Process",
           "ProcessKill", "ProcessPause"]
