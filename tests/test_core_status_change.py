"""The status change (ステータス変更) as the core applies it: `change_status.job.job.tengine`
through the real kernel (tests/support/core_sim.py), with Tengine's rules: only initialized,
success or error; a final status sets the end time if there was none; the stop reason is kept;
the root jobnet's execution takes the same status; boxes are refused; nothing fires."""

from __future__ import annotations

import pytest

from support.core_sim import HOLD, Sim, run_to_end
from support.templates import definitions, hadoop_job, hadoop_job_run, job, jobnet
from tengine_min.events import names as ev
from tengine_min.events.envelope import Event
from tengine_min.model.phases import human_label


def serial(tmp_path, **outcomes) -> Sim:
    defs = definitions(jobnet("serial", job("a", "a.sh"), job("b", "b.sh"),
                              server_name="local"))
    return Sim(tmp_path, defs, "serial", outcomes=outcomes)


def change_status(sim: Sim, name_path: str, status: object) -> Event:
    """What the console sends: the vertex named as a job or as a jobnet."""
    vertex = sim.execution.vertex_by_path(name_path)
    target = ({"target_job_id": vertex.id} if vertex.runs_script
              else {"target_jobnet_id": vertex.id})
    event = Event(ev.CHANGE_STATUS_JOB, properties={
        "execution_id": sim.execution.id, "root_jobnet_id": sim.execution.root.id,
        **target, "status": status})
    sim.send(event)
    return event


def fired_after(sim: Sim, event: Event) -> list[str]:
    """What the kernel processed after `event`, once the outbox is pumped."""
    sim.settle()
    names = sim.event_names()
    return names[names.index(event.event_type_name) + 1:]


def test_a_status_change_sets_the_phase_and_nothing_after_it_starts(tmp_path):
    sim = run_to_end(serial(tmp_path, **{"/serial/a": 3}))
    assert (sim.phase("/serial/a"), sim.phase("/serial/b")) == ("error", "initialized")
    finished = sim.vertex("/serial/a").finished_at
    sim.clock.advance(minutes=1)
    command = change_status(sim, "/serial/a", "success")
    assert fired_after(sim, command) == []
    assert sim.phase("/serial/a") == "success"
    assert sim.vertex("/serial/a").finished_at == finished  # it had one: kept
    assert sim.phase("/serial/b") == "initialized"  # nothing follows: a rerun does that
    assert sim.execution_row().phase == "error"  # only the root's status moves its execution


def test_a_final_status_sets_the_end_time_only_when_there_was_none(tmp_path):
    sim = serial(tmp_path, **{"/serial/a": HOLD})
    sim.start()
    sim.settle()
    assert sim.phase("/serial/a") == "running" and sim.vertex("/serial/a").finished_at is None
    change_status(sim, "/serial/a", "initialized")
    assert sim.phase("/serial/a") == "initialized"
    assert sim.vertex("/serial/a").finished_at is None  # not a final status
    sim.clock.advance(minutes=1)
    change_status(sim, "/serial/a", "error")
    assert sim.phase("/serial/a") == "error"
    assert sim.vertex("/serial/a").finished_at == sim.clock.now
    set_at = sim.clock.now
    sim.clock.advance(minutes=1)
    change_status(sim, "/serial/a", "success")
    assert sim.vertex("/serial/a").finished_at == set_at


def test_the_stop_reason_is_kept(tmp_path):
    sim = serial(tmp_path, **{"/serial/a": HOLD})
    sim.start()
    sim.settle()
    sim.stop("/serial/a")
    sim.settle()
    job = sim.vertex("/serial/a")
    assert (job.phase, job.stop_reason) == ("error", "user_stop")
    change_status(sim, "/serial/a", "success")
    change_status(sim, "/serial/a", "error")
    job = sim.vertex("/serial/a")
    assert (job.phase, job.stop_reason) == ("error", "user_stop")
    assert human_label(job.phase, job.stop_reason) == "エラー終了(強制停止済)"


def test_the_root_jobnets_execution_takes_the_same_status(tmp_path):
    sim = serial(tmp_path, **{"/serial/a": HOLD})
    sim.start()
    sim.settle()
    assert sim.execution_row().phase == "running"
    command = change_status(sim, "/serial", "error")
    assert fired_after(sim, command) == []
    root, execution = sim.vertex("/serial"), sim.execution_row()
    assert (root.phase, execution.phase) == ("error", "error")
    assert root.finished_at == execution.finished_at == sim.clock.now
    assert sim.phase("/serial/a") == "running"  # the change moves the root only


@pytest.mark.parametrize("status", ["running", "stuck", "正常終了", "", None, 3])
def test_other_statuses_change_nothing(tmp_path, status):
    sim = run_to_end(serial(tmp_path, **{"/serial/a": 3}))
    before = (sim.phases(), sim.execution_row())
    command = change_status(sim, "/serial/a", status)
    assert fired_after(sim, command) == []
    assert (sim.phases(), sim.execution_row()) == before


def test_boxes_and_unknown_targets_change_nothing(tmp_path):
    defs = definitions(jobnet("hadoop", hadoop_job_run("hjr", "hjr.sh", hadoop_job("hj")),
                              server_name="local"))
    sim = run_to_end(Sim(tmp_path, defs, "hadoop"))
    before = (sim.phases(), sim.execution_row())
    box = sim.execution.vertex_by_path("/hadoop/hjr/hj")
    for target in ({"target_jobnet_id": box.id}, {"target_job_id": box.id},
                   {"target_job_id": "no-such-vertex"}, {}):
        sim.send(Event(ev.CHANGE_STATUS_JOB, properties={**target, "status": "error"}))
    sim.settle()
    assert (sim.phases(), sim.execution_row()) == before
