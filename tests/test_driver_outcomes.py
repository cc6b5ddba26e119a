"""The driver's outcomes always reach the kernel: an outcome the store refuses is reported again
until it is taken (or the driver stops, leaving the task to recover()), and an exception no
branch of the driver expects still ends the command as start_failed / stop_failed. The real
Kernel on a SQLite store (core_sim.Sim) and the real Driver pool; a scripted transport at the
host boundary and a report that fails while "the store is down"."""

from __future__ import annotations

import logging
import threading
from dataclasses import replace

import pytest
from sqlalchemy.exc import OperationalError

from harness.waiting import wait_for
from support.core_sim import HOLD, Sim
from support.logs import recording
from support.tcp import dead_amqp_url
from support.templates import definitions, job, jobnet
from support.watcher import POLL
from tengine_min.config import load_settings
from tengine_min.core.driver import Driver
from tengine_min.core.handlers.commands import KillJob, StartJob
from tengine_min.core.identity import CoreIdentity
from tengine_min.events import names as ev
from tengine_min.events.envelope import Event
from tengine_min.resources import default_resources
from tengine_min.store import repo
from tengine_min.store.db import write_transaction
from tengine_min.transport.base import CommandResult

IDENTITY = CoreIdentity("core-host", 77)
FAST_RETRY = (0.01, 0.05)  # the report's backoff, shortened through the Driver's parameter




@pytest.fixture
def log():
    with recording("test.driver.outcomes") as lines:
        yield lines


@pytest.fixture
def settings(tmp_path):
    return replace(load_settings(tmp_path / "state", env={}), heartbeat_interval=0.0,
                   publish_retry_count=0, command_timeout=60.0, driver_threads=1)


class Scripted:
    """A transport that returns or raises what it is given, on every call."""

    server_name = "local"
    watcher_state_dir = "/w"
    watcher_command = "tw"

    def __init__(self, outcome: CommandResult | Exception) -> None:
        self.outcome = outcome

    def run(self, command: str, *, timeout: float) -> CommandResult:
        if isinstance(self.outcome, Exception):
            raise self.outcome
        return self.outcome


class Store:
    """The core's report (service._report without the relay): the outcome into the outbox of
    the real store, except while `down`, when it raises as an unreachable database does."""

    def __init__(self, sim: Sim, down_for: int | None = None) -> None:
        self.sim = sim
        self.down_for = down_for  # the first N calls fail; None: every call fails
        self.calls = 0
        self.lock = threading.Lock()

    def __call__(self, event: Event) -> None:
        with self.lock:
            self.calls += 1
            calls = self.calls
        if self.down_for is None or calls <= self.down_for:
            raise OperationalError("BEGIN IMMEDIATE", {}, Exception("unable to open database"))
        with write_transaction(self.sim.engine) as conn:
            repo.enqueue(conn, event)


def one_job_sim(tmp_path, **kwargs) -> Sim:
    return Sim(tmp_path, definitions(jobnet("r", job("a", "a.sh", server_name="local",
                                                     credential_name="local"))), "r", **kwargs)


def driver_for(settings, report, outcome: CommandResult | Exception) -> Driver:
    transport = Scripted(outcome)
    return Driver(settings, default_resources(), report,
                  log=logging.getLogger("test.driver.outcomes"), identity=IDENTITY,
                  amqp_url=dead_amqp_url(), transport_for=lambda server: transport,
                  report_retry=FAST_RETRY)


def pending(sim: Sim, name: str) -> list[Event]:
    with sim.engine.connect() as conn:
        return [e for _, e in repo.pending_outbox(conn) if e.event_type_name == name]


def start_command(sim: Sim) -> StartJob:
    """Start the execution; the kernel asks for the job's start (the command it dispatched)."""
    sim.start()
    sim.pump()
    [command] = sim.commands
    sim.commands.clear()
    assert isinstance(command, StartJob) and sim.phase("/r/a") == "starting"
    return command


def run_in_pool(driver: Driver, command: StartJob | KillJob) -> None:
    driver.start()
    driver.submit(command)


# --- the store refuses the outcome --------------------------------------------------------------


def test_an_outcome_the_store_refuses_is_reported_again_until_it_is_taken(settings, tmp_path,
                                                                           log):
    sim = one_job_sim(tmp_path)
    command = start_command(sim)
    store = Store(sim, down_for=3)
    driver = driver_for(settings, store, CommandResult(0, "PID=55\n", ""))
    run_in_pool(driver, command)
    wait_for(lambda: pending(sim, ev.STARTED_PROCESS_JOB), timeout=30,
             what="the started event in the outbox once the store is back", interval=POLL)
    assert driver.stop(5) == 0
    assert store.calls == 4
    retried = log.having("driver outcome not recorded, will retry")
    assert len(retried) == 3
    assert "attempt=1 retry_in=0.01s" in retried[0] and "unable to open database" in retried[0]
    assert "retry_in=0.02s" in retried[1] and "retry_in=0.04s" in retried[2]  # doubling
    assert len(log.having("driver outcome recorded job_id=")) == 1
    sim.pump()
    a = sim.vertex("/r/a")
    assert (a.phase, a.pid) == ("running", 55)
    with sim.engine.connect() as conn:
        assert repo.open_driver_tasks(conn) == []


def test_a_report_that_fails_for_another_reason_is_not_retried(settings, tmp_path, log):
    """Not the store being away but a bug: trying again would fail the same way forever."""
    sim = one_job_sim(tmp_path)
    calls: list[Event] = []

    def broken(event: Event) -> None:
        calls.append(event)
        raise ValueError("cannot serialize this")

    driver = driver_for(settings, broken, CommandResult(0, "PID=55\n", ""))
    run_in_pool(driver, start_command(sim))
    wait_for(lambda: log.having("driver outcome not recorded job_id="), timeout=30,
             what="the give-up", interval=POLL)
    assert driver.stop(5) == 0
    assert len(calls) == 1 and not log.having("will retry")


def test_the_report_backoff_is_capped(settings, tmp_path, log):
    sim = one_job_sim(tmp_path)
    store = Store(sim, down_for=6)
    driver = driver_for(settings, store, CommandResult(0, "PID=55\n", ""))
    run_in_pool(driver, start_command(sim))
    wait_for(lambda: pending(sim, ev.STARTED_PROCESS_JOB), timeout=30, what="the started event",
             interval=POLL)
    driver.stop(5)
    delays = [line.split("retry_in=")[1].split()[0]
              for line in log.having("will retry")]
    assert delays == ["0.01s", "0.02s", "0.04s", "0.05s", "0.05s", "0.05s"]


def test_a_stopping_driver_gives_up_and_leaves_the_task_to_recover(settings, tmp_path, log):
    sim = one_job_sim(tmp_path)
    command = start_command(sim)
    driver = driver_for(settings, Store(sim, down_for=None), CommandResult(0, "PID=55\n", ""))
    run_in_pool(driver, command)
    wait_for(lambda: log.having("will retry"), timeout=30, what="the first refused report",
             interval=POLL)
    assert driver.stop(0.1) == 1  # still retrying when the grace ran out
    wait_for(lambda: not any(t.is_alive() for t in driver._threads), timeout=30,
             what="the driver thread to end", interval=POLL)
    [gave_up] = log.having("driver outcome not recorded: the core is stopping")
    assert f"task_id={command.task_id}" in gave_up
    assert "recover() at the next core start will handle it" in gave_up
    # What the next core does with the open task: stuck, with the reason a person reads.
    sim.kernel.recover()
    a = sim.vertex("/r/a")
    assert a.phase == "stuck" and "whether the script was started is unknown" in a.reason


# --- an exception the driver does not expect ---------------------------------------------------


def test_an_unexpected_error_while_starting_fails_the_start(settings, tmp_path, log):
    sim = one_job_sim(tmp_path)
    command = start_command(sim)
    driver = driver_for(settings, Store(sim, down_for=0), RuntimeError("boom"))
    run_in_pool(driver, command)
    [failed] = wait_for(lambda: pending(sim, ev.START_FAILED_JOB), timeout=30,
                        what="start_failed in the outbox", interval=POLL)
    assert driver.stop(5) == 0
    reason = failed.properties["message"]
    assert reason == ("internal error in the driver: RuntimeError: boom; "
                      "the job may be running on local")
    assert failed.level == "error" and failed.properties["driver_task_id"] == command.task_id
    assert any(line.startswith("start failed job_id=") and "RuntimeError: boom" in line
               for line in log.lines)
    sim.pump()
    a = sim.vertex("/r/a")
    assert a.phase == "error" and a.reason == reason
    [error] = sim.events_of(ev.ERROR_JOB)
    assert error.properties["message"] == reason
    with sim.engine.connect() as conn:
        assert repo.open_driver_tasks(conn) == []


def test_an_unexpected_error_while_killing_fails_the_stop(settings, tmp_path):
    sim = one_job_sim(tmp_path, outcomes={"/r/a": HOLD})
    sim.start()
    sim.settle()
    assert sim.phase("/r/a") == "running"
    sim.stop("/r/a")
    [command] = sim.commands
    sim.commands.clear()
    assert isinstance(command, KillJob) and sim.phase("/r/a") == "dying"
    driver = driver_for(settings, Store(sim, down_for=0), ValueError("bad output"))
    run_in_pool(driver, command)
    [failed] = wait_for(lambda: pending(sim, ev.STOP_FAILED_JOB), timeout=30,
                        what="stop_failed in the outbox", interval=POLL)
    driver.stop(5)
    assert failed.properties["message"] == (
        "internal error in the driver: ValueError: bad output; "
        "whether the job was killed on local is unknown")
    sim.pump()
    a = sim.vertex("/r/a")  # the kill did not surely reach it: running, a person may stop again
    assert a.phase == "running"
    assert a.reason == "stop failed: " + failed.properties["message"]
