"""Failpoints: the catalogue and its call sites, unarmed no-op, each action, arming by env and by
file, filters (event type, job, nth, count) numbered across processes, hit markers, release."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

import tengine_min
from tengine_min import failpoints
from tengine_min.events.names import START_JOB, SUCCESS_JOB
from tengine_min.failpoints import (
    POINTS,
    Action,
    Arming,
    FailpointError,
    failpoint,
    parse_action,
    parse_env,
)

ACK = "core.after_commit_before_ack"  # context: event, key, job
KILLED = "watcher.after_kill"  # context: job
CONNECTED = "driver.after_connect"  # context: job, command


def _child(state_dir, name: str, env: dict | None = None, after: str = "", go: Path | None = None,
           **context: str) -> subprocess.Popen:
    """A python process that reaches failpoint ``name`` then prints 'after' and exits 0; with
    ``go``, it waits (30 s at most) for that file first, so several children arrive at once."""
    code = textwrap.dedent(f"""
        import os, sys, time
        from tengine_min.failpoints import failpoint
        print("before", flush=True)
        go, deadline = {str(go) if go else None!r}, time.monotonic() + 30
        while go and not os.path.exists(go):
            if time.monotonic() > deadline:
                sys.exit("no go file")
            time.sleep(0.001)
        failpoint({name!r}, state_dir={str(state_dir)!r}, **{context!r})
        print("after{after}", flush=True)
    """)
    return subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True,
                            env=env)


def _arrivals(state_dir, name: str) -> int:
    path = failpoints.failpoints_dir(state_dir) / f"{name}.arrivals"
    return len(path.read_text().splitlines()) if path.exists() else 0


@pytest.fixture(autouse=True)
def no_env_failpoints(monkeypatch):
    monkeypatch.delenv("TENGINE_FAILPOINTS", raising=False)
    monkeypatch.delenv("TENGINE_FAILPOINTS_DIR", raising=False)


# --- the catalogue -------------------------------------------------------------------------------

def _call_sites() -> list[tuple[str, ast.Call]]:
    package = Path(tengine_min.__file__).parent
    sites = []
    for path in sorted(package.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.Call) and (
                    (isinstance(node.func, ast.Name) and node.func.id == "failpoint")
                    or (isinstance(node.func, ast.Attribute) and node.func.attr == "failpoint")):
                sites.append((f"{path.relative_to(package.parent)}:{node.lineno}", node))
    return sites


def test_every_call_site_names_a_point_and_passes_exactly_its_context():
    sites = _call_sites()
    reached = set()
    for where, call in sites:
        assert call.args and isinstance(call.args[0], ast.Constant), where
        name = call.args[0].value
        assert name in POINTS, f"{where}: {name!r} is not in the catalogue"
        keywords = [k.arg for k in call.keywords]
        assert None not in keywords, f"{where}: **kwargs hides the context"
        context = set(keywords) - {"state_dir", "logger"}
        assert context == set(POINTS[name].context), f"{where}: {name} passes {sorted(context)}"
        reached.add(name)
    assert reached == set(POINTS), f"points without a call site: {set(POINTS) - reached}"


def test_the_catalogue_says_who_reaches_each_point_and_where_it_stands():
    assert set(POINTS) == {
        "driver.after_connect", "driver.before_kill", "core.after_commit_before_ack",
        "watcher.before_record_started", "watcher.before_pid_report", "watcher.after_kill",
        "watcher.before_publish_finished"}
    for name, point in POINTS.items():
        assert point.name == name
        assert point.process == ("watcher" if name.startswith("watcher.") else "core")
        assert point.label and point.doc
    assert len({p.label for p in POINTS.values()}) == len(POINTS)  # a column each
    assert POINTS["watcher.before_record_started"].label == \
        "start: job spawned, start not recorded"
    assert POINTS[ACK].context == ("event", "key", "job")


def test_arming_an_unknown_point_lists_the_known_ones(tmp_path):
    known = ", ".join(sorted(POINTS))
    with pytest.raises(FailpointError, match=f"unknown failpoint 'driver.after_conect' "
                                             rf"\(known: {known}\)"):
        failpoints.arm(tmp_path, "driver.after_conect", "pause")
    with pytest.raises(FailpointError, match=f"TENGINE_FAILPOINTS entry 'p.typo': unknown "
                                             f"failpoint 'p.typo' .known: {known}"):
        parse_env("p.typo=pause")
    assert not (tmp_path / "failpoints" / "driver.after_conect").exists()


# --- actions, arming by env and file -------------------------------------------------------------

def test_parse_actions():
    assert parse_action("pause", where="t") == Action("pause")
    assert parse_action(" sleep( 250 ) ", where="t") == Action("sleep", 250)
    assert parse_action("exit(3)\n", where="t") == Action("exit", 3)
    assert parse_env(f"{CONNECTED}=pause; {KILLED}=sleep(5);") == {
        CONNECTED: Arming(Action("pause")), KILLED: Arming(Action("sleep", 5))}


@pytest.mark.parametrize("text, words", [
    ("crash", "unknown failpoint action 'crash'"),
    ("sleep", "'sleep' needs an argument"),
    ("pause(3)", "'pause' takes no argument"),
    ("sleep(-1)", "sleep needs a non-negative number of ms"),
])
def test_bad_actions_say_what_and_where(text, words):
    with pytest.raises(FailpointError) as info:
        parse_action(text, where="/x/failpoints/p")
    assert words in str(info.value)
    assert "/x/failpoints/p" in str(info.value)


def test_bad_env_entry_names_the_variable():
    with pytest.raises(FailpointError, match="TENGINE_FAILPOINTS: cannot read 'oops'"):
        parse_env("oops")


def test_unarmed_point_does_nothing(tmp_path):
    failpoint(KILLED, state_dir=tmp_path, job="j1")
    failpoint(KILLED, job="j1")
    assert not (tmp_path / "failpoints").exists()


def test_sleep_by_env_waits_and_marks_the_hit(tmp_path, monkeypatch):
    monkeypatch.setenv("TENGINE_FAILPOINTS", f"{CONNECTED}=pause;{KILLED}=sleep(200)")
    began = time.monotonic()
    failpoint(KILLED, state_dir=tmp_path, job="j1")
    assert time.monotonic() - began >= 0.2
    hits = failpoints.hits(tmp_path, KILLED)
    assert len(hits) == 1
    assert hits[0]["action"] == "sleep(200)"
    assert int(hits[0]["pid"]) > 0


def test_env_without_state_dir_uses_the_dir_variable(tmp_path, monkeypatch):
    monkeypatch.setenv("TENGINE_FAILPOINTS", f"{KILLED}=sleep(0)")
    monkeypatch.setenv("TENGINE_FAILPOINTS_DIR", str(tmp_path / "fp"))
    failpoint(KILLED, job="j1")
    assert (tmp_path / "fp" / f"{KILLED}.hit").exists()


def test_file_arming_is_read_at_the_point(tmp_path):
    failpoint(KILLED, state_dir=tmp_path, job="j1")  # not armed yet
    assert failpoints.hits(tmp_path, KILLED) == []
    failpoints.arm(tmp_path, KILLED, "sleep(1)")
    failpoint(KILLED, state_dir=tmp_path, job="j1")
    failpoint(KILLED, state_dir=tmp_path, job="j2")
    assert len(failpoints.hits(tmp_path, KILLED)) == 2
    failpoints.disarm(tmp_path, KILLED)
    failpoint(KILLED, state_dir=tmp_path, job="j1")
    assert len(failpoints.hits(tmp_path, KILLED)) == 2


def test_a_file_holding_just_an_action_arms_every_arrival(tmp_path):
    """docs/investigating.md: `echo pause > <state dir>/failpoints/<name>` by hand."""
    (tmp_path / "failpoints").mkdir()
    (tmp_path / "failpoints" / KILLED).write_text("sleep(0)\n")
    for job in ("j1", "j2", "j3"):
        failpoint(KILLED, state_dir=tmp_path, job=job)
    assert [(h["n"], h["job"]) for h in failpoints.hits(tmp_path, KILLED)] == [
        ("1", "j1"), ("2", "j2"), ("3", "j3")]


def test_arm_writes_the_action_alone_or_json_with_the_filters(tmp_path):
    failpoints.arm(tmp_path, ACK, "pause")
    assert (tmp_path / "failpoints" / ACK).read_text() == "pause"
    failpoints.arm(tmp_path, ACK, "exit(3)", when=START_JOB, job="j1", nth=2, count=1)
    assert json.loads((tmp_path / "failpoints" / ACK).read_text()) == {
        "action": "exit(3)", "when": START_JOB, "job": "j1", "nth": 2, "count": 1}
    assert not list((tmp_path / "failpoints").glob(".*.tmp"))


def test_bad_action_in_file_raises_with_the_path(tmp_path):
    (tmp_path / "failpoints").mkdir()
    (tmp_path / "failpoints" / KILLED).write_text("explode")
    with pytest.raises(FailpointError, match=str(tmp_path / "failpoints" / KILLED)):
        failpoint(KILLED, state_dir=tmp_path, job="j1")


@pytest.mark.parametrize("text, words", [
    ('{"action": "pause", "nth": 2', "not a JSON object"),
    ('{"action": "pause", "colour": "red"}', "unknown key(s) colour (expected action, when, "),
    ('{"when": "x"}', "'action' must be a string"),
    ('{"action": "pause", "when": "x"}', "cannot filter by when (its context has no 'event'; "
                                         "its keys: job)"),
    ('{"action": "pause", "nth": "2"}', "nth must be a whole number from 1, got '2'"),
])
def test_bad_json_arming_file_says_what_and_where(tmp_path, text, words):
    (tmp_path / "failpoints").mkdir()
    (tmp_path / "failpoints" / KILLED).write_text(text)
    with pytest.raises(FailpointError) as info:
        failpoint(KILLED, state_dir=tmp_path, job="j1")
    assert str(tmp_path / "failpoints" / KILLED) in str(info.value)
    assert words in str(info.value)


def test_exit_leaves_the_process_with_the_code(tmp_path):
    failpoints.arm(tmp_path, KILLED, "exit(7)")
    child = _child(tmp_path, KILLED, job="j1")
    out, _ = child.communicate(timeout=30)
    assert child.returncode == 7
    assert out == "before\n"
    assert len(failpoints.hits(tmp_path, KILLED)) == 1


def test_pause_blocks_until_released(tmp_path):
    failpoints.arm(tmp_path, KILLED, "pause")
    child = _child(tmp_path, KILLED, job="j1")
    try:
        hit = failpoints.wait_hit(tmp_path, KILLED, timeout=30)
        assert int(hit[0]["pid"]) == child.pid
        # Paused: still running a while after the hit, and "after" not printed.
        with pytest.raises(subprocess.TimeoutExpired):
            child.wait(timeout=0.3)
        failpoints.release(tmp_path, KILLED)
        out, _ = child.communicate(timeout=30)
        assert out == "before\nafter\n"
        assert child.returncode == 0
    finally:
        child.kill()


def test_pause_armed_by_env_released_by_file(tmp_path):
    env = {**os.environ, "TENGINE_FAILPOINTS": f"{KILLED}=pause"}
    child = _child(tmp_path, KILLED, env=env, job="j1")
    try:
        failpoints.wait_hit(tmp_path, KILLED, timeout=30)
        assert child.poll() is None
        failpoints.release(tmp_path, KILLED)
        assert child.wait(timeout=30) == 0
    finally:
        child.kill()


def test_arm_clears_old_arrivals_hits_and_release(tmp_path):
    failpoints.arm(tmp_path, KILLED, "sleep(0)")
    failpoint(KILLED, state_dir=tmp_path, job="j1")
    failpoint(KILLED, state_dir=tmp_path, job="j1")
    failpoints.release(tmp_path, KILLED)
    failpoints.arm(tmp_path, KILLED, "sleep(0)", nth=2)
    assert failpoints.hits(tmp_path, KILLED) == []
    assert _arrivals(tmp_path, KILLED) == 0
    assert not (tmp_path / "failpoints" / f"{KILLED}.release").exists()
    failpoint(KILLED, state_dir=tmp_path, job="j1")  # the first arrival again: it passes
    assert failpoints.hits(tmp_path, KILLED) == []
    failpoint(KILLED, state_dir=tmp_path, job="j1")
    assert [h["n"] for h in failpoints.hits(tmp_path, KILLED)] == ["2"]


def test_wait_hit_times_out_with_a_clear_message(tmp_path):
    with pytest.raises(TimeoutError, match="failpoint 'never' hit 0 time"):
        failpoints.wait_hit(tmp_path, "never", timeout=0.1)


# --- filters -------------------------------------------------------------------------------------

def test_when_acts_only_on_that_event_type_and_records_the_context(tmp_path):
    failpoints.arm(tmp_path, ACK, "sleep(0)", when=START_JOB)
    failpoint(ACK, state_dir=tmp_path, event=SUCCESS_JOB, key="k1", job="j1")
    assert failpoints.hits(tmp_path, ACK) == []
    assert _arrivals(tmp_path, ACK) == 0  # not a matching arrival: not even counted
    failpoint(ACK, state_dir=tmp_path, event=START_JOB, key="k2", job="j1")
    failpoint(ACK, state_dir=tmp_path, event=START_JOB, key="k3", job=None)  # names no job
    (first, second) = failpoints.hits(tmp_path, ACK)
    assert first == {"n": "1", "pid": str(os.getpid()), "time": first["time"],
                     "action": "sleep(0)", "event": START_JOB, "key": "k2", "job": "j1"}
    assert float(first["time"]) <= time.time()
    assert second["n"] == "2" and second["key"] == "k3" and "job" not in second


def test_job_matches_the_id_and_its_attempts_only(tmp_path):
    failpoints.arm(tmp_path, KILLED, "sleep(0)", job="j1")
    for job in ("j1", "j10", "j1.2", "j1.x", "j2", "xj1", "j1.", "j1.3"):
        failpoint(KILLED, state_dir=tmp_path, job=job)
    assert [(h["n"], h["job"]) for h in failpoints.hits(tmp_path, KILLED)] == [
        ("1", "j1"), ("2", "j1.2"), ("3", "j1.3")]
    failpoints.arm(tmp_path, KILLED, "sleep(0)", job="j1.2")  # one attempt
    for job in ("j1", "j1.2", "j1.3"):
        failpoint(KILLED, state_dir=tmp_path, job=job)
    assert [h["job"] for h in failpoints.hits(tmp_path, KILLED)] == ["j1.2"]


def test_when_and_job_together(tmp_path):
    failpoints.arm(tmp_path, ACK, "sleep(0)", when=START_JOB, job="j1")
    for event, job in ((START_JOB, "j2"), (SUCCESS_JOB, "j1"), (START_JOB, "j1")):
        failpoint(ACK, state_dir=tmp_path, event=event, key="k", job=job)
    assert [(h["event"], h["job"]) for h in failpoints.hits(tmp_path, ACK)] == [(START_JOB, "j1")]


@pytest.mark.parametrize("nth, count, acting", [
    (1, None, [1, 2, 3, 4, 5]),
    (2, 2, [2, 3]),
    (3, None, [3, 4, 5]),
    (5, 1, [5]),
    (6, None, []),
])
def test_nth_and_count_choose_the_arrivals_that_act(tmp_path, nth, count, acting):
    failpoints.arm(tmp_path, CONNECTED, "sleep(0)", nth=nth, count=count)
    for i in range(1, 6):
        failpoint(CONNECTED, state_dir=tmp_path, job=f"j{i}", command="start")
    found = failpoints.hits(tmp_path, CONNECTED)
    assert [int(h["n"]) for h in found] == acting
    assert [h["job"] for h in found] == [f"j{n}" for n in acting]
    assert _arrivals(tmp_path, CONNECTED) == 5


@pytest.mark.parametrize("filters, words", [
    ({"when": START_JOB}, "failpoint 'watcher.after_kill' cannot filter by when (its context "
                          "has no 'event'; its keys: job)"),
    ({"nth": 0}, "nth must be a whole number from 1, got 0"),
    ({"nth": True}, "nth must be a whole number from 1, got True"),
    ({"count": 0}, "count must be a whole number from 1, got 0"),
    ({"count": 1.5}, "count must be a whole number from 1, got 1.5"),
    ({"job": ""}, "job must be a non-empty string, got ''"),
])
def test_bad_filters_are_refused_at_arm_time(tmp_path, filters, words):
    with pytest.raises(FailpointError) as info:
        failpoints.arm(tmp_path, KILLED, "pause", **filters)
    assert words in str(info.value)
    assert "arm('watcher.after_kill')" in str(info.value)
    assert not (tmp_path / "failpoints" / KILLED).exists()


def test_a_point_without_event_cannot_filter_on_it_but_on_its_job(tmp_path):
    with pytest.raises(FailpointError, match=r"cannot filter by when .* its keys: job, command"):
        failpoints.arm(tmp_path, CONNECTED, "pause", when=START_JOB)
    failpoints.arm(tmp_path, CONNECTED, "pause", job="j1")  # fine


def test_numbering_is_exact_across_processes_arriving_at_once(tmp_path):
    """Eight real processes reach the point together; exactly arrivals 3..5 exit, whoever they
    are, and the hit marker names those processes."""
    failpoints.arm(tmp_path, KILLED, "exit(9)", nth=3, count=3)
    go = tmp_path / "go"
    children = [_child(tmp_path, KILLED, go=go, job=f"j{i}") for i in range(8)]
    try:
        for child in children:
            assert child.stdout.readline() == "before\n"
        go.touch()
        codes = {child.pid: child.wait(timeout=60) for child in children}
    finally:
        for child in children:
            child.kill()
            child.stdout.close()
    acted = {pid for pid, code in codes.items() if code == 9}
    assert sorted(codes.values()) == [0] * 5 + [9] * 3
    found = failpoints.hits(tmp_path, KILLED)
    assert sorted(int(h["n"]) for h in found) == [3, 4, 5]
    assert {int(h["pid"]) for h in found} == acted
    assert _arrivals(tmp_path, KILLED) == 8


def test_filtered_numbering_across_processes_counts_only_the_matching(tmp_path):
    failpoints.arm(tmp_path, KILLED, "exit(9)", job="ja", nth=2, count=2)
    go = tmp_path / "go"
    jobs = ["ja.1", "jb", "ja.2", "jb.1", "ja.3", "jb.2", "ja.4", "ja"]
    children = [_child(tmp_path, KILLED, go=go, job=job) for job in jobs]
    try:
        for child in children:
            assert child.stdout.readline() == "before\n"
        go.touch()
        codes = [child.wait(timeout=60) for child in children]
    finally:
        for child in children:
            child.kill()
            child.stdout.close()
    acted = [job for job, code in zip(jobs, codes, strict=True) if code == 9]
    assert len(acted) == 2 and all(job.split(".")[0] == "ja" for job in acted)
    found = failpoints.hits(tmp_path, KILLED)
    assert sorted(h["n"] for h in found) == ["2", "3"]
    assert sorted(h["job"] for h in found) == sorted(acted)
    assert _arrivals(tmp_path, KILLED) == 5  # the five ja arrivals


def test_wait_hit_waits_for_that_many_acting_hits(tmp_path):
    failpoints.arm(tmp_path, KILLED, "sleep(0)", nth=2)
    failpoint(KILLED, state_dir=tmp_path, job="j1")
    with pytest.raises(TimeoutError, match="hit 0 time"):
        failpoints.wait_hit(tmp_path, KILLED, timeout=0.1)
    failpoint(KILLED, state_dir=tmp_path, job="j1")
    failpoint(KILLED, state_dir=tmp_path, job="j1")
    assert [h["n"] for h in failpoints.wait_hit(tmp_path, KILLED, timeout=1, count=2)] == \
        ["2", "3"]


# --- the environment form with filters -----------------------------------------------------------

def test_env_filters():
    assert parse_env(f"{ACK}=pause?when={START_JOB}&nth=2;{KILLED}=exit(3)?job=j1.2&count=1") == {
        ACK: Arming(Action("pause"), when=START_JOB, nth=2),
        KILLED: Arming(Action("exit", 3), job="j1.2", count=1)}
    assert parse_env(f"{KILLED}=sleep(1)?") == {KILLED: Arming(Action("sleep", 1))}


@pytest.mark.parametrize("value, words", [
    (f"{KILLED}=pause?nth=two", f"TENGINE_FAILPOINTS entry '{KILLED}': nth must be a whole "
                                "number, got 'two'"),
    (f"{KILLED}=pause?nth=0", "nth must be a whole number from 1, got 0"),
    (f"{KILLED}=pause?colour=red", "cannot read filter 'colour=red' (expected when=, job=, "
                                   "nth= or count=, joined by '&')"),
    (f"{KILLED}=pause?nth", "cannot read filter 'nth'"),
    (f"{KILLED}=pause?nth=1&nth=2", "filter 'nth' given twice"),
    (f"{KILLED}=pause?when={START_JOB}", "cannot filter by when (its context has no 'event'"),
    (f"{KILLED}=crash?nth=2", "unknown failpoint action 'crash'"),
])
def test_bad_env_filters_say_what_and_where(value, words):
    with pytest.raises(FailpointError) as info:
        parse_env(value)
    assert words in str(info.value)
    assert "TENGINE_FAILPOINTS" in str(info.value)


def test_env_filters_act_on_the_chosen_arrival(tmp_path, monkeypatch):
    monkeypatch.setenv("TENGINE_FAILPOINTS", f"{KILLED}=sleep(0)?job=j1&nth=2")
    for job in ("j2", "j1", "j2", "j1.3", "j1"):
        failpoint(KILLED, state_dir=tmp_path, job=job)
    assert [(h["n"], h["job"]) for h in failpoints.hits(tmp_path, KILLED)] == [
        ("2", "j1.3"), ("3", "j1")]


# --- through a real watcher ----------------------------------------------------------------------

def test_the_watcher_passes_its_job_id_to_the_point(tmp_path):
    """`tengine-watcher run` of two jobs, the point armed for one job's attempts: only that run
    stops there (exit 7), and the hit names the attempt."""
    state = tmp_path / "state"
    point = "watcher.before_pid_report"
    failpoints.arm(state, point, "exit(7)", job="jb")

    def run(job_id: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "tengine_min.watcher.cli", "run", "--state-dir", str(state),
             "--job-id", job_id, "--amqp-url", "amqp://guest:guest@127.0.0.1:1/%2F",
             "--publish-retry-count", "0", "--heartbeat-interval", "0", "--", "/bin/true"],
            capture_output=True, text=True, timeout=60)

    passed, held = run("ja"), run("jb.2")
    assert passed.returncode == 0 and passed.stdout.startswith("PID="), passed.stderr
    assert held.returncode == 7 and held.stdout == "", held.stderr
    assert [h["job"] for h in failpoints.hits(state, point)] == ["jb.2"]
