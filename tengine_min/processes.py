"""Starting and stopping the stack's own child processes (the console beside `tengine up`, the
core and console of the demo): each in its own session, output to a file, stopped by SIGTERM
with a deadline and SIGKILL after it."""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path


def tengine_command(*args: str) -> list[str]:
    """`tengine ARGS...` of this installation."""
    return [str(Path(sys.executable).parent / "tengine"), *args]


def spawn(argv: list[str], env: dict[str, str], output: Path) -> subprocess.Popen[bytes]:
    output.parent.mkdir(parents=True, exist_ok=True)
    with open(output, "ab") as out:
        return subprocess.Popen(argv, env=env, stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)


def stop(process: subprocess.Popen[bytes], timeout: float = 20) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def command_line(process: subprocess.Popen[bytes]) -> str:
    """`tengine console --port 8180`: what `process` runs, its program without the folder."""
    args = process.args
    words = [args] if isinstance(args, (str, bytes, os.PathLike)) else list(args)
    if not words:
        return "a process"
    program, *rest = (os.fsdecode(word) for word in words)
    return shlex.join([Path(program).name, *rest])


def wait_http(url: str, process: subprocess.Popen[bytes], timeout: float) -> None:
    """Until `url` answers; fails early if `process` (the server) exits."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{command_line(process)} exited with {process.returncode} "
                               f"before {url} answered")
        try:
            with urllib.request.urlopen(url, timeout=1):
                return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"no answer at {url} within {timeout:.0f} s")
