"""The jobnet state machine, driven through the real kernel with a fake driver/watcher
(tests/support/core_sim.py): structures to success, failures, force stops, late results, reruns."""

from __future__ import annotations

import pytest

from support.core_sim import HOLD, Sim, run_to_end
from support.templates import (
    definitions,
    expansion,
    finally_,
    hadoop_job,
    hadoop_job_run,
    job,
    jobnet,
)
from tengine_min.events import names as ev
from tengine_min.events.envelope import Event
from tengine_min.model.phases import DYING, ERROR, SUCCESS, USER_STOP, human_label
from tengine_min.store import repo
from tengine_min.store.db import write_transaction


def jn0004(**options):
    """tengine-facts section 9: j1 -> (j2 || j3) -> j4, finally jn0004_f."""
    return jobnet("jn0004",
                  job("j1", "j.sh 1", to=["j2", "j3"]),
                  job("j2", "j.sh 2", to="j4"),
                  job("j3", "j.sh 3", to="j4"),
                  job("j4", "j.sh 4"),
                  finally_(job("jn0004_f", "j.sh f")),
                  boot=["j1"], server_name="test_server1", **options)


def sim_of(tmp_path, *roots, outcomes=None, **kw) -> Sim:
    return Sim(tmp_path, definitions(*roots), roots[0].name, outcomes=outcomes, **kw)


def edge_phases(sim: Sim, *jobnet_paths: str) -> set[str]:
    """Phases of the edges of the given jobnets (all jobnets when none is given)."""
    ids = {sim.execution.vertex_by_path(p).id for p in jobnet_paths}
    return {e.phase for e in sim.edges() if not ids or e.jobnet_id in ids}


# --- to success ------------------------------------------------------------------------------

def test_serial_jobnet_runs_in_order_to_success(tmp_path):
    sim = run_to_end(sim_of(tmp_path, jobnet("serial", job("a", "a.sh"), job("b", "b.sh"),
                                             job("c", "c.sh"))))
    assert sim.started == ["/serial/a", "/serial/b", "/serial/c"]
    assert set(sim.phases().values()) == {"success"}
    assert sim.execution_row().phase == "success"
    assert edge_phases(sim) == {"transmitted"}
    assert sim.event_names()[-1] == ev.SUCCESS_EXECUTION


def test_phase_changes_follow_tengines_order_for_one_job(tmp_path, caplog):
    sim = sim_of(tmp_path, jobnet("one", job("j", "j.sh")))
    with caplog.at_level("INFO", logger="tengine.core.test"):
        run_to_end(sim)
    exe, root, j = sim.execution.id, sim.execution.root.id, sim.execution.vertex_by_path(
        "/one/j").id
    changes = [" ".join(r.getMessage().split()[2:6]) for r in caplog.records
               if r.getMessage().startswith("phase changed")]
    assert changes == [
        f"{exe} initialized -> ready", f"{exe} ready -> starting",
        f"{root} initialized -> ready", f"{root} ready -> starting",
        f"{exe} starting -> running",
        f"{j} initialized -> ready", f"{j} ready -> starting", f"{root} starting -> running",
        f"{j} starting -> running", f"{j} running -> success",
        f"{root} running -> success", f"{exe} running -> success"]


def test_fork_join_waits_for_both_branches_then_runs_finally(tmp_path):
    sim = sim_of(tmp_path, jn0004(), outcomes={"/jn0004/j3": HOLD})
    sim.start()
    sim.settle()
    assert sim.phase("/jn0004/j2") == "success"
    assert sim.phase("/jn0004/j4") == "initialized"  # the join waits for j3
    sim.finish_held("/jn0004/j3", 0)
    sim.settle()
    assert sim.started[-2:] == ["/jn0004/j4", "/jn0004/finally/jn0004_f"]
    assert set(sim.phases().values()) == {"success"}
    assert sim.execution_row().phase == "success"


def test_nested_jobnets_and_expansions_run_to_success(tmp_path):
    child = jobnet("child_root", job("c1", "c1.sh"), job("c2", "c2.sh"))
    root = jobnet("root", job("a", "a.sh"),
                  jobnet("inner", job("i1", "i1.sh"), jobnet("deeper", job("d1", "d1.sh"))),
                  expansion("child_root"), job("z", "z.sh"))
    sim = run_to_end(Sim(tmp_path, definitions(root, child), "root"))
    assert sim.started == ["/root/a", "/root/inner/i1", "/root/inner/deeper/d1",
                           "/root/child_root/c1", "/root/child_root/c2", "/root/z"]
    assert set(sim.phases().values()) == {"success"}
    assert sim.execution_row().phase == "success"


def test_an_empty_jobnet_succeeds(tmp_path):
    sim = run_to_end(sim_of(tmp_path, jobnet("r", job("a", "a.sh"), jobnet("empty"))))
    assert sim.phases() == {"/r": "success", "/r/a": "success", "/r/empty": "success"}


def test_a_child_never_booted_never_runs_and_the_jobnet_still_succeeds(tmp_path):
    root = jobnet("r", job("a", "a.sh"), job("lonely", "l.sh"), boot=["a"])
    sim = run_to_end(sim_of(tmp_path, root))
    assert sim.phases() == {"/r": "success", "/r/a": "success", "/r/lonely": "initialized"}


def test_hadoop_job_boxes_mirror_their_hadoop_job_run(tmp_path):
    root = jobnet("r", hadoop_job_run("hjr", "hjr.sh", hadoop_job("hj1")))
    sim = run_to_end(sim_of(tmp_path, root))
    assert sim.started == ["/r/hjr"]
    assert sim.phases() == {"/r": "success", "/r/hjr": "success", "/r/hjr/hj1": "success",
                            "/r/hjr/hj1/Map": "success", "/r/hjr/hj1/Reduce": "success"}


def test_core_events_carry_tengines_properties_and_source_names(tmp_path):
    sim = run_to_end(sim_of(tmp_path, jobnet("r", jobnet("n", job("j", "j.sh")))))
    root, n, j = (sim.execution.vertex_by_path(p) for p in ("/r", "/r/n", "/r/n/j"))
    start_job = sim.events_of(ev.START_JOB)[0]
    assert start_job.source_name == f"job:core-host/4242/{root.id}/{j.id}"
    assert start_job.properties == {
        "execution_id": sim.execution.id, "root_jobnet_id": root.id,
        "root_jobnet_name_path": "/r", "target_jobnet_id": n.id,
        "target_jobnet_name_path": "/r/n", "target_job_id": j.id, "target_job_name_path": "/r/n/j"}
    start_jobnet = next(e for e in sim.events_of(ev.START_JOBNET)
                        if e.properties["target_jobnet_id"] == n.id)
    assert start_jobnet.properties["target_job_id"] is None
    success = sim.events_of(ev.SUCCESS_EXECUTION)[0]
    assert success.source_name == f"execution:core-host/4242/{root.id}/{sim.execution.id}"


# --- failures ------------------------------------------------------------------------------

def test_a_failing_job_closes_what_follows_while_the_parallel_branch_finishes(tmp_path):
    sim = sim_of(tmp_path, jn0004(), outcomes={"/jn0004/j2": 1, "/jn0004/j3": HOLD})
    sim.start()
    sim.settle()
    assert sim.phase("/jn0004/j2") == "error"
    assert sim.phase("/jn0004/j3") == "running"  # the parallel branch goes on
    assert sim.phase("/jn0004") == "running"
    sim.finish_held("/jn0004/j3", 0)
    sim.settle()
    assert sim.phases() == {
        "/jn0004": "error", "/jn0004/j1": "success", "/jn0004/j2": "error",
        "/jn0004/j3": "success", "/jn0004/j4": "initialized",  # skipped
        "/jn0004/finally": "success", "/jn0004/finally/jn0004_f": "success"}
    assert sim.execution_row().phase == "error"
    assert "active" not in edge_phases(sim)
    j2 = sim.vertex("/jn0004/j2")
    assert (j2.exit_status, j2.reason) == (1, "exit status 1")
    assert j2.result["stderr_tail"] == "err" and j2.result["stdout_log"].endswith("stdout.log")
    error = sim.events_of(ev.ERROR_JOB)[0]
    assert (error.level, error.properties["message"], error.properties["exit_status"]) == (
        "error", "exit status 1", 1)


def test_a_failing_finally_fails_its_jobnet(tmp_path):
    sim = run_to_end(sim_of(tmp_path, jn0004(), outcomes={"/jn0004/finally/jn0004_f": 2}))
    assert sim.phase("/jn0004/j4") == "success"
    assert sim.phase("/jn0004/finally") == "error"
    assert sim.phase("/jn0004") == "error"
    assert sim.execution_row().phase == "error"


def test_a_failure_inside_a_sub_jobnet_propagates_up(tmp_path):
    root = jobnet("r", jobnet("n", job("bad", "bad.sh"), job("after", "after.sh")),
                  job("next", "next.sh"), finally_(job("f", "f.sh")))
    sim = run_to_end(sim_of(tmp_path, root, outcomes={"/r/n/bad": 3}))
    assert sim.phases() == {"/r": "error", "/r/n": "error", "/r/n/bad": "error",
                            "/r/n/after": "initialized", "/r/next": "initialized",
                            "/r/finally": "success", "/r/finally/f": "success"}


def test_start_failure_is_an_error_with_the_drivers_message(tmp_path):
    sim = sim_of(tmp_path, jobnet("r", job("a", "a.sh"), job("b", "b.sh")))
    sim.start()
    sim.pump()
    [command] = sim.commands
    sim.commands.clear()
    sim.send(Event(ev.START_FAILED_JOB, level="error", properties={
        **command.properties, "message": "cannot connect to host test1: connection refused"}))
    sim.settle()
    a = sim.vertex("/r/a")
    assert (a.phase, a.reason) == ("error", "cannot connect to host test1: connection refused")
    assert sim.phase("/r/b") == "initialized" and sim.execution_row().phase == "error"
    assert sim.events_of(ev.ERROR_JOB)[0].properties["message"].startswith("cannot connect")


def test_a_watcher_lost_is_an_error_and_its_later_result_is_kept(tmp_path):
    sim = sim_of(tmp_path, jobnet("r", job("a", "a.sh")), outcomes={"/r/a": HOLD})
    sim.start()
    sim.settle()
    a = sim.execution.vertex_by_path("/r/a")
    sim.send(Event(ev.EXPIRED_JOB_HEARTBEAT, level="error",
                   properties={"target_job_id": a.id, "job_id": a.id}))
    sim.settle()
    row = sim.vertex("/r/a")
    assert row.phase == "error" and row.reason.startswith("watcher lost: no heartbeat since never")
    sim.finish_held("/r/a", 0)
    sim.settle()
    row = sim.vertex("/r/a")
    assert row.phase == "error"  # unchanged
    assert (row.late_result["exit_status"], row.late_result["phase_when_received"]) == (0, "error")
    [late] = sim.events_of(ev.LATE_RESULT_JOB)
    assert late.level == "warn" and "already error" in late.properties["message"]


# --- force stop --------------------------------------------------------------------------------

def test_force_stop_of_a_job_runs_finally_and_fails_the_root(tmp_path):
    sim = sim_of(tmp_path, jn0004(), outcomes={"/jn0004/j2": HOLD, "/jn0004/j3": HOLD})
    sim.start()
    sim.settle()
    sim.stop("/jn0004/j2")
    assert sim.phase("/jn0004/j2") == "dying"
    assert human_label(DYING, sim.vertex("/jn0004/j2").stop_reason) == human_label(DYING)  # plain
    [kill] = sim.commands
    assert (kill.pid, kill.signals, kill.interval) == (sim.vertex("/jn0004/j2").pid, ("KILL",), 5)
    sim.settle()
    j2 = sim.vertex("/jn0004/j2")
    assert (j2.phase, j2.stop_reason, j2.reason, j2.signal) == (
        "error", "user_stop", "force stopped (user_stop)", "KILL")
    assert human_label(j2.phase, j2.stop_reason) == "エラー終了(強制停止済)"
    assert sim.phase("/jn0004/j3") == "running"  # the parallel job continues
    sim.finish_held("/jn0004/j3", 0)
    sim.settle()
    assert sim.phase("/jn0004/j4") == "initialized"
    assert sim.phase("/jn0004/finally/jn0004_f") == "success"
    root = sim.vertex("/jn0004")
    assert (root.phase, root.stop_reason) == ("error", None)  # plain エラー終了
    assert sim.execution_row().phase == "error"


def test_force_stop_of_a_jobnet_stops_its_jobs_and_fails_upwards(tmp_path):
    root = jobnet("r", jobnet("n", job("a", "a.sh"), job("b", "b.sh"),
                              finally_(job("nf", "nf.sh"))),
                  job("next", "next.sh"), finally_(job("f", "f.sh")))
    sim = sim_of(tmp_path, root, outcomes={"/r/n/a": HOLD})
    sim.start()
    sim.settle()
    sim.stop("/r/n")
    sim.settle()
    assert sim.phases() == {
        "/r": "error", "/r/n": "error", "/r/n/a": "error", "/r/n/b": "initialized",
        "/r/n/finally": "initialized", "/r/n/finally/nf": "initialized",  # finally skipped
        "/r/next": "initialized", "/r/finally": "success", "/r/finally/f": "success"}
    n, a = sim.vertex("/r/n"), sim.vertex("/r/n/a")
    assert human_label(n.phase, n.stop_reason) == human_label(ERROR, USER_STOP)
    assert human_label(a.phase, a.stop_reason) == human_label(ERROR, USER_STOP)
    assert sim.vertex("/r").stop_reason is None
    assert edge_phases(sim, "/r", "/r/n", "/r/finally") == {"closed", "transmitted"}
    assert edge_phases(sim, "/r/n/finally") == {"active"}  # it never ran


def test_force_stop_of_the_root_skips_finally(tmp_path):
    sim = sim_of(tmp_path, jn0004(), outcomes={"/jn0004/j1": HOLD})
    sim.start()
    sim.settle()
    sim.stop("/jn0004")
    assert sim.execution_row().phase == "dying"
    sim.settle()
    phases = sim.phases()
    assert phases["/jn0004/j1"] == "error"
    assert phases["/jn0004/finally"] == "initialized"  # finally stays 初期化済
    for path in ("/jn0004", "/jn0004/j1"):
        row = sim.vertex(path)
        assert human_label(row.phase, row.stop_reason) == human_label(ERROR, USER_STOP)
    exe = sim.execution_row()
    assert (exe.phase, exe.stop_reason) == ("error", "user_stop")
    assert sim.events_of(ev.ERROR_EXECUTION)[0].properties["stop_reason"] == "user_stop"


def test_stop_while_ready_returns_the_job_to_initialized(tmp_path):
    """A jobnet stop reaching a job whose start event is still queued."""
    root = jobnet("r", jobnet("n", job("a", "a.sh"), job("b", "b.sh")), finally_(job("f", "f.sh")))
    sim = sim_of(tmp_path, root)
    sim.start()
    # Deliver events one at a time until /r/n/a is ready (its start.job not yet handled).
    while sim.phase("/r/n/a") != "ready":
        _deliver_one(sim)
    sim.stop("/r/n")
    # The cascaded stop.job overtakes the queued start.job (as on a second core or a requeue).
    _deliver_one(sim, ev.STOP_JOB)
    assert sim.phase("/r/n/a") == "initialized"
    sim.settle()
    a = sim.vertex("/r/n/a")
    assert (a.phase, a.stop_reason) == ("initialized", "user_stop")
    assert "/r/n/a" not in sim.started
    assert sim.phase("/r/n") == "error" and sim.phase("/r/finally/f") == "success"
    assert sim.phase("/r") == "error"


def test_a_job_whose_jobnet_is_stopping_does_not_start_when_its_start_arrives(tmp_path):
    root = jobnet("r", jobnet("n", job("a", "a.sh"), job("b", "b.sh")), finally_(job("f", "f.sh")))
    sim = sim_of(tmp_path, root)
    sim.start()
    while sim.phase("/r/n/a") != "ready":
        _deliver_one(sim)
    sim.stop("/r/n")  # its stop.job is queued behind a's start.job
    sim.settle()
    assert "/r/n/a" not in sim.started
    a = sim.vertex("/r/n/a")
    assert (a.phase, a.stop_reason) == ("initialized", "user_stop")
    assert sim.phases()["/r/n"] == "error" and sim.phase("/r") == "error"


def test_stopping_the_root_before_it_began_ends_it_at_once(tmp_path):
    sim = sim_of(tmp_path, jn0004())
    sim.start()  # the root is ready, its start.jobnet queued
    sim.stop("/jn0004")
    sim.settle()
    assert sim.started == []
    assert set(sim.phases().values()) == {"initialized"} | {"error"}
    assert sim.phase("/jn0004") == "error"
    exe = sim.execution_row()
    assert (exe.phase, exe.stop_reason) == ("error", "user_stop")


def test_stopping_an_execution_that_never_started(tmp_path):
    sim = sim_of(tmp_path, jn0004())
    sim.stop("/jn0004")
    sim.start()  # arrives after the stop: ignored
    sim.settle()
    assert sim.started == [] and sim.execution_row().phase == "error"
    assert sim.phase("/jn0004") == "initialized"


def test_a_job_level_stop_while_ready_passes_the_signal_on_as_tengine_does(tmp_path):
    sim = sim_of(tmp_path, jobnet("r", job("a", "a.sh"), job("b", "b.sh")))
    sim.start()
    while sim.phase("/r/a") != "ready":
        _deliver_one(sim)
    sim.stop("/r/a")
    sim.settle()
    assert sim.phases() == {"/r": "success", "/r/a": "initialized", "/r/b": "success"}


def test_stop_while_starting_kills_as_soon_as_the_pid_is_known(tmp_path):
    sim = sim_of(tmp_path, jobnet("r", job("a", "a.sh")), outcomes={"/r/a": HOLD})
    sim.start()
    sim.pump()
    [start] = sim.commands  # the ssh start is in flight
    sim.stop("/r/a")
    assert sim.phase("/r/a") == "dying" and sim.vertex("/r/a").pid is None
    sim.commands.clear()
    sim.running[start.watcher_job_id] = (start, 555)
    sim.send(sim.started_event(start, 555))
    [kill] = sim.commands
    assert kill.pid == 555
    sim.settle()
    a = sim.vertex("/r/a")
    assert (a.phase, a.reason, a.pid) == ("error", "force stopped (user_stop)", 555)


def test_a_job_that_exits_0_while_being_stopped_succeeds(tmp_path):
    """S15: the script finishes normally just as the force stop arrives."""
    sim = sim_of(tmp_path, jobnet("r", job("a", "a.sh"), job("b", "b.sh")),
                 outcomes={"/r/a": HOLD})
    sim.start()
    sim.settle()
    sim.stop("/r/a")
    sim.commands.clear()  # the kill will find nothing
    sim.finish_held("/r/a", 0)
    sim.settle()
    a = sim.vertex("/r/a")
    assert a.phase == "success" and human_label(a.phase, a.stop_reason) == human_label(SUCCESS)
    assert sim.phase("/r/b") == "success" and sim.phase("/r") == "success"


def test_stop_failed_leaves_the_job_running_and_a_second_stop_kills_it(tmp_path):
    sim = sim_of(tmp_path, jobnet("r", job("a", "a.sh")), outcomes={"/r/a": HOLD})
    sim.start()
    sim.settle()
    sim.stop("/r/a")
    [kill] = sim.commands
    sim.commands.clear()
    sim.send(Event(ev.STOP_FAILED_JOB, level="error",
                   properties={**kill.properties, "message": "ssh connection lost"}))
    a = sim.vertex("/r/a")
    assert (a.phase, a.reason) == ("running", "stop failed: ssh connection lost")
    sim.stop("/r/a")
    assert len(sim.commands) == 1
    sim.settle()
    assert sim.vertex("/r/a").phase == "error"
    assert sim.vertex("/r/a").reason == "force stopped (user_stop)"


def test_stop_of_a_finished_job_or_unknown_ids_change_nothing(tmp_path):
    sim = run_to_end(sim_of(tmp_path, jobnet("r", job("a", "a.sh"))))
    before = sim.dump()
    sim.stop("/r/a")
    sim.send(Event(ev.STOP_JOB, properties={"target_job_id": "f" * 24}))
    sim.send(Event(ev.FINISHED_PROCESS_JOB, properties={"job_id": "nope", "exit_status": 0}))
    sim.send(Event(ev.START_EXECUTION, properties={"execution_id": "nope"}))
    sim.send(Event(ev.SUCCESS_JOB, properties={}))
    after = sim.dump()
    for table in ("vertices", "edges", "executions", "outbox", "driver_tasks"):
        assert after[table] == before[table], table
    assert len(after["events"]) == len(before["events"]) + 5  # stored all the same


def test_a_late_finished_event_is_recorded_and_the_phase_does_not_change(tmp_path):
    sim = run_to_end(sim_of(tmp_path, jobnet("r", job("a", "a.sh"))))
    a = sim.execution.vertex_by_path("/r/a")
    late = Event(ev.FINISHED_PROCESS_JOB, level="error", source_name="job:s/1/r/a",
                 properties={"job_id": a.id, "exit_status": 7, "pid": 1})
    sim.send(late)
    sim.settle()
    row = sim.vertex("/r/a")
    assert row.phase == "success" and row.exit_status == 0
    assert row.late_result["exit_status"] == 7
    assert row.late_result["event_key"] == late.key
    assert row.late_result["source_name"] == "job:s/1/r/a"
    assert sim.events_of(ev.LATE_RESULT_JOB)[0].properties["exit_status"] == 7


# --- rerun -------------------------------------------------------------------------------------

def test_rerun_from_a_failed_job_runs_it_and_what_follows_then_finally(tmp_path):
    sim = run_to_end(sim_of(tmp_path, jn0004(), outcomes={"/jn0004/j3": 1}))
    assert sim.execution_row().phase == "error"
    sim.outcomes["/jn0004/j3"] = 0
    sim.started.clear()
    sim.rerun("/jn0004/j3")
    sim.settle()
    assert sim.started == ["/jn0004/j3", "/jn0004/j4", "/jn0004/finally/jn0004_f"]
    assert set(sim.phases().values()) == {"success"}
    assert sim.execution_row().phase == "success"
    assert sim.vertex("/jn0004/j3").attempt == 2


def test_rerun_from_a_job_in_a_sub_jobnet_reopens_the_levels_above(tmp_path):
    root = jobnet("r", jobnet("n", job("bad", "bad.sh"), job("after", "after.sh")),
                  job("next", "next.sh"), finally_(job("f", "f.sh")))
    sim = run_to_end(sim_of(tmp_path, root, outcomes={"/r/n/bad": 3}))
    sim.outcomes["/r/n/bad"] = 0
    sim.started.clear()
    sim.rerun("/r/n/bad")
    sim.settle()
    assert sim.started == ["/r/n/bad", "/r/n/after", "/r/next", "/r/finally/f"]
    assert set(sim.phases().values()) == {"success"}
    assert sim.execution_row().phase == "success"


def test_spot_rerun_runs_that_job_only(tmp_path):
    sim = run_to_end(sim_of(tmp_path, jn0004(), outcomes={"/jn0004/j2": 1}))
    sim.outcomes["/jn0004/j2"] = 0
    sim.started.clear()
    sim.rerun("/jn0004/j2", spot=True)
    sim.settle()
    assert sim.started == ["/jn0004/j2"]
    assert sim.phase("/jn0004/j2") == "success"
    assert sim.phase("/jn0004/j4") == "initialized"
    assert sim.phase("/jn0004") == "error"  # its jobnet keeps the outcome it had


def test_a_result_from_the_run_before_a_rerun_is_a_late_result(tmp_path):
    sim = sim_of(tmp_path, jobnet("r", job("a", "a.sh")), outcomes={"/r/a": HOLD})
    sim.start()
    sim.settle()
    a = sim.execution.vertex_by_path("/r/a")
    sim.send(Event(ev.EXPIRED_JOB_HEARTBEAT, properties={"target_job_id": a.id}))
    sim.settle()
    [(first_start, first_pid)] = sim.running.values()
    sim.running.clear()
    sim.rerun("/r/a")
    sim.pump()
    [second] = sim.commands
    assert second.watcher_job_id == f"{a.id}.2"
    sim.commands.clear()
    sim.send(sim.started_event(second, 999))
    # The first run's result arrives now: it must not decide the second run.
    sim.send(sim.finished_event(first_start, first_pid, exit_status=5))
    row = sim.vertex("/r/a")
    assert (row.phase, row.pid, row.late_result["exit_status"]) == ("running", 999, 5)
    sim.send(sim.finished_event(second, 999, exit_status=0))
    sim.settle()
    assert sim.vertex("/r/a").phase == "success" and sim.execution_row().phase == "success"


def test_rerun_is_refused_while_the_job_runs(tmp_path):
    sim = sim_of(tmp_path, jobnet("r", job("a", "a.sh")), outcomes={"/r/a": HOLD})
    sim.start()
    sim.settle()
    before = sim.dump()
    sim.rerun("/r/a")
    after = sim.dump()
    assert after["vertices"] == before["vertices"] and after["outbox"] == before["outbox"]


@pytest.mark.parametrize("signal, expected", [("KILL", "KILL"), ("SIGTERM", "TERM"), (9, "KILL")])
def test_a_job_killed_by_a_signal_says_so(tmp_path, signal, expected):
    sim = sim_of(tmp_path, jobnet("r", job("a", "a.sh")), outcomes={"/r/a": HOLD})
    sim.start()
    sim.settle()
    [(start, pid)] = sim.running.values()
    sim.send(sim.finished_event(start, pid, exit_status=None, signal=signal))
    assert sim.vertex("/r/a").reason == f"killed by signal {expected}"


def _deliver_one(sim: Sim, event_type_name: str | None = None) -> None:
    """Deliver the oldest pending outbox event (of that type, when given)."""
    with write_transaction(sim.engine) as conn:
        pending = repo.pending_outbox(conn, limit=1000)
        row_id, event = next((i, e) for i, e in pending
                             if event_type_name in (None, e.event_type_name))
        repo.mark_published(conn, [row_id], now=sim.clock())
    sim.send(event)
