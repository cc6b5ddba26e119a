"""The core's monitors and reconciliation, on a store in tmp with a fake clock: the verdicts go
through the outbox into the real kernel (tests/support/core_sim.py), as in the core process."""

from __future__ import annotations

import json
import logging
import socket
import threading

import pytest
from sqlalchemy import select

from support.core_sim import HOLD, IDENTITY, Sim
from support.templates import definitions, job, jobnet
from tengine_min.config import Settings
from tengine_min.core.monitors import (
    SERVER_DOWN,
    SERVER_UP,
    HeartbeatMonitor,
    HostMonitor,
    MonitorSettings,
    tcp_probe,
)
from tengine_min.core.reconcile import DONE, RETRY, WAIT, BadAnswer, Reconciler, parse_status
from tengine_min.events import names as ev
from tengine_min.events.envelope import Event
from tengine_min.resources import Resources, Server
from tengine_min.store import repo
from tengine_min.store.db import write_transaction
from tengine_min.store.schema import events
from tengine_min.transport.base import CannotConnect, CommandResult

LOG = logging.getLogger("tengine.core.test")


def running_sim(tmp_path, *jobs_) -> Sim:
    """An execution whose jobs run (held) until the test decides."""
    jobs_ = jobs_ or (job("a", "a.sh", server_name="s1"),)
    root = jobnet("r", *jobs_, boot=[j.name for j in jobs_])
    sim = Sim(tmp_path, definitions(root), "r",
              outcomes={f"/r/{j.name}": HOLD for j in jobs_})
    sim.start()
    sim.settle()
    assert set(sim.phases().values()) == {"running"}
    return sim


def monotonic_of(sim: Sim):
    return lambda: sim.clock().timestamp()


class Link:
    """The consumer's connection, as the monitor sees it."""

    def __init__(self) -> None:
        self.up = True

    def __call__(self) -> bool:
        return self.up


def heartbeat_monitor(sim: Sim, link: Link | None = None, *, expiry: float = 20,
                      unhealthy: set[str] | None = None, expired: list | None = None):
    return HeartbeatMonitor(
        sim.engine, expiry=expiry, identity=IDENTITY, log=LOG, is_connected=link or Link(),
        clock=sim.clock, monotonic=monotonic_of(sim),
        unhealthy_servers=lambda: set(unhealthy or ()),
        on_expired=(expired.extend if expired is not None else lambda ids: None))


def beat(sim: Sim, name_path: str, key: str = "hb-key-a") -> Event:
    vertex = sim.execution.vertex_by_path(name_path)
    event = Event(ev.JOB_HEARTBEAT, key=key, level="debug",
                  source_name=f"job:s1/1000/{sim.execution.root.id}/{vertex.id}",
                  sender_name="agent:host1/77/tengine_job_agent",
                  occurred_at=sim.clock().isoformat(),
                  properties={"job_id": vertex.id, "target_job_id": vertex.id})
    sim.send(event)
    return event


def no_handler_failed(sim: Sim) -> bool:
    return not [e for e in sim.processed if e.event_type_name.endswith(".error.tengined")]


def event_rows(sim: Sim, name: str) -> list:
    with sim.engine.connect() as conn:
        return list(conn.execute(select(events).where(events.c.event_type_name == name)))


# --- heartbeat expiry --------------------------------------------------------------------------

def test_a_silent_watcher_expires_after_the_expiry(tmp_path):
    sim = running_sim(tmp_path)
    expired: list[str] = []
    monitor = heartbeat_monitor(sim, expired=expired)
    assert monitor.check() == []  # first look: the clock starts
    sim.clock.advance(seconds=5)
    heartbeat = beat(sim, "/r/a")
    assert monitor.check() == []  # a new heartbeat: the clock starts again
    sim.clock.advance(seconds=19)
    assert monitor.check() == []
    sim.clock.advance(seconds=2)
    [fired] = monitor.check()
    assert (fired.event_type_name, fired.level, fired.key) == (
        ev.EXPIRED_JOB_HEARTBEAT, "error", heartbeat.key)  # the heartbeat series' key
    assert fired.source_name == heartbeat.source_name and fired.sender_name == heartbeat.sender_name
    assert monitor.check() == []  # once per run
    sim.pump()
    a = sim.vertex("/r/a")
    assert a.phase == "error"
    assert a.reason.startswith("watcher lost: no heartbeat for 21 s; whether the script still "
                               "runs and how it ends is unknown")
    [error] = sim.events_of(ev.ERROR_JOB)
    assert error.properties["message"] == a.reason
    assert expired == [a.id]
    # The event list shows one row for the series, now expired.
    [row] = [r for r in event_rows(sim, ev.EXPIRED_JOB_HEARTBEAT)]
    assert row.key == heartbeat.key and not event_rows(sim, ev.JOB_HEARTBEAT)
    assert no_handler_failed(sim)


def test_a_job_without_any_heartbeat_expires_too(tmp_path):
    sim = running_sim(tmp_path)
    monitor = heartbeat_monitor(sim, expiry=4)
    monitor.check()
    sim.clock.advance(seconds=4)
    [fired] = monitor.check()
    sim.pump()
    assert sim.vertex("/r/a").reason.startswith("watcher lost: no heartbeat for 4 s")
    assert fired.source_name.startswith("job:core-host/4242/")


def test_no_expiry_while_the_core_is_disconnected(tmp_path):
    sim = running_sim(tmp_path)
    link = Link()
    monitor = heartbeat_monitor(sim, link)
    monitor.check()
    link.up = False
    for _ in range(20):
        sim.clock.advance(seconds=5)
        assert monitor.check() == []
    link.up = True
    monitor.connected()
    sim.clock.advance(seconds=19)
    assert monitor.check() == []
    sim.clock.advance(seconds=1)
    assert len(monitor.check()) == 1


def test_every_clock_restarts_after_a_reconnect(tmp_path):
    sim = running_sim(tmp_path)
    link = Link()
    monitor = heartbeat_monitor(sim, link)
    monitor.check()
    sim.clock.advance(seconds=15)
    assert monitor.check() == []
    link.up = False  # the broker goes away for a second
    sim.clock.advance(seconds=1)
    assert monitor.check() == []
    link.up = True
    monitor.connected()
    sim.clock.advance(seconds=10)
    assert monitor.check() == []  # 26 s of silence, but only 10 s could have been heard
    sim.clock.advance(seconds=10)
    [fired] = monitor.check()
    assert fired.properties["message"].startswith("watcher lost: no heartbeat for 20 s")


def test_a_reconnect_the_monitor_did_not_see_still_restarts_the_clocks(tmp_path):
    sim = running_sim(tmp_path)
    link = Link()
    monitor = heartbeat_monitor(sim, link)
    monitor.check()
    sim.clock.advance(seconds=15)
    link.up = False
    monitor.check()  # paused
    link.up = True  # back, without a connected() call
    sim.clock.advance(seconds=6)
    assert monitor.check() == []
    sim.clock.advance(seconds=20)
    assert len(monitor.check()) == 1


def test_a_job_that_finished_is_not_expired(tmp_path):
    sim = running_sim(tmp_path)
    monitor = heartbeat_monitor(sim)
    monitor.check()
    sim.finish_held("/r/a", 0)
    sim.settle()
    sim.clock.advance(seconds=60)
    assert monitor.check() == []
    assert sim.phase("/r/a") == "success"


def test_a_finished_event_queued_before_the_verdict_wins(tmp_path):
    """The watcher reported in time, but its event was still on the queue when the monitor
    fired: the kernel handles the finished event first, and the expiry changes nothing."""
    sim = running_sim(tmp_path)
    monitor = heartbeat_monitor(sim)
    monitor.check()
    sim.clock.advance(seconds=21)
    assert len(monitor.check()) == 1  # in the outbox
    sim.finish_held("/r/a", 0)  # ahead of it on the queue
    sim.settle()
    a = sim.vertex("/r/a")
    assert (a.phase, a.reason, a.late_result) == ("success", None, None)
    assert not sim.events_of(ev.ERROR_JOB)
    assert sim.execution_row().phase == "success"
    assert no_handler_failed(sim)


def test_a_verdict_overtaken_by_a_heartbeat_is_ignored_and_can_come_again(tmp_path):
    """The watcher beat again while the verdict sat in the queue: the job is alive. If it then
    goes silent for a whole expiry again, the monitor says so again."""
    sim = running_sim(tmp_path)
    monitor = heartbeat_monitor(sim)
    monitor.check()
    sim.clock.advance(seconds=21)
    [verdict] = monitor.check()  # in the outbox
    assert verdict.properties["last_heartbeat_at"] is None
    sim.clock.advance(seconds=1)
    beat(sim, "/r/a")  # ahead of it on the queue
    sim.pump()
    a = sim.vertex("/r/a")
    assert (a.phase, a.reason) == ("running", None)
    assert not sim.events_of(ev.ERROR_JOB)
    assert monitor.check() == []  # the heartbeat is news: the clock starts again
    sim.clock.advance(seconds=19)
    assert monitor.check() == []
    sim.clock.advance(seconds=2)
    [again] = monitor.check()
    assert again.properties["last_heartbeat_at"] == a.last_heartbeat_at.isoformat()
    sim.pump()
    assert sim.vertex("/r/a").phase == "error"
    assert no_handler_failed(sim)


def test_a_second_verdict_of_the_same_heartbeat_series_is_not_taken_for_a_redelivery(tmp_path):
    """The verdicts of one job share its heartbeat series' key (one row on the event screen):
    an ignored first verdict must neither swallow the second nor keep the row."""
    sim = running_sim(tmp_path)
    monitor = heartbeat_monitor(sim)
    series = beat(sim, "/r/a", key="hb-series")
    monitor.check()
    sim.clock.advance(seconds=21)
    [first] = monitor.check()
    assert first.key == "hb-series"
    sim.clock.advance(seconds=1)
    beat(sim, "/r/a", key="hb-series")  # overtakes it
    sim.pump()
    assert sim.phase("/r/a") == "running"
    [row] = [r for r in event_rows(sim, ev.JOB_HEARTBEAT) if r.key == series.key]
    assert row.level == "debug"  # the screen shows the series beating again, not expired
    sim.clock.advance(seconds=1)
    beat(sim, "/r/a", key="hb-series")  # ... and the next heartbeat brings the row up to date
    assert [r.occurred_at for r in event_rows(sim, ev.JOB_HEARTBEAT)] == [sim.clock()]
    monitor.check()
    sim.clock.advance(seconds=21)
    [second] = monitor.check()
    assert second.key == first.key and second.properties["verdict_id"] != \
        first.properties["verdict_id"]
    sim.pump()
    assert sim.phase("/r/a") == "error"  # the second verdict was applied
    assert [r.key for r in event_rows(sim, ev.EXPIRED_JOB_HEARTBEAT)] == ["hb-series"]
    sim.send(second)  # a redelivery of it changes nothing
    assert no_handler_failed(sim)


def test_a_heartbeat_between_the_look_and_the_firing_spares_the_job(tmp_path):
    sim = running_sim(tmp_path)
    armed: list[bool] = []

    def servers_while_the_job_beats() -> set[str]:
        if armed:  # between the monitor's look at the jobs and its firing
            armed.clear()
            beat(sim, "/r/a")
        return set()

    monitor = HeartbeatMonitor(sim.engine, expiry=20, identity=IDENTITY, log=LOG,
                               is_connected=Link(), clock=sim.clock, monotonic=monotonic_of(sim),
                               unhealthy_servers=servers_while_the_job_beats)
    monitor.check()
    sim.clock.advance(seconds=21)
    armed.append(True)
    assert monitor.check() == []
    assert not armed and sim.phase("/r/a") == "running"


def test_a_failed_store_read_restarts_the_clocks(tmp_path):
    """While the store cannot be read the kernel cannot record heartbeats either: that silence
    is not the watcher's."""
    sim = running_sim(tmp_path)
    monitor = heartbeat_monitor(sim)
    monitor.check()
    sim.clock.advance(seconds=15)
    real_engine, monitor.engine = monitor.engine, None  # the store is gone
    with pytest.raises(AttributeError):
        monitor.check()
    monitor.engine = real_engine
    sim.clock.advance(seconds=10)  # 25 s since the first look: the store answers again
    assert monitor.check() == []
    sim.clock.advance(seconds=19)  # silence counts from the store's return
    assert monitor.check() == []
    sim.clock.advance(seconds=2)
    assert len(monitor.check()) == 1


def test_a_job_that_ends_while_the_monitor_looks_is_not_declared_lost(tmp_path):
    """The phase is read again in the transaction that fires the verdict."""
    sim = running_sim(tmp_path)
    armed: list[bool] = []

    def servers_while_the_job_ends() -> set[str]:
        # Called between the monitor's first look at the jobs and its firing.
        if armed:
            armed.clear()
            sim.finish_held("/r/a", 0)  # the job ends right then
        return set()

    monitor = HeartbeatMonitor(sim.engine, expiry=20, identity=IDENTITY, log=LOG,
                               is_connected=Link(), clock=sim.clock, monotonic=monotonic_of(sim),
                               unhealthy_servers=servers_while_the_job_ends)
    monitor.check()
    sim.clock.advance(seconds=21)
    armed.append(True)
    assert monitor.check() == []
    assert not armed  # the job did end during the check
    assert sim.phase("/r/a") == "success"


def test_a_job_on_a_failing_server_is_left_to_the_host_monitor(tmp_path):
    sim = running_sim(tmp_path)
    monitor = heartbeat_monitor(sim, unhealthy={"s1"})
    monitor.check()
    sim.clock.advance(seconds=60)
    assert monitor.check() == []


def test_a_dying_job_that_goes_silent_says_so(tmp_path):
    sim = running_sim(tmp_path)
    monitor = heartbeat_monitor(sim)
    sim.stop("/r/a")
    sim.commands.clear()  # the kill is sent, and nothing is ever heard again
    assert sim.phase("/r/a") == "dying"
    monitor.check()
    sim.clock.advance(seconds=20)
    monitor.check()
    sim.pump()
    a = sim.vertex("/r/a")
    assert (a.phase, a.stop_reason) == ("error", "user_stop")
    assert a.reason.startswith("watcher lost: no heartbeat for 20 s while it was being stopped; "
                               "whether the kill ended it is unknown")


def test_monitor_settings_follow_the_heartbeat_settings(tmp_path):
    default = MonitorSettings.from_settings(Settings(state_dir=tmp_path))
    assert (default.heartbeat_expiry, default.host_check_interval, default.host_down_after) == (
        20.0, 5.0, 3)
    # Down within 3 checks, before a heartbeat expires.
    assert default.host_check_interval * default.host_down_after < default.heartbeat_expiry
    off = MonitorSettings.from_settings(Settings(state_dir=tmp_path, heartbeat_interval=0))
    assert off.heartbeat_expiry == 0  # watchers send no heartbeat: nothing can expire


# --- host monitor ------------------------------------------------------------------------------

class Probe:
    def __init__(self) -> None:
        self.failing: dict[str, str] = {}
        self.asked: list[str] = []

    def __call__(self, server: Server) -> str | None:
        self.asked.append(server.name)
        return self.failing.get(server.name)


def two_server_sim(tmp_path) -> Sim:
    return running_sim(tmp_path, job("a", "a.sh", server_name="s1"),
                       job("b", "b.sh", server_name="s2"))


RESOURCES = Resources(servers={name: Server(name, transport="ssh", address=f"192.0.2.{i}")
                               for i, name in enumerate(("s1", "s2"), start=1)},
                      credentials={}, source="test")


def test_a_server_that_stops_answering_is_down_and_its_running_jobs_end_error(tmp_path):
    sim = two_server_sim(tmp_path)
    probe = Probe()
    downs, ups = [], []
    monitor = HostMonitor(sim.engine, RESOURCES, probe=probe, down_after=3, identity=IDENTITY,
                          log=LOG, clock=sim.clock,
                          on_down=lambda server, ids: downs.append((server, ids)),
                          on_up=ups.append)
    assert monitor.check() == []
    assert sorted(probe.asked) == ["s1", "s2"]
    probe.failing["s1"] = "192.0.2.1:22: Connection refused"
    assert monitor.check() == [] and monitor.check() == []
    assert monitor.unhealthy_servers() == {"s1"}
    assert sim.phase("/r/a") == "running"  # two failed checks are not down yet
    down, expired = monitor.check()
    assert (down.event_type_name, down.level) == (SERVER_DOWN, "error")
    a = sim.execution.vertex_by_path("/r/a")
    assert down.properties["job_ids"] == [a.id] and down.properties["server_name"] == "s1"
    assert expired.event_type_name == ev.EXPIRED_JOB_HEARTBEAT
    assert downs == [("s1", [a.id])]
    assert monitor.check() == []  # down once
    sim.pump()
    row = sim.vertex("/r/a")
    assert row.phase == "error"
    assert row.reason.startswith("server s1 went down: no answer to 3 checks in a row "
                                 "(192.0.2.1:22: Connection refused)")
    assert sim.phase("/r/b") == "running"  # the other server's job runs on
    assert len(event_rows(sim, SERVER_DOWN)) == 1
    probe.failing.clear()
    [up] = monitor.check()
    assert (up.event_type_name, up.properties["server_name"]) == (SERVER_UP, "s1")
    assert ups == ["s1"] and monitor.unhealthy_servers() == set()
    assert monitor.check() == []
    sim.pump()
    assert sim.vertex("/r/a").phase == "error"  # coming back changes no verdict
    assert no_handler_failed(sim)


def test_a_server_down_for_the_core_but_whose_jobs_still_beat_gives_them_no_verdict(tmp_path):
    """Only the core's way to the host is cut (its ssh port does not answer the core), the
    watchers still beat over the queue: those jobs are alive. A job there that is silent too
    gets the verdict; one that goes silent later is caught by heartbeat expiry."""
    sim = running_sim(tmp_path, job("a", "a.sh", server_name="s1"),
                      job("b", "b.sh", server_name="s1"))
    probe = Probe()
    host = HostMonitor(sim.engine, RESOURCES, probe=probe, down_after=3, identity=IDENTITY,
                       log=LOG, clock=sim.clock)
    heartbeat = heartbeat_monitor(sim, unhealthy=None)
    heartbeat.unhealthy_servers = host.unhealthy_servers
    heartbeat.check()
    probe.failing["s1"] = "192.0.2.1:22: connected, but no ssh banner in time"
    assert host.check() == []
    assert heartbeat.check() == [] and host.unhealthy_servers() == {"s1"}
    sim.clock.advance(seconds=5)
    beat(sim, "/r/a")  # a beats; b is silent
    assert host.check() == []
    sim.clock.advance(seconds=5)
    beat(sim, "/r/a")
    down, expired = host.check()
    a, b = sim.execution.vertex_by_path("/r/a"), sim.execution.vertex_by_path("/r/b")
    assert down.properties["job_ids"] == [b.id]
    assert down.properties["jobs_still_beating"] == [a.id]
    assert expired.properties["target_job_id"] == b.id
    sim.pump()
    assert (sim.phase("/r/a"), sim.phase("/r/b")) == ("running", "error")
    assert host.unhealthy_servers() == set()  # down, its verdicts given: expiry watches a
    heartbeat.check()
    sim.clock.advance(seconds=21)
    [lost] = heartbeat.check()
    assert lost.properties["target_job_id"] == a.id
    sim.pump()
    assert sim.vertex("/r/a").reason.startswith("watcher lost: no heartbeat for 21 s")
    assert no_handler_failed(sim)


def beating_server_sim(tmp_path, **host_options):
    """s1 with one job, failing its checks; returns (sim, probe, host monitor)."""
    sim = running_sim(tmp_path)
    probe = Probe()
    host = HostMonitor(sim.engine, RESOURCES, probe=probe, down_after=3, identity=IDENTITY,
                       log=LOG, clock=sim.clock, **host_options)
    probe.failing["s1"] = "192.0.2.1:22: connected, but no ssh banner in time"
    return sim, probe, host


def test_without_heartbeat_expiry_a_beating_job_gets_the_verdict_too(tmp_path):
    """Nothing else would ever judge it."""
    sim, _, host = beating_server_sim(tmp_path, heartbeats_watched=False)
    host.check()
    for _ in range(2):
        sim.clock.advance(seconds=5)
        beat(sim, "/r/a")
        fired = host.check()
    down, _expired = fired
    assert down.properties["job_ids"] == [sim.execution.vertex_by_path("/r/a").id]
    assert down.properties["jobs_still_beating"] == []


def test_a_heartbeat_sent_before_the_first_failed_check_does_not_count(tmp_path):
    """It was on its way when the host died: recorded after the check, sent before it."""
    sim, _, host = beating_server_sim(tmp_path)
    sent_before = sim.clock()
    sim.clock.advance(seconds=1)
    host.check()  # the first failed check
    late = beat(sim, "/r/a")  # recorded now ...
    vertex = sim.execution.vertex_by_path("/r/a")
    with write_transaction(sim.engine) as conn:  # ... but sent before the check
        repo.update_vertex(conn, vertex.id, last_heartbeat_at=sent_before)
    assert late.key
    host.check()
    down, _expired = host.check()
    assert down.properties["job_ids"] == [vertex.id]


def test_a_verdict_that_could_not_be_committed_keeps_its_baseline(tmp_path, monkeypatch):
    """The store fails while firing "server down": the next check must still know which jobs
    beat since the first failed check, and spare them."""
    from sqlalchemy.exc import OperationalError

    sim, _, host = beating_server_sim(tmp_path)
    host.check()
    sim.clock.advance(seconds=5)
    beat(sim, "/r/a")
    host.check()
    sim.clock.advance(seconds=5)
    beat(sim, "/r/a")
    real_enqueue = repo.enqueue

    def store_down(*args, **kwargs):
        raise OperationalError("INSERT", {}, Exception("disk I/O error"))

    monkeypatch.setattr(repo, "enqueue", store_down)
    assert host.check() == []  # logged, not raised: the other servers are still checked
    monkeypatch.setattr(repo, "enqueue", real_enqueue)
    [down] = host.check()
    assert down.properties["job_ids"] == []
    assert down.properties["jobs_still_beating"] == [sim.execution.vertex_by_path("/r/a").id]


def test_a_server_that_answers_again_in_time_is_not_down(tmp_path):
    sim = two_server_sim(tmp_path)
    probe = Probe()
    monitor = HostMonitor(sim.engine, RESOURCES, probe=probe, down_after=3, identity=IDENTITY,
                          log=LOG, clock=sim.clock)
    probe.failing["s1"] = "timed out"
    monitor.check()
    monitor.check()
    probe.failing.clear()
    monitor.check()
    probe.failing["s1"] = "timed out"
    assert monitor.check() == [] and monitor.check() == []  # the count started again
    assert sim.phase("/r/a") == "running"


def test_servers_without_running_jobs_are_not_checked(tmp_path):
    sim = running_sim(tmp_path)
    sim.finish_held("/r/a", 0)
    sim.settle()
    probe = Probe()
    monitor = HostMonitor(sim.engine, RESOURCES, probe=probe, down_after=1, identity=IDENTITY,
                          log=LOG, clock=sim.clock)
    assert monitor.check() == [] and probe.asked == []


def test_the_tcp_probe_connects_to_the_ssh_port():
    """(More cases of the probe in tests/test_host_probe.py.)"""
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    probe = tcp_probe(timeout=2)
    answering = threading.Thread(target=lambda: listener.accept()[0].sendall(b"SSH-2.0-x\r\n"))
    answering.start()
    try:
        assert probe(Server("s1", transport="ssh", address="127.0.0.1", port=port)) is None
    finally:
        answering.join(5)
        listener.close()
    error = probe(Server("s1", transport="ssh", address="127.0.0.1", port=port))
    assert error is not None and error.startswith(f"127.0.0.1:{port}: ")
    assert "refused" in error.lower()
    assert probe(Server("local")) is None  # this machine


# --- reconciliation ----------------------------------------------------------------------------

class FakeHost:
    """The transport of a job host: answers `tengine-watcher` command lines."""

    server_name = "s1"
    watcher_state_dir = "/var/lib/tw"
    watcher_command = "tengine-watcher"

    def __init__(self) -> None:
        self.status: dict | None = None
        self.down = False
        self.lines: list[str] = []

    def run(self, command: str, *, timeout: float) -> CommandResult:
        if self.down:
            raise CannotConnect("cannot connect to s1: connection refused")
        self.lines.append(command)
        verb = command.split()[1]
        if verb == "status":
            if self.status is None:
                return CommandResult(2, "", "tengine-watcher status: unknown job x\n")
            return CommandResult(0, json.dumps(self.status), "")
        return CommandResult(0, f"{verb} done\n", "")

    def verbs(self) -> list[str]:
        return [line.split()[1] for line in self.lines]


def reconciler_for(sim: Sim, host: FakeHost) -> Reconciler:
    def report(event: Event) -> None:
        with write_transaction(sim.engine) as conn:
            repo.enqueue(conn, event)

    return Reconciler(sim.engine, RESOURCES, lambda server, credential: host, report=report,
                      identity=IDENTITY, log=LOG, clock=sim.clock,
                      monotonic=monotonic_of(sim), retry_interval=5)


def expire(sim: Sim) -> None:
    monitor = heartbeat_monitor(sim)
    monitor.check()
    sim.clock.advance(seconds=20)
    assert monitor.check()
    sim.pump()
    assert sim.phase("/r/a") == "error"


FINISHED_ON_HOST = {"job_id": "x", "state": "finished", "exit_status": 0, "signal": None,
                    "killed": False, "finished_at": "2024-05-01T10:00:30.000000+00:00",
                    "event_key": "watcher-key-1", "published": False, "pid": 1000,
                    "script_alive": False, "stdout_log": "/w/stdout.log"}


def test_reconciliation_records_the_result_the_watcher_could_not_publish(tmp_path):
    sim = running_sim(tmp_path)
    expire(sim)
    host = FakeHost()
    host.status = dict(FINISHED_ON_HOST)
    reconciler = reconciler_for(sim, host)
    a = sim.execution.vertex_by_path("/r/a")
    assert reconciler.reconcile(a.id) == DONE
    assert host.verbs() == ["status", "resend"]
    assert f"--job-id {a.id}" in host.lines[0] and "--state-dir /var/lib/tw" in host.lines[0]
    sim.pump()
    row = sim.vertex("/r/a")
    assert row.phase == "error"  # unchanged
    late = row.late_result
    assert (late["exit_status"], late["source"], late["event_key"], late["occurred_at"]) == (
        0, "reconciliation", "watcher-key-1", "2024-05-01T10:00:30.000000+00:00")
    [warning] = sim.events_of(ev.LATE_RESULT_JOB)
    assert warning.level == "warn" and warning.properties["source"] == "reconciliation"
    assert "found on its host by reconciliation" in warning.properties["message"]
    [reconciled] = sim.events_of(ev.RECONCILED_PROCESS_JOB)
    assert "never managed to publish" in reconciled.properties["message"]
    # The resend delivers the watcher's own event later: merged, no second warning.
    sim.send(Event(ev.FINISHED_PROCESS_JOB, key="watcher-key-1", source_name="job:s1/1000/r/a",
                   properties={"job_id": a.id, "target_job_id": a.id, "exit_status": 0,
                               "stdout_tail": "done\n"}))
    sim.pump()
    row = sim.vertex("/r/a")
    assert row.phase == "error"
    assert row.late_result["source"] == "reconciliation"
    assert row.late_result["result"]["stdout_tail"] == "done\n"
    assert row.late_result["delivered_by"] == "job:s1/1000/r/a"
    assert len(sim.events_of(ev.LATE_RESULT_JOB)) == 1
    # Known now: nothing more to ask.
    assert reconciler.reconcile(a.id) == DONE and host.verbs() == ["status", "resend"]
    assert no_handler_failed(sim)


def test_a_result_delivered_before_the_reconciliation_is_not_recorded_twice(tmp_path):
    sim = running_sim(tmp_path)
    expire(sim)
    a = sim.execution.vertex_by_path("/r/a")
    sim.send(Event(ev.FINISHED_PROCESS_JOB, key="watcher-key-1",
                   properties={"job_id": a.id, "target_job_id": a.id, "exit_status": 3}))
    sim.pump()
    with write_transaction(sim.engine) as conn:  # as if the late result had not been seen yet
        repo.update_vertex(conn, a.id, late_result=None)
    host = FakeHost()
    host.status = dict(FINISHED_ON_HOST, exit_status=3, published=True)
    assert reconciler_for(sim, host).reconcile(a.id) == DONE
    assert host.verbs() == ["status"]  # published: no resend
    sim.pump()
    assert sim.vertex("/r/a").late_result is None  # the finished event had it already
    assert len(sim.events_of(ev.LATE_RESULT_JOB)) == 1
    assert no_handler_failed(sim)


def test_reconciliation_waits_for_the_verdict_and_asks_an_unreachable_host_again(tmp_path):
    sim = running_sim(tmp_path)
    host = FakeHost()
    host.status = dict(FINISHED_ON_HOST)
    reconciler = reconciler_for(sim, host)
    a = sim.execution.vertex_by_path("/r/a")
    assert reconciler.reconcile(a.id) == WAIT  # still running in the store
    expire(sim)
    host.down = True
    assert reconciler.reconcile(a.id) == RETRY
    reconciler.request([a.id], "test")
    assert reconciler.run_due() == 1 and reconciler.pending() == [a.id]
    assert reconciler.run_due() == 0  # not due again yet
    sim.clock.advance(seconds=4)
    assert reconciler.run_due() == 0
    host.down = False
    reconciler.server_up("s1")  # the host monitor heard from it: ask now
    assert reconciler.run_due() == 1 and reconciler.pending() == []
    sim.pump()
    assert sim.vertex("/r/a").late_result["source"] == "reconciliation"
    assert no_handler_failed(sim)


def test_a_lost_watcher_leaves_no_orphans_and_no_late_result(tmp_path):
    sim = running_sim(tmp_path)
    expire(sim)
    host = FakeHost()
    host.status = {"state": "lost", "pid": 1000, "script_alive": True, "exit_status": None,
                   "published": False, "event_key": "watcher-key-1"}
    reconciler = reconciler_for(sim, host)
    a = sim.execution.vertex_by_path("/r/a")
    assert reconciler.reconcile(a.id) == DONE
    assert host.verbs() == ["status", "kill"]
    assert "--signals KILL" in host.lines[1]
    sim.pump()
    row = sim.vertex("/r/a")
    assert (row.phase, row.late_result) == ("error", None)
    [reconciled] = sim.events_of(ev.RECONCILED_PROCESS_JOB)
    assert reconciled.properties["orphans_killed"] is True
    assert "were killed" in reconciled.properties["message"]
    # Asked again (e.g. after a core restart): the same answer is recorded once.
    reconciler.reconcile(a.id)
    sim.pump()
    assert len(event_rows(sim, ev.RECONCILED_PROCESS_JOB)) == 1
    assert no_handler_failed(sim)


def test_resume_asks_again_after_jobs_given_up_on_before_a_restart(tmp_path):
    sim = running_sim(tmp_path)
    expire(sim)
    reconciler = reconciler_for(sim, FakeHost())
    a = sim.execution.vertex_by_path("/r/a")
    assert reconciler.resume() == 1 and reconciler.pending() == [a.id]


@pytest.mark.parametrize("result, problem", [
    (CommandResult(0, "not json", ""), "did not answer JSON"),
    (CommandResult(0, json.dumps({"pid": 1}), ""), "without a state"),
    (CommandResult(1, "", "tengine-watcher status: Permission denied (/w)"), "exited 1"),
])
def test_answers_that_cannot_be_used_say_why(result, problem):
    with pytest.raises(BadAnswer, match=problem) as caught:
        parse_status(result, "s1")
    assert "on s1" in str(caught.value)


def test_a_host_that_never_heard_of_the_job_says_so():
    answer = parse_status(CommandResult(2, "", "tengine-watcher status: unknown job j1\n"), "s1")
    assert answer["state"] == "unknown"
