"""What a scenario leaves for a person to read: its history and its evidence, as HTML and JSON.

- `Evidence`: the state at the end of a scenario: the job states, the event rows as the event
  screen shows them, the watcher log lines per server, and a screenshot of the jobnet monitor.
- `ScenarioRecord`: one test's outcome, history (`harness.history`) and evidence.
- `scenario_html(...)`: one HTML fragment for pytest-html (the history as a timeline);
  `summary_html`, `coverage_html`: above pytest-html's table; `write_json(...)`: the JSON twin,
  with every history entry typed (docs/harness.md has its schema).
"""

from __future__ import annotations

import html
import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .coverage import Hit, hits_of, matrix
from .history import History, iso
from .scenarios import CATALOGUE, Scenario

# The colour the HTML gives each type of history entry.
TYPE_COLOURS = {
    "fault": "#c62828",  # what the harness broke or repaired
    "failpoint": "#ad1457",
    "operation": "#e65100",  # what the test did as a person would (run, force stop)
    "phase": "#1565c0",  # a job/jobnet/execution phase change seen on the console's API
    "event": "#2e7d32",  # an event seen on the bus
    "log": "#6a1b9a",  # a watcher log line on a server
    "cluster": "#455a64",  # the cluster coming up, processes started
    "note": "#455a64",
}


@dataclass
class Evidence:
    """The end state of one scenario, gathered before the cluster goes down."""

    jobs: list[dict[str, Any]] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)
    watcher_log: dict[str, list[str]] = field(default_factory=dict)
    screenshot_png: bytes | None = None
    notes: list[str] = field(default_factory=list)  # what could not be gathered, and why

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out.pop("screenshot_png")
        out["screenshot"] = self.screenshot_png is not None
        return out


@dataclass
class ScenarioRecord:
    """One test of a scenario: outcome, history and evidence."""

    nodeid: str
    scenario_id: str | None
    outcome: str = "not run"  # passed | failed | skipped | error
    reason: str = ""  # why it failed or was skipped
    duration: float = 0.0
    history: History | None = None
    evidence: Evidence | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"nodeid": self.nodeid, "scenario": self.scenario_id, "outcome": self.outcome,
                "reason": self.reason, "duration": round(self.duration, 3),
                "history": self.history.as_dicts() if self.history else [],
                "evidence": self.evidence.as_dict() if self.evidence else None}


# --- HTML ------------------------------------------------------------------------------------


def scenario_html(scenario: Scenario | None, history: History | None,
                  evidence: Evidence | None) -> str:
    """One self-contained HTML fragment: the scenario, its history and its evidence."""
    e = html.escape
    parts = ['<div class="tgh-scenario" style="font-family:sans-serif;font-size:13px">']
    if scenario is not None:
        parts.append(f"<h3 style='margin:4px 0'>{e(scenario.id)}: {e(scenario.title)}</h3>"
                     f"<div>{e(scenario.title_ja)}</div>"
                     f"<div><b>expected:</b> {e(scenario.expected)}</div>")
    if history is not None:
        parts.append("<h4 style='margin:8px 0 2px'>Timeline</h4>"
                     + _table(["t (s)", "type", "where", "what"],
                              [[f"{x.at - history.start:+.3f}",
                                f"<span style='color:{TYPE_COLOURS.get(x.type, '#000')}'>"
                                f"{e(x.type)}</span>", e(x.source), e(x.text())]
                               for x in history.entries()], raw=True))
    if evidence is not None:
        if evidence.jobs:
            parts.append("<h4 style='margin:8px 0 2px'>Job states</h4>" + _table(
                ["path", "phase", "label", "pid", "exit", "signal", "reason"],
                [[j.get("name_path"), j.get("phase"), j.get("label"), j.get("pid"),
                  j.get("exit_status"), j.get("signal"), j.get("reason")]
                 for j in evidence.jobs]))
        if evidence.events:
            parts.append("<h4 style='margin:8px 0 2px'>Events (as the event screen shows "
                         "them)</h4>" + _table(
                             ["occurred at", "level", "type", "source", "what"],
                             [[r.get("occurred_at"), r.get("level"), r.get("event_type_name"),
                               r.get("source_name"), r.get("summary")]
                              for r in evidence.events]))
        for server, lines in evidence.watcher_log.items():
            parts.append(f"<h4 style='margin:8px 0 2px'>Watcher log on {e(server)}</h4>"
                         f"<pre style='white-space:pre-wrap;margin:0'>"
                         f"{e(chr(10).join(lines)) or '(no lines)'}</pre>")
        for note in evidence.notes:
            parts.append(f"<div style='color:#c62828'>{e(note)}</div>")
    parts.append("</div>")
    return "".join(parts)


def _table(header: list[str], rows: list[list[Any]], raw: bool = False) -> str:
    def cell(value: Any) -> str:
        text = "" if value is None else str(value)
        return text if raw else html.escape(text)

    head = "".join(f"<th style='text-align:left;padding:1px 6px'>{html.escape(h)}</th>"
                   for h in header)
    body = "".join("<tr>" + "".join(f"<td style='padding:1px 6px;vertical-align:top'>"
                                    f"{cell(v)}</td>" for v in row) + "</tr>" for row in rows)
    return (f"<table style='border-collapse:collapse;border:1px solid #ccc'>"
            f"<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>")


_STATUS_COLOURS = {"passed": "#2e7d32", "failed": "#c62828", "skipped": "#ef6c00",
                   "error": "#c62828"}


def summary_html(statuses: dict[str, dict[str, Any]]) -> str:
    """The table above pytest-html's: every scenario with a test, its titles, expected outcome,
    result and duration."""
    e = html.escape
    rows = [[e(s["id"]), e(s["title"]) + "<br>" + e(s["title_ja"]), e(s["expected"]),
             f"<b style='color:{_STATUS_COLOURS.get(s['status'], '#000')}'>{e(s['status'])}</b>"
             + "".join(f"<br><small>{e(t['nodeid'].split('::')[-1])}: {e(t['outcome'])}"
                       + (f" ({e(t['reason'][:300])})" if t["reason"] else "") + "</small>"
                       for t in s["tests"] if t["outcome"] != "passed"),
             f"{s['duration']:.1f} s"]
            for s in statuses.values() if s["status"] != "no test"]
    without = [s["id"] for s in statuses.values() if s["status"] == "no test"]
    passed = sum(1 for s in statuses.values() if s["status"] == "passed")
    return ("<h2>Scenarios</h2>"
            f"<p>{passed} of {len(rows)} scenarios passed. A skipped scenario counts as not "
            "passed." + (f" Without a test in this run: {e(', '.join(without))}." if without
                         else "") + "</p>"
            + _table(["id", "title / 見出し", "expected", "result", "duration"], rows, raw=True))


def coverage_html(hits: list[Hit]) -> str:
    """The coverage matrix: faults (rows) x protocol points (columns); a cell names the
    scenarios that broke there and the job states they went through."""
    e = html.escape
    grid = matrix(hits)
    if not grid["faults"]:
        return "<h2>Coverage</h2><p>No fault was injected in this run.</p>"
    rows = []
    for fault in grid["faults"]:
        row = [f"<b>{e(fault)}</b>"]
        for point in grid["points"]:
            row.append("<br>".join(
                f"<span style='color:{_STATUS_COLOURS.get(c['outcome'], '#000')}'>"
                f"{e(c['label'])}</span>: {e(c['states'] or '(no job state)')}"
                for c in grid["cells"][fault].get(point, [])))
        rows.append(row)
    return ("<h2>Coverage: fault x protocol point x job states reached</h2>"
            "<p>Read from each test's history. Rows: the faults the harness injected and the "
            "force stops pressed on the console; columns: where the protocol stood (the "
            "failpoint a process was held at, else the job phase); a cell: the scenarios, "
            "coloured by their result, with the job phases seen from then to the end. An empty "
            "cell is a combination no scenario tried.</p>"
            + _table(["fault or action \\ point", *grid["points"]], rows, raw=True))


# --- JSON ------------------------------------------------------------------------------------


def scenario_statuses(records: list[ScenarioRecord]) -> dict[str, dict[str, Any]]:
    """Per catalogue id: passed only when it has tests and every one passed; a skipped test
    makes it "skipped" (not passed), a failed or erroring one "failed"."""
    out: dict[str, dict[str, Any]] = {}
    for scenario in CATALOGUE.values():
        tests = [r for r in records if r.scenario_id == scenario.id]
        outcomes = {r.outcome for r in tests}
        if not tests:
            status = "no test"
        elif outcomes & {"failed", "error"}:
            status = "failed"
        elif "skipped" in outcomes or "not run" in outcomes:
            status = "skipped"
        else:
            status = "passed"
        out[scenario.id] = {"id": scenario.id, "title": scenario.title,
                            "title_ja": scenario.title_ja, "expected": scenario.expected,
                            "status": status, "passed": status == "passed",
                            "duration": round(sum(r.duration for r in tests), 3),
                            "tests": [r.as_dict() for r in tests]}
    return out


def coverage_hits(records: list[ScenarioRecord]) -> list[Hit]:
    """Every fault of every scenario test, where it hit and the job states after it."""
    return [hit for r in records if r.history is not None
            for hit in hits_of(r.scenario_id, r.nodeid, r.outcome, r.history)]


def write_json(path: Path, records: list[ScenarioRecord]) -> dict[str, Any]:
    """The JSON twin of the HTML report; returns what it wrote."""
    statuses = scenario_statuses(records)
    ran = [s for s in statuses.values() if s["status"] != "no test"]
    data = {
        "generated_at": iso(time.time()),
        "summary": {
            "scenarios_run": len(ran),
            "passed": sum(1 for s in ran if s["status"] == "passed"),
            "failed": sum(1 for s in ran if s["status"] == "failed"),
            "skipped": sum(1 for s in ran if s["status"] == "skipped"),
            "not_passed": sum(1 for s in ran if s["status"] != "passed"),
            "without_test": sorted(s["id"] for s in statuses.values()
                                   if s["status"] == "no test"),
        },
        "scenarios": statuses,
        "coverage": {"hits": [h.as_dict() for h in coverage_hits(records)],
                     "matrix": matrix(coverage_hits(records))},
        "other_tests": [r.as_dict() for r in records if r.scenario_id is None],
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(data, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    tmp.replace(path)  # a reader never sees half a report
    return data
