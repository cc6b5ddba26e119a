"""The event envelope: one JSON object per AMQP message, as Tengine's ``tengine_event``.

Fields: ``event_type_name``, ``key`` (uuid, the dedup key), ``source_name``, ``sender_name``,
``occurred_at`` (ISO 8601, UTC, microseconds), ``level`` (debug/info/warn/error/fatal; Tengine's
numbers 1..5 are accepted on input) and ``properties`` (a JSON object). Unknown fields in incoming
JSON are ignored, so a newer producer does not break an older consumer. The type names are in
``events/names.py``.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

# --- levels ------------------------------------------------------------------------------------

# Tengine's numeric levels (0 gr_heartbeat is internal to Tengine and not accepted here).
LEVEL_NAMES: dict[int, str] = {1: "debug", 2: "info", 3: "warn", 4: "error", 5: "fatal"}
LEVEL_NUMBERS: dict[str, int] = {name: number for number, name in LEVEL_NAMES.items()}


class MalformedEvent(ValueError):
    """The bytes or fields do not make an event; the message says exactly what is wrong."""


def normalize_level(level: object) -> str:
    """``"warn"``, ``"WARN"``, ``3`` or ``"3"`` -> ``"warn"``; anything else is MalformedEvent."""
    if isinstance(level, bool):  # bool is an int in Python; True is not a level
        raise MalformedEvent(f"bad level {level!r}: {_LEVEL_HELP}")
    if isinstance(level, int):
        if level in LEVEL_NAMES:
            return LEVEL_NAMES[level]
        raise MalformedEvent(f"bad level {level}: {_LEVEL_HELP}")
    if isinstance(level, str):
        text = level.strip().lower()
        if text in LEVEL_NUMBERS:
            return text
        if text.isdigit() and int(text) in LEVEL_NAMES:
            return LEVEL_NAMES[int(text)]
        raise MalformedEvent(f"bad level {level!r}: {_LEVEL_HELP}")
    raise MalformedEvent(f"bad level {level!r} ({type(level).__name__}): {_LEVEL_HELP}")


_LEVEL_HELP = "expected one of debug, info, warn, error, fatal, or Tengine's numbers 1..5"


def level_number(level: str | int) -> int:
    """Tengine's number for a level: ``"error"`` -> 4."""
    return LEVEL_NUMBERS[normalize_level(level)]


# --- time --------------------------------------------------------------------------------------


def utc_now_iso() -> str:
    """Now, as ISO 8601 UTC with microseconds: ``2024-05-01T10:00:00.123456+00:00``."""
    return datetime.now(UTC).isoformat(timespec="microseconds")


def normalize_time(value: object) -> str:
    """An ISO 8601 time WITH a zone (``Z`` or ``+hh:mm``) -> the same instant in UTC, with
    microseconds."""
    if not isinstance(value, str) or not value.strip():
        raise MalformedEvent(f"occurred_at must be an ISO 8601 time string, got {value!r}")
    try:
        moment = datetime.fromisoformat(value.strip())
    except ValueError:
        raise MalformedEvent(
            f"occurred_at {value!r} is not an ISO 8601 time (e.g. 2024-05-01T10:00:00.000000+00:00)"
        ) from None
    if moment.tzinfo is None:
        raise MalformedEvent(f"occurred_at {value!r} has no time zone: add Z or +00:00")
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


# --- the envelope ------------------------------------------------------------------------------


def _new_key() -> str:
    return str(uuid.uuid4())


@dataclass
class Event:
    event_type_name: str
    key: str = field(default_factory=_new_key)
    source_name: str = ""
    sender_name: str = ""
    occurred_at: str = field(default_factory=utc_now_iso)
    level: str = "info"
    properties: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # One validator for both paths (built in code, parsed from JSON): a bad event never exists.
        if not isinstance(self.event_type_name, str) or not self.event_type_name.strip():
            raise MalformedEvent(
                f"event_type_name must be a non-blank string, got {self.event_type_name!r}"
            )
        if not isinstance(self.key, str) or not self.key.strip():
            raise MalformedEvent(
                f"key must be a non-blank string (the dedup key), got {self.key!r}")
        for name in ("source_name", "sender_name"):
            value = getattr(self, name)
            if value is None:
                setattr(self, name, "")
            elif not isinstance(value, str):
                raise MalformedEvent(f"{name} must be a string, got {value!r}")
        self.occurred_at = normalize_time(self.occurred_at)
        self.level = normalize_level(self.level)
        properties: object = self.properties  # JSON may hold anything here
        if properties is None:
            self.properties = {}
        elif not isinstance(properties, dict):
            raise MalformedEvent(
                f"properties must be a JSON object, got {type(properties).__name__}: "
                f"{_short(properties)}"
            )

    def to_json(self) -> bytes:
        try:
            return json.dumps(asdict(self), ensure_ascii=False, allow_nan=False).encode("utf-8")
        except (TypeError, ValueError) as exc:
            raise MalformedEvent(
                f"event {self.event_type_name} key={self.key}: properties are not "
                f"JSON-serializable ({exc})"
            ) from None

    @classmethod
    def from_json(cls, data: bytes | str) -> Event:
        if isinstance(data, (bytes, bytearray)):
            try:
                # explicit: json.loads would guess UTF-16/32 from the bytes
                data = data.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise MalformedEvent(f"not UTF-8 text: {exc.reason} at byte {exc.start}") from None
        try:
            obj = json.loads(data)
        except json.JSONDecodeError as exc:
            raise MalformedEvent(
                f"not JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None
        if not isinstance(obj, dict):
            raise MalformedEvent(f"expected a JSON object, got {type(obj).__name__}: {_short(obj)}")
        for required in ("event_type_name", "key"):
            if required not in obj:
                raise MalformedEvent(f"missing {required}")
        known = {name: obj[name] for name in cls.__dataclass_fields__ if name in obj}
        if known.get("occurred_at") is None:
            known.pop("occurred_at", None)  # Tengine stamps "now" when the time is absent
        if known.get("level") is None:
            known.pop("level", None)
        return cls(**known)


def _short(value: object, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
