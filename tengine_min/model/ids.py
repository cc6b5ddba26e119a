"""The ids a job's runs go by.

The watcher knows a job's run by its *watcher job id*: the vertex id for the first run (attempt 1)
and `<vertex id>.<attempt>` for a rerun, because the watcher treats a second `run` of the same id
as a duplicate. Events from a run and watcher log lines name it that way.
"""

from __future__ import annotations

import re

# ASCII only: str.isdigit() also accepts characters such as "²" that int() refuses.
_DIGITS = re.compile(r"[0-9]+")


def watcher_job_id(vertex_id: str, attempt: int) -> str:
    """The id the watcher knows run `attempt` of a job by."""
    return vertex_id if attempt <= 1 else f"{vertex_id}.{attempt}"


def split_job_id(value: str) -> tuple[str, int | None]:
    """`<vertex id>` or `<vertex id>.<attempt>` -> (vertex id, attempt or None)."""
    vertex_id, _, attempt = value.partition(".")
    return vertex_id, int(attempt) if _DIGITS.fullmatch(attempt) else None


def watcher_job_id_regex(vertex_id: str) -> str:
    """A regular expression matching the watcher job id of any run of a vertex."""
    return rf"{re.escape(vertex_id)}(\.[0-9]+)?"
