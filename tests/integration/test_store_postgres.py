"""The store and the core on PostgreSQL (TENGINE_DB_URL), the same code as on SQLite.

Uses `TENGINE_TEST_PG_URL` (a server URL whose user may create databases) when set; otherwise
starts a private PostgreSQL server (initdb + postgres from the machine's PostgreSQL binaries) in
a tmp dir on a free port bound to 127.0.0.1, stopped at the end. Without either it skips, saying
what is missing: PostgreSQL is an optional backend.
"""

from __future__ import annotations

import glob
import itertools
import os
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, func, select, text

from harness.waiting import wait_for
from support.core_sim import HOLD, Sim, run_to_end
from support.templates import definitions, finally_, job, jobnet
from tengine_min.events.envelope import Event
from tengine_min.ports import free_port
from tengine_min.store import repo, schema
from tengine_min.store.db import engine_for, write_transaction

URL_VARIABLE = "TENGINE_TEST_PG_URL"


def _pg_bin(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return candidates[-1] if candidates else None


def _answers(url: str) -> bool:
    try:
        with create_engine(url).connect() as conn:
            conn.execute(text("select 1"))
    except Exception:  # noqa: BLE001 - not up yet, whatever the driver says
        return False
    return True


def _as_postgres() -> dict:
    """Popen arguments that run initdb/postgres as the postgres user when we are root (they
    refuse root). The child itself switches user, so the Popen pid is the server's own pid."""
    if os.geteuid() != 0:
        return {}
    return {"user": "postgres", "group": "postgres", "extra_groups": []}


@pytest.fixture(scope="module")
def pg_server_url() -> Iterator[str]:
    if os.environ.get(URL_VARIABLE):
        yield os.environ[URL_VARIABLE]
        return
    initdb, postgres = _pg_bin("initdb"), _pg_bin("postgres")
    if not (initdb and postgres):
        pytest.skip(f"no PostgreSQL server binaries (initdb, postgres) on this machine; "
                    f"set {URL_VARIABLE} to test against a running server")
    base = Path(tempfile.mkdtemp(prefix="tengine-pg-"))
    data, sockets = base / "data", base / "sock"
    sockets.mkdir()
    if os.geteuid() == 0:
        shutil.chown(base, "postgres")
        shutil.chown(sockets, "postgres")
    subprocess.run([initdb, "-D", str(data), "-A", "trust", "-U", "tengine", "--no-sync"],
                   check=True, capture_output=True, cwd=base, **_as_postgres())
    port = free_port()
    log = base / "postgres.log"  # a file, not a pipe: a full pipe would block the server
    server = subprocess.Popen(
        [postgres, "-D", str(data), "-p", str(port), "-k", str(sockets),
         "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off"],
        stdout=subprocess.DEVNULL, stderr=log.open("wb"), cwd=base, **_as_postgres())
    url = f"postgresql+psycopg://tengine@127.0.0.1:{port}/postgres"
    try:
        wait_for(lambda: server.poll() is not None or _answers(url), timeout=30,
                 what="the private PostgreSQL to answer", interval=0.2, error=RuntimeError,
                 last_seen=lambda: log.read_text(errors="replace")[-2000:])
        if server.poll() is not None:
            raise RuntimeError(f"the private PostgreSQL exited with {server.returncode}: "
                               + log.read_text(errors="replace")[-2000:])
        yield url
    finally:
        server.send_signal(signal.SIGINT)  # fast shutdown: ends open sessions too
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        shutil.rmtree(base, ignore_errors=True)


_databases = itertools.count(1)


@pytest.fixture
def pg_url(pg_server_url, monkeypatch) -> str:
    """A fresh database for one test, named in TENGINE_DB_URL (so engine_for picks it)."""
    name = f"t_{os.getpid()}_{next(_databases)}"
    admin = create_engine(pg_server_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    url = pg_server_url.rsplit("/", 1)[0] + "/" + name
    monkeypatch.setenv("TENGINE_DB_URL", url.replace("postgresql+psycopg://", "postgresql://"))
    return url


def test_engine_for_uses_the_postgresql_url(pg_url, tmp_path):
    engine = engine_for(tmp_path / "state")
    assert engine.dialect.name == "postgresql" and engine.dialect.driver == "psycopg"
    assert not (tmp_path / "state" / "tengine.db").exists()
    with engine.connect() as conn:
        tables = set(conn.execute(text(
            "select tablename from pg_tables where schemaname = 'public'")).scalars())
    assert tables == {t.name for t in schema.metadata.sorted_tables}


def test_a_failing_job_fork_join_and_finally_on_postgresql(pg_url, tmp_path):
    root = jobnet("jn0004",
                  job("j1", "j.sh 1", to=["j2", "j3"]),
                  job("j2", "j.sh 2", to="j4"),
                  job("j3", "j.sh 3", to="j4"),
                  job("j4", "j.sh 4"),
                  finally_(job("jn0004_f", "j.sh f")),
                  boot=["j1"])
    sim = run_to_end(Sim(tmp_path, definitions(root), "jn0004", outcomes={"/jn0004/j2": 1}))
    assert sim.engine.dialect.name == "postgresql"
    assert sim.phases() == {
        "/jn0004": "error", "/jn0004/j1": "success", "/jn0004/j2": "error",
        "/jn0004/j3": "success", "/jn0004/j4": "initialized",
        "/jn0004/finally": "success", "/jn0004/finally/jn0004_f": "success"}
    before = sim.dump()
    for event in list(sim.processed):
        sim.send(event)
    assert sim.dump() == before


def test_force_stop_and_late_result_on_postgresql(pg_url, tmp_path):
    sim = Sim(tmp_path, definitions(jobnet("r", job("a", "a.sh"))), "r",
              outcomes={"/r/a": HOLD})
    sim.start()
    sim.settle()
    sim.stop("/r")
    sim.settle()
    a = sim.vertex("/r/a")
    assert (a.phase, a.stop_reason, a.reason) == ("error", "user_stop",
                                                   "force stopped (user_stop)")
    late = Event("finished.process.job.tengine", properties={"job_id": a.id, "exit_status": 0})
    sim.send(late)
    assert sim.vertex("/r/a").late_result["exit_status"] == 0


def test_bulk_execution_and_heartbeat_series_on_postgresql(pg_url, tmp_path):
    from tengine_min.model.instantiate import instantiate

    counter = itertools.count(1)
    jobs = [job(f"j{i}", f"run.sh {i}") for i in range(2_000)]
    execution = instantiate(definitions(jobnet("big", *jobs)), "big", execution_id="big",
                            new_id=lambda: f"{next(counter):024x}")
    engine = engine_for(tmp_path / "state")
    with write_transaction(engine) as conn:
        repo.create_execution(conn, execution)
        for name, level in (("job.heartbeat.tengine", "debug"),
                            ("job.heartbeat.tengine", "debug"),
                            ("finished.process.job.tengine", "info")):
            assert repo.record_event(conn, Event(name, key="k1", level=level))
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(schema.vertices)).scalar() == 2_001
        rows = conn.execute(select(schema.events.c.event_type_name)).scalars().all()
        assert rows == ["finished.process.job.tengine"]
        row = repo.get_vertex(conn, execution.vertex_by_path("/big/j1999").id)
        assert row.env["MM_ACTUAL_JOB_NAME_PATH"] == "/big/j1999"
