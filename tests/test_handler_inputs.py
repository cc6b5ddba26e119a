"""Event properties from outside are parsed without raising: bad input changes nothing."""

import pytest

from tengine_min.core.handlers.context import int_or_none
from tengine_min.model.ids import split_job_id


@pytest.mark.parametrize("value, expected", [
    ("abc", ("abc", None)), ("abc.2", ("abc", 2)), ("abc.²", ("abc", None)),
    ("abc.-1", ("abc", None)), ("abc.", ("abc", None)), ("abc.1.2", ("abc", None))])
def test_split_job_id_takes_only_ascii_attempt_numbers(value, expected):
    assert split_job_id(value) == expected


@pytest.mark.parametrize("value, expected", [
    (3, 3), ("3", 3), (" -4 ", -4), ("--5", None), ("²", None), ("", None), (True, None),
    (None, None), ("1.5", None)])
def testint_or_none_never_raises(value, expected):
    assert int_or_none(value) == expected


def test_only_a_kill_that_signalled_the_script_counts_as_killed():
    from types import SimpleNamespace

    from tengine_min.watcher.watchdog import _kill_requested_before

    def jobdir(*outcomes):
        return SimpleNamespace(kills=[{"requested_at": f"2026-01-01T00:00:0{i}", "outcome": o}
                                      for i, o in enumerate(outcomes)])

    end = "2026-01-01T00:00:09"
    assert _kill_requested_before(jobdir("finished", "duplicate", "never_started"), end) is None
    assert _kill_requested_before(jobdir("finished", "sent"), end) == "2026-01-01T00:00:01"
    assert _kill_requested_before(jobdir("requested"), end) == "2026-01-01T00:00:00"
    assert _kill_requested_before(jobdir("stopped"), "2026-01-01T00:00:00") == \
        "2026-01-01T00:00:00"
    assert _kill_requested_before(jobdir("stopped"), "2025-12-31T23:59:59") is None
