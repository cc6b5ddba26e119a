"""The console reads an ssh server's watcher log lines over ssh (D6): against a small real ssh
server on 127.0.0.1 (tests/support/sshd.py) that runs the grep with /bin/sh, on a log file
written here."""

from __future__ import annotations

from pathlib import Path

import pytest

from support.sshd import MiniSshd, make_key, public_line
from tengine_min.config import Settings
from tengine_min.console.watcher_log import watcher_log

JOB = "6b0aaaba470fcb67e578d461"
LOG = f"""\
2026-11-28T10:19:38.1Z INFO tengine.watcher run requested job_id={JOB} command=x
2026-11-28T10:19:38.2Z INFO tengine.watcher started job_id={JOB} pid=24
2026-11-28T10:19:38.3Z INFO tengine.watcher started job_id=other pid=25
2026-11-28T10:19:38.4Z INFO tengine.watcher finished job_id={JOB}.2 pid=24 exit_status=3
2026-11-28T10:19:38.5Z INFO tengine.watcher finished job_id={JOB}9 pid=26 exit_status=0
"""


@pytest.fixture
def host_key(tmp_path: Path):
    return make_key(tmp_path / "host_key")


@pytest.fixture
def sshd(host_key):
    server = MiniSshd(host_key)
    yield server
    server.close()


def resources(tmp_path: Path, port: int, host_key, state_dir: Path,
              password: str = "pw") -> Path:
    path = tmp_path / "resources.toml"
    path.write_text(f"""\
[servers.s1]
transport = "ssh"
address = "127.0.0.1"
ssh_port = {port}
host_key = "{public_line(host_key)}"
watcher_state_dir = "{state_dir}"
ssh_connect_timeout = 2
ssh_auth_timeout = 2

[credentials.c1]
type = "ssh_password"
username = "job"
password = "{password}"
""")
    return path


def write_log(state_dir: Path) -> None:
    (state_dir / "log").mkdir(parents=True)
    (state_dir / "log" / "watcher.log").write_text(LOG)


def test_the_lines_of_the_job_are_read_over_ssh(tmp_path, sshd, host_key):
    state_dir = tmp_path / "watcher"
    write_log(state_dir)
    view = watcher_log(Settings(tmp_path), resources(tmp_path, sshd.port, host_key, state_dir),
                       "s1", JOB, "c1")
    assert view.lines == [*LOG.splitlines()[0:2], LOG.splitlines()[3]], view
    assert "over ssh as c1" in view.note and not view.truncated
    assert view.command is not None and JOB in view.command  # still shown, to run by hand


def test_a_missing_log_file_is_said_so(tmp_path, sshd, host_key):
    view = watcher_log(Settings(tmp_path), resources(tmp_path, sshd.port, host_key,
                                                     tmp_path / "none"), "s1", JOB, "c1")
    assert view.lines == [] and "does not exist" in view.note, view


def test_a_failed_login_says_why_and_keeps_the_command(tmp_path, sshd, host_key):
    state_dir = tmp_path / "watcher"
    write_log(state_dir)
    file = resources(tmp_path, sshd.port, host_key, state_dir, password="wrong")
    view = watcher_log(Settings(tmp_path), file, "s1", JOB, "c1")
    assert view.lines is None, view
    assert "cannot read it on 127.0.0.1 over ssh" in view.note, view.note
    assert "authentication" in view.note.lower(), view.note
    assert view.command is not None and "grep -E" in view.command


def test_without_a_credential_only_the_command_is_shown(tmp_path, sshd, host_key):
    file = resources(tmp_path, sshd.port, host_key, tmp_path / "watcher")
    view = watcher_log(Settings(tmp_path), file, "s1", JOB)
    assert view.lines is None and "run the command there" in view.note, view
