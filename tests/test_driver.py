"""The driver and the local transport, with the real `tengine-watcher` (no broker: the watchdog's
finished event goes nowhere, which these tests do not need). A fake transport only where the
retry policy itself is tested."""

from __future__ import annotations

import logging
import shlex
import time
from dataclasses import replace

import pytest

from harness.waiting import wait_for
from support.logs import recording
from support.tcp import dead_amqp_url
from support.watcher import POLL, process_gone
from tengine_min.config import load_settings
from tengine_min.core.driver import Driver, build_run_command, parse_pid, start_failure_reason
from tengine_min.core.handlers.commands import KillJob, StartJob
from tengine_min.core.identity import CoreIdentity
from tengine_min.events import names as ev
from tengine_min.resources import default_resources, parse_resources
from tengine_min.transport.base import (
    AuthFailed,
    CommandResult,
    CommandTimeout,
    ConnectionLost,
)
from tengine_min.transport.local import LocalTransport

IDENTITY = CoreIdentity("core-host", 77)




@pytest.fixture
def log():
    with recording("test.driver") as lines:
        yield lines


@pytest.fixture
def settings(tmp_path):
    return replace(load_settings(tmp_path / "state", env={}), heartbeat_interval=0.0,
                   publish_retry_count=0, publish_retry_interval=0.1, command_timeout=60.0)


def make_driver(settings, resources=None, transport_for=None, reported=None) -> Driver:
    return Driver(settings, resources or default_resources(),
                  (reported if reported is not None else []).append,
                  log=logging.getLogger("test.driver"), identity=IDENTITY,
                  amqp_url=dead_amqp_url(), transport_for=transport_for)


def start_command(script: str, *, vertex: str = "v1", server: str | None = "local",
                  preparation: str | None = None, task: int = 1) -> StartJob:
    return StartJob(task_id=task, vertex_id=vertex, watcher_job_id=vertex, attempt=1,
                    execution_id="e1", root_jobnet_id="r1", name_path=f"/r/{vertex}",
                    server_name=server, credential_name="local", script=script,
                    preparation=preparation,
                    env={"MM_ACTUAL_JOB_ID": vertex, "MM_ACTUAL_JOB_NAME_PATH": f"/r/{vertex}",
                         "MM_QUOTED": "it's a \"value\" with spaces"},
                    properties={"execution_id": "e1", "target_job_id": vertex,
                                "driver_task_id": task, "attempt": 1})


def kill_command(vertex: str, pid: int, task: int = 2) -> KillJob:
    return KillJob(task_id=task, vertex_id=vertex, watcher_job_id=vertex, attempt=1,
                   execution_id="e1", root_jobnet_id="r1", name_path=f"/r/{vertex}",
                   server_name="local", credential_name="local", pid=pid, signals=("KILL",),
                   interval=2.0, properties={"target_job_id": vertex, "driver_task_id": task})


def script(path, body: str, mode: int = 0o755) -> str:
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(mode)
    return str(path)


# --- command lines -------------------------------------------------------------------------------


def test_run_command_line_is_tengines_shape(settings):
    command = start_command("$HOME/bin/job.sh 'a b' >/dev/null", preparation="export X=1")
    line = build_run_command(command, watcher="/opt/tw", state_dir="/var/w",
                             amqp_url="amqp://g:g@h:1/%2F", server_name="local",
                             settings=settings)
    exports, preparation, run = line.split(" && ")
    assert shlex.split(exports) == ["export", "MM_ACTUAL_JOB_ID=v1",
                                    "MM_ACTUAL_JOB_NAME_PATH=/r/v1",
                                    "MM_QUOTED=it's a \"value\" with spaces"]
    assert preparation == "{ export X=1\n}"
    assert run.endswith(" -- $HOME/bin/job.sh 'a b' >/dev/null")  # the script verbatim
    words = shlex.split(run.split(" -- ")[0])
    assert words[:2] == ["/opt/tw", "run"]
    options = dict(zip(words[2::2], words[3::2], strict=True))
    assert options == {"--job-id": "v1", "--state-dir": "/var/w",
                       "--amqp-url": "amqp://g:g@h:1/%2F",
                       "--heartbeat-interval": "0", "--publish-retry-count": "0",
                       "--publish-retry-interval": "0.1", "--start-timeout": "600",
                       "--server-name": "local", "--execution-id": "e1", "--root-jobnet-id": "r1"}


def test_parse_pid_and_failure_reasons():
    assert parse_pid("PID=123\n") == 123
    assert parse_pid("noise\nPID=9\n") == 9
    assert parse_pid("PID=abc\n") is None
    assert start_failure_reason(CommandResult(127, "", "script not found: /x.sh\n"), "h1") == \
        "script not found on h1: /x.sh"
    assert start_failure_reason(CommandResult(126, "", "script not executable: /y\n"), "h1") == \
        "script not executable on h1: /y"
    assert "exit status 127: sh: 1: tengine-watcher: not found" in start_failure_reason(
        CommandResult(127, "", "sh: 1: tengine-watcher: not found\n"), "h1")
    assert "whether the script started is unknown" in start_failure_reason(
        CommandResult(0, "", ""), "h1")


# --- the real watcher through the local transport ------------------------------------------------


def test_start_reports_the_pid_and_the_script_gets_env_and_preparation(settings, tmp_path, log):
    out = tmp_path / "env.txt"
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    script(bin_dir / "job.sh", f"env > {out}\n")
    driver = make_driver(settings)
    event = driver.execute(start_command("$JOB_BIN/job.sh",
                                         preparation=f"export JOB_BIN={bin_dir}"))
    assert event.event_type_name == ev.STARTED_PROCESS_JOB
    assert isinstance(event.properties["pid"], int)
    assert event.properties["driver_task_id"] == 1
    assert event.properties["target_job_id"] == "v1"
    assert event.properties["server_name"] == "local"
    assert event.source_name == "job:core-host/77/r1/v1"
    env = wait_for(lambda: out.exists() and out.read_text(), timeout=30, what="the job's env file",
                   interval=POLL)
    assert "MM_ACTUAL_JOB_ID=v1\n" in env
    assert "MM_QUOTED=it's a \"value\" with spaces\n" in env
    assert f"JOB_BIN={bin_dir}\n" in env
    assert (settings.watcher_state_dir / "jobs" / "v1" / "started.json").exists()
    assert any(line.startswith("local attempt 1/1 server=local job_id=v1")
               and "outcome=ok" in line for line in log.lines)
    assert any(line.startswith("start succeeded job_id=v1") for line in log.lines)
    assert not any("guest:guest@" in line for line in log.lines)  # no password in the log


def test_missing_and_non_executable_scripts_are_start_failures(settings, tmp_path):
    driver = make_driver(settings)
    missing = driver.execute(start_command(str(tmp_path / "nope.sh"), vertex="m1"))
    assert missing.event_type_name == ev.START_FAILED_JOB
    assert missing.level == "error"
    assert missing.properties["message"] == f"script not found on local: {tmp_path / 'nope.sh'}"
    plain = script(tmp_path / "plain.sh", "exit 0\n", mode=0o644)
    denied = driver.execute(start_command(plain, vertex="m2"))
    assert denied.properties["message"] == f"script not executable on local: {plain}"


def test_unknown_server_and_missing_watcher(settings, tmp_path):
    driver = make_driver(settings)
    event = driver.execute(start_command("/bin/true", server="mars"))
    assert event.event_type_name == ev.START_FAILED_JOB
    assert event.properties["message"] == ("server 'mars' is not defined in the built-in "
                                           "resources (no resources file)")
    resources = parse_resources({"servers": {"local": {"watcher_command": "/nowhere/tw"}},
                                 "credentials": {"local": {}}}, "res.toml")
    event = make_driver(settings, resources).execute(start_command("/bin/true"))
    assert event.event_type_name == ev.START_FAILED_JOB
    assert "the start command on local failed with exit status 127" in \
        event.properties["message"]
    assert "/nowhere/tw" in event.properties["message"]


def test_kill_sends_the_signal_then_a_repeat_is_recognised(settings, tmp_path):
    driver = make_driver(settings)
    started = driver.execute(start_command(script(tmp_path / "long.sh", "sleep 30\n"),
                                           vertex="k1"))
    pid = started.properties["pid"]
    sent = driver.execute(kill_command("k1", pid))
    assert sent.event_type_name == ev.KILL_SENT_JOB
    assert "kill sent job_id=k1 signal=KILL" in sent.properties["message"]
    wait_for(lambda: process_gone(pid), timeout=10, what="the killed script to be gone",
             interval=POLL)
    again = driver.execute(kill_command("k1", pid, task=3))
    assert again.event_type_name == ev.KILL_SENT_JOB
    assert "duplicate kill ignored job_id=k1" in again.properties["message"]


def test_kill_of_an_unknown_job_is_a_stop_failure(settings):
    event = make_driver(settings).execute(kill_command("never-ran", 4242))
    assert event.event_type_name == ev.STOP_FAILED_JOB
    assert "exit status 2" in event.properties["message"]
    assert "never-ran" in event.properties["message"]


def test_pool_runs_commands_and_reports_them(settings, tmp_path):
    reported: list = []
    driver = make_driver(replace(settings, driver_threads=2), reported=reported)
    driver.start()
    quick = script(tmp_path / "quick.sh", "exit 0\n")
    driver.submit(start_command(quick, vertex="p1", task=11))
    driver.submit(start_command(quick, vertex="p2", task=12))
    wait_for(lambda: len(reported) == 2, timeout=30, what="two outcomes reported", interval=POLL)
    assert driver.stop(5) == 0
    assert sorted(e.properties["driver_task_id"] for e in reported) == [11, 12]
    assert {e.event_type_name for e in reported} == {ev.STARTED_PROCESS_JOB}


# --- the local transport -------------------------------------------------------------------------


def test_local_transport_timeout_kills_the_command_group(tmp_path):
    marker = tmp_path / "bg.pid"
    transport = LocalTransport("local", tmp_path / "w")
    began = time.monotonic()
    with pytest.raises(CommandTimeout) as caught:
        transport.run(f"sleep 30 & echo $! > {marker}; wait", timeout=0.5)
    assert time.monotonic() - began < 10
    assert caught.value.request_sent and not caught.value.retryable
    background = int(marker.read_text())
    wait_for(lambda: process_gone(background), timeout=10, what="the background sleep to be killed",
             interval=POLL)


def test_local_transport_returns_exit_code_and_output(tmp_path):
    result = LocalTransport("local", tmp_path).run("echo out; echo err >&2; exit 3", timeout=10)
    assert result == CommandResult(3, "out\n", "err\n")


# --- the retry policy (a fake transport: only the policy is under test) --------------------------


class ScriptedTransport:
    """Raises or returns what it is told, in order, and counts the calls."""

    def __init__(self, outcomes: list) -> None:
        self.server_name = "h1"
        self.watcher_state_dir = "/w"
        self.watcher_command = "tw"
        self.outcomes = outcomes
        self.calls = 0

    def run(self, command: str, *, timeout: float) -> CommandResult:
        outcome = self.outcomes[self.calls]
        self.calls += 1
        if isinstance(outcome, Exception):
            raise outcome
        return outcome


def scripted(outcomes: list) -> tuple[ScriptedTransport, callable]:
    transport = ScriptedTransport(outcomes)
    return transport, (lambda server: transport)


def test_a_lost_connection_is_retried_and_logged(settings, log):
    transport, factory = scripted([ConnectionLost("link to h1 lost"),
                                   CommandResult(0, "PID=55\n", "")])
    driver = make_driver(replace(settings, command_retry_count=1, command_retry_interval=0.0),
                         transport_for=factory)
    event = driver.execute(start_command("/x.sh"))
    assert event.event_type_name == ev.STARTED_PROCESS_JOB and event.properties["pid"] == 55
    assert transport.calls == 2
    failed = [line for line in log.lines if line.startswith("local attempt 1/2 ")]
    assert len(failed) == 1 and 'error="link to h1 lost"' in failed[0]
    assert any(line.startswith("local retry in 0.0s server=local job_id=v1")
               for line in log.lines)
    assert any(line.startswith("local attempt 2/2 ") and "outcome=ok" in line
               for line in log.lines)


def test_without_retries_a_lost_start_is_unknown(settings):
    _transport, factory = scripted([ConnectionLost("link to h1 lost")])
    event = make_driver(settings, transport_for=factory).execute(start_command("/x.sh"))
    assert event.event_type_name == ev.START_FAILED_JOB
    assert event.properties["message"] == ("connection lost after the start request was "
                                           "sent; the job may be running on local")


def test_authentication_failure_is_never_retried(settings):
    transport, factory = scripted([AuthFailed("authentication failed for job@h1")] * 4)
    driver = make_driver(replace(settings, command_retry_count=3, command_retry_interval=0.0),
                         transport_for=factory)
    event = driver.execute(start_command("/x.sh"))
    assert transport.calls == 1
    assert event.properties["message"] == "authentication failed for job@h1"


def test_server_retry_settings_win(settings):
    transport, factory = scripted([ConnectionLost("lost")] * 3)
    resources = parse_resources({"servers": {"local": {"retry_count": 2,
                                                       "retry_interval": 0}},
                                 "credentials": {"local": {}}}, "res.toml")
    event = make_driver(settings, resources, transport_for=factory).execute(
        start_command("/x.sh"))
    assert transport.calls == 3
    assert event.event_type_name == ev.START_FAILED_JOB


def test_an_ssh_server_needs_an_ssh_credential(settings):
    resources = parse_resources({"servers": {"s1": {"transport": "ssh", "address": "10.0.0.2",
                                                    "host_key": "ssh-ed25519 AAAA"}},
                                 "credentials": {"c": {}}}, "res.toml")
    command = replace(start_command("/x.sh", server="s1"), credential_name="c")
    event = make_driver(settings, resources).execute(command)
    assert event.event_type_name == ev.START_FAILED_JOB
    assert event.properties["message"] == (
        "credential 'c' is of type local, which cannot log in to ssh server 's1' "
        "(use ssh_password or ssh_public_key)")
