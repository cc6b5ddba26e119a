"""The watcher against a real broker: one key for heartbeats and the finished event, the queue
going away and coming back within the retries, past them, and ``resend`` afterwards."""

from __future__ import annotations

import json
from pathlib import Path

import pika.exceptions
import pytest

from harness.waiting import wait_for
from support.watcher import log_lines, pid_of, read_json, result_of, run_job, wait_log, watcher
from tengine_min.broker import Broker
from tengine_min.bus import topology
from tengine_min.events.envelope import Event

pytestmark = pytest.mark.integration

HEARTBEAT = "job.heartbeat.tengine"
FINISHED = "finished.process.job.tengine"


class Queue:
    """Everything that reached ``tengine_event_queue``, read with basic_get (reopened after the
    broker restarts)."""

    def __init__(self, broker: Broker, amqp_channel):
        self.broker = broker
        self.amqp_channel = amqp_channel
        self.events: list[Event] = []
        self._channel = None

    def poll(self) -> list[Event]:
        try:
            if self._channel is None or not self._channel.is_open:
                self._channel = self.amqp_channel(self.broker.url)
            while True:
                method, _, body = self._channel.basic_get(topology.QUEUE_NAME, auto_ack=True)
                if method is None:
                    return self.events
                self.events.append(Event.from_json(body))
        except pika.exceptions.AMQPError:  # the broker restarted under us: reopen next time
            self._channel = None
            return self.events

    def of(self, type_name: str) -> list[Event]:
        return [e for e in self.events if e.event_type_name == type_name]

    def wait_for(self, type_name: str, count: int = 1, timeout: float = 60) -> list[Event]:
        def enough() -> list[Event] | None:
            self.poll()
            found = self.of(type_name)
            return found if len(found) >= count else None

        return wait_for(enough, timeout=timeout, what=f"{count} {type_name} event(s)", interval=0.1)


def gated_script(tmp_path: Path) -> tuple[Path, Path]:
    """A script that runs until the test creates its gate file, then exits 0."""
    gate = tmp_path / "go"
    script = tmp_path / "gated.sh"
    script.write_text(f"#!/bin/sh\necho started\nwhile [ ! -e {gate} ]; do sleep 0.05; done\n"
                      "echo done\n")
    script.chmod(0o755)
    return script, gate


def test_finished_event_and_heartbeats_share_one_key(broker: Broker, amqp_channel, tmp_path):
    state = tmp_path / "state"
    script, gate = gated_script(tmp_path)
    queue = Queue(broker, amqp_channel)
    pid = pid_of(run_job(state, "jb1", str(script), retry_count=5, heartbeat=0.2,
                         amqp_url=broker.url))
    queue.wait_for(HEARTBEAT, count=3)
    gate.touch()
    (finished,) = queue.wait_for(FINISHED)
    started = read_json(state / "jobs" / "jb1" / "started.json")
    assert {e.key for e in queue.events} == {started["event_key"]}
    assert finished.level == "info"
    assert finished.properties["exit_status"] == 0
    assert finished.properties["pid"] == pid
    assert finished.properties["stdout_head"] == "started\ndone\n"
    assert all(e.level == "debug" for e in queue.of(HEARTBEAT))
    wait_log(state, "published event=finished.process.job.tengine", f"key={finished.key}")
    assert read_json(state / "jobs" / "jb1" / "published.json")["key"] == finished.key


def test_queue_down_and_back_while_the_job_runs(broker: Broker, amqp_channel, tmp_path):
    """S05: the log shows the disconnect and the reconnect; the finished event arrives."""
    state = tmp_path / "state"
    script, gate = gated_script(tmp_path)
    queue = Queue(broker, amqp_channel)
    pid_of(run_job(state, "jb2", str(script), retry_count=60, heartbeat=0.2, amqp_url=broker.url))
    queue.wait_for(HEARTBEAT)
    broker.stop()
    wait_log(state, "disconnected", "job_id=jb2", timeout=60)
    broker.start()
    wait_log(state, "reconnected", "job_id=jb2", timeout=60)
    gate.touch()
    (finished,) = queue.wait_for(FINISHED)
    assert finished.properties["exit_status"] == 0
    wait_log(state, "published event=finished.process.job.tengine", "job_id=jb2")
    assert not log_lines(state, "gave up", "job_id=jb2")


def test_queue_down_when_the_job_ends_back_within_the_retries(broker: Broker, amqp_channel,
                                                              tmp_path):
    """The finished event waits through its retries and is delivered once the queue is back."""
    state = tmp_path / "state"
    script, gate = gated_script(tmp_path)
    queue = Queue(broker, amqp_channel)
    pid_of(run_job(state, "jb3", str(script), retry_count=400, heartbeat=0.5,
                   amqp_url=broker.url))
    queue.wait_for(HEARTBEAT)
    broker.stop()
    gate.touch()
    result_of(state, "jb3")
    wait_log(state, "publish failed", "event=finished.process.job.tengine", "job_id=jb3")
    broker.start()
    wait_log(state, "published event=finished.process.job.tengine", "job_id=jb3", timeout=90)
    (finished,) = queue.wait_for(FINISHED)
    assert finished.properties["exit_status"] == 0
    assert log_lines(state, "reconnected", "job_id=jb3")
    assert not log_lines(state, "gave up", "job_id=jb3")


def test_queue_down_past_the_retries_then_resend(broker: Broker, amqp_channel, tmp_path):
    """S06: the watchdog gives up and keeps the result; ``resend`` delivers it later."""
    state = tmp_path / "state"
    script, gate = gated_script(tmp_path)
    queue = Queue(broker, amqp_channel)
    pid_of(run_job(state, "jb4", str(script), retry_count=2, heartbeat=0.5, amqp_url=broker.url))
    queue.wait_for(HEARTBEAT)
    broker.stop()
    gate.touch()
    wait_log(state, "gave up", "event=finished.process.job.tengine", "job_id=jb4")
    wait_log(state, "result not published", "job_id=jb4")
    shown = json.loads(watcher(state, "status", "--job-id", "jb4", "--json").stdout)
    assert shown["state"] == "finished"
    assert shown["exit_status"] == 0
    assert shown["published"] is False
    broker.start()
    done = watcher(state, "resend", "--job-id", "jb4")
    assert done.returncode == 0, done.stderr
    (finished,) = queue.wait_for(FINISHED)
    assert finished.key == shown["event_key"]
    assert finished.properties["exit_status"] == 0
    assert log_lines(state, "published event=finished.process.job.tengine", "by=resend",
                     "job_id=jb4")
    shown = json.loads(watcher(state, "status", "--job-id", "jb4", "--json").stdout)
    assert shown["published"] is True
    again = watcher(state, "resend", "--job-id", "jb4")
    assert again.returncode == 0 and "already published" in again.stdout
    queue.poll()
    assert len(queue.of(FINISHED)) == 1
