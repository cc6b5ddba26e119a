"""The event envelope: round trip, every malformed case with its message, level mapping."""

from __future__ import annotations

import json
import re
import uuid
from datetime import UTC, datetime

import pytest

from tengine_min.events import envelope, names
from tengine_min.events.envelope import Event, MalformedEvent


def test_round_trip_keeps_every_field() -> None:
    original = Event(
        names.FINISHED_PROCESS_JOB,
        key="k-1",
        source_name="job:host1/123/root/job1",
        sender_name="agent:host1/456/tengine_job_agent",
        occurred_at="2024-05-01T10:00:00.123456+00:00",
        level="error",
        properties={"exit_status": 3, "stdout_log": "/tmp/out", "nested": {"a": [1, "é"]}},
    )
    assert Event.from_json(original.to_json()) == original


def test_defaults_are_a_fresh_uuid_and_now_in_utc_with_microseconds() -> None:
    before = datetime.now(UTC)
    first, second = Event("x.tengine"), Event("x.tengine")
    after = datetime.now(UTC)
    assert uuid.UUID(first.key).version == 4
    assert first.key != second.key
    assert first.level == "info" and first.properties == {} and first.source_name == ""
    moment = datetime.fromisoformat(first.occurred_at)
    assert moment.utcoffset().total_seconds() == 0
    assert before <= moment <= after
    assert len(first.occurred_at.split(".")[1].split("+")[0]) == 6  # microseconds always written


def test_json_carries_the_level_name_and_the_properties_object() -> None:
    obj = json.loads(Event("x.tengine", level=4, properties={"a": 1}).to_json())
    assert obj["level"] == "error"
    assert obj["properties"] == {"a": 1}
    assert set(obj) == {"event_type_name", "key", "source_name", "sender_name", "occurred_at",
                        "level", "properties"}


@pytest.mark.parametrize(
    ("given", "expected"),
    [(1, "debug"), (2, "info"), (3, "warn"), (4, "error"), (5, "fatal"),
     ("debug", "debug"), ("WARN", "warn"), (" fatal ", "fatal"), ("3", "warn")],
)
def test_levels_accept_tengine_numbers_and_names(given: object, expected: str) -> None:
    assert envelope.normalize_level(given) == expected
    assert Event("x.tengine", level=given).level == expected


def test_level_number_is_tengines() -> None:
    names = ("debug", "info", "warn", "error", "fatal")
    assert [envelope.level_number(n) for n in names] == [1, 2, 3, 4, 5]


def test_time_in_another_zone_is_stored_as_utc() -> None:
    event = Event("x.tengine", occurred_at="2024-05-01T19:00:00+09:00")
    assert event.occurred_at == "2024-05-01T10:00:00.000000+00:00"
    assert Event("x.tengine", occurred_at="2024-05-01T10:00:00Z").occurred_at == event.occurred_at


def test_unknown_fields_are_ignored_and_absent_optionals_get_defaults() -> None:
    event = Event.from_json(b'{"event_type_name": "a.tengine", "key": "k", "extra": 1}')
    assert (event.event_type_name, event.key, event.level, event.properties) == (
        "a.tengine", "k", "info", {})


def test_null_names_and_properties_become_empty() -> None:
    event = Event.from_json(
        b'{"event_type_name": "a.tengine", "key": "k", "source_name": null, "properties": null}')
    assert event.source_name == "" and event.properties == {}


MALFORMED = [
    (b"\xff\xfe garbage", "not UTF-8 text"),
    (b"{not json",
     "not JSON: Expecting property name enclosed in double quotes at line 1 column 2"),
    (b"", "not JSON: Expecting value at line 1 column 1"),
    (b'["a", "b"]', "expected a JSON object, got list"),
    (b'"just a string"', "expected a JSON object, got str"),
    (b'{"key": "k"}', "missing event_type_name"),
    (b'{"event_type_name": "a.tengine"}', "missing key"),
    (b'{"event_type_name": "  ", "key": "k"}',
     "event_type_name must be a non-blank string, got '  '"),
    (b'{"event_type_name": 12, "key": "k"}', "event_type_name must be a non-blank string, got 12"),
    (b'{"event_type_name": "a.tengine", "key": ""}',
     "key must be a non-blank string (the dedup key), got ''"),
    (b'{"event_type_name": "a.tengine", "key": "   "}', "key must be a non-blank string"),
    (b'{"event_type_name": "a.tengine", "key": 5}',
     "key must be a non-blank string (the dedup key), got 5"),
    (b'{"event_type_name": "a.tengine", "key": "k", "level": "loud"}',
     "bad level 'loud': expected one of"),
    (b'{"event_type_name": "a.tengine", "key": "k", "level": 0}', "bad level 0: expected one of"),
    (b'{"event_type_name": "a.tengine", "key": "k", "level": 6}', "bad level 6"),
    (b'{"event_type_name": "a.tengine", "key": "k", "level": true}', "bad level True"),
    (b'{"event_type_name": "a.tengine", "key": "k", "level": 2.5}', "bad level 2.5 (float)"),
    (b'{"event_type_name": "a.tengine", "key": "k", "properties": [1]}',
     "properties must be a JSON object, got list: [1]"),
    (b'{"event_type_name": "a.tengine", "key": "k", "properties": "x=1"}',
     "properties must be a JSON object, got str"),
    (b'{"event_type_name": "a.tengine", "key": "k", "source_name": 7}',
     "source_name must be a string, got 7"),
    (b'{"event_type_name": "a.tengine", "key": "k", "sender_name": {}}',
     "sender_name must be a string"),
    (b'{"event_type_name": "a.tengine", "key": "k", "occurred_at": "yesterday"}',
     "occurred_at 'yesterday' is not an ISO 8601 time"),
    (b'{"event_type_name": "a.tengine", "key": "k", "occurred_at": "2024-05-01T10:00:00"}',
     "occurred_at '2024-05-01T10:00:00' has no time zone: add Z or +00:00"),
    (b'{"event_type_name": "a.tengine", "key": "k", "occurred_at": 1714557600}',
     "occurred_at must be an ISO 8601 time string, got 1714557600"),
]


@pytest.mark.parametrize(("data", "message"), MALFORMED, ids=[m for _, m in MALFORMED])
def test_malformed_input_says_exactly_what_is_wrong(data: bytes, message: str) -> None:
    with pytest.raises(MalformedEvent) as caught:
        Event.from_json(data)
    assert message in str(caught.value)
    assert isinstance(caught.value, ValueError)


def test_building_a_bad_event_in_code_fails_the_same_way() -> None:
    with pytest.raises(MalformedEvent, match="bad level 'loud'"):
        Event("a.tengine", level="loud")
    with pytest.raises(MalformedEvent, match="key must be a non-blank string"):
        Event("a.tengine", key="")


def test_properties_that_json_cannot_carry_fail_with_the_event_named() -> None:
    event = Event("a.tengine", key="k1", properties={"when": object()})
    with pytest.raises(MalformedEvent, match=re.escape(
            "event a.tengine key=k1: properties are not JSON-serializable")):
        event.to_json()
    with pytest.raises(MalformedEvent, match="not JSON-serializable"):
        Event("a.tengine", properties={"x": float("nan")}).to_json()


def test_event_names_follow_tengine() -> None:
    assert names.START_EXECUTION == "start.execution.job.tengine"
    assert names.FINISHED_PROCESS_JOB == "finished.process.job.tengine"
    assert names.EXPIRED_JOB_HEARTBEAT == "expired.job.heartbeat.tengine"
    assert names.failed_event_name(names.START_JOB) == "start.job.job.tengine.failed.tengined"
    assert names.error_event_name(names.STOP_JOB) == "stop.job.job.tengine.error.tengined"
