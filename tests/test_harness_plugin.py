"""The harness's pytest plugin, run for real in a child pytest: markers, the history fixture,
the HTML report with the scenario section and the JSON twin (a skipped scenario is not passed),
and the refusal of an unknown scenario id. No cluster is started here (see
test_harness_cluster.py for that)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

CONFTEST = 'pytest_plugins = ["harness.plugin"]\n'

SCENARIO_TESTS = '''
import pytest

from harness.history import PhaseChange


@pytest.mark.scenario("S00")
def test_passes(history):
    history.note("a fault <injected>", source="s1")


@pytest.mark.scenario("S05")
def test_skipped():
    pytest.skip("the broker is elsewhere")


@pytest.mark.scenario("S08")
def test_fails(history):
    history.add(PhaseChange(execution="E1", path="/jn/j1", kind="job", phase="running"))
    assert "watcher lost" in "job still running"


def test_without_scenario():
    pass
'''


def run_pytest(folder: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider",
                           "--rootdir", str(folder), *args, str(folder)],
                          cwd=folder, capture_output=True, text=True, timeout=120)


def test_the_report_has_every_scenario_its_timeline_and_counts_a_skip_as_not_passed(tmp_path):
    (tmp_path / "conftest.py").write_text(CONFTEST)
    (tmp_path / "test_scenarios.py").write_text(SCENARIO_TESTS)
    done = run_pytest(tmp_path)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "S00  passed" in done.stdout and "S05  skipped" in done.stdout
    assert "S08  failed" in done.stdout

    data = json.loads((tmp_path / "reports" / "acceptance.json").read_text())
    summary = data["summary"]
    assert (summary["passed"], summary["failed"], summary["skipped"]) == (1, 1, 1)
    assert summary["not_passed"] == 2
    s00 = data["scenarios"]["S00"]
    assert s00["passed"] and s00["title_ja"].startswith("基本コース")
    assert [e["text"] for e in s00["tests"][0]["history"]] == ["a fault <injected>"]
    s08_history = data["scenarios"]["S08"]["tests"][0]["history"]
    assert [(e["type"], e["path"], e["phase"]) for e in s08_history] == [
        ("phase", "/jn/j1", "running")]
    s05 = data["scenarios"]["S05"]
    assert s05["status"] == "skipped" and s05["tests"][0]["reason"] == "the broker is elsewhere"
    s08 = data["scenarios"]["S08"]["tests"][0]
    assert s08["outcome"] == "failed" and "watcher lost" in s08["reason"]
    assert [t["nodeid"] for t in data["other_tests"]] == [
        "test_scenarios.py::test_without_scenario"]

    html = (tmp_path / "reports" / "acceptance.html").read_text()
    assert "Scenarios</h2>" in html  # the per-scenario summary above the table
    # pytest-html keeps the fragment in an HTML-escaped JSON blob: escaped once by us, once there
    assert "a fault &amp;lt;injected&amp;gt;" in html
    assert "the broker is elsewhere" in html
    assert "col-scenario" in html  # the Scenario column
    assert '<link rel="stylesheet"' not in html  # self-contained


def test_an_unknown_scenario_id_stops_the_run_at_collection(tmp_path):
    (tmp_path / "conftest.py").write_text(CONFTEST)
    (tmp_path / "test_bad.py").write_text(
        'import pytest\n\n\n@pytest.mark.scenario("S99")\ndef test_x():\n    pass\n')
    done = run_pytest(tmp_path)
    assert done.returncode == 4, done.stdout + done.stderr  # usage error: nothing ran
    assert "test_bad.py::test_x: unknown scenario id 'S99'" in done.stdout + done.stderr


def test_the_html_report_goes_where_html_says(tmp_path):
    (tmp_path / "conftest.py").write_text(CONFTEST)
    (tmp_path / "test_one.py").write_text(
        'import pytest\n\n\n@pytest.mark.scenario("S00")\ndef test_x():\n    pass\n')
    done = run_pytest(tmp_path, f"--html={tmp_path / 'out' / 'r.html'}")
    assert done.returncode == 0, done.stdout + done.stderr
    assert (tmp_path / "out" / "r.html").exists()
    assert json.loads((tmp_path / "out" / "r.json").read_text())["scenarios"]["S00"]["passed"]


def test_scenario_option_runs_only_the_tests_of_those_ids(tmp_path):
    (tmp_path / "conftest.py").write_text(CONFTEST)
    (tmp_path / "test_scenarios.py").write_text(SCENARIO_TESTS)
    done = run_pytest(tmp_path, "--scenario", "s00")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "1 passed, 3 deselected" in done.stdout
    done = run_pytest(tmp_path, "--scenario", "S42")
    assert done.returncode == 4 and "--scenario S42: unknown scenario id" in done.stderr
