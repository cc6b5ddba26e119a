"""The kernel: one event per transaction, idempotency, handler failures, restart recovery,
schedules; and a property test of the whole state machine on random DAG jobnets."""

from __future__ import annotations

import logging

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from support.core_sim import HOLD, Sim, run_to_end
from support.templates import definitions, finally_, job, jobnet
from tengine_min.core.handlers import registry
from tengine_min.core.handlers.commands import StartJob
from tengine_min.core.kernel import Kernel
from tengine_min.events import names as ev
from tengine_min.events.envelope import Event
from tengine_min.model.phases import ERROR, TIMEOUT, human_label
from tengine_min.store import repo
from tengine_min.store.db import write_transaction


def jn0004():
    return jobnet("jn0004",
                  job("j1", "j.sh 1", to=["j2", "j3"]),
                  job("j2", "j.sh 2", to="j4"),
                  job("j3", "j.sh 3", to="j4"),
                  job("j4", "j.sh 4"),
                  finally_(job("jn0004_f", "j.sh f")),
                  boot=["j1"], server_name="test_server1")


def test_the_same_event_delivered_twice_changes_nothing(tmp_path):
    sim = Sim(tmp_path, definitions(jn0004()), "jn0004")
    sim.start()
    sim.settle()
    before = sim.dump()
    for event in list(sim.processed):  # every event of the run, redelivered
        sim.send(event)
    assert sim.commands == []
    assert sim.dump() == before


def test_a_redelivered_finished_event_does_not_fire_twice(tmp_path):
    sim = Sim(tmp_path, definitions(jobnet("r", job("a", "a.sh"), job("b", "b.sh"))), "r",
              outcomes={"/r/a": HOLD})
    sim.start()
    sim.settle()
    [(start, pid)] = sim.running.values()
    finished = sim.finished_event(start, pid, exit_status=0)
    sim.send(finished)
    sim.send(finished)
    sim.settle()
    assert sim.started == ["/r/a", "/r/b"]
    assert len(sim.events_of(ev.SUCCESS_JOB)) == 2  # a and b, once each


def test_a_handler_exception_marks_the_target_stuck_and_fires_error_tengined(tmp_path,
                                                                             monkeypatch):
    sim = Sim(tmp_path, definitions(jobnet("r", job("a", "a.sh"))), "r",
              outcomes={"/r/a": HOLD})
    sim.start()
    sim.settle()

    def broken(ctx):
        repo.update_vertex(ctx.conn, ctx.props["target_job_id"], reason="half-written")
        raise RuntimeError("disk on fire")

    monkeypatch.setitem(registry.HANDLERS, ev.FINISHED_PROCESS_JOB, broken)
    [(start, pid)] = sim.running.values()
    finished = sim.finished_event(start, pid, exit_status=0)
    sim.send(finished)  # returns normally: the message would be acked
    a = sim.vertex("/r/a")
    assert a.phase == "stuck" and human_label(a.phase) == "状態不明"
    assert "disk on fire" in a.reason and "half-written" not in a.reason
    with sim.engine.connect() as conn:
        [(_, error)] = repo.pending_outbox(conn)
        assert repo.is_processed(conn, finished)  # stored: a redelivery changes nothing
    assert error.event_type_name == "finished.process.job.tengine.error.tengined"
    assert error.level == "error"
    assert error.properties["error_class_name"] == "RuntimeError"
    assert error.properties["error_message"] == "disk on fire"
    assert error.properties["original_event"]["key"] == finished.key
    monkeypatch.undo()
    before = sim.dump()
    sim.send(finished)
    assert sim.dump() == before


@pytest.mark.parametrize("event_type_name, target", [
    (ev.SUCCESS_JOB, "/r"),  # success/error.job: the parent jobnet (Tengine)
    (ev.START_JOB, "/r/a"),
])
def test_stuck_goes_where_tengine_puts_it(tmp_path, monkeypatch, event_type_name, target):
    sim = Sim(tmp_path, definitions(jobnet("r", job("a", "a.sh"))), "r")
    monkeypatch.setitem(registry.HANDLERS, event_type_name,
                        lambda ctx: (_ for _ in ()).throw(KeyError("x")))
    sim.start()
    sim.settle()
    assert sim.phase(target) == "stuck"
    assert sim.events_of(f"{event_type_name}.error.tengined")


def test_a_failing_execution_event_marks_the_execution_stuck(tmp_path, monkeypatch):
    sim = Sim(tmp_path, definitions(jobnet("r", job("a", "a.sh"))), "r")
    monkeypatch.setitem(registry.HANDLERS, ev.START_EXECUTION,
                        lambda ctx: (_ for _ in ()).throw(ValueError("bad")))
    sim.start()
    assert sim.execution_row().phase == "stuck"
    assert sim.phase("/r") == "initialized"


def test_commands_are_dispatched_only_after_the_commit(tmp_path):
    seen: list[tuple[str, str]] = []
    sim = Sim(tmp_path, definitions(jobnet("r", job("a", "a.sh"))), "r")

    def dispatch(command):
        # Another connection sees the committed state when the command arrives.
        with sim.engine.connect() as conn:
            seen.append((command.vertex_id, repo.get_vertex(conn, command.vertex_id).phase))
            assert [t.id for t in repo.open_driver_tasks(conn)] == [command.task_id]

    sim.kernel.dispatch = dispatch
    sim.start()
    sim.pump()
    assert seen == [(sim.execution.vertex_by_path("/r/a").id, "starting")]


def test_recover_after_a_crash_with_a_start_in_flight_marks_the_job_stuck(tmp_path):
    sim = Sim(tmp_path, definitions(jobnet("r", job("a", "a.sh"), job("b", "b.sh"))), "r")
    sim.start()
    sim.pump()
    [start] = sim.commands  # the core "dies" here: the ssh start never reports back
    assert isinstance(start, StartJob)
    restarted = Kernel(sim.engine, dispatch=lambda c: None, log=logging.getLogger("t"),
                       identity=sim.kernel.identity, clock=sim.clock)
    restarted.recover()
    a = sim.vertex("/r/a")
    assert a.phase == "stuck"
    assert a.reason == ("the core restarted while starting this job: whether the script was "
                        "started is unknown")
    with sim.engine.connect() as conn:
        assert repo.open_driver_tasks(conn) == []
        [(_, failed)] = repo.pending_outbox(conn)
    assert failed.event_type_name == "start.job.job.tengine.failed.tengined"
    assert failed.properties["target_job_id"] == a.id and failed.level == "error"
    # A PID arriving afterwards is kept, the phase is not changed by it.
    sim.send(sim.started_event(start, 4321))
    assert (sim.vertex("/r/a").phase, sim.vertex("/r/a").pid) == ("stuck", 4321)
    restarted.recover()  # nothing left to recover: no second failure event
    with sim.engine.connect() as conn:
        assert len(repo.pending_outbox(conn)) == 1


def test_recover_with_a_kill_in_flight(tmp_path):
    sim = Sim(tmp_path, definitions(jobnet("r", job("a", "a.sh"))), "r", outcomes={"/r/a": HOLD})
    sim.start()
    sim.settle()
    sim.stop("/r/a")
    assert len(sim.commands) == 1  # the kill, never carried out
    sim.kernel.recover()
    a = sim.vertex("/r/a")
    assert a.phase == "stuck" and "while stopping this job" in a.reason
    sim.pump()
    assert sim.events_of("stop.job.job.tengine.failed.tengined")


def test_a_timeout_schedule_stops_the_execution_with_stop_reason_timeout(tmp_path):
    sim = Sim(tmp_path, definitions(jn0004()), "jn0004", outcomes={"/jn0004/j1": HOLD},
              timeout_min=1, alert_min=1)
    sim.start()
    sim.settle()
    assert sim.kernel.fire_due_schedules() == []  # not yet
    sim.clock.advance(seconds=61)
    fired = sim.kernel.fire_due_schedules()
    assert sorted(e.event_type_name for e in fired) == [ev.ALERT_EXECUTION, ev.STOP_EXECUTION]
    assert sim.kernel.fire_due_schedules() == []  # each fires once
    sim.settle()
    [stop] = sim.events_of(ev.STOP_EXECUTION)
    assert stop.properties["stop_reason"] == "timeout"
    j1, root, exe = sim.vertex("/jn0004/j1"), sim.vertex("/jn0004"), sim.execution_row()
    assert human_label(j1.phase, j1.stop_reason) == human_label(ERROR, TIMEOUT)
    assert j1.reason == "stopped by timeout"
    assert human_label(root.phase, root.stop_reason) == human_label(ERROR, TIMEOUT)
    assert (exe.phase, exe.stop_reason) == ("error", "timeout")
    assert sim.phase("/jn0004/finally") == "initialized"


def test_schedules_are_cancelled_when_the_execution_ends(tmp_path):
    sim = run_to_end(Sim(tmp_path, definitions(jobnet("r", job("a", "a.sh"))), "r",
                         timeout_min=1))
    sim.clock.advance(minutes=5)
    assert sim.kernel.fire_due_schedules() == []
    with sim.engine.connect() as conn:
        [schedule] = repo.schedules_of(conn, sim.execution.id)
    assert schedule.cancelled_at is not None and schedule.fired_at is None


def test_a_ten_thousand_job_execution_starts_and_runs(tmp_path):
    jobs = [job(f"j{i}", f"run.sh {i}") for i in range(10_000)]
    sim = Sim(tmp_path, definitions(jobnet("big", *jobs)), "big")
    assert len(sim.phases()) == 10_001
    sim.start()
    sim.pump()
    [first] = sim.commands
    assert first.name_path == "/big/j0"
    assert first.env["MM_ACTUAL_JOB_NAME_PATH"] == "/big/j0"


def test_a_failure_at_the_head_of_a_long_chain_closes_it_without_recursion(tmp_path):
    jobs = [job(f"j{i}", f"run.sh {i}") for i in range(3_000)]
    sim = run_to_end(Sim(tmp_path, definitions(jobnet("long", *jobs)), "long",
                         outcomes={"/long/j0": 1}))
    assert sim.started == ["/long/j0"]
    assert sim.execution_row().phase == "error"
    assert {e.phase for e in sim.edges()} == {"transmitted", "closed"}


# --- property: random DAG jobnets -------------------------------------------------------------

@st.composite
def dag_jobnets(draw):
    """A flat jobnet of n jobs with random forward `to` edges (a DAG), random boot jobs, and a
    random exit status per job."""
    n = draw(st.integers(min_value=1, max_value=7))
    names = [f"j{i}" for i in range(n)]
    to = {name: sorted(draw(st.sets(st.sampled_from(names[i + 1:]), max_size=3)))
          if i + 1 < n else [] for i, name in enumerate(names)}
    targeted = {t for targets in to.values() for t in targets}
    # Every job that nothing points at is booted, plus maybe a few more.
    boot = sorted(set(n for n in names if n not in targeted)
                  | draw(st.sets(st.sampled_from(names), max_size=2)))
    fails = draw(st.sets(st.sampled_from(names), max_size=n))
    return names, to, boot, fails


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(case=dag_jobnets())
def test_random_dags_end_success_iff_every_job_succeeded(tmp_path_factory, case):
    names, to, boot, fails = case
    root = jobnet("dag", *[job(n, f"{n}.sh", to=to[n]) for n in names], boot=boot)
    sim = Sim(tmp_path_factory.mktemp("dag"), definitions(root), "dag",
              outcomes={f"/dag/{n}": 1 if n in fails else 0 for n in names})
    run_to_end(sim)
    phases = {path.rsplit("/", 1)[1]: phase for path, phase in sim.phases().items()
              if path != "/dag"}
    ran = {path.rsplit("/", 1)[1] for path in sim.started}
    assert len(sim.started) == len(ran)  # no job started twice
    predecessors = {n: [m for m in names if n in to[m]] for n in names}
    for name in ran:
        assert all(phases[p] == "success" for p in predecessors[name]), name
    for name in names:
        if all(phases[p] == "success" for p in predecessors[name]):
            assert name in ran, f"{name} should have run"
    every_job_succeeded = all(phases[n] == "success" for n in names)
    assert (sim.execution_row().phase == "success") == every_job_succeeded
    assert sim.phase("/dag") == sim.execution_row().phase
    assert "active" not in {e.phase for e in sim.edges()}
    assert "closing" not in {e.phase for e in sim.edges()}
    with sim.engine.connect() as conn:
        assert repo.open_driver_tasks(conn) == []


def test_write_transaction_is_what_the_kernel_uses(tmp_path):
    """A second writer waits for the kernel's transaction instead of failing (BEGIN IMMEDIATE)."""
    sim = Sim(tmp_path, definitions(jobnet("r", job("a", "a.sh"))), "r")
    with write_transaction(sim.engine) as conn:
        repo.enqueue(conn, Event("x.tengine"))
        with sim.engine.connect() as other:
            other.exec_driver_sql("PRAGMA busy_timeout=50")
            with pytest.raises(Exception, match="locked"):
                other.exec_driver_sql("BEGIN IMMEDIATE")


def test_an_unreachable_store_requeues_instead_of_marking_stuck(tmp_path, monkeypatch):
    from sqlalchemy.exc import OperationalError

    sim = Sim(tmp_path, definitions(jobnet("r", job("a", "a.sh"))), "r")
    before = sim.dump()

    def unavailable(*args, **kwargs):
        raise OperationalError("BEGIN", {}, Exception("database is locked"))

    monkeypatch.setattr(repo, "record_event", unavailable)
    with pytest.raises(OperationalError):
        sim.start()
    monkeypatch.undo()
    assert sim.dump() == before  # nothing stuck, nothing stored: the redelivery will do it
    sim.start()
    sim.settle()
    assert sim.execution_row().phase == "success"


def test_a_store_disconnect_of_another_class_requeues_too(tmp_path, monkeypatch):
    """PostgreSQL gone mid-transaction can surface as a DBAPIError SQLAlchemy marked as a
    disconnect, not an OperationalError: that is the store's fault, not the event's."""
    from sqlalchemy.exc import DBAPIError

    from tengine_min.core import kernel as kernel_module

    sim = Sim(tmp_path, definitions(jobnet("r", job("a", "a.sh"))), "r")
    before = sim.dump()

    def gone(*args, **kwargs):
        raise DBAPIError("BEGIN", {}, Exception("connection already closed"),
                         connection_invalidated=True)

    # In the handler, after the event row was written: the whole transaction must roll back
    # and the event go back to the queue, not be marked stuck by the failure path.
    monkeypatch.setattr(kernel_module, "handle", gone)
    with pytest.raises(DBAPIError):
        sim.start()
    monkeypatch.undo()
    assert sim.dump() == before  # not marked stuck
    sim.start()
    sim.settle()
    assert sim.execution_row().phase == "success"
