"""Output spooling: exact head/tail/dropped accounting, the cap, and the pump on real pipes."""

from __future__ import annotations

import logging
import os
import stat
import subprocess
import threading
from pathlib import Path

import pytest

from tengine_min.watcher.spool import EXCERPT_BYTES, StreamSpool, pump

K = EXCERPT_BYTES


def spool_of(tmp_path, chunks, cap=None) -> StreamSpool:
    spool = StreamSpool("stdout", tmp_path / "out.log", cap)
    spool.open()
    for chunk in chunks:
        spool.feed(chunk)
    spool.close()
    return spool


def numbered(size: int) -> bytes:
    """Bytes whose value tells their position, so a wrong slice is seen."""
    return bytes(i % 251 for i in range(size))


@pytest.mark.parametrize("sizes", [
    [0], [10], [K], [K + 1], [2 * K], [2 * K + 1], [3 * K + 7],
    [1] * 100 + [K], [K - 1, 2, K - 1, 5], [5 * K, 3], [3, 5 * K],
])
def test_head_tail_and_dropped_are_exact(tmp_path, sizes):
    data = numbered(sum(sizes))
    chunks, at = [], 0
    for size in sizes:
        chunks.append(data[at:at + size])
        at += size
    spool = spool_of(tmp_path, chunks)
    head_len = min(len(data), K)
    tail_len = min(len(data) - head_len, K)
    assert bytes(spool.head) == data[:head_len]
    assert bytes(spool.tail) == data[len(data) - tail_len:]
    assert spool.total_bytes == len(data)
    assert spool.dropped_bytes == len(data) - head_len - tail_len
    assert (tmp_path / "out.log").read_bytes() == data
    assert spool.spool_dropped_bytes == 0


def test_cap_limits_the_file_and_counts_the_rest(tmp_path):
    data = numbered(1000)
    spool = spool_of(tmp_path, [data[:300], data[300:700], data[700:]], cap=500)
    assert (tmp_path / "out.log").read_bytes() == data[:500]
    assert spool.spooled_bytes == 500
    assert spool.spool_dropped_bytes == 500
    assert bytes(spool.head) == data  # the excerpts do not depend on the cap


def test_summary_decodes_text_and_keeps_counts(tmp_path):
    spool = spool_of(tmp_path, ["héllo\n".encode()])
    summary = spool.summary()
    assert summary["head"] == "héllo\n" and summary["tail"] == ""
    assert summary["total_bytes"] == len("héllo\n".encode())
    assert summary["log"] == str(tmp_path / "out.log")


def test_pump_reads_both_pipes_without_blocking_on_either(tmp_path):
    """A writer that fills stderr far past a pipe's size while stdout stays quiet."""
    out = StreamSpool("stdout", tmp_path / "o.log")
    err = StreamSpool("stderr", tmp_path / "e.log")
    out.open()
    err.open()
    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()
    proc = subprocess.Popen(
        ["sh", "-c", "head -c 5000000 /dev/zero >&2; echo done"], stdout=out_w, stderr=err_w)
    os.close(out_w)
    os.close(err_w)
    exit_fd = os.pidfd_open(proc.pid)
    finished = threading.Event()

    def go():
        pump({out_r: out, err_r: err}, exit_fd, lambda: proc.poll() is not None)
        finished.set()

    worker = threading.Thread(target=go, daemon=True)
    worker.start()
    assert finished.wait(60), "pump did not finish"
    for fd in (exit_fd, out_r, err_r):
        os.close(fd)
    proc.wait()
    assert err.total_bytes == 5_000_000 and out.total_bytes == 5
    assert bytes(out.head) == b"done\n"


def test_pump_stops_at_the_exit_even_if_a_grandchild_holds_the_pipe(tmp_path):
    out = StreamSpool("stdout", tmp_path / "o.log")
    err = StreamSpool("stderr", tmp_path / "e.log")
    out.open()
    err.open()
    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()
    proc = subprocess.Popen(["sh", "-c", "echo before; sleep 30 & exit 0"],
                            stdout=out_w, stderr=err_w, start_new_session=True)
    os.close(out_w)
    os.close(err_w)
    exit_fd = os.pidfd_open(proc.pid)
    finished = threading.Event()
    worker = threading.Thread(
        target=lambda: (pump({out_r: out, err_r: err}, exit_fd, lambda: False), finished.set()),
        daemon=True)
    worker.start()
    try:
        assert finished.wait(20), "pump waited for the grandchild"
        assert bytes(out.head) == b"before\n"
    finally:
        for fd in (exit_fd, out_r, err_r):
            os.close(fd)
        os.killpg(proc.pid, 9)
        proc.wait()


def test_pump_without_pidfd_polls_for_the_exit(tmp_path):
    out = StreamSpool("stdout", tmp_path / "o.log")
    err = StreamSpool("stderr", tmp_path / "e.log")
    out.open()
    err.open()
    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()
    proc = subprocess.Popen(["sh", "-c", "echo a; echo b >&2"], stdout=out_w, stderr=err_w)
    os.close(out_w)
    os.close(err_w)
    pump({out_r: out, err_r: err}, None, lambda: proc.poll() is not None)
    assert bytes(out.head) == b"a\n" and bytes(err.head) == b"b\n"
    # the pipes are the caller's: still open (both at their end here), for it to close
    assert all(stat.S_ISFIFO(os.fstat(fd).st_mode) for fd in (out_r, err_r))
    os.close(out_r)
    os.close(err_r)


ENOSPC_TEXT = "[Errno 28] No space left on device"


def disk_full_from_now_on(spool: StreamSpool) -> None:
    """The disk fills up: every later write to the spool file fails with ENOSPC, reported by the
    kernel itself (the spool's descriptor now points at /dev/full)."""
    full = os.open("/dev/full", os.O_WRONLY)
    os.dup2(full, spool._fd)
    os.close(full)


def test_a_full_disk_ends_the_spool_file_but_not_the_counts_or_the_excerpts(tmp_path, caplog):
    log = logging.getLogger("test.watcher.spool")
    data = numbered(5 * K + 3)
    spool = StreamSpool("stderr", tmp_path / "err.log", log=log, job_id="jfull")
    spool.open()
    spool.feed(data[:1000])
    disk_full_from_now_on(spool)
    with caplog.at_level(logging.DEBUG, logger="test.watcher.spool"):
        for at in range(1000, len(data), 7000):
            spool.feed(data[at:at + 7000])  # raised OSError out of the watchdog before the fix
    spool.close()
    assert (tmp_path / "err.log").read_bytes() == data[:1000]
    assert spool.total_bytes == len(data)
    assert spool.spooled_bytes == 1000
    assert spool.spool_dropped_bytes == len(data) - 1000
    assert spool.spool_error == ENOSPC_TEXT
    assert bytes(spool.head) == data[:K] and bytes(spool.tail) == data[-K:]
    assert spool.dropped_bytes == len(data) - 2 * K
    summary = spool.summary()
    assert summary["spool_error"] == ENOSPC_TEXT
    assert summary["spool_dropped_bytes"] == len(data) - 1000
    (record,) = caplog.records  # one line, however many chunks came after
    assert record.levelname == "WARNING"
    assert record.getMessage().startswith(
        f'spool write failed job_id=jfull stream=stderr path={tmp_path / "err.log"} '
        f'error="{ENOSPC_TEXT}" errno=ENOSPC spooled_bytes=1000 note=')


def test_a_spool_without_a_disk_error_says_so(tmp_path):
    summary = spool_of(tmp_path, [b"x" * 10], cap=4).summary()
    assert summary["spool_error"] is None and summary["spool_dropped_bytes"] == 6


def test_pump_drains_a_script_whose_spool_is_on_a_full_disk(tmp_path):
    """The stdout spool cannot take a byte: the pipe is still read to the end, the script is
    never blocked on it and ends with its own exit status."""
    out = StreamSpool("stdout", Path("/dev/full"))  # every write: ENOSPC
    err = StreamSpool("stderr", tmp_path / "e.log")
    out.open()
    err.open()
    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()
    proc = subprocess.Popen(
        ["sh", "-c", "head -c 5000000 /dev/zero; echo done >&2; echo last; exit 3"],
        stdout=out_w, stderr=err_w, start_new_session=True)
    os.close(out_w)
    os.close(err_w)
    exit_fd = os.pidfd_open(proc.pid)
    finished = threading.Event()
    errors: list[BaseException] = []

    def go():
        try:
            pump({out_r: out, err_r: err}, exit_fd, lambda: proc.poll() is not None)
        except BaseException as exc:  # noqa: BLE001 - reported by the test below
            errors.append(exc)
        finally:
            finished.set()

    threading.Thread(target=go, daemon=True).start()
    try:
        assert finished.wait(60), "pump did not finish"
        assert errors == []
        assert proc.wait(30) == 3
    finally:
        for fd in (exit_fd, out_r, err_r):
            os.close(fd)
        if proc.poll() is None:
            os.killpg(proc.pid, 9)
            proc.wait()
    out.close()
    err.close()
    assert out.total_bytes == 5_000_005 and out.spooled_bytes == 0
    assert out.spool_error == ENOSPC_TEXT and out.spool_dropped_bytes == 5_000_005
    assert bytes(out.tail).endswith(b"\x00last\n")
    assert err.spool_error is None and (tmp_path / "e.log").read_bytes() == b"done\n"
