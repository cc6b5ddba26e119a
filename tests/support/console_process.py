"""The console as its own process on a runtime's state dir, for the browser tests: a harness
`ManagedProcess` on a free loopback port."""

from __future__ import annotations

import sys
import urllib.request

from harness.processes import ManagedProcess
from tengine_min.ports import free_port

from .runtime import Runtime


class ConsoleProcess:
    """`python -m tengine_min.console` on a free loopback port, on `runtime`'s state dir."""

    def __init__(self, runtime: Runtime) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process = ManagedProcess(
            "console", [sys.executable, "-m", "tengine_min.console", "--port", str(self.port)],
            runtime.env, runtime.root / "console.out", runtime.state_dir).start()

    def ready(self) -> bool:
        if not self.process.alive():
            raise AssertionError(f"the console exited with {self.process.returncode}; "
                                 f"see {self.process.log_path}")
        try:
            with urllib.request.urlopen(f"{self.url}/api/jobnets", timeout=2) as response:
                return response.status == 200
        except OSError:
            return False

    def close(self) -> None:
        self.process.stop(timeout=20)
