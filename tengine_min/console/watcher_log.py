"""The watcher log lines about one job, for the job detail (D6).

Every watcher line carries `job_id=<id>` (a rerun: `job_id=<id>.<attempt>`), in
`<watcher state dir>/log/watcher.log` on the job's host. For a server with the local transport
the file is on this machine and the console shows the lines. For an ssh server the console runs
that grep on the host over ssh, logging in as the job's credential (as a person would), and shows
the lines; when it cannot (host down, no credential), it shows why, with the host, the path and the
grep command to run there.
"""

from __future__ import annotations

import os
import re
import shlex
from dataclasses import dataclass
from pathlib import Path

from ..config import Settings
from ..model.ids import watcher_job_id_regex
from ..resources import ResourceError, Resources, Server, UnknownResource, load_resources
from ..transport.base import TransportError
from ..transport.ssh import SshTransport

MAX_LINES = 200
SCAN_BYTES = 8 * 1024 * 1024  # read at most the last 8 MiB of the log
REMOTE_DEFAULT_STATE_DIR = "~/.tengine-watcher"  # tengine-watcher's own default
SSH_READ_TIMEOUT = 10.0  # s for the whole ssh read of a remote log (the page waits for it)


@dataclass
class WatcherLog:
    server: str | None
    path: str | None
    command: str | None  # what a person runs on the host to see the lines
    lines: list[str] | None = None  # None: the console could not read them (see note)
    note: str = ""
    truncated: bool = False


def watcher_log(settings: Settings, resources_file: Path | None, server_name: str | None,
                vertex_id: str, credential_name: str | None = None) -> WatcherLog:
    """The lines of the job's watcher log that name `vertex_id` (any attempt); for an ssh
    server read over ssh as `credential_name`."""
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
    remote_path = f"{server.watcher_state_dir or REMOTE_DEFAULT_STATE_DIR}/log/watcher.log"
    host = server.address or server.name
    view = WatcherLog(server.name, remote_path, _grep(remote_path, vertex_id),
                      note=f"the log is on {host}; run the command there")
    if server.transport == "ssh" and credential_name:
        _read_over_ssh(view, server, resources, credential_name, vertex_id)
    return view


def _read_over_ssh(view: WatcherLog, server: Server, resources: Resources,
                   credential_name: str, vertex_id: str) -> None:
    """Fill `view.lines` with the grep run on the host; on failure `view.note` says why."""
    host = server.address or server.name
    assert view.path is not None
    quoted = view.path if view.path.startswith("~/") else shlex.quote(view.path)
    # The same bounds as a local read: the last SCAN_BYTES of the file, MAX_LINES lines.
    command = (f"test -f {quoted} || {{ echo 'no such file' >&2; exit 3; }}; "
               f"tail -c {SCAN_BYTES} {quoted} | grep -E "
               f"{shlex.quote(job_pattern(vertex_id).pattern)} | tail -n {MAX_LINES + 1}")
    try:
        credential = resources.credential(credential_name)
        done = SshTransport(server, credential, watcher_command="tengine-watcher").run(
            command, timeout=SSH_READ_TIMEOUT)
    except (UnknownResource, TransportError) as exc:
        view.note = f"cannot read it on {host} over ssh ({exc}); run the command there"
        return
    if done.exit_code == 3:
        view.lines, view.note = [], f"read on {host} over ssh: the file does not exist (yet)"
        return
    if done.exit_code != 0:
        view.note = (f"cannot read it on {host} over ssh (exit status {done.exit_code}: "
                     f"{done.stderr.strip()[:200]}); run the command there")
        return
    lines = done.stdout.splitlines()
    view.lines, view.truncated = lines[-MAX_LINES:], len(lines) > MAX_LINES
    view.note = f"read on {host} over ssh as {credential_name}"


def _grep(path: str, vertex_id: str) -> str:
    quoted = path if path.startswith("~/") else shlex.quote(path)
    return f"grep -E {shlex.quote(job_pattern(vertex_id).pattern)} {quoted}"


def job_pattern(vertex_id: str) -> re.Pattern[str]:
    """`job_id=<id>` or `job_id=<id>.<attempt>` as a whole value."""
    return re.compile(rf"job_id={watcher_job_id_regex(vertex_id)}( |$)")


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
