"""The watcher log lines about one job, for the job detail (D6).

Every watcher line carries `job_id=<id>` (a rerun: `job_id=<id>.<attempt>`), in
`<watcher state dir>/log/watcher.log` on the job's host. For a server with the local transport
the file is on this machine and the console shows the lines; for any other server it shows the
host, the path and the grep command to run there.
"""

from __future__ import annotations

import os
import re
import shlex
from dataclasses import dataclass
from pathlib import Path

from ..config import Settings
from ..resources import ResourceError, UnknownResource, load_resources

MAX_LINES = 200
SCAN_BYTES = 8 * 1024 * 1024  # read at most the last 8 MiB of the log
REMOTE_DEFAULT_STATE_DIR = "~/.tengine-watcher"  # tengine-watcher's own default


@dataclass
class WatcherLog:
    server: str | None
    path: str | None
    command: str | None  # what a person runs on the host to see the lines
    lines: list[str] | None = None  # None: the console could not read them (see note)
    note: str = ""
    truncated: bool = False


def watcher_log(settings: Settings, resources_file: Path | None, server_name: str | None,
                vertex_id: str) -> WatcherLog:
    """The lines of the job's watcher log that name `vertex_id` (any attempt)."""
    if not server_name:
        return WatcherLog(None, None, None, note="the job names no server")
    try:
        resources = load_resources(resources_file, settings.state_dir)
        server = resources.server(server_name)
    except (ResourceError, UnknownResource) as exc:
        return WatcherLog(server_name, None, None, note=str(exc))
    if server.transport == "local":
        state_dir = Path(server.watcher_state_dir or settings.watcher_state_dir).expanduser()
        path = state_dir / "log" / "watcher.log"
        view = WatcherLog(server.name, str(path), _grep(str(path), vertex_id))
        try:
            view.lines, view.truncated = matching_lines(path, vertex_id)
        except FileNotFoundError:
            view.note = "the file does not exist (yet)"
            view.lines = []
        except OSError as exc:
            view.note = f"cannot read {path}: {exc.strerror}"
        return view
    path = f"{server.watcher_state_dir or REMOTE_DEFAULT_STATE_DIR}/log/watcher.log"
    host = server.address or server.name
    return WatcherLog(server.name, path, _grep(path, vertex_id),
                      note=f"the log is on {host}; run the command there")


def _grep(path: str, vertex_id: str) -> str:
    quoted = path if path.startswith("~/") else shlex.quote(path)
    return f"grep -E {shlex.quote(job_pattern(vertex_id).pattern)} {quoted}"


def job_pattern(vertex_id: str) -> re.Pattern[str]:
    """`job_id=<id>` or `job_id=<id>.<attempt>` as a whole value."""
    return re.compile(rf"job_id={re.escape(vertex_id)}(\.[0-9]+)?( |$)")


def matching_lines(path: Path, vertex_id: str, *, max_lines: int = MAX_LINES,
                   scan_bytes: int = SCAN_BYTES) -> tuple[list[str], bool]:
    """The last `max_lines` lines naming the job within the last `scan_bytes` of the file, and
    whether anything was left out (older lines, or the file is longer than scanned)."""
    pattern = job_pattern(vertex_id)
    with open(path, "rb") as handle:
        size = handle.seek(0, os.SEEK_END)
        start = max(0, size - scan_bytes)
        handle.seek(start)
        data = handle.read()
    text = data.decode("utf-8", errors="replace")
    lines = text.splitlines()
    if start > 0 and lines:
        lines = lines[1:]  # the first line was cut by the scan window
    found = [line for line in lines if pattern.search(line)]
    truncated = start > 0 or len(found) > max_lines
    return found[-max_lines:], truncated
