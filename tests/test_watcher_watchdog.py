"""The watchdog: events (heartbeats and finished share a key), resend, big output, death."""

from __future__ import annotations

import contextlib
import errno
import io
import json
import os
import resource
import stat
from dataclasses import asdict
from pathlib import Path

import pytest

from harness.waiting import wait_for
from support.tcp import dead_amqp_url
from support.watcher import (
    POLL,
    log_lines,
    pid_of,
    process_gone,
    read_json,
    recording_factory,
    result_of,
    run_job,
    wait_log,
    watcher,
)
from tengine_min import failpoints
from tengine_min.events.envelope import Event
from tengine_min.watcher import publish, watchdog
from tengine_min.watcher.events import FINISHED, HEARTBEAT, failure_message, finished_fields
from tengine_min.watcher.jobdir import JobDir
from tengine_min.watcher.log import open_log
from tengine_min.watcher.run import JobIdentity, RunOptions
from tengine_min.watcher.status import resend
from tengine_min.watcher.watchdog import EXIT_START_NOT_RECORDED, watch


def prepared_job(state, job_id, command, *, heartbeat=0.05, server="test_server1"):
    """A job dir as ``run`` leaves it for its watchdog."""
    jobdir = JobDir(state, job_id)
    assert jobdir.create()
    options = RunOptions(amqp_url="amqp://guest:guest@127.0.0.1:1/%2F",
                         heartbeat_interval=heartbeat, publish_retry_count=0)
    identity = JobIdentity(execution_id="exec-1", root_jobnet_id="root-1",
                           target_jobnet_id="jn-1", server_name=server)
    jobdir.write("request.json", {"job_id": job_id, "command": command, "cwd": os.getcwd(),
                                  "requested_at": "x", "run_pid": os.getpid(),
                                  "options": asdict(options), **asdict(identity)})
    return jobdir


def test_heartbeats_and_finished_event_share_one_key(tmp_path):
    state = tmp_path / "state"
    jobdir = prepared_job(state, "jw", ["sh", "-c", "echo hello; sleep 0.4; exit 0"])
    sent: list[Event] = []
    factory = recording_factory(sent)
    assert watch(jobdir, open_log(state, "jw"), factory) == 0
    started = jobdir.started
    beats = [e for e in sent if e.event_type_name == HEARTBEAT]
    finals = [e for e in sent if e.event_type_name == FINISHED]
    assert len(beats) >= 3 and len(finals) == 1
    assert sent[-1] is finals[0]  # no heartbeat after the finished event
    assert {e.key for e in sent} == {started["event_key"]}
    assert all(e.level == "debug" for e in beats)
    final = finals[0]
    assert final.level == "info"
    assert final.source_name == f"job:test_server1/{started['pid']}/root-1/jw"
    assert final.sender_name == (
        f"agent:{started['hostname']}/{started['watchdog_pid']}/tengine_job_agent")
    props = final.properties
    assert props["exit_status"] == 0 and props["signal"] is None and props["killed"] is False
    assert props["pid"] == started["pid"]
    assert props["job_id"] == "jw" and props["execution_id"] == "exec-1"
    assert props["root_jobnet_id"] == "root-1" and props["target_jobnet_id"] == "jn-1"
    assert props["stdout_head"] == "hello\n" and props["stdout_dropped_bytes"] == 0
    assert props["stdout_log"] == str(jobdir.stdout_path)
    assert "message" not in props
    # the heartbeat publisher never retries; the finished one uses the job's settings
    assert [m["retry_count"] for m in factory.made] == [0, 0]
    assert jobdir.published["key"] == started["event_key"]
    assert log_lines(state, "published event=finished.process.job.tengine",
                     f"key={started['event_key']}", "job_id=jw")


def test_failed_job_event_carries_tengines_message(tmp_path):
    state = tmp_path / "state"
    jobdir = prepared_job(state, "jerr", ["sh", "-c", "echo oops >&2; exit 5"], heartbeat=0)
    sent: list[Event] = []
    watch(jobdir, open_log(state, "jerr"), recording_factory(sent))
    (final,) = sent
    assert final.level == "error"
    assert final.properties["exit_status"] == 5
    assert final.properties["stderr_tail"] == "" and final.properties["stderr_head"] == "oops\n"
    assert final.properties["message"] == (
        "Job process failed. STDOUT and STDERR were redirected to files.\n"
        f"You can see them at '{jobdir.stdout_path}' and '{jobdir.stderr_path}'\n"
        "on the server 'test_server1'")
    assert Event.from_json(final.to_json()) == final


def test_result_is_recorded_before_publishing_and_kept_when_publishing_fails(tmp_path):
    state = tmp_path / "state"
    jobdir = prepared_job(state, "jkeep", ["true"], heartbeat=0)
    assert watch(jobdir, open_log(state, "jkeep"), recording_factory([], fail=True)) == 3
    assert jobdir.result["exit_status"] == 0
    assert jobdir.published is None
    assert log_lines(state, "result not published", "job_id=jkeep")


def test_finished_fields_of_a_killed_job():
    request = {"job_id": "j", "command": ["sleep", "9"], "server_name": "s1",
               "root_jobnet_id": "r", "execution_id": "e"}
    started = {"pid": 7, "event_key": "k", "source_name": "src", "sender_name": "snd"}
    stream = {"log": "/o", "head": "", "tail": "", "dropped_bytes": 0, "total_bytes": 0}
    result = {"exit_status": None, "signal": "KILL", "killed": True, "started_at": "t0",
              "finished_at": "2024-05-01T10:00:00.000000+00:00", "stdout": stream,
              "stderr": {**stream, "log": "/e"}}
    fields = finished_fields(request, started, result)
    assert fields["level"] == "error"
    assert fields["occurred_at"] == result["finished_at"]
    assert fields["properties"]["exit_status"] is None
    assert fields["properties"]["killed"] is True
    assert fields["properties"]["message"] == failure_message("/o", "/e", "s1")
    assert fields["properties"]["command"] == "sleep 9"


def test_resend_publishes_the_kept_result_with_the_same_key(tmp_path):
    state = tmp_path / "state"
    pid_of(run_job(state, "jres", "sh", "-c", "exit 2"))
    wait_log(state, "result not published", "job_id=jres")
    # The queue is still not there: resend says so and keeps the result.
    failed = watcher(state, "resend", "--job-id", "jres", "--amqp-url", dead_amqp_url())
    assert failed.returncode == 1
    assert "could not publish the result of job jres" in failed.stderr
    assert read_json(state / "jobs" / "jres" / "published.json") is None
    # The queue is back (here: a recording publisher): sent once, marked, logged.
    sent: list[Event] = []
    out, err = io.StringIO(), io.StringIO()
    assert resend(state, "jres", out=out, err=err, factory=recording_factory(sent)) == 0
    key = read_json(state / "jobs" / "jres" / "started.json")["event_key"]
    (event,) = sent
    assert event.key == key and event.event_type_name == FINISHED
    assert event.properties["exit_status"] == 2
    assert read_json(state / "jobs" / "jres" / "published.json")["by"] == "resend"
    assert log_lines(state, "published event=finished.process.job.tengine", f"key={key}",
                     "by=resend")
    assert resend(state, "jres", out=out, err=err, factory=recording_factory(sent)) == 0
    assert len(sent) == 1
    assert "already published" in out.getvalue()
    shown = json.loads(watcher(state, "status", "--job-id", "jres", "--json").stdout)
    assert shown["published"] is True


def test_resend_of_a_running_job_is_refused(tmp_path):
    state = tmp_path / "state"
    pid_of(run_job(state, "jrun", "sleep", "30"))
    done = watcher(state, "resend", "--job-id", "jrun")
    assert done.returncode == 1
    assert "no result to send for job jrun: it is running" in done.stderr
    watcher(state, "kill", "--job-id", "jrun")


@pytest.mark.timeout(240)
def test_huge_output_with_bounded_memory_and_exact_counts(tmp_path):
    """200 MB on each stream: whole files on the host, small excerpts, small watchdog."""
    state = tmp_path / "state"
    size = 200_000_000
    pattern = b"0123456789abcdef\n"  # 17 bytes: the tail's offset shows in its first byte
    script = (f"yes 0123456789abcdef | head -c {size}; "
              f"yes 0123456789abcdef | head -c {size} >&2")
    pid_of(run_job(state, "jbig", "sh", "-c", script))
    result = result_of(state, "jbig", timeout=200)
    assert result["exit_status"] == 0
    for stream in ("stdout", "stderr"):
        info = result[stream]
        assert info["total_bytes"] == size
        assert info["spooled_bytes"] == size
        assert (state / "jobs" / "jbig" / f"{stream}.log").stat().st_size == size
        assert info["dropped_bytes"] == size - 2 * 64 * 1024
        assert info["head"].encode() == (pattern * 4000)[:64 * 1024]
        start = size - 64 * 1024
        expected_tail = (pattern * 4000)[start % 17:start % 17 + 64 * 1024]
        assert info["tail"].encode() == expected_tail
    # The watchdog measured its own peak RSS just before writing the result.
    assert 0 < result["watchdog_vm_hwm_kib"] < 64 * 1024, result["watchdog_vm_hwm_kib"]


def test_before_publish_failpoint_holds_a_recorded_result(tmp_path):
    """Paused between recording the result and publishing it (the watcher dying there is S08's
    "after the job finished" case): the result is on the host, nothing was sent yet."""
    state = tmp_path / "state"
    failpoints.arm(state, "watcher.before_publish_finished", "pause")
    pid_of(run_job(state, "jpub", "sh", "-c", "exit 0"))
    failpoints.wait_hit(state, "watcher.before_publish_finished", timeout=60)
    assert read_json(state / "jobs" / "jpub" / "result.json")["exit_status"] == 0
    assert not log_lines(state, "publish failed", "job_id=jpub")
    shown = json.loads(watcher(state, "status", "--job-id", "jpub", "--json").stdout)
    assert shown["state"] == "finished" and shown["published"] is False
    failpoints.release(state, "watcher.before_publish_finished")
    wait_log(state, "gave up", "event=finished.process.job.tengine", "job_id=jpub")


def test_watchdog_exit_at_before_publish_keeps_the_result(tmp_path):
    state = tmp_path / "state"
    failpoints.arm(state, "watcher.before_publish_finished", "exit(9)")
    pid_of(run_job(state, "jx9", "true"))
    failpoints.wait_hit(state, "watcher.before_publish_finished", timeout=60)
    started = read_json(state / "jobs" / "jx9" / "started.json")
    wait_for(lambda: process_gone(started["watchdog_pid"]), timeout=30, what="the watchdog exited",
             interval=POLL)
    assert not log_lines(state, "publish failed", "job_id=jx9")
    assert not log_lines(state, "published", "job_id=jx9")
    shown = json.loads(watcher(state, "status", "--job-id", "jx9", "--json").stdout)
    assert shown["result_recorded"] is True and shown["published"] is False


ENOSPC_TEXT = "[Errno 28] No space left on device"


class FullDiskJobDir(JobDir):
    """The job dir of ``job_id`` on a disk that is full: the spool files of ``streams`` are
    /dev/full (the kernel fails every write with ENOSPC), and writing any of the JSON files in
    ``records`` fails with ENOSPC as well."""

    def __init__(self, state, job_id, streams=("stdout",), records=()):
        super().__init__(state, job_id)
        self.full_streams = streams
        self.full_records = records

    @property
    def stdout_path(self) -> Path:
        return Path("/dev/full") if "stdout" in self.full_streams else super().stdout_path

    @property
    def stderr_path(self) -> Path:
        return Path("/dev/full") if "stderr" in self.full_streams else super().stderr_path

    def write(self, name, data) -> None:
        if name in self.full_records:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(self.file(name)))
        super().write(name, data)


BIG_THEN_FAIL = "yes 0123456789abcdef | head -c 3000000; echo the-end; echo oops >&2; exit 4"


def test_a_full_disk_under_the_spool_does_not_stop_the_job_or_its_result(tmp_path):
    state = tmp_path / "state"
    prepared_job(state, "jfull", ["sh", "-c", BIG_THEN_FAIL], heartbeat=0)
    jobdir = FullDiskJobDir(state, "jfull")
    sent: list[Event] = []
    assert watch(jobdir, open_log(state, "jfull"), recording_factory(sent)) == 0
    (final,) = sent
    props = final.properties
    assert props["exit_status"] == 4 and props["signal"] is None and final.level == "error"
    assert props["stdout_bytes"] == 3_000_008
    assert props["stdout_tail"].endswith("f\n0123456789the-end\n")
    assert props["stdout_spool_error"] == ENOSPC_TEXT
    assert props["stdout_spool_dropped_bytes"] == 3_000_008
    assert props["stderr_spool_error"] is None and props["stderr_spool_dropped_bytes"] == 0
    assert props["stderr_head"] == "oops\n"
    assert jobdir.result["stdout"]["spool_error"] == ENOSPC_TEXT
    (line,) = log_lines(state, "spool write failed", "job_id=jfull")
    assert "stream=stdout" in line and f'error="{ENOSPC_TEXT}"' in line
    assert "errno=ENOSPC" in line and "spooled_bytes=0" in line
    assert log_lines(state, "finished job_id=jfull", "exit_status=4")
    assert not log_lines(state, "watchdog crashed")


def test_a_full_disk_at_the_end_still_sends_the_result(tmp_path):
    """Neither result.json nor published.json can be written: the event goes out from memory."""
    state = tmp_path / "state"
    prepared_job(state, "jfull2", ["sh", "-c", BIG_THEN_FAIL], heartbeat=0)
    jobdir = FullDiskJobDir(state, "jfull2", streams=("stdout", "stderr"),
                            records=("result.json", "published.json"))
    sent: list[Event] = []
    assert watch(jobdir, open_log(state, "jfull2"), recording_factory(sent)) == 0
    (final,) = sent
    assert final.properties["exit_status"] == 4
    assert final.properties["stderr_tail"] == "" and final.properties["stderr_head"] == "oops\n"
    assert final.properties["stderr_spool_error"] == ENOSPC_TEXT
    assert jobdir.result is None and jobdir.published is None
    assert not list(jobdir.path.glob(".*.tmp"))
    assert log_lines(state, "result not recorded", "job_id=jfull2", ENOSPC_TEXT)
    assert log_lines(state, "published event=finished.process.job.tengine", "job_id=jfull2")
    assert log_lines(state, "publish not recorded", "job_id=jfull2")


def test_a_spool_write_error_in_a_real_watchdog_leaves_the_script_its_exit_status(tmp_path):
    """A real kernel write error in real processes: a file size limit (RLIMIT_FSIZE, inherited
    by the watchdog from ``run``) makes the spool's writes past 1 MB fail with EFBIG."""
    state = tmp_path / "state"
    limit = 1_000_000

    def limit_file_size():
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    pid_of(run_job(state, "jfsz", "sh", "-c", BIG_THEN_FAIL, preexec_fn=limit_file_size))
    result = result_of(state, "jfsz", timeout=30)
    assert result["exit_status"] == 4 and result["signal"] is None
    out = result["stdout"]
    assert out["total_bytes"] == 3_000_008 and out["tail"].endswith("f\n0123456789the-end\n")
    assert out["spooled_bytes"] == limit  # the write that crossed the limit was short
    assert (state / "jobs" / "jfsz" / "stdout.log").stat().st_size == limit
    assert out["spool_dropped_bytes"] == 3_000_008 - limit
    assert out["spool_error"] == "[Errno 27] File too large"
    assert result["stderr"]["spool_error"] is None and result["stderr"]["head"] == "oops\n"
    (line,) = log_lines(state, "spool write failed", "job_id=jfsz", "stream=stdout")
    assert "errno=EFBIG" in line and f"spooled_bytes={limit}" in line
    wait_log(state, "result not published", "job_id=jfsz")  # it tried: no broker here
    request = read_json(state / "jobs" / "jfsz" / "request.json")
    started = read_json(state / "jobs" / "jfsz" / "started.json")
    props = finished_fields(request, started, result)["properties"]
    assert props["stdout_spool_error"] == "[Errno 27] File too large"
    assert props["stdout_spool_dropped_bytes"] == 3_000_008 - limit


@pytest.mark.timeout(30)
@pytest.mark.parametrize("records", [("started.json",), ("started.json", "spawn_error.json")],
                         ids=["spawn_error-written", "nothing-written"])
def test_a_start_that_cannot_be_recorded_kills_the_script(tmp_path, records):
    """started.json cannot be written after the spawn: nobody can learn the script runs, so the
    watchdog kills it at once and exits with the code run reads, instead of crashing."""
    state = tmp_path / "state"
    prepared_job(state, "jnorec", ["sleep", "60"], heartbeat=0)
    jobdir = FullDiskJobDir(state, "jnorec", streams=(), records=records)
    assert watch(jobdir, open_log(state, "jnorec"), recording_factory([])) == \
        EXIT_START_NOT_RECORDED
    (line,) = log_lines(state, "start not recorded", "job_id=jnorec")
    assert f'error="{ENOSPC_TEXT}' in line and 'action="script killed"' in line
    pid = int(line.split(" pid=")[1].split()[0])
    assert process_gone(pid)  # killed and reaped before the watchdog returns
    assert jobdir.started is None
    assert not log_lines(state, "started job_id=jnorec")
    assert not log_lines(state, "watchdog crashed")
    if "spawn_error.json" in records:
        assert jobdir.spawn_error is None
    else:  # what a duplicate run and status will show
        error = jobdir.spawn_error
        assert error["start_not_recorded"] is True and error["pid"] == pid
        assert error["errno"] == "ENOSPC"
        assert error["reason"].startswith("start not recorded: the job state could not be "
                                          f"written on the host ({ENOSPC_TEXT}")
        assert error["reason"].endswith(
            f"the script (pid {pid}) had started and was killed at once")
    assert not list(jobdir.path.glob(".*.tmp"))


def no_room_for_new_files(monkeypatch, path: Path) -> None:
    """``path`` cannot be created (a full disk, or no inode left: ENOSPC); an existing file
    opens as usual. Applies to the ``open`` of the publish module, which makes the lock."""
    real_open = open

    def full_open(file, *args, **kwargs):
        if Path(file) == path and not path.exists():
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(file))
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr(publish, "open", full_open, raising=False)


def test_a_publish_lock_that_cannot_be_created_does_not_lose_the_result(tmp_path, monkeypatch):
    """The disk is full from the start: no lock file, no result.json, no published.json. The
    event is sent from memory all the same, without the lock, and that is logged once."""
    state = tmp_path / "state"
    prepared_job(state, "jnolock", ["sh", "-c", BIG_THEN_FAIL], heartbeat=0)
    jobdir = FullDiskJobDir(state, "jnolock", streams=("stdout", "stderr"),
                            records=("result.json", "published.json"))
    no_room_for_new_files(monkeypatch, jobdir.publish_lock_path)
    sent: list[Event] = []
    assert watch(jobdir, open_log(state, "jnolock"), recording_factory(sent)) == 0
    (final,) = sent
    assert final.properties["exit_status"] == 4
    assert not jobdir.publish_lock_path.exists()
    (line,) = log_lines(state, "publish lock not taken", "job_id=jnolock")
    assert f'error="{ENOSPC_TEXT}' in line
    assert log_lines(state, "published event=finished.process.job.tengine", "job_id=jnolock")
    assert not log_lines(state, "watchdog crashed")


def test_the_publish_lock_is_made_before_the_script_starts(tmp_path, monkeypatch):
    """A job that fills the disk leaves no room to create the lock when it ends; the file made
    at the start still opens, so the publish stays under the lock."""
    state = tmp_path / "state"
    lock = JobDir(state, "jearly").publish_lock_path
    jobdir = prepared_job(state, "jearly", ["sh", "-c", f"test -e '{lock}'"], heartbeat=0)
    sent: list[Event] = []
    assert watch(jobdir, open_log(state, "jearly"), recording_factory(sent)) == 0
    assert jobdir.result["exit_status"] == 0  # the script saw the lock file
    assert not log_lines(state, "publish lock not taken")
    # resend on a disk that now has no room for new files still takes the lock
    jobdir.file("published.json").unlink()
    no_room_for_new_files(monkeypatch, lock)
    out, err = io.StringIO(), io.StringIO()
    assert resend(state, "jearly", out=out, err=err, factory=recording_factory(sent)) == 0
    assert len(sent) == 2 and not log_lines(state, "publish lock not taken")


def open_fds() -> dict[int, str]:
    """This process's open descriptors and what each is (a path, `pipe:[...]`, ...)."""
    found = {}
    for name in os.listdir("/proc/self/fd"):
        with contextlib.suppress(FileNotFoundError):  # the listing's own descriptor, now gone
            found[int(name)] = os.readlink(f"/proc/self/fd/{name}")
    return found


@pytest.mark.timeout(60)
@pytest.mark.parametrize("way_out", ["finished", "spawn_failed", "start_not_recorded"])
def test_every_way_out_of_watch_closes_its_descriptors(tmp_path, way_out):
    """The spool files, the pipes and the pidfd are closed whichever way watch returns (a
    script that could not start used to leave its spools and pipes open)."""
    state = tmp_path / "state"
    command = {"finished": ["sh", "-c", "echo out; echo err >&2"],
               "spawn_failed": [str(tmp_path / "no-such-script")],
               "start_not_recorded": ["sleep", "60"]}[way_out]
    prepared_job(state, "jfds", command, heartbeat=0)
    records = ("started.json",) if way_out == "start_not_recorded" else ()
    jobdir = FullDiskJobDir(state, "jfds", streams=(), records=records)
    log = open_log(state, "jfds")
    before = open_fds()
    code = watch(jobdir, log, recording_factory([]))
    assert code == {"finished": 0, "spawn_failed": 1,
                    "start_not_recorded": EXIT_START_NOT_RECORDED}[way_out]
    assert open_fds() == before
    if way_out == "spawn_failed":
        assert jobdir.spawn_error["reason"].startswith("script not found: ")


@pytest.mark.timeout(60)
def test_a_start_not_recorded_kills_the_script_before_its_pipes_close(tmp_path, monkeypatch):
    """The script gets SIGKILL while the watchdog still holds the read ends of its pipes, so it
    never sees a SIGPIPE first; they are closed only once it is gone."""
    state = tmp_path / "state"
    prepared_job(state, "jorder", ["sleep", "60"], heartbeat=0)
    jobdir = FullDiskJobDir(state, "jorder", streams=(), records=("started.json",))
    read_ends: list[int] = []
    real_pipe2 = os.pipe2

    def recording_pipe2(flags):
        read_end, write_end = real_pipe2(flags)
        read_ends.append(read_end)
        return read_end, write_end

    seen_at_kill: list[bool] = []
    real_abandon = watchdog._abandon_start

    def abandon(*args, **kwargs):
        seen_at_kill.extend(stat.S_ISFIFO(os.fstat(fd).st_mode) for fd in read_ends)
        return real_abandon(*args, **kwargs)

    monkeypatch.setattr(os, "pipe2", recording_pipe2)
    monkeypatch.setattr(watchdog, "_abandon_start", abandon)
    log = open_log(state, "jorder")
    before = open_fds()
    assert watch(jobdir, log, recording_factory([])) == EXIT_START_NOT_RECORDED
    assert seen_at_kill == [True, True]  # stdout's and stderr's, both still open
    assert open_fds() == before
