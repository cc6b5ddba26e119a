"""The console's filters, as Tengine's event list reads them.

A text filter is a prefix (`start.` matches `start.job.job.tengine`) or, written between slashes,
a regular expression matched anywhere (`/abc123/` matches every source containing `abc123`).
Times are ISO 8601; a time without a zone is in the console's display zone. Every parse error is a
FilterError that names the field and says what was wrong, before any query runs.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, tzinfo
from typing import Any

from sqlalchemy import ColumnElement, and_, func, or_, true

from ..events.envelope import LEVEL_NUMBERS, MalformedEvent, normalize_level
from ..model.phases import PHASES
from ..store.schema import events, executions

LEVELS = tuple(LEVEL_NUMBERS)  # debug, info, warn, error, fatal
TIME_EXAMPLE = "2024-05-01 10:00, 2024-05-01T10:00:00 or 2024-05-01T10:00:00+09:00"


class FilterError(ValueError):
    """A filter value that cannot be used; `field` names the parameter."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"filter {field!r}: {message}")
        self.field = field
        self.message = message


@dataclass(frozen=True)
class TextFilter:
    """A prefix, or a regular expression (`pattern` set) matched anywhere in the text."""

    raw: str
    pattern: re.Pattern[str] | None = None

    @property
    def is_regex(self) -> bool:
        return self.pattern is not None

    def matches(self, text: str | None) -> bool:
        text = text or ""
        if self.pattern is not None:
            return self.pattern.search(text) is not None
        return text.startswith(self.raw)

    def clause(self, column: Any) -> ColumnElement[bool]:
        if self.pattern is not None:
            # SQLite: Python's re.search (SQLAlchemy registers it); PostgreSQL: the `~` operator.
            return column.regexp_match(self.pattern.pattern)
        # substr rather than LIKE: a case-sensitive prefix with no wildcard characters to escape.
        return func.substr(column, 1, len(self.raw)) == self.raw


def parse_text(raw: str | None, field_name: str) -> TextFilter | None:
    """`abc` -> prefix filter, `/a.c/` -> regex filter, blank -> None."""
    if raw is None or not raw.strip():
        return None
    text = raw.strip()
    if len(text) >= 2 and text.startswith("/") and text.endswith("/"):
        body = text[1:-1]
        try:
            return TextFilter(text, re.compile(body))
        except re.error as exc:
            where = f" at position {exc.pos}" if exc.pos is not None else ""
            raise FilterError(field_name, f"malformed regular expression {text}: "
                                          f"{exc.msg}{where}") from None
    return TextFilter(text)


def parse_time(raw: str | None, field_name: str, zone: tzinfo) -> datetime | None:
    """An ISO 8601 date or date-time (a date alone is its midnight); without a zone it is in
    `zone`. Blank -> None."""
    if raw is None or not raw.strip():
        return None
    text = raw.strip()
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise FilterError(field_name, f"{text!r} is not a date and time "
                                      f"(e.g. {TIME_EXAMPLE})") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=zone)
    return moment


def parse_range(since_raw: str | None, until_raw: str | None, zone: tzinfo,
                names: tuple[str, str] = ("since", "until")) -> tuple[datetime | None,
                                                                       datetime | None]:
    since = parse_time(since_raw, names[0], zone)
    until = parse_time(until_raw, names[1], zone)
    if since is not None and until is not None and until < since:
        raise FilterError(names[1], f"{until_raw!r} is before {names[0]} {since_raw!r}")
    return since, until


def parse_levels(values: Iterable[str] | None) -> tuple[str, ...]:
    """Level check boxes: none given means all. Tengine's numbers 1..5 are accepted."""
    chosen: list[str] = []
    for value in values or ():
        for part in str(value).split(","):
            if not part.strip():
                continue
            try:
                level = normalize_level(part)
            except MalformedEvent:
                raise FilterError("level", f"{part.strip()!r} is not a level "
                                           f"(use {', '.join(LEVELS)})") from None
            if level not in chosen:
                chosen.append(level)
    return tuple(chosen) if chosen else LEVELS


def parse_bool(raw: str | None, field_name: str) -> bool | None:
    """true/false (also yes/no, 1/0, on/off); blank or `all` -> None (no filter)."""
    if raw is None or raw.strip().lower() in ("", "all"):
        return None
    text = raw.strip().lower()
    if text in ("true", "yes", "1", "on"):
        return True
    if text in ("false", "no", "0", "off"):
        return False
    raise FilterError(field_name, f"{raw!r} is not true or false")


def parse_phases(values: Iterable[str] | None) -> tuple[str, ...]:
    """Status check boxes: phase keys (`running`, `error`, ...); none given means all."""
    chosen: list[str] = []
    for value in values or ():
        for part in str(value).split(","):
            key = part.strip()
            if not key:
                continue
            if key not in PHASES:
                raise FilterError("status", f"{key!r} is not a status "
                                            f"(use {', '.join(PHASES)})")
            if key not in chosen:
                chosen.append(key)
    return tuple(chosen)


@dataclass(frozen=True)
class EventFilter:
    """The event list's filters (all optional)."""

    type: TextFilter | None = None
    key: TextFilter | None = None
    source: TextFilter | None = None
    sender: TextFilter | None = None
    since: datetime | None = None
    until: datetime | None = None
    levels: tuple[str, ...] = LEVELS
    confirmed: bool | None = None

    @classmethod
    def parse(cls, *, type: str | None = None, key: str | None = None,
              source: str | None = None, sender: str | None = None,
              since: str | None = None, until: str | None = None,
              levels: Iterable[str] | None = None, confirmed: str | None = None,
              zone: tzinfo) -> EventFilter:
        start, end = parse_range(since, until, zone)
        return cls(type=parse_text(type, "type"), key=parse_text(key, "key"),
                   source=parse_text(source, "source"), sender=parse_text(sender, "sender"),
                   since=start, until=end, levels=parse_levels(levels),
                   confirmed=parse_bool(confirmed, "confirmed"))

    def clause(self) -> ColumnElement[bool]:
        parts: list[ColumnElement[bool]] = []
        for text_filter, column in ((self.type, events.c.event_type_name),
                                    (self.key, events.c.key),
                                    (self.source, events.c.source_name),
                                    (self.sender, events.c.sender_name)):
            if text_filter is not None:
                parts.append(text_filter.clause(column))
        if self.since is not None:
            parts.append(events.c.occurred_at >= self.since)
        if self.until is not None:
            parts.append(events.c.occurred_at <= self.until)
        if set(self.levels) != set(LEVELS):
            parts.append(events.c.level.in_(self.levels))
        if self.confirmed is not None:
            parts.append(events.c.confirmed == self.confirmed)
        return and_(true(), *parts)


@dataclass(frozen=True)
class ExecutionFilter:
    """The execution list's filters: ID, name, period (the execution ran at some time in it)
    and status check boxes."""

    id: TextFilter | None = None
    name: TextFilter | None = None
    since: datetime | None = None
    until: datetime | None = None
    phases: tuple[str, ...] = field(default_factory=tuple)

    @classmethod
    def parse(cls, *, id: str | None = None, name: str | None = None,
              since: str | None = None, until: str | None = None,
              statuses: Iterable[str] | None = None, zone: tzinfo) -> ExecutionFilter:
        start, end = parse_range(since, until, zone)
        return cls(id=parse_text(id, "id"), name=parse_text(name, "name"), since=start,
                   until=end, phases=parse_phases(statuses))

    def clause(self) -> ColumnElement[bool]:
        parts: list[ColumnElement[bool]] = []
        if self.id is not None:
            parts.append(self.id.clause(executions.c.id))
        if self.name is not None:
            parts.append(self.name.clause(executions.c.root_jobnet_name))
        begun = func.coalesce(executions.c.started_at, executions.c.created_at)
        if self.until is not None:
            parts.append(begun <= self.until)
        if self.since is not None:
            parts.append(or_(executions.c.finished_at.is_(None),
                             executions.c.finished_at >= self.since))
        if self.phases:
            parts.append(executions.c.phase.in_(self.phases))
        return and_(true(), *parts)
