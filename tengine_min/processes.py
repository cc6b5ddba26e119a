"""Starting and stopping the stack's own child processes (the console beside `tengine up`, the
core and console of the demo): each in its own session, output to a file, stopped by SIGTERM
with a deadline and SIGKILL after it."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path


def tengine_command(*args: str) -> list[str]:
    """`tengine ARGS...` of this installation."""
    return [str(Path(sys.executable).parent / "tengine"), *args]


def spawn(argv: list[str], env: dict, output: Path) -> subprocess.Popen:
    output.parent.mkdir(parents=True, exist_ok=True)
    with open(output, "ab") as out:
        return subprocess.Popen(argv, env=env, stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)


def stop(process: subprocess.Popen, timeout: float = 20) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def wait_http(url: str, process: subprocess.Popen, timeout: float) -> None:
    """Until `url` answers; fails early if `process` (the server) exits."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{process.args[-1] if process.args else 'process'} exited with "
                               f"{process.returncode} before {url} answered")
        try:
            with urllib.request.urlopen(url, timeout=1):
                return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"no answer at {url} within {timeout:.0f} s")
