"""The console as its own process, for the browser tests."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class ConsoleProcess:
    """`python -m tengine_min.console` on a free loopback port, on a runtime's state dir."""

    def __init__(self, env: dict[str, str], log_path: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._log = open(log_path, "wb")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tengine_min.console", "--port", str(self.port)],
            stdin=subprocess.DEVNULL, stdout=self._log, stderr=self._log, env=env)

    def ready(self) -> bool:
        if self.process.poll() is not None:
            raise AssertionError(f"the console exited with {self.process.returncode}; "
                                 f"see {self._log.name}")
        try:
            with urllib.request.urlopen(f"{self.url}/api/jobnets", timeout=2) as response:
                return response.status == 200
        except OSError:
            return False

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(20)
        self._log.close()
