"""harness.waiting.wait_for: the first truthy value before the deadline; after it, the error
asked for, naming what was awaited, the last state seen and the end of the history."""

from __future__ import annotations

import itertools
import time

import pytest

from harness.waiting import wait_for


class Notes:
    """A history as wait_for reads it: its last entries as text."""

    def __init__(self, *entries: str) -> None:
        self.entries = list(entries)

    def as_text(self, last: int) -> str:
        return "\n".join(self.entries[-last:])


def test_the_first_truthy_value_is_returned():
    values = iter([None, 0, "", [], ["found"], ["later"]])
    assert wait_for(lambda: next(values), timeout=5, what="a value", interval=0.001) == ["found"]


def test_after_the_deadline_the_error_names_what_was_awaited():
    started = time.monotonic()
    with pytest.raises(AssertionError) as timed_out:
        wait_for(lambda: False, timeout=0.2, what="the moon", interval=0.01)
    assert time.monotonic() - started >= 0.2
    assert str(timed_out.value) == "timed out after 0.2 s waiting for the moon"


def test_the_message_carries_the_last_state_seen_and_the_history():
    history = Notes(*(f"entry {i}" for i in range(50)), "the job was started")
    with pytest.raises(AssertionError) as timed_out:
        wait_for(lambda: None, timeout=0.05, what="j1 to end", last_seen=lambda: "j1=running",
                 history=history, interval=0.01)
    lines = str(timed_out.value).splitlines()
    assert lines[:3] == ["timed out after 0.05 s waiting for j1 to end", "last seen: j1=running",
                         "history (last 40 entries):"]
    assert lines[3:] == [f"entry {i}" for i in range(11, 50)] + ["the job was started"]


def test_the_error_can_be_another_exception():
    class Unreachable(RuntimeError):
        pass

    with pytest.raises(Unreachable, match=r"^timed out after 0\.05 s waiting for the host$"):
        wait_for(lambda: False, timeout=0.05, what="the host", interval=0.01, error=Unreachable)


def test_the_condition_is_looked_at_every_interval():
    looks = []
    with pytest.raises(AssertionError):
        wait_for(lambda: looks.append(time.monotonic()), timeout=0.5, what="nothing",
                 interval=0.1)
    # A slow machine looks less often, never more: at most one look per interval and the last.
    assert 2 <= len(looks) <= 7, looks
    assert all(b - a >= 0.1 for a, b in itertools.pairwise(looks)), looks
