"""Failpoints: unarmed no-op, each action, arming by env and by file, hit markers, release."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time

import pytest

from tengine_min import failpoints
from tengine_min.failpoints import Action, FailpointError, failpoint, parse_action, parse_env


def _child(state_dir, name: str, env: dict | None = None, after: str = "") -> subprocess.Popen:
    """A python process that reaches failpoint ``name`` then prints 'after' and exits 0."""
    code = textwrap.dedent(f"""
        import sys
        from tengine_min.failpoints import failpoint
        print("before", flush=True)
        failpoint({name!r}, state_dir={str(state_dir)!r})
        print("after{after}", flush=True)
    """)
    return subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True,
                            env=env)


@pytest.fixture(autouse=True)
def no_env_failpoints(monkeypatch):
    monkeypatch.delenv("TENGINE_FAILPOINTS", raising=False)
    monkeypatch.delenv("TENGINE_FAILPOINTS_DIR", raising=False)


def test_parse_actions():
    assert parse_action("pause", where="t") == Action("pause")
    assert parse_action(" sleep( 250 ) ", where="t") == Action("sleep", 250)
    assert parse_action("exit(3)\n", where="t") == Action("exit", 3)
    assert parse_env("a.b=pause; c=sleep(5);") == {"a.b": Action("pause"), "c": Action("sleep", 5)}


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
    failpoint("nothing.here", state_dir=tmp_path)
    failpoint("nothing.here")
    assert not (tmp_path / "failpoints").exists()


def test_sleep_by_env_waits_and_marks_the_hit(tmp_path, monkeypatch):
    monkeypatch.setenv("TENGINE_FAILPOINTS", "other=pause;p.sleep=sleep(200)")
    began = time.monotonic()
    failpoint("p.sleep", state_dir=tmp_path)
    assert time.monotonic() - began >= 0.2
    hits = failpoints.hits(tmp_path, "p.sleep")
    assert len(hits) == 1
    assert hits[0]["action"] == "sleep(200)"
    assert int(hits[0]["pid"]) > 0


def test_env_without_state_dir_uses_the_dir_variable(tmp_path, monkeypatch):
    monkeypatch.setenv("TENGINE_FAILPOINTS", "p.env=sleep(0)")
    monkeypatch.setenv("TENGINE_FAILPOINTS_DIR", str(tmp_path / "fp"))
    failpoint("p.env")
    assert (tmp_path / "fp" / "p.env.hit").exists()


def test_file_arming_is_read_at_the_point(tmp_path):
    failpoint("p.file", state_dir=tmp_path)  # not armed yet
    assert failpoints.hits(tmp_path, "p.file") == []
    failpoints.arm(tmp_path, "p.file", "sleep(1)")
    failpoint("p.file", state_dir=tmp_path)
    failpoint("p.file", state_dir=tmp_path)
    assert len(failpoints.hits(tmp_path, "p.file")) == 2
    failpoints.disarm(tmp_path, "p.file")
    failpoint("p.file", state_dir=tmp_path)
    assert len(failpoints.hits(tmp_path, "p.file")) == 2


def test_bad_action_in_file_raises_with_the_path(tmp_path):
    (tmp_path / "failpoints").mkdir()
    (tmp_path / "failpoints" / "p.bad").write_text("explode")
    with pytest.raises(FailpointError, match=str(tmp_path / "failpoints" / "p.bad")):
        failpoint("p.bad", state_dir=tmp_path)


def test_exit_leaves_the_process_with_the_code(tmp_path):
    failpoints.arm(tmp_path, "p.exit", "exit(7)")
    child = _child(tmp_path, "p.exit")
    out, _ = child.communicate(timeout=30)
    assert child.returncode == 7
    assert out == "before\n"
    assert len(failpoints.hits(tmp_path, "p.exit")) == 1


def test_pause_blocks_until_released(tmp_path):
    failpoints.arm(tmp_path, "p.pause", "pause")
    child = _child(tmp_path, "p.pause")
    try:
        hit = failpoints.wait_hit(tmp_path, "p.pause", timeout=30)
        assert int(hit[0]["pid"]) == child.pid
        # Paused: still running a while after the hit, and "after" not printed.
        with pytest.raises(subprocess.TimeoutExpired):
            child.wait(timeout=0.3)
        failpoints.release(tmp_path, "p.pause")
        out, _ = child.communicate(timeout=30)
        assert out == "before\nafter\n"
        assert child.returncode == 0
    finally:
        child.kill()


def test_pause_armed_by_env_released_by_file(tmp_path):
    env = {**os.environ, "TENGINE_FAILPOINTS": "p.envpause=pause"}
    child = _child(tmp_path, "p.envpause", env=env)
    try:
        failpoints.wait_hit(tmp_path, "p.envpause", timeout=30)
        assert child.poll() is None
        failpoints.release(tmp_path, "p.envpause")
        assert child.wait(timeout=30) == 0
    finally:
        child.kill()


def test_arm_clears_an_old_hit_and_release(tmp_path):
    failpoints.arm(tmp_path, "p.again", "sleep(0)")
    failpoint("p.again", state_dir=tmp_path)
    failpoints.release(tmp_path, "p.again")
    failpoints.arm(tmp_path, "p.again", "pause")
    assert failpoints.hits(tmp_path, "p.again") == []
    assert not (tmp_path / "failpoints" / "p.again.release").exists()


def test_wait_hit_times_out_with_a_clear_message(tmp_path):
    with pytest.raises(TimeoutError, match="failpoint 'never' hit 0 time"):
        failpoints.wait_hit(tmp_path, "never", timeout=0.1)
