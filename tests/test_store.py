"""The store: opening it, templates, executions, events, outbox, schedules (SQLite in tmp)."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select, text

from support.templates import definitions, expansion, finally_, job, jobnet
from tengine_min.events.envelope import Event
from tengine_min.model.instantiate import instantiate
from tengine_min.store import repo, schema
from tengine_min.store.db import StoreConfigError, engine_for, write_transaction

T0 = datetime(2024, 5, 1, 10, 0, tzinfo=UTC)


def counted_ids():
    counter = itertools.count(1)
    return lambda: f"{next(counter):024x}"


@pytest.fixture
def engine(tmp_path, monkeypatch):
    monkeypatch.delenv("TENGINE_DB_URL", raising=False)
    return engine_for(tmp_path / "state")


def count(conn, table) -> int:
    return conn.execute(select(func.count()).select_from(table)).scalar_one()


def jn0004():
    return jobnet("jn0004",
                  job("j1", "$HOME/j.sh 1", to=["j2", "j3"]),
                  job("j2", "$HOME/j.sh 2", to="j4"),
                  job("j3", "$HOME/j.sh 3", to="j4"),
                  job("j4", "$HOME/j.sh 4"),
                  finally_(job("jn0004_f", "$HOME/j.sh f")),
                  boot=["j1"], server_name="test_server1", credential_name="cred1")


# --- opening ---------------------------------------------------------------------------------

def test_state_dir_gives_a_sqlite_file_in_wal_mode_with_foreign_keys(tmp_path, monkeypatch):
    monkeypatch.delenv("TENGINE_DB_URL", raising=False)
    engine = engine_for(tmp_path / "new" / "state")
    assert (tmp_path / "new" / "state" / "tengine.db").is_file()
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 30000
    with pytest.raises(Exception, match="FOREIGN KEY"), write_transaction(engine) as conn:
        conn.execute(schema.vertices.insert().values(
            id="v", execution_id="missing", position=0, depth=0, kind="job", name="j",
            name_path="/j", phase="initialized"))


def test_tengine_db_url_wins_over_the_state_dir(tmp_path, monkeypatch):
    other = tmp_path / "elsewhere.db"
    monkeypatch.setenv("TENGINE_DB_URL", f"sqlite:///{other}")
    engine_for(tmp_path / "state")
    assert other.is_file() and not (tmp_path / "state" / "tengine.db").exists()


def test_a_bad_url_or_state_dir_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.delenv("TENGINE_DB_URL", raising=False)
    with pytest.raises(StoreConfigError, match=r"cannot open the store at nosuchdb://u:\*\*\*@h"):
        engine_for("nosuchdb://u:secret@h/db")
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(StoreConfigError, match="cannot create the state dir"):
        engine_for(blocker / "state")


def test_write_transaction_rolls_back_on_error(engine):
    with pytest.raises(RuntimeError), write_transaction(engine) as conn:
        repo.enqueue(conn, Event("x.tengine"), now=T0)
        raise RuntimeError("boom")
    with engine.connect() as conn:
        assert count(conn, schema.outbox) == 0


def test_naive_times_are_refused(engine):
    with pytest.raises(Exception, match="naive datetime"), write_transaction(engine) as conn:
        repo.enqueue(conn, Event("x.tengine"), now=datetime(2024, 1, 1))


# --- templates -------------------------------------------------------------------------------

def test_templates_round_trip_so_instantiate_runs_from_the_store(engine):
    child = jobnet("child", job("c1", "c1.sh"))
    root = jobnet("root", job("a", "a.sh", killing_signals=["TERM", "KILL"],
                              killing_signal_interval=3),
                  expansion("child"), finally_(job("f", "f.sh")), server_name="s1")
    defs = definitions(root, child)
    with write_transaction(engine) as conn:
        assert repo.save_templates(conn, defs) == ["root", "child"]
    with engine.connect() as conn:
        loaded = repo.load_definitions(conn)
    assert sorted(r.name for r in loaded.roots) == ["child", "root"]
    direct = instantiate(defs, "root", execution_id="e", new_id=counted_ids())
    stored = instantiate(loaded, "root", execution_id="e", new_id=counted_ids())
    assert stored == direct  # same tree, same template ids, same options and edges
    a = stored.vertex_by_path("/root/a")
    assert (a.killing_signals, a.killing_signal_interval, a.server_name) == (
        ["TERM", "KILL"], 3, "s1")


def test_the_latest_load_of_a_name_replaces_the_earlier_one(engine):
    with write_transaction(engine) as conn:
        repo.save_templates(conn, definitions(jobnet("r", job("old", "old.sh"))))
        repo.save_templates(conn, definitions(jobnet("r", job("new", "new.sh"))))
    with engine.connect() as conn:
        loaded = repo.load_definitions(conn)
        assert count(conn, schema.templates) == 1
    assert [c.name for c in loaded.roots[0].children] == ["new"]


def test_an_option_that_is_not_json_is_refused_and_nothing_is_written(engine):
    good = jobnet("good", job("g", "g.sh"))
    bad = jobnet("bad", job("j", "j.sh", preparation=lambda: "export X=1"))
    with (pytest.raises(repo.StoreError, match=r"/bad/j \(test_defs.py:1\): option preparation"),
          write_transaction(engine) as conn):
        repo.save_templates(conn, definitions(good, bad))
    with engine.connect() as conn:
        assert count(conn, schema.templates) == 0


def test_saving_selected_roots_by_name(engine):
    defs = definitions(jobnet("a", job("x", "x.sh")), jobnet("b", job("y", "y.sh")))
    with write_transaction(engine) as conn:
        assert repo.save_templates(conn, defs, ["b"]) == ["b"]
        with pytest.raises(repo.StoreError, match="no root jobnet named 'c'"):
            repo.save_templates(conn, defs, ["c"])


# --- executions ------------------------------------------------------------------------------

def test_an_execution_is_stored_row_by_row_with_edges_and_environment(engine):
    execution = instantiate(definitions(jn0004()), "jn0004", execution_id="e1",
                            new_id=counted_ids())
    with write_transaction(engine) as conn:
        repo.create_execution(conn, execution, timeout_min=5, alert_min=2, now=T0)
    with engine.connect() as conn:
        row = repo.get_execution(conn, "e1")
        assert (row.phase, row.timeout_min, row.alert_min, row.root_jobnet_name) == (
            "initialized", 5, 2, "jn0004")
        assert row.created_at == T0
        rows = repo.execution_vertices(conn, "e1")
        assert [(r.name_path, r.depth) for r in rows] == [
            ("/jn0004", 0), ("/jn0004/j1", 1), ("/jn0004/j2", 1), ("/jn0004/j3", 1),
            ("/jn0004/j4", 1), ("/jn0004/finally", 1), ("/jn0004/finally/jn0004_f", 2)]
        assert {r.phase for r in rows} == {"initialized"}
        j4 = rows[4]
        assert j4.env["MM_ACTUAL_JOB_ID"] == j4.id
        assert j4.env["MM_SCHEDULE_ID"] == "e1"
        assert j4.env["MM_ACTUAL_JOB_NAME_PATH"] == "/jn0004/j4"
        assert rows[0].env is None  # a jobnet runs no script
        assert j4.killing_signals == ["KILL"] and j4.killing_signal_interval == 5
        names = {r.id: r.name for r in rows}
        root_edges = [(names.get(e.origin, "Start"), names.get(e.destination, "End"), e.phase)
                      for e in repo.edges_of_jobnet(conn, rows[0].id)]
        assert root_edges == [("Start", "j1", "active"), ("j1", "j2", "active"),
                              ("j1", "j3", "active"), ("j2", "j4", "active"),
                              ("j3", "j4", "active"), ("j4", "End", "active")]
        assert [(names.get(e.origin, "Start"), names.get(e.destination, "End"))
                for e in repo.edges_of_jobnet(conn, rows[5].id)] == [
            ("Start", "jn0004_f"), ("jn0004_f", "End")]
        assert [names[e.destination] for e in repo.incoming_edges(conn, rows[0].id, j4.id)] == [
            "j4", "j4"]
        assert [names[c.id] for c in repo.children(conn, rows[0].id)] == [
            "j1", "j2", "j3", "j4", "finally"]


def test_a_row_that_must_be_there_is_read_or_named_when_missing(engine):
    execution = instantiate(definitions(jn0004()), "jn0004", execution_id="e1",
                            new_id=counted_ids())
    j1 = execution.vertex_by_path("/jn0004/j1")
    with write_transaction(engine) as conn:
        repo.create_execution(conn, execution)
    with engine.connect() as conn:
        assert repo.require_execution(conn, "e1").root_jobnet_name == "jn0004"
        assert repo.require_vertex(conn, j1.id).name_path == "/jn0004/j1"
        with pytest.raises(repo.MissingRow, match=r"^no execution 'e2' in the store$"):
            repo.require_execution(conn, "e2")
        with pytest.raises(repo.MissingRow, match=r"^no vertex 'v9' in the store$"):
            repo.require_vertex(conn, "v9")


def test_an_empty_jobnet_gets_one_edge_from_start_to_end(engine):
    execution = instantiate(definitions(jobnet("empty")), "empty", execution_id="e",
                            new_id=counted_ids())
    with write_transaction(engine) as conn:
        repo.create_execution(conn, execution)
        edges = repo.edges_of_jobnet(conn, execution.root.id)
    assert [(e.origin, e.destination) for e in edges] == [(None, None)]


def test_bad_timeout_is_refused_before_anything_is_written(engine):
    execution = instantiate(definitions(jn0004()), "jn0004", execution_id="e1",
                            new_id=counted_ids())
    with (pytest.raises(repo.StoreError, match="timeout_min must be a whole number"),
          write_transaction(engine) as conn):
        repo.create_execution(conn, execution, timeout_min=-1)
    with engine.connect() as conn:
        assert count(conn, schema.executions) == 0


def test_a_ten_thousand_job_execution_is_stored(engine):
    jobs = [job(f"j{i}", f"run.sh {i}") for i in range(10_000)]
    execution = instantiate(definitions(jobnet("big", *jobs)), "big", execution_id="big",
                            new_id=counted_ids())
    with write_transaction(engine) as conn:
        repo.create_execution(conn, execution)
    with engine.connect() as conn:
        assert count(conn, schema.vertices) == 10_001
        assert count(conn, schema.edges) == 10_001  # Start->j0, 9,999 links, j9999->End
        last = repo.get_vertex(conn, execution.vertex_by_path("/big/j9999").id)
        assert last.position == 10_000 and last.env["MM_ACTUAL_JOB_NAME_PATH"] == "/big/j9999"


# --- events ----------------------------------------------------------------------------------

def test_an_event_is_recorded_once(engine):
    event = Event("start.job.job.tengine", level="info", properties={"target_job_id": "j"})
    with write_transaction(engine) as conn:
        assert repo.record_event(conn, event, now=T0) is True
        assert repo.record_event(conn, event, now=T0) is False
        row = conn.execute(select(schema.events)).one()
    assert (row.key, row.confirmed, row.properties) == (event.key, True, {"target_job_id": "j"})


def test_warn_and_above_are_stored_unconfirmed(engine):
    with write_transaction(engine) as conn:
        for level in ("debug", "info", "warn", "error", "fatal"):
            repo.record_event(conn, Event(f"{level}.x.tengine", level=level), now=T0)
        rows = conn.execute(select(schema.events.c.level, schema.events.c.confirmed)).all()
    assert dict(rows) == {"debug": True, "info": True, "warn": False, "error": False,
                          "fatal": False}


def test_a_heartbeat_series_is_one_row_that_changes_type(engine):
    key = "series-1"

    def beat(name, level, minute):
        return Event(name, key=key, level=level,
                     occurred_at=(T0 + timedelta(minutes=minute)).isoformat())

    with write_transaction(engine) as conn:
        assert repo.record_event(conn, beat("job.heartbeat.tengine", "debug", 0))
        assert repo.record_event(conn, beat("job.heartbeat.tengine", "debug", 1))  # not a dup
        assert repo.record_event(conn, beat("expired.job.heartbeat.tengine", "error", 2))
        rows = conn.execute(select(schema.events)).all()
        assert [(r.event_type_name, r.confirmed) for r in rows] == [
            ("expired.job.heartbeat.tengine", False)]
        # A heartbeat arriving after the verdict does not hide it from the event screen.
        assert repo.record_event(conn, beat("job.heartbeat.tengine", "debug", 2.5))
        rows = conn.execute(select(schema.events)).all()
        assert [(r.event_type_name, r.level) for r in rows] == [
            ("expired.job.heartbeat.tengine", "error")]
        assert repo.record_event(conn, beat("finished.process.job.tengine", "info", 3))
        # A late heartbeat does not turn the finished row back into a heartbeat.
        assert repo.record_event(conn, beat("job.heartbeat.tengine", "debug", 4))
        rows = conn.execute(select(schema.events)).all()
        assert [(r.event_type_name, r.occurred_at) for r in rows] == [
            ("finished.process.job.tengine", T0 + timedelta(minutes=3))]
        assert repo.record_event(conn, beat("finished.process.job.tengine", "info", 3)) is False


def test_outbox_keeps_events_until_published(engine):
    first, second = Event("a.tengine", properties={"n": 1}), Event("b.tengine")
    with write_transaction(engine) as conn:
        ids = [repo.enqueue(conn, first, now=T0), repo.enqueue(conn, second, now=T0)]
        pending = repo.pending_outbox(conn, limit=10)
        assert [(i, e) for i, e in pending] == [(ids[0], first), (ids[1], second)]
        repo.mark_published(conn, ids[:1], now=T0)
        assert [e for _, e in repo.pending_outbox(conn, limit=10)] == [second]


# --- schedules and driver tasks ---------------------------------------------------------------

def test_schedules_are_due_once_and_cancellable(engine):
    execution = instantiate(definitions(jn0004()), "jn0004", execution_id="e1",
                            new_id=counted_ids())
    with write_transaction(engine) as conn:
        repo.create_execution(conn, execution)
        repo.add_schedule(conn, "s1", "e1", "stop.execution.job.tengine", T0)
        repo.add_schedule(conn, "s2", "e1", "alert.execution.job.tengine",
                          T0 + timedelta(minutes=1))
        assert [r.id for r in repo.due_schedules(conn, T0)] == ["s1"]
        assert repo.mark_schedule_fired(conn, "s1", T0) is True
        assert repo.mark_schedule_fired(conn, "s1", T0) is False
        assert repo.due_schedules(conn, T0) == []
        assert repo.cancel_schedules(conn, "e1", now=T0) == 1
        assert repo.due_schedules(conn, T0 + timedelta(hours=1)) == []


def test_driver_tasks_stay_open_until_finished(engine):
    execution = instantiate(definitions(jn0004()), "jn0004", execution_id="e1",
                            new_id=counted_ids())
    j1 = execution.vertex_by_path("/jn0004/j1").id
    with write_transaction(engine) as conn:
        repo.create_execution(conn, execution)
        start = repo.add_driver_task(conn, "start", j1, now=T0)
        kill = repo.add_driver_task(conn, "kill", j1, now=T0)
        assert [t.id for t in repo.open_driver_tasks(conn)] == [start, kill]
        assert repo.finish_driver_tasks(conn, j1, "started pid=1", kind="start", now=T0) == 1
        assert [t.kind for t in repo.open_driver_tasks_of(conn, j1)] == ["kill"]
        assert repo.get_driver_task(conn, start).outcome == "started pid=1"


def test_set_phase_logs_one_line_per_change(engine, caplog):
    execution = instantiate(definitions(jn0004()), "jn0004", execution_id="e1",
                            new_id=counted_ids())
    j1 = execution.vertex_by_path("/jn0004/j1").id
    with write_transaction(engine) as conn:
        repo.create_execution(conn, execution)
        with caplog.at_level("INFO", logger="tengine.core"):
            assert repo.set_phase(conn, j1, "ready") == "initialized"
            assert repo.set_phase(conn, j1, "ready") == "ready"  # no change, no line
            assert repo.set_phase(conn, "nope", "ready") is None
    assert [r.getMessage() for r in caplog.records] == [
        f"phase changed {j1} initialized -> ready name_path=/jn0004/j1"]


def test_sqlite_sql_stays_portable(engine):
    """The schema compiles for PostgreSQL too (JSON, timestamps, no SQLite-only types)."""
    from sqlalchemy.dialects import postgresql
    from sqlalchemy.schema import CreateIndex, CreateTable

    dialect = postgresql.dialect()
    for table in schema.metadata.sorted_tables:
        ddl = str(CreateTable(table).compile(dialect=dialect))
        assert "JSON" in ddl or table.name not in ("templates", "events", "outbox")
        for index in table.indexes:
            str(CreateIndex(index).compile(dialect=dialect))
    with engine.connect() as conn:
        assert conn.execute(text("select 1")).scalar() == 1


def test_a_bad_sqlite_sync_setting_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.delenv("TENGINE_DB_URL", raising=False)
    monkeypatch.setenv("TENGINE_SQLITE_SYNCHRONOUS", "sometimes")
    with pytest.raises(StoreConfigError, match="TENGINE_SQLITE_SYNCHRONOUS='SOMETIMES'"):
        engine_for(tmp_path / "state")
