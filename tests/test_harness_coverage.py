"""The coverage matrix is read from the fields of history entries: the faults, the point they
hit, the states after; never from the entries' display text."""

from __future__ import annotations

import json
import signal
from dataclasses import replace
from typing import Any

import pytest

from harness.coverage import BEFORE_THE_RUN, Hit, hits_of, matrix, point_label
from harness.faults import (
    BadTarget,
    BrokerKill,
    BrokerStop,
    HostDown,
    HostPartition,
    LinkBlackhole,
    LinkCut,
    LinkLatency,
    ProcessKill,
    ProcessPause,
)
from harness.history import (
    ENTRY_TYPES,
    Entry,
    FailpointStep,
    Fault,
    History,
    Operation,
    PhaseChange,
)
from harness.report import ScenarioRecord, coverage_html, write_json
from tengine_min.failpoints import POINTS


class Line:
    """A history written one entry a second, as the harness records it: a fault's start is
    invoked then done, with the failpoint held at that moment; a force stop too."""

    def __init__(self) -> None:
        self.history = History(start=1000.0)
        self.clock = 1000.0

    def add(self, entry: Entry) -> Line:
        self.clock += 1
        self.history.add(replace(entry, at=self.clock))
        return self

    def job(self, path: str, phase: str, kind: str = "job", reason: str = "") -> Line:
        return self.add(PhaseChange(execution="E1", path=path, kind=kind, phase=phase,
                                    reason=reason))

    def hit(self, point: str) -> Line:
        return self.add(FailpointStep(point=point, target="core", step="hit", pid=5))

    def let_go(self, point: str, how: str = "released") -> Line:
        return self.add(FailpointStep(point=point, target="core", step=how))  # type: ignore

    def fault(self, name: str, kind: str = "some-kind") -> Line:
        fault_id = self.history.new_fault_id()
        point = self.history.held_point()
        for stage in ("invoked", "ok"):
            self.add(Fault(id=fault_id, kind=kind, name=name, target="t", step="start",
                           stage=stage, point=point))
        return self

    def end(self, fault_id: int) -> Line:
        start = next(f for f in self.history.entries(Fault) if f.id == fault_id)
        for stage in ("invoked", "ok"):
            self.add(replace(start, step="end", stage=stage, point=""))
        return self

    def force_stop(self, value: str, path: str = "") -> Line:
        return self.add(Operation(action="force_stop", path=path, value=value,
                                  point=self.history.held_point()))


class Anything:
    """A stand-in for a link, host, process or broker: every verb does nothing."""

    def __init__(self, name: str = "x") -> None:
        self.name = name
        self.pid = 4242

    def alive(self) -> bool:
        return True

    def __getattr__(self, verb: str) -> Any:
        return lambda *args, **kwargs: None


def test_every_fault_kind_is_a_row_by_its_name_and_its_end_is_none():
    history = History()
    in_effect: list = []
    started = [kind.start(history, in_effect) for kind in (
        LinkCut(Anything("ssh-s1"), "ssh", source="s1"),
        LinkBlackhole(Anything("ssh-s1"), "ssh", source="s1"),
        LinkCut(Anything("amqp-s2"), "amqp", source="s2"),
        LinkLatency(Anything("amqp-s1"), "amqp", source="s1", ms=200),
        BrokerStop(Anything()),
        BrokerKill(Anything()),
        ProcessKill(Anything("core"), role="core", target="core", source="core",
                    start_again=lambda: None),
        ProcessKill(Anything("core"), role="core", target="core", source="core",
                    sig=signal.SIGTERM, start_again=lambda: None),
        ProcessPause(Anything("console"), role="console", target="console", source="console"),
        ProcessKill(Anything(), role="watcher", target="watchdog of /jn/j1", source="s1"),
        HostDown(Anything("s1")),
        HostPartition(Anything("s1")),
        BadTarget("wrong password", source="s1"),
    )]
    for nemesis in list(in_effect):  # the repairs: heal, unblackhole, start, SIGCONT, up ...
        nemesis.end()
    assert [hit.fault for hit in hits_of("S00", "t::k", "passed", history)] == [
        "ssh link cut (refused/reset)", "ssh link black hole", "amqp link cut (refused/reset)",
        "amqp link slow (latency)", "queue stopped", "queue killed", "core killed",
        "core stopped", "console paused", "watcher killed", "server powered off",
        "server partitioned", "bad target: wrong password"]
    assert len(history.entries(Fault)) == 4 * len(started) - 2 * 2  # no end: watchdog, bad target


def test_a_fault_whose_start_failed_is_not_a_row():
    history = History()

    class Refused(LinkCut):
        def invoke(self) -> None:
            raise RuntimeError("toxiproxy is gone")

    with pytest.raises(RuntimeError, match="toxiproxy is gone"):
        Refused(Anything("ssh-s1"), "ssh", source="s1").start(history, [])
    assert [f.stage for f in history.entries(Fault)] == ["invoked", "failed"]
    assert hits_of("S01", "t::f", "failed", history) == []


def test_a_fault_while_a_failpoint_holds_hits_that_point():
    line = (Line().job("/jn/j1", "starting")
            .hit("driver.after_connect")
            .fault("ssh link cut (refused/reset)")
            .let_go("driver.after_connect")
            .end(1)
            .job("/jn", "error", kind="jobnet")  # a jobnet: not a job state
            .job("/jn/j1", "error", reason="cannot connect"))
    [hit] = hits_of("S01", "t::x", "passed", line.history)
    assert (hit.scenario, hit.fault, hit.point) == \
        ("S01", "ssh link cut (refused/reset)", "start: ssh connected, watcher not started")
    assert hit.states == (("/jn/j1", ("starting", "error")),)
    assert hit.states_text() == "starting -> error"


def test_without_a_failpoint_the_point_is_the_job_phase_or_before_the_run():
    line = (Line().fault("server powered off")
            .job("/bad/j1", "starting")
            .job("/bad/j1", "error")
            .fault("queue stopped")
            .hit("driver.before_kill")
            .let_go("driver.before_kill", "disarmed")
            .fault("core killed"))
    first, second, third = hits_of("S10", "t::y", "failed", line.history)
    assert (first.point, first.states_text()) == (BEFORE_THE_RUN, "starting -> error")
    assert (second.point, second.states_text()) == ("job error", "error")
    assert third.point == "job error"  # the failpoint was let go before the kill


def test_the_matrix_puts_each_hit_in_its_cell_and_orders_points_as_a_job_lives():
    hits = [*hits_of("S05", "a", "passed", Line().job("/j/j1", "running")
                     .fault("queue stopped").job("/j/j1", "success").history),
            *hits_of("S13", "b", "passed", Line().job("/j/j1", "running")
                     .hit("driver.before_kill").fault("queue stopped").history),
            *hits_of("S10", "c", "failed", Line().fault("server powered off").history)]
    grid = matrix(hits)
    assert grid["faults"] == ["queue stopped", "server powered off"]
    assert grid["points"] == [BEFORE_THE_RUN, "job running", "stop: kill decided, not sent"]
    assert grid["cells"]["queue stopped"]["job running"] == \
        [{"scenario": "S05", "label": "S05", "nodeid": "a", "outcome": "passed",
          "states": "running -> success"}]
    assert grid["cells"]["server powered off"][BEFORE_THE_RUN][0]["outcome"] == "failed"
    page = coverage_html(hits)
    assert "stop: kill decided, not sent" in page and "running -&gt; success" in page


def test_the_json_report_carries_the_coverage(tmp_path):
    record = ScenarioRecord("scenarios/t.py::test_s05", "S05", outcome="passed",
                            history=Line().job("/j/j1", "running")
                            .fault("queue stopped").history)
    write_json(tmp_path / "a.json", [record])
    data = json.loads((tmp_path / "a.json").read_text())
    assert data["coverage"]["hits"] == [
        {"scenario": "S05", "nodeid": "scenarios/t.py::test_s05", "outcome": "passed",
         "fault": "queue stopped", "point": "job running", "states": {"/j/j1": ["running"]}}]
    assert data["coverage"]["matrix"]["faults"] == ["queue stopped"]


def test_with_several_jobs_each_has_its_own_phases():
    line = (Line().job("/pair/j1", "running")
            .job("/pair/j2", "initialized")
            .hit("core.after_commit_before_ack")
            .fault("core killed")
            .job("/pair/j1", "success")
            .job("/pair/j2", "starting")
            .job("/pair/j2", "success"))
    [hit] = hits_of("D5", "t::z", "passed", line.history)
    assert hit.point == "core: event committed, not acked"
    assert hit.states_text() == ("j1: running -> success; "
                                 "j2: initialized -> starting -> success")


def test_a_force_stop_pressed_on_the_console_is_a_row_too():
    line = (Line().job("/j/j1", "running")
            .force_stop("job", "/j/j1")
            .job("/j/j1", "dying")
            .hit("driver.before_kill")
            .fault("queue stopped")
            .job("/j/j1", "error"))
    stop, queue = hits_of("S13", "t::s", "passed", line.history)
    assert (stop.fault, stop.point, stop.states_text()) == (
        "force stop of a job", "job running", "running -> dying -> error")
    assert (queue.fault, queue.point) == ("queue stopped", "stop: kill decided, not sent")
    root, jobnet = hits_of("S12", "t::r", "passed", Line().force_stop("root jobnet")
                           .force_stop("jobnet", "/fs/sub").history)
    assert root.fault == "force stop of a root jobnet"
    assert jobnet.fault == "force stop of a jobnet"


def test_columns_follow_the_life_of_a_job():
    points = ["core: event committed, not acked", "job running", "start: job spawned, pid not "
              "reported", "stop: kill sent, not reported", "job dying", "job starting",
              BEFORE_THE_RUN, "start: ssh connected, watcher not started", "somewhere else",
              "stop: kill decided, not sent", "end: job ended, result not published"]
    hits = [Hit("S00", str(n), "passed", "queue stopped", point, ())
            for n, point in enumerate(points)]
    assert matrix(hits)["points"] == [
        BEFORE_THE_RUN, "start: ssh connected, watcher not started",
        "start: job spawned, pid not reported", "job starting", "job running", "job dying",
        "end: job ended, result not published", "stop: kill decided, not sent",
        "stop: kill sent, not reported", "core: event committed, not acked", "somewhere else"]


def test_jobs_not_started_neither_set_the_point_nor_clutter_the_states():
    line = (Line().job("/fs/sub/j1", "running")
            .job("/fs/sub/j2", "initialized")
            .job("/fs/after", "ready")
            .force_stop("jobnet", "/fs/sub")
            .job("/fs/sub/j1", "error"))
    [hit] = hits_of("S12", "scenarios/t.py::test_stop[jobnet]", "passed", line.history)
    assert hit.point == "job running"
    assert hit.states_text() == "running -> error"
    assert hit.label == "S12[jobnet]"
    quiet = hits_of("S00", "t::q", "passed", Line().job("/a/j1", "initialized")
                    .fault("queue stopped").history)
    assert (quiet[0].point, quiet[0].states_text(), quiet[0].label) == (
        "job initialized", "initialized", "S00")


def test_a_held_point_is_named_by_its_label_in_the_failpoint_catalogue():
    for name, point in POINTS.items():
        assert point_label(name) == point.label
    assert point_label("somewhere.new") == "somewhere.new"  # not in the catalogue: its name
    [hit] = hits_of("S00", "t::p", "passed", Line().hit("watcher.before_record_started")
                    .fault("queue stopped").history)
    assert hit.point == POINTS["watcher.before_record_started"].label


def test_no_fault_says_so():
    assert "No fault was injected" in coverage_html([])


def test_rewording_the_display_text_changes_nothing_in_the_matrix(monkeypatch):
    """Nothing reads an entry's text back: reword every entry type and the same matrix
    comes out of the same histories."""
    lines = [Line().job("/jn/j1", "starting").hit("driver.after_connect")
             .fault("ssh link cut (refused/reset)").let_go("driver.after_connect").end(1)
             .job("/jn/j1", "error"),
             Line().job("/j/j1", "running").force_stop("job", "/j/j1").job("/j/j1", "dying")
             .hit("driver.before_kill").fault("queue stopped").job("/j/j1", "error")]

    def grid() -> dict[str, Any]:
        return matrix([hit for n, line in enumerate(lines)
                       for hit in hits_of(f"S0{n}", f"t::{n}", "passed", line.history)])

    before, text_before = grid(), [line.history.as_text() for line in lines]
    for entry_type in ENTRY_TYPES:
        monkeypatch.setattr(entry_type, "text", lambda self: "reworded: nothing to parse here")
    assert grid() == before
    assert [line.history.as_text() for line in lines] != text_before  # the rewording took
    assert "reworded" in lines[0].history.as_text()
    assert before["faults"] == ["force stop of a job", "queue stopped",
                                "ssh link cut (refused/reset)"]
