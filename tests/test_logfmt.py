"""logfmt: quoting of values and the one-line file logger."""

from __future__ import annotations

import logging
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tengine_min.logfmt import kv, setup_file_logger


@pytest.mark.parametrize(
    ("fields", "line"),
    [
        ({"job_id": "j1", "attempt": "3/31"}, "job_id=j1 attempt=3/31"),
        ({"error": "Connection refused"}, 'error="Connection refused"'),
        ({"msg": 'say "hi"'}, r'msg="say \"hi\""'),
        ({"path": "C:\\x"}, r'path="C:\\x"'),
        ({"text": "two\nlines"}, r'text="two\nlines"'),
        ({"expr": "a=b"}, 'expr="a=b"'),
        ({"empty": "", "none": None}, 'empty="" none=""'),
        ({"ok": True, "bad": False, "n": 0, "x": 1.5}, "ok=true bad=false n=0 x=1.5"),
        ({"tab": "a\tb"}, r'tab="a\tb"'),
    ],
)
def test_kv_quotes_only_what_needs_it(fields: dict, line: str) -> None:
    assert kv(**fields) == line


def test_kv_keeps_the_order_given() -> None:
    assert kv(b=1, a=2, c=3) == "b=1 a=2 c=3"


LINE = re.compile(r"^(\S+) (\w+) (\S+) (.*)$")


def test_file_logger_writes_iso_time_level_name_message(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "watcher.log"
    logger = setup_file_logger("test.logfmt.one", path, logging.INFO)
    logger.info("started %s", kv(job_id="j1", pid=42))
    logger.debug("not written at INFO")
    lines = path.read_text().splitlines()
    assert len(lines) == 1
    stamp, level, name, message = LINE.match(lines[0]).groups()
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}\+00:00", stamp)
    assert (level, name, message) == ("INFO", "test.logfmt.one", "started job_id=j1 pid=42")


def test_tracebacks_stay_on_one_line(tmp_path: Path) -> None:
    path = tmp_path / "x.log"
    logger = setup_file_logger("test.logfmt.tb", path, "DEBUG")
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        logger.exception("failed %s", kv(job_id="j2"))
    lines = path.read_text().splitlines()
    assert len(lines) == 1
    assert "failed job_id=j2\\nTraceback" in lines[0] and "RuntimeError: boom" in lines[0]


def test_setting_up_twice_does_not_double_lines(tmp_path: Path) -> None:
    path = tmp_path / "x.log"
    setup_file_logger("test.logfmt.twice", path, logging.INFO)
    logger = setup_file_logger("test.logfmt.twice", path, logging.INFO)
    logger.info("once")
    assert len(path.read_text().splitlines()) == 1


def test_unwritable_folder_is_a_clear_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(OSError, match=f"cannot create the log folder {blocker}"):
        setup_file_logger("test.logfmt.bad", blocker / "x.log", logging.INFO)


WRITER = """
import logging, sys
from tengine_min.logfmt import setup_file_logger
log = setup_file_logger("w" + sys.argv[2], sys.argv[1], logging.INFO)
for i in range(300):
    log.info("line %s", sys.argv[2] * 20000)
"""


def test_processes_appending_to_one_file_never_interleave(tmp_path: Path) -> None:
    """Long records (bigger than any stdio buffer) from two processes stay whole."""
    path = tmp_path / "shared.log"
    procs = [subprocess.Popen([sys.executable, "-c", WRITER, str(path), tag]) for tag in "ab"]
    for proc in procs:
        assert proc.wait(timeout=60) == 0
    lines = path.read_text().splitlines()
    assert len(lines) == 600
    for line in lines:
        _, _, name, message = LINE.match(line).groups()
        tag = name[1]
        assert message == "line " + tag * 20000
