"""Faults (Jepsen's nemesis): what the harness breaks, each one a line in the timeline.

- Links: `RecordedLink` wraps a `harness.links.Link` (a Toxiproxy proxy) so that cut, blackhole,
  heal, latency and bandwidth are recorded.
- Processes: `Faults` stops and starts the broker, SIGKILLs or pauses (SIGSTOP/SIGCONT) the
  core, the console or a job's watchdog on its server, and restarts the core.
"""

from __future__ import annotations

import json
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from harness.links import Link

from .observers import JobView
from .report import Timeline

if TYPE_CHECKING:
    from .cluster import Cluster, Server
    from .processes import ManagedProcess


# The two ways the scenarios cut a link: refused/reset, and a silent black hole.
LINK_CUTS = ("cut", "blackhole")


class RecordedLink:
    """A link whose faults are written to the timeline; other attributes are the Link's."""

    def __init__(self, link: Link, timeline: Timeline, source: str) -> None:
        self.link = link
        self.timeline = timeline
        self.source = source

    def __repr__(self) -> str:
        return f"RecordedLink({self.link!r})"

    def __getattr__(self, name: str) -> Any:  # listen, port, upstream, enabled, toxics ...
        return getattr(self.link, name)

    def cut(self) -> None:
        self.link.cut()
        self._note("cut (refused, live connections closed)")

    def blackhole(self) -> None:
        self.link.blackhole()
        self._note("blackholed (data dropped both ways, nothing closes)")

    def unblackhole(self) -> None:
        self.link.unblackhole()
        self._note("blackhole removed (held connections closed)")

    def heal(self) -> None:
        self.link.heal()
        self._note("healed")

    def latency(self, ms: int, jitter: int = 0, stream: str = "both") -> None:
        self.link.latency(ms, jitter, stream)
        self._note(f"latency {ms} ms +/- {jitter} ({stream})")

    def bandwidth(self, kbps: int, stream: str = "both") -> None:
        self.link.bandwidth(kbps, stream)
        self._note(f"bandwidth {kbps} KB/s ({stream})")

    def cut_as(self, how: str) -> None:
        """`cut()` or `blackhole()`, by name (one of LINK_CUTS): for tests made for both."""
        if how not in LINK_CUTS:
            raise ValueError(f"a link is cut as one of {', '.join(LINK_CUTS)}, not {how!r}")
        self.cut() if how == "cut" else self.blackhole()

    def restore(self, how: str) -> None:
        """Undo `cut_as(how)`."""
        if how not in LINK_CUTS:
            raise ValueError(f"a link is cut as one of {', '.join(LINK_CUTS)}, not {how!r}")
        self.heal() if how == "cut" else self.unblackhole()

    @contextmanager
    def down(self) -> Iterator[RecordedLink]:
        self.cut()
        try:
            yield self
        finally:
            self.heal()

    @contextmanager
    def blackholed(self) -> Iterator[RecordedLink]:
        self.blackhole()
        try:
            yield self
        finally:
            self.unblackhole()

    def _note(self, what: str) -> None:
        self.timeline.add("fault", f"link {self.link.name} {what}", source=self.source)


class Faults:
    """Process faults on a cluster."""

    def __init__(self, cluster: Cluster) -> None:
        self.cluster = cluster

    @property
    def timeline(self) -> Timeline:
        return self.cluster.timeline

    # -- the broker --

    def stop_broker(self) -> None:
        """Stop the queue (RabbitMQ, gracefully: persistent messages survive)."""
        self.timeline.add("fault", "stopping the broker", source="broker")
        self.cluster.broker.stop()
        self.timeline.add("fault", "broker stopped", source="broker")

    def start_broker(self) -> None:
        self.timeline.add("fault", "starting the broker", source="broker")
        self.cluster.broker.start()
        self.timeline.add("fault", "broker started (accepts AMQP)", source="broker")

    def kill_broker(self) -> None:
        """SIGKILL the broker node (a crash)."""
        self.cluster.broker.kill()
        self.timeline.add("fault", "broker killed (SIGKILL)", source="broker")

    def bad_target(self, what: str, source: str = "harness") -> None:
        """Record a target made wrong on purpose (a script, an address, a credential): the
        fault of S09-S11 is in the definition, not in a process or a link."""
        self.timeline.add("fault", f"bad target: {what}", source=source)

    # -- the core, the console --

    def kill(self, process: ManagedProcess, sig: signal.Signals = signal.SIGKILL) -> None:
        process.signal(sig)
        self.timeline.add("fault", f"{process.name} pid {process.pid} sent {sig.name}",
                          source=process.name)

    def pause(self, process: ManagedProcess) -> None:
        self.kill(process, signal.SIGSTOP)

    def resume(self, process: ManagedProcess) -> None:
        self.kill(process, signal.SIGCONT)

    def restart_core(self, sig: signal.Signals = signal.SIGKILL) -> None:
        """Kill the core (SIGKILL by default; SIGTERM for a clean stop) and start a new one."""
        core = self.cluster.core
        if core.alive():
            self.kill(core, sig)
            core.wait(30)
        self.cluster.start_core()
        self.timeline.add("fault", f"core restarted, pid {self.cluster.core.pid}",
                          source="core")

    # -- a whole server --

    def power_off(self, server: Server) -> None:
        """Every process of the server dies and its cable is out (a crash, not a shutdown)."""
        server.host.down()
        self.timeline.add("fault", f"host {server.name} powered off", source=server.name)

    def partition(self, server: Server) -> None:
        """The cable is pulled: the server runs on, nothing reaches it or leaves it."""
        server.host.partition()
        self.timeline.add("fault", f"host {server.name} partitioned", source=server.name)

    def heal(self, server: Server) -> None:
        server.host.heal()
        self.timeline.add("fault", f"host {server.name} healed", source=server.name)

    # -- a job's watchdog on its server --

    def watchdog_pid(self, server: Server, job: JobView | str) -> int:
        """The pid (inside the server) of the watchdog of a job, from its job dir."""
        job_id = job.id if isinstance(job, JobView) else job
        jobs = server.state_dir_on_disk / "jobs"
        candidates = sorted((d for d in jobs.glob(f"{job_id}*")
                             if d.name == job_id or d.name.startswith(f"{job_id}.")),
                            key=lambda d: d.stat().st_mtime)
        if not candidates:
            raise AssertionError(f"no job dir for {job_id} on {server.name} "
                                 f"(looked in {jobs})")
        info = json.loads((candidates[-1] / "watchdog.json").read_text())
        return int(info["pid"])

    def signal_watchdog(self, server: Server, job: JobView | str,
                        sig: signal.Signals = signal.SIGKILL) -> int:
        pid = self.watchdog_pid(server, job)
        done = server.host.run(["kill", f"-{sig.name.removeprefix('SIG')}", str(pid)])
        if done.returncode != 0:
            raise AssertionError(f"kill -{sig.name} {pid} on {server.name} failed: "
                                 f"{done.stderr.strip()}")
        self.timeline.add("fault", f"watchdog pid {pid} of job "
                                   f"{job.name_path if isinstance(job, JobView) else job} "
                                   f"sent {sig.name}", source=server.name)
        return pid

    def kill_watchdog(self, server: Server, job: JobView | str) -> int:
        return self.signal_watchdog(server, job, signal.SIGKILL)

    def pause_watchdog(self, server: Server, job: JobView | str) -> int:
        return self.signal_watchdog(server, job, signal.SIGSTOP)

    def resume_watchdog(self, server: Server, job: JobView | str) -> int:
        return self.signal_watchdog(server, job, signal.SIGCONT)
