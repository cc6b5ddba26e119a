"""The harness's pure parts: the scenario catalogue, histories, the report's HTML and JSON, and
what the observers conclude from log lines and event rows. No root, no services."""

from __future__ import annotations

import html
import json
import re
from pathlib import Path

import pytest

from harness.__main__ import _setting
from harness.cluster import one_job_definition
from harness.history import (
    BusEvent,
    ClusterStep,
    FailpointStep,
    Fault,
    History,
    LogFact,
    Note,
    Operation,
    PhaseChange,
)
from harness.logs import LogLines, line_fact, line_job, line_time, ssh_attempt
from harness.observers import EventList, JobView, event_summary
from harness.report import (
    Evidence,
    ScenarioRecord,
    scenario_html,
    scenario_statuses,
    summary_html,
    write_json,
)
from harness.scenarios import CATALOGUE, UnknownScenario, scenario
from tengine_min.model.loader import load_text
from tengine_min.model.validator import validate

SCENARIOS_MD = Path(__file__).resolve().parents[2] / "shared" / "SCENARIOS.md"


def test_the_catalogue_has_every_id_of_scenarios_md_with_both_titles():
    expected = {f"S{n:02d}" for n in range(22)} | {f"D{n}" for n in range(1, 7)}
    assert set(CATALOGUE) == expected
    for entry in CATALOGUE.values():
        assert entry.title and entry.expected
        assert re.search(r"[\u3040-\u30ff\u4e00-\u9fff]", entry.title_ja), entry.id


@pytest.mark.skipif(not SCENARIOS_MD.exists(), reason="shared/SCENARIOS.md not beside the repo")
def test_the_catalogue_matches_the_ids_in_scenarios_md():
    ids = set(re.findall(r"^\| (S\d\d|D\d) \|", SCENARIOS_MD.read_text(), re.MULTILINE))
    assert ids == set(CATALOGUE)


def test_an_unknown_scenario_id_names_the_known_ones():
    with pytest.raises(UnknownScenario, match=r"unknown scenario id 'S99' \(known: D1, .*S21\)"):
        scenario("S99")


def test_a_history_sorts_by_time_and_shows_times_relative_to_its_start():
    history = History(start=100.0)
    history.add(BusEvent(event_type="second", level="info", source="bus", at=102.5))
    history.add(Note(message="first", source="s1", at=101.25))
    assert [e.text() for e in history.entries()] == ["first", "second level=info"]
    assert [d["t"] for d in history.as_dicts()] == [1.25, 2.5]
    assert history.as_text().splitlines()[0] == "  +1.250s note      [s1] first"
    assert history.as_text(last=1).count("\n") == 0
    assert [e.event_type for e in history.entries(BusEvent)] == ["second"]


def test_the_point_held_is_the_newest_hit_not_yet_released_or_disarmed():
    history = History(start=0.0)
    assert history.held_point() == ""
    for at, (point, step) in enumerate([("a", "armed"), ("a", "hit"), ("b", "hit"),
                                        ("b", "released")], start=1):
        history.add(FailpointStep(point=point, target="core", step=step, at=at))
    assert history.held_point() == "a"
    history.add(FailpointStep(point="a", target="core", step="disarmed", at=9))
    assert history.held_point() == ""
    assert [history.new_fault_id(), history.new_fault_id()] == [1, 2]


def test_each_entry_says_in_words_what_its_fields_hold():
    texts = [entry.text() for entry in (
        Operation(action="run", path="long_job", execution="E1"),
        Operation(action="force_stop", path="/fs/sub", value="jobnet"),
        Operation(action="force_stop", value="root jobnet"),
        Operation(action="status_change", path="/j/j1", value="success"),
        Operation(action="rerun", path="/j/j1", value="only"),
        Operation(action="rerun"),
        Operation(action="install", path="$HOME/gated.sh", value="755"),
        Operation(action="reload", value="resources added"),
        Fault(id=3, kind="link-cut", name="ssh link cut (refused/reset)", target="ssh-s1",
              how="refused", step="start", stage="invoked"),
        Fault(id=3, kind="link-cut", name="ssh link cut (refused/reset)", target="ssh-s1",
              step="end", stage="failed", error="LinkError: gone"),
        FailpointStep(point="driver.before_kill", target="core", step="armed", action="pause",
                      filters={"when": "stop.job.job.tengine"}),
        FailpointStep(point="driver.before_kill", target="core", step="hit", pid=7, n=2),
        PhaseChange(execution="E1", path="/j/j1", kind="job", phase="error", label="エラー終了",
                    reason="x"),
        PhaseChange(execution="E1", kind="execution", phase="running", label="実行中"),
        BusEvent(event_type="finished.process.job.tengine", level="info", summary="/j/j1"),
        BusEvent(event_type="job.heartbeat.tengine", key="0123456789", first=True),
        BusEvent(event_type="job.heartbeat.tengine", key="0123456789", gap=4.2),
        LogFact(host="s1", job="J1", fact="started",
                line="2026-11-28T10:04:40+00:00 INFO tengine.watcher started job_id=J1 pid=20"),
        ClusterStep(step="core ready", pid=42, source="core"),
        ClusterStep(step="servers ready", seconds=0.25, detail="including a wait"),
    )]
    assert texts == [
        "ran long_job: execution E1",
        "force stop of jobnet /fs/sub (強制停止)",
        "force stop of root jobnet (強制停止)",
        "status of /j/j1 changed to success (ステータス変更)",
        "rerun of /j/j1, only (再実行)",
        "rerun of the whole execution (再実行)",
        "installed $HOME/gated.sh (mode 755)",
        "resources added: core restarted to read them",
        "#3 ssh link cut (refused/reset) on ssh-s1 (refused): starting",
        "#3 ssh link cut (refused/reset) on ssh-s1: end failed: LinkError: gone",
        "armed driver.before_kill action=pause when=stop.job.job.tengine",
        "hit driver.before_kill (pid 7) n=2",
        "job /j/j1 error (エラー終了) reason='x'",
        "execution running (実行中)",
        "finished.process.job.tengine level=info /j/j1",
        "job.heartbeat.tengine (first of key 01234567)",
        "job.heartbeat.tengine after a gap of 4.2 s",
        "started job_id=J1 pid=20",
        "core ready, pid 42",
        "servers ready in 0.25 s: including a wait",
    ]


def test_the_json_form_of_an_entry_is_its_type_and_its_fields():
    fault = Fault(id=1, kind="link-latency", name="amqp link slow (latency)", target="amqp-s1",
                  how="200 ms +/- 0 ms, both", params={"ms": 200, "jitter": 0, "stream": "both"},
                  step="start", stage="ok", point="driver.before_kill", source="s1", at=101.5)
    assert fault.as_dict(100.0) == {
        "type": "fault", "t": 1.5, "at": "1970-01-01T00:01:41.500+00:00", "source": "s1",
        "id": 1, "kind": "link-latency", "name": "amqp link slow (latency)",
        "target": "amqp-s1", "how": "200 ms +/- 0 ms, both",
        "params": {"ms": 200, "jitter": 0, "stream": "both"}, "step": "start", "stage": "ok",
        "error": "", "point": "driver.before_kill",
        "text": "#1 amqp link slow (latency) on amqp-s1: in effect"}


def test_the_html_fragment_escapes_what_it_shows():
    history = History(start=0.0)
    history.note("<script>cut</script>", source="s1")
    evidence = Evidence(jobs=[{"name_path": "/a&b", "phase": "error", "reason": "<x>"}],
                        watcher_log={"s1": ["line <1>"]}, notes=["no <screenshot>"])
    html = scenario_html(scenario("S01"), history, evidence)
    assert "<script>" not in html and "&lt;script&gt;cut" in html
    assert "/a&amp;b" in html and "line &lt;1&gt;" in html and "no &lt;screenshot&gt;" in html
    assert "S01: ssh cut after connecting" in html and "起動していない" in html


def _record(nodeid: str, scenario_id: str | None, outcome: str, reason: str = "") -> ScenarioRecord:
    return ScenarioRecord(nodeid, scenario_id, outcome=outcome, reason=reason, history=History())


def test_a_scenario_passes_only_when_every_test_of_it_passed():
    statuses = scenario_statuses([
        _record("t::a", "S00", "passed"),
        _record("t::b", "S01", "passed"), _record("t::c", "S01", "skipped", "no chromium"),
        _record("t::d", "S05", "passed"), _record("t::e", "S05", "failed"),
        _record("t::f", "S08", "error"),
    ])
    assert statuses["S00"]["status"] == "passed" and statuses["S00"]["passed"]
    assert statuses["S01"]["status"] == "skipped" and not statuses["S01"]["passed"]
    assert statuses["S05"]["status"] == "failed"
    assert statuses["S08"]["status"] == "failed"
    assert statuses["S12"]["status"] == "no test"


def test_the_summary_table_shows_both_titles_the_result_its_reason_and_the_duration():
    records = [_record("t::a", "S00", "passed"), _record("t::b", "S05", "skipped", "no root")]
    records[0].duration, records[1].duration = 12.25, 0.5
    page = summary_html(scenario_statuses(records))
    assert "1 of 2 scenarios passed" in page
    assert CATALOGUE["S00"].title_ja in page and html.escape(CATALOGUE["S05"].title) in page
    assert "12.2 s" in page and "b: skipped (no root)" in page
    assert "Without a test in this run: D1," in page


def test_the_json_twin_counts_a_skipped_scenario_as_not_passed(tmp_path):
    records = [_record("t::a", "S00", "passed"), _record("t::b", "S05", "skipped", "why"),
               _record("t::c", None, "passed")]
    records[0].history.add(Note(message="cut", at=records[0].history.start + 1))
    path = tmp_path / "reports" / "acceptance.json"
    written = write_json(path, records)
    data = json.loads(path.read_text())
    assert data == json.loads(json.dumps(written))
    assert data["summary"]["passed"] == 1 and data["summary"]["skipped"] == 1
    assert data["summary"]["not_passed"] == 1
    assert "S01" in data["summary"]["without_test"]
    assert data["scenarios"]["S05"]["tests"][0]["reason"] == "why"
    assert data["scenarios"]["S00"]["tests"][0]["history"][0]["text"] == "cut"
    assert data["scenarios"]["S00"]["tests"][0]["history"][0]["type"] == "note"
    assert [t["nodeid"] for t in data["other_tests"]] == ["t::c"]


LINES = (
    "2026-11-28T10:04:40.100000+00:00 INFO tengine.watcher run requested job_id=J1 "
    'command="sleep 4" run_pid=18',
    "2026-11-28T10:04:40.200000+00:00 INFO tengine.watcher started job_id=J1 pid=20",
    "2026-11-28T10:04:41.000000+00:00 WARNING tengine.watcher duplicate start ignored "
    "job_id=J1 pid=20",
)


def test_log_lines_are_read_by_their_fact():
    lines = LogLines(LINES, "test")
    assert lines.facts() == ["run requested", "started", "duplicate start ignored"]
    assert lines.has("started") and lines.lacks("finished")
    assert lines.lacks("start")  # a fact is matched whole, not as a prefix
    assert lines.count("started") == 1
    assert line_time(LINES[1]) == pytest.approx(1795860280.2)
    assert line_time("not a log line") is None
    assert [line_fact(line) for line in LINES] == lines.facts()
    assert line_job(LINES[2]) == "J1" and line_job("started job_id=J2.3 pid=5") == "J2"
    assert line_job("no job here") == ""


def test_the_ssh_attempt_regex_finds_the_core_log_line_of_one_attempt():
    line = ("2026-11-28T10:04:40+00:00 INFO tengine.core ssh attempt 2/3 server=s1 job_id=J1 "
            "transport=ssh command=kill outcome=ok")
    assert re.search(ssh_attempt("J1", "[23]", 3, "kill") + " outcome=ok", line)
    assert re.search(ssh_attempt("J1", 2, 3) + "outcome=ok", line)
    assert not re.search(ssh_attempt("J1", 2, 3, "start"), line)
    assert not re.search(ssh_attempt("J1", 1, 3), line)
    assert not re.search(ssh_attempt("J2", 2, 3), line)


def test_event_lists_answer_by_type_and_job():
    rows = EventList([
        {"event_type_name": "error.job.job.tengine", "job_id": "J1",
         "properties": {"target_job_id": "J1", "target_job_name_path": "/jn/j1",
                        "message": "cannot\nconnect"}},
        {"event_type_name": "finished.process.job.tengine", "properties": {"job_id": "J2",
                                                                           "exit_status": 0}},
    ])
    assert rows.has("error.job.job.tengine") and rows.has("error.job.job.tengine", job="J1")
    assert not rows.has("error.job.job.tengine", job="J2")
    assert rows.has("finished.process.job.tengine", job="J2")
    assert rows.types() == ["error.job.job.tengine", "finished.process.job.tengine"]
    assert event_summary(rows[0]) == "/jn/j1 cannot connect"
    assert event_summary(rows[1]) == "exit_status=0"


def test_a_job_view_reads_the_monitor_row():
    job = JobView.of({"id": "J1", "name_path": "/jn/j1", "kind": "job", "phase": "error",
                      "phase_label": {"ja": "エラー終了", "en": "error"}, "reason": None,
                      "pid": 7, "exit_status": None})
    assert (job.reason, job.label, job.pid) == ("", "エラー終了", 7)
    assert job.summary() == "/jn/j1=error pid=7"


def test_the_one_job_definition_is_a_valid_jobnet_for_tengine_load():
    text = one_job_definition("long_job", "s1", "sleep 10 && echo \"done\"")
    defs = load_text("long_job.yaml", text)
    assert not [p for p in validate(defs) if p.severity == "error"]
    root = defs.root("long_job")
    assert [child.name for child in root.children] == ["j1"]
    other = load_text("bad.yaml", one_job_definition("bad", "nowhere", "true", "wrong"))
    assert other.root("bad").options["credential_name"] == "wrong"


def test_harness_up_reads_settings_as_toml_values():
    assert _setting("heartbeat_expiry=10") == ("heartbeat_expiry", 10)
    assert _setting("publish_retry_interval=0.5") == ("publish_retry_interval", 0.5)
    assert _setting('kill_signals=["TERM", "KILL"]') == ("kill_signals", ["TERM", "KILL"])
    assert _setting("log_level=DEBUG") == ("log_level", "DEBUG")
    with pytest.raises(Exception, match="expected KEY=VALUE"):
        _setting("novalue")
