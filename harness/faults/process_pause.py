"""Process pause: SIGSTOP to the core, the console or a job's watchdog (it hangs, holding its
connections); its end is SIGCONT."""

from __future__ import annotations

import signal

from .base import FaultError, Nemesis, Process


class ProcessPause(Nemesis):
    kind = "process-pause"

    def __init__(self, process: Process, *, role: str, target: str, source: str) -> None:
        super().__init__(name=f"{role} paused", target=target, subject=process, source=source,
                         how="SIGSTOP", params={"pid": process.pid})
        self.process = process

    def setup(self) -> None:
        if not self.process.alive():
            raise FaultError(f"cannot pause {self.target}: it is not running")

    def invoke(self) -> None:
        self.process.signal(signal.SIGSTOP)

    def teardown(self) -> None:
        self.process.signal(signal.SIGCONT)
