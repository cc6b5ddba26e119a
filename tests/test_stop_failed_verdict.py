"""S16 in the state machine: a force stop that failed (the host could not be reached), then the
monitors' verdict (host down / watcher lost) ends the job error. The reason keeps the failed
stop, and the job is not labelled force stopped, since the stop never reached it."""

from __future__ import annotations

from support.core_sim import HOLD, Sim
from support.templates import definitions, job, jobnet
from tengine_min.events import names as ev
from tengine_min.events.envelope import Event
from tengine_min.model.phases import human_label

DOWN = "server s1 went down: no answer to 3 checks in a row (refused)"
CANNOT = "cannot connect to server s1 (10.0.0.5:22): connection refused"


def held_job(tmp_path) -> Sim:
    sim = Sim(tmp_path, definitions(jobnet("r", job("a", "a.sh"))), "r",
              outcomes={"/r/a": HOLD})
    sim.start()
    sim.settle()
    return sim


def expire(sim: Sim) -> None:
    a = sim.vertex("/r/a")
    sim.send(Event(ev.EXPIRED_JOB_HEARTBEAT, level="error",
                   properties={"target_job_id": a.id, "job_id": a.id, "message": DOWN}))
    sim.settle()


def test_a_verdict_after_a_failed_stop_keeps_it_in_the_reason_and_is_not_force_stopped(
        tmp_path):
    sim = held_job(tmp_path)
    sim.stop("/r/a")
    [kill] = sim.commands
    sim.commands.clear()
    sim.send(Event(ev.STOP_FAILED_JOB, level="error",
                   properties={**kill.properties, "message": CANNOT}))
    assert sim.vertex("/r/a").phase == "running"
    expire(sim)
    a = sim.vertex("/r/a")
    assert (a.phase, a.stop_reason) == ("error", None)
    assert a.reason == f"{DOWN}; the force stop before it failed: {CANNOT}"
    assert human_label(a.phase, a.stop_reason) == "エラー終了"
    [error] = [e for e in sim.events_of(ev.ERROR_JOB) if e.properties.get("target_job_id") == a.id]
    assert error.properties["message"] == a.reason


def test_a_verdict_while_the_stop_is_still_under_way_stays_force_stopped(tmp_path):
    sim = held_job(tmp_path)
    sim.stop("/r/a")  # dying: the kill is out, its outcome unknown (S13's case)
    expire(sim)
    a = sim.vertex("/r/a")
    assert (a.phase, a.stop_reason, a.reason) == ("error", "user_stop", DOWN)


def test_a_verdict_without_any_stop_is_unchanged(tmp_path):
    sim = held_job(tmp_path)
    expire(sim)
    a = sim.vertex("/r/a")
    assert (a.phase, a.stop_reason, a.reason) == ("error", None, DOWN)


def test_a_stop_failure_for_a_job_already_decided_is_recorded_only(tmp_path):
    """The host monitor decided first; the failed stop comes after: no crash, no stuck."""
    sim = held_job(tmp_path)
    sim.stop("/r/a")
    [kill] = sim.commands
    sim.commands.clear()
    expire(sim)
    sim.send(Event(ev.STOP_FAILED_JOB, level="error",
                   properties={**kill.properties, "message": CANNOT}))
    sim.settle()
    a = sim.vertex("/r/a")
    assert (a.phase, a.reason) == ("error", DOWN)


def test_a_start_failure_for_a_job_already_decided_is_recorded_only(tmp_path):
    sim = held_job(tmp_path)
    a = sim.vertex("/r/a")
    expire(sim)
    sim.send(Event(ev.START_FAILED_JOB, level="error",
                   properties={"target_job_id": a.id, "job_id": a.id, "message": CANNOT}))
    sim.settle()
    assert (sim.vertex("/r/a").phase, sim.vertex("/r/a").reason) == ("error", DOWN)
