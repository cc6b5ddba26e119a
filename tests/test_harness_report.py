"""The harness's pure parts: the scenario catalogue, timelines, the report's HTML and JSON, and
what the observers conclude from log lines and event rows. No root, no services."""

from __future__ import annotations

import html
import json
import re
from pathlib import Path

import pytest

from harness.__main__ import _setting
from harness.cluster import one_job_definition
from harness.observers import EventList, JobView, LogLines, event_summary, line_time
from harness.report import Evidence, ScenarioRecord, Timeline, scenario_html, scenario_statuses
from harness.report import summary_html, write_json
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


def test_a_timeline_sorts_by_time_and_shows_times_relative_to_its_start():
    timeline = Timeline(start=100.0)
    timeline.add("event", "second", source="bus", at=102.5)
    timeline.add("fault", "first", source="s1", at=101.25)
    assert [e.text for e in timeline.entries()] == ["first", "second"]
    assert [d["t"] for d in timeline.as_dicts()] == [1.25, 2.5]
    assert timeline.as_text().splitlines()[0] == "  +1.250s fault     [s1] first"
    assert timeline.as_text(last=1).count("\n") == 0
    assert [e.text for e in timeline.entries("event")] == ["second"]


def test_the_html_fragment_escapes_what_it_shows():
    timeline = Timeline(start=0.0)
    timeline.add("fault", "<script>cut</script>", at=1.0)
    evidence = Evidence(jobs=[{"name_path": "/a&b", "phase": "error", "reason": "<x>"}],
                        watcher_log={"s1": ["line <1>"]}, notes=["no <screenshot>"])
    html = scenario_html(scenario("S01"), timeline, evidence)
    assert "<script>" not in html and "&lt;script&gt;cut" in html
    assert "/a&amp;b" in html and "line &lt;1&gt;" in html and "no &lt;screenshot&gt;" in html
    assert "S01: ssh cut after connecting" in html and "起動していない" in html


def _record(nodeid: str, scenario_id: str | None, outcome: str, reason: str = "") -> ScenarioRecord:
    return ScenarioRecord(nodeid, scenario_id, outcome=outcome, reason=reason, timeline=Timeline())


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
    records[0].timeline.add("fault", "cut", at=records[0].timeline.start + 1)
    path = tmp_path / "reports" / "acceptance.json"
    written = write_json(path, records)
    data = json.loads(path.read_text())
    assert data == json.loads(json.dumps(written))
    assert data["summary"]["passed"] == 1 and data["summary"]["skipped"] == 1
    assert data["summary"]["not_passed"] == 1
    assert "S01" in data["summary"]["without_test"]
    assert data["scenarios"]["S05"]["tests"][0]["reason"] == "why"
    assert data["scenarios"]["S00"]["tests"][0]["timeline"][0]["text"] == "cut"
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


def test_harness_up_reads_settings_as_toml_values():
    assert _setting("heartbeat_expiry=10") == ("heartbeat_expiry", 10)
    assert _setting("publish_retry_interval=0.5") == ("publish_retry_interval", 0.5)
    assert _setting('kill_signals=["TERM", "KILL"]') == ("kill_signals", ["TERM", "KILL"])
    assert _setting("log_level=DEBUG") == ("log_level", "DEBUG")
    with pytest.raises(Exception, match="expected KEY=VALUE"):
        _setting("novalue")
