"""Opening the store: a SQLite file in the state dir by default, or the URL in TENGINE_DB_URL
(e.g. `postgresql://user:pass@host/db`, run with psycopg 3).

SQLite runs in WAL mode (the console reads while the core writes), with foreign keys on and a
busy timeout. Transactions that will write should start with `write_transaction`: on SQLite it
takes the write lock up front (BEGIN IMMEDIATE), so two writers queue behind the busy timeout
instead of failing when a reader tries to upgrade its lock; on PostgreSQL it is a plain BEGIN.
SQLite syncs with `synchronous=NORMAL` by default: in WAL mode a commit then survives a crash
of the process (what the harness injects) but not a power loss of the machine, and costs no
fsync per event; `TENGINE_SQLITE_SYNCHRONOUS=FULL` trades speed for that too.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.exc import ArgumentError, DBAPIError, OperationalError

from .schema import metadata

DB_URL_ENV = "TENGINE_DB_URL"
DB_FILE_NAME = "tengine.db"
BUSY_TIMEOUT_MS = 30_000
SYNCHRONOUS_ENV = "TENGINE_SQLITE_SYNCHRONOUS"


class StoreConfigError(ValueError):
    """The store cannot be opened as configured (bad URL, unusable state dir)."""


def engine_for(url_or_state_dir: str | Path, *, create: bool = True) -> Engine:
    """An Engine for a database URL, or for a state dir: `$TENGINE_DB_URL` when set, else the
    SQLite file `<state dir>/tengine.db` (the dir is created). With `create`, the tables are
    created if missing."""
    target = str(url_or_state_dir)
    if "://" in target:
        url = target
    elif os.environ.get(DB_URL_ENV):
        url = os.environ[DB_URL_ENV]
    else:
        state_dir = Path(target)
        try:
            state_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreConfigError(
                f"cannot create the state dir {state_dir}: {exc.strerror}") from exc
        url = f"sqlite:///{state_dir.resolve() / DB_FILE_NAME}"
    if url.startswith(("postgresql://", "postgres://")):
        # A plain PostgreSQL URL means psycopg 3, the driver this project installs.
        url = "postgresql+psycopg://" + url.split("://", 1)[1]
    try:
        engine = create_engine(url)
    except (ArgumentError, ImportError, ValueError) as exc:
        raise StoreConfigError(f"cannot open the store at {_safe(url)}: {exc}") from exc
    if engine.dialect.name == "sqlite":
        _tune_sqlite(engine)
    if create:
        create_all(engine)
    return engine


def create_all(engine: Engine) -> None:
    """Create every table and index that does not exist yet (idempotent). Inside a write
    transaction, so processes starting together on a new store (the core and the console of
    `tengine up` or the demo) create it one after the other instead of racing."""
    with write_transaction(engine) as conn:
        metadata.create_all(conn)


@contextmanager
def write_transaction(engine: Engine) -> Iterator[Connection]:
    """A transaction that will write: commit on normal exit, roll back on an exception."""
    with engine.connect() as conn:
        conn.execution_options(sqlite_begin="IMMEDIATE")
        with conn.begin():
            yield conn


# OperationalErrors that are a bug in a statement, not the store being away: trying again
# would fail the same way forever (and hold up the queue behind the event).
_STATEMENT_BUGS = ("no such table", "no such column", "syntax error", "has no column named",
                   "does not exist")


def store_unreachable(error: BaseException) -> bool:
    """Whether `error` says the store cannot be reached now (trying later may work), rather
    than that something is wrong with the event."""
    if isinstance(error, OperationalError):
        text = str(error.orig).lower()
        return error.connection_invalidated or not any(bug in text for bug in _STATEMENT_BUGS)
    if isinstance(error, DBAPIError):
        if error.connection_invalidated:  # SQLAlchemy recognised a disconnect
            return True
        text = str(error.orig).lower()
        return "database is locked" in text or "unable to open" in text
    return False


def _tune_sqlite(engine: Engine) -> None:
    synchronous = os.environ.get(SYNCHRONOUS_ENV, "NORMAL").strip().upper()
    if synchronous not in ("OFF", "NORMAL", "FULL", "EXTRA"):
        raise StoreConfigError(f"{SYNCHRONOUS_ENV}={synchronous!r}: use NORMAL or FULL")

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy's "begin" event decide when and how a transaction starts (the pysqlite
        # driver would otherwise start one lazily, always deferred).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        cursor.execute(f"PRAGMA synchronous={synchronous}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        mode = conn.get_execution_options().get("sqlite_begin", "")
        conn.exec_driver_sql(f"BEGIN {mode}".strip())


def _safe(url: str) -> str:
    """The URL without its password, for messages."""
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        creds, host = rest.rsplit("@", 1)
        user = creds.split(":", 1)[0]
        return f"{scheme}://{user}:***@{host}"
    return url
