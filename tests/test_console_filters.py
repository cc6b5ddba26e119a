"""The console's filters: prefix and /regex/ text filters (parsed, and run as SQL on a real
SQLite store, which must agree with the Python reading), time ranges, levels, confirmed, status."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from support.templates import definitions, job, jobnet
from tengine_min.console.filters import (
    LEVELS,
    EventFilter,
    ExecutionFilter,
    FilterError,
    parse_bool,
    parse_levels,
    parse_phases,
    parse_range,
    parse_text,
    parse_time,
)
from tengine_min.events.envelope import Event
from tengine_min.model.instantiate import instantiate
from tengine_min.store import repo, schema
from tengine_min.store.db import engine_for, write_transaction

TOKYO = ZoneInfo("Asia/Tokyo")
T0 = datetime(2024, 5, 1, 10, 0, tzinfo=UTC)


# --- text filters -------------------------------------------------------------------------------


def test_plain_text_is_a_prefix_and_slashes_make_a_regex():
    assert parse_text(None, "type") is None
    assert parse_text("   ", "type") is None
    prefix = parse_text(" start. ", "type")
    assert not prefix.is_regex and prefix.raw == "start."
    regex = parse_text("/job\\.job/", "type")
    assert regex.is_regex and regex.pattern.pattern == "job\\.job"
    assert not parse_text("/", "source").is_regex  # a lone slash is a prefix
    assert parse_text("//", "source").matches("anything")  # an empty regex matches all


def test_a_malformed_regex_names_the_field_and_the_problem():
    with pytest.raises(FilterError) as caught:
        parse_text("/job(/", "source")
    assert caught.value.field == "source"
    assert "source" in str(caught.value) and "/job(/" in str(caught.value)
    assert "position 3" in str(caught.value)


NAMES = ["start.job.job.tengine", "Start.job", "error.job.job.tengine", "a%b", "a_b", "axb",
         "job:host/1/root1/v1", "job:host/1/root2/v1"]


@pytest.fixture
def names_engine(tmp_path):
    """The events table holding one row per name in NAMES (as event_type_name)."""
    engine = engine_for(tmp_path / "state")
    with write_transaction(engine) as conn:
        for name in NAMES:
            repo.record_event(conn, Event(name, source_name=name, occurred_at=T0.isoformat()),
                              now=T0)
    return engine


@pytest.mark.parametrize("raw, expected", [
    ("start.", ["start.job.job.tengine"]),  # case-sensitive, as Tengine's
    ("a%", ["a%b"]),  # % and _ are plain characters, not wildcards
    ("a_", ["a_b"]),
    ("/job\\.job/", ["start.job.job.tengine", "error.job.job.tengine"]),
    ("/^e/", ["error.job.job.tengine"]),
    ("/(?i)^start/", ["start.job.job.tengine", "Start.job"]),
    ("/root1/", ["job:host/1/root1/v1"]),
    ("nothing", []),
])
def test_sql_and_python_agree_on_what_a_filter_matches(names_engine, raw, expected):
    text_filter = parse_text(raw, "type")
    assert [n for n in NAMES if text_filter.matches(n)] == expected
    with names_engine.connect() as conn:
        found = conn.execute(select(schema.events.c.event_type_name)
                             .where(text_filter.clause(schema.events.c.event_type_name))
                             .order_by(schema.events.c.id)).scalars().all()
    assert found == expected


# --- times --------------------------------------------------------------------------------------


def test_times_with_and_without_a_zone():
    assert parse_time("2024-05-01T10:00:00+00:00", "since", TOKYO) == T0
    assert parse_time("2024-05-01T10:00:00Z", "since", TOKYO) == T0
    # Without a zone: the console's display zone.
    assert parse_time("2024-05-01 19:00", "since", TOKYO) == T0
    assert parse_time("2024-05-01T19:00", "since", TOKYO) == T0
    assert parse_time("2024-05-01", "since", UTC) == datetime(2024, 5, 1, tzinfo=UTC)
    assert parse_time("", "since", UTC) is None


@pytest.mark.parametrize("raw", ["yesterday", "2024-05-32", "10:00", "2024/05/01"])
def test_a_malformed_time_names_the_field(raw):
    with pytest.raises(FilterError) as caught:
        parse_time(raw, "until", UTC)
    assert caught.value.field == "until" and raw in str(caught.value)


def test_a_range_must_not_end_before_it_starts():
    assert parse_range("2024-05-01", "2024-05-01", UTC) == (datetime(2024, 5, 1, tzinfo=UTC),) * 2
    with pytest.raises(FilterError) as caught:
        parse_range("2024-05-02", "2024-05-01", UTC)
    assert caught.value.field == "until" and "before" in str(caught.value)


# --- levels, confirmed, status --------------------------------------------------------------------


def test_levels_default_to_all_and_accept_names_numbers_and_lists():
    assert parse_levels(None) == LEVELS
    assert parse_levels([]) == LEVELS
    assert parse_levels(["error", "WARN"]) == ("error", "warn")
    assert parse_levels(["error,fatal", "4"]) == ("error", "fatal")
    with pytest.raises(FilterError) as caught:
        parse_levels(["error", "loud"])
    assert caught.value.field == "level" and "loud" in str(caught.value)


def test_confirmed_and_status_values():
    assert parse_bool(None, "confirmed") is None
    assert parse_bool("all", "confirmed") is None
    assert parse_bool("true", "confirmed") is True and parse_bool("0", "confirmed") is False
    with pytest.raises(FilterError):
        parse_bool("maybe", "confirmed")
    assert parse_phases(["running", "error,stuck"]) == ("running", "error", "stuck")
    assert parse_phases(None) == ()
    with pytest.raises(FilterError) as caught:
        parse_phases(["finished"])
    assert caught.value.field == "status"


# --- the event filter on a real store -----------------------------------------------------------


@pytest.fixture
def events_engine(tmp_path):
    """Ten events, one a minute from T0, levels cycling; warn and above stored unconfirmed."""
    engine = engine_for(tmp_path / "state")
    with write_transaction(engine) as conn:
        for minute in range(10):
            level = LEVELS[minute % len(LEVELS)]
            repo.record_event(conn, Event(
                f"e{minute}.tengine", key=f"key-{minute}", level=level,
                source_name=f"job:h/1/root{minute % 2}/v{minute}", sender_name=f"s{minute % 3}",
                occurred_at=(T0 + timedelta(minutes=minute)).isoformat()), now=T0)
    return engine


def keys(engine, flt: EventFilter) -> list[str]:
    with engine.connect() as conn:
        return conn.execute(select(schema.events.c.key).where(flt.clause())
                            .order_by(schema.events.c.id)).scalars().all()


def test_event_filter_combines_its_parts(events_engine):
    def parse(**kw) -> EventFilter:
        return EventFilter.parse(zone=UTC, **kw)

    assert len(keys(events_engine, parse())) == 10
    assert keys(events_engine, parse(levels=["error"])) == ["key-3", "key-8"]
    assert keys(events_engine, parse(confirmed="false")) == [
        f"key-{m}" for m in range(10) if m % 5 >= 2]
    assert keys(events_engine, parse(since="2024-05-01T10:07:00Z")) == ["key-7", "key-8",
                                                                        "key-9"]
    assert keys(events_engine, parse(since="2024-05-01 10:02", until="2024-05-01 10:03")) == [
        "key-2", "key-3"]
    assert keys(events_engine, parse(source="/root1/", levels=["debug", "info"])) == [
        "key-1", "key-5"]
    assert keys(events_engine, parse(sender="s2", type="/^e[0-5]/")) == ["key-2", "key-5"]
    assert keys(events_engine, parse(key="key-9")) == ["key-9"]


# --- the execution filter: "ran during the period" ----------------------------------------------


def test_execution_period_means_it_ran_at_some_time_in_it(tmp_path):
    engine = engine_for(tmp_path / "state")
    defs = definitions(jobnet("jn", job("a", "a.sh")))
    spans = {  # execution id: (started, finished)
        "early": (T0, T0 + timedelta(hours=1)),
        "late": (T0 + timedelta(hours=5), T0 + timedelta(hours=6)),
        "open": (T0 + timedelta(hours=2), None),
    }
    with write_transaction(engine) as conn:
        repo.save_templates(conn, defs)
        stored = repo.load_definitions(conn)
        for execution_id, (started, finished) in spans.items():
            execution = instantiate(stored, "jn", execution_id=execution_id)
            repo.create_execution(conn, execution, now=T0)
            repo.update_execution(conn, execution_id, started_at=started, finished_at=finished,
                                  phase="success" if finished else "running")

    def ids(**kw) -> set[str]:
        flt = ExecutionFilter.parse(zone=UTC, **kw)
        with engine.connect() as conn:
            return set(conn.execute(select(schema.executions.c.id).where(flt.clause()))
                       .scalars())

    assert ids() == set(spans)
    assert ids(since="2024-05-01T10:30Z", until="2024-05-01T10:45Z") == {"early"}
    assert ids(since="2024-05-01T13:00Z") == {"late", "open"}
    assert ids(until="2024-05-01T11:30Z") == {"early"}
    assert ids(statuses=["running"]) == {"open"}
    assert ids(name="j", statuses=["success"]) == {"early", "late"}
    assert ids(id="/^(early|open)$/") == {"early", "open"}
