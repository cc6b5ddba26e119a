"""The coverage matrix is read from timelines: faults, the point they hit, the states after."""

import json

from harness.coverage import BEFORE_THE_RUN, Hit, fault_kind, hits_of, matrix
from harness.report import ScenarioRecord, Timeline, coverage_html, write_json


def timeline(*entries: tuple[str, str]) -> Timeline:
    line = Timeline(start=1000.0)
    for offset, (kind, text) in enumerate(entries):
        line.add(kind, text, at=1000.0 + offset)
    return line


def test_fault_kinds_and_repairs():
    assert fault_kind("link ssh-s1 cut (refused, live connections closed)") == \
        "ssh link cut (refused/reset)"
    assert fault_kind("link ssh-s1 blackholed (data dropped both ways, nothing closes)") == \
        "ssh link black hole"
    assert fault_kind("link amqp-s2 cut (refused, live connections closed)") == \
        "amqp link cut (refused/reset)"
    assert fault_kind("link amqp-s1 latency 200 ms +/- 0 (both)") == "amqp link slow (latency)"
    assert fault_kind("stopping the broker") == "queue stopped"
    assert fault_kind("broker killed (SIGKILL)") == "queue killed"
    assert fault_kind("core pid 4242 sent SIGKILL") == "core killed"
    assert fault_kind("console pid 17 sent SIGSTOP") == "console paused"
    assert fault_kind("watchdog pid 77 of job /jn/j1 sent SIGKILL") == "watcher killed"
    assert fault_kind("host s1 powered off") == "server powered off"
    assert fault_kind("host s1 partitioned") == "server partitioned"
    assert fault_kind("bad target: wrong password") == "bad target: wrong password"
    for repair in ("link ssh-s1 healed", "link ssh-s1 blackhole removed (held connections "
                   "closed)", "broker stopped", "starting the broker",
                   "broker started (accepts AMQP)", "core restarted, pid 9",
                   "core pid 4242 sent SIGCONT", "watchdog pid 77 of job /jn/j1 sent SIGCONT",
                   "host s1 healed"):
        assert fault_kind(repair) is None, repair


def test_a_fault_while_a_failpoint_holds_hits_that_point():
    line = timeline(("phase", "job /jn/j1 starting (開始中)"),
                    ("failpoint", "hit driver.after_connect (pid 12)"),
                    ("fault", "link ssh-s1 cut (refused, live connections closed)"),
                    ("failpoint", "released driver.after_connect"),
                    ("fault", "link ssh-s1 healed"),
                    ("phase", "jobnet /jn error (エラー終了)"),  # a jobnet: not a job state
                    ("phase", "job /jn/j1 error (エラー終了) reason='cannot connect'"))
    [hit] = hits_of("S01", "t::x", "passed", line)
    assert (hit.scenario, hit.fault, hit.point) == \
        ("S01", "ssh link cut (refused/reset)", "start: ssh connected, watcher not started")
    assert hit.states == (("/jn/j1", ("starting", "error")),)
    assert hit.states_text() == "starting -> error"


def test_without_a_failpoint_the_point_is_the_job_phase_or_before_the_run():
    line = timeline(("fault", "host s1 powered off"),
                    ("phase", "job /bad/j1 starting (開始中)"),
                    ("phase", "job /bad/j1 error (エラー終了)"),
                    ("fault", "stopping the broker"),
                    ("failpoint", "hit driver.before_kill (pid 3)"),
                    ("failpoint", "disarmed driver.before_kill"),
                    ("fault", "core pid 9 sent SIGKILL"))
    first, second, third = hits_of("S10", "t::y", "failed", line)
    assert (first.point, first.states_text()) == (BEFORE_THE_RUN, "starting -> error")
    assert (second.point, second.states_text()) == ("job error", "error")
    assert third.point == "job error"  # the failpoint was let go before the kill


def test_the_matrix_puts_each_hit_in_its_cell_and_orders_points_as_a_job_lives():
    hits = [*hits_of("S05", "a", "passed", timeline(("phase", "job /j/j1 running (実行中)"),
                                                    ("fault", "stopping the broker"),
                                                    ("phase", "job /j/j1 success (正常終了)"))),
            *hits_of("S13", "b", "passed", timeline(("phase", "job /j/j1 running (実行中)"),
                                                    ("failpoint", "hit driver.before_kill"),
                                                    ("fault", "stopping the broker"))),
            *hits_of("S10", "c", "failed", timeline(("fault", "host s1 powered off")))]
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
                            timeline=timeline(("phase", "job /j/j1 running (実行中)"),
                                              ("fault", "stopping the broker")))
    write_json(tmp_path / "a.json", [record])
    data = json.loads((tmp_path / "a.json").read_text())
    assert data["coverage"]["hits"] == [
        {"scenario": "S05", "nodeid": "scenarios/t.py::test_s05", "outcome": "passed",
         "fault": "queue stopped", "point": "job running", "states": {"/j/j1": ["running"]}}]
    assert data["coverage"]["matrix"]["faults"] == ["queue stopped"]


def test_with_several_jobs_each_has_its_own_phases():
    line = timeline(("phase", "job /pair/j1 running (実行中)"),
                    ("phase", "job /pair/j2 initialized (初期化済)"),
                    ("failpoint", "hit core.after_commit_before_ack (pid 5)"),
                    ("fault", "core pid 5 sent SIGKILL"),
                    ("phase", "job /pair/j1 success (正常終了)"),
                    ("phase", "job /pair/j2 starting (開始中)"),
                    ("phase", "job /pair/j2 success (正常終了)"))
    [hit] = hits_of("D5", "t::z", "passed", line)
    assert hit.point == "core: event committed, not acked"
    assert hit.states_text() == ("j1: running -> success; "
                                 "j2: initialized -> starting -> success")


def test_a_force_stop_pressed_on_the_console_is_a_row_too():
    line = timeline(("phase", "job /j/j1 running (実行中)"),
                    ("action", "force stop of job /j/j1 (強制停止)"),
                    ("phase", "job /j/j1 dying (強制停止中)"),
                    ("failpoint", "hit driver.before_kill (pid 7)"),
                    ("fault", "stopping the broker"),
                    ("phase", "job /j/j1 error (エラー終了(強制停止済))"))
    stop, queue = hits_of("S13", "t::s", "passed", line)
    assert (stop.fault, stop.point, stop.states_text()) == (
        "force stop of a job", "job running", "running -> dying -> error")
    assert (queue.fault, queue.point) == ("queue stopped", "stop: kill decided, not sent")
    assert fault_kind("force stop of root jobnet (強制停止)") == "force stop of a root jobnet"
    assert fault_kind("force stop of jobnet /fs/sub (強制停止)") == "force stop of a jobnet"


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
    line = timeline(("phase", "job /fs/sub/j1 running (実行中)"),
                    ("phase", "job /fs/sub/j2 initialized (初期化済)"),
                    ("phase", "job /fs/after ready (準備中)"),
                    ("action", "force stop of jobnet /fs/sub (強制停止)"),
                    ("phase", "job /fs/sub/j1 error (エラー終了(強制停止済))"))
    [hit] = hits_of("S12", "scenarios/t.py::test_stop[jobnet]", "passed", line)
    assert hit.point == "job running"
    assert hit.states_text() == "running -> error"
    assert hit.label == "S12[jobnet]"
    quiet = hits_of("S00", "t::q", "passed", timeline(("phase", "job /a/j1 initialized (初期化済)"),
                                                      ("fault", "stopping the broker")))
    assert (quiet[0].point, quiet[0].states_text(), quiet[0].label) == (
        "job initialized", "initialized", "S00")


def test_no_fault_says_so():
    assert "No fault was injected" in coverage_html([])
