"""Process kill: a signal that ends a process (SIGKILL: a crash; SIGTERM: a clean stop) sent to
the core, the console or a job's watchdog; done once the process is gone. Its end starts the
process again (the core, the console); a killed watchdog has no end: nothing restarts it."""

from __future__ import annotations

import signal
from collections.abc import Callable

from .base import FaultError, Nemesis, Process

EFFECTS = {"SIGKILL": "killed", "SIGTERM": "stopped"}
GONE_TIMEOUT = 30.0  # s for a signalled process to be gone (a clean stop takes a few)


class ProcessKill(Nemesis):
    kind = "process-kill"

    def __init__(self, process: Process, *, role: str, target: str, source: str,
                 sig: signal.Signals = signal.SIGKILL,
                 start_again: Callable[[], object] | None = None) -> None:
        super().__init__(name=f"{role} {EFFECTS.get(sig.name, 'sent ' + sig.name)}",
                         target=target, subject=process, source=source, how=sig.name,
                         params={"signal": sig.name, "pid": process.pid})
        self.process = process
        self.sig = sig
        self.start_again = start_again
        self.has_end = start_again is not None

    def setup(self) -> None:
        if not self.process.alive():
            raise FaultError(f"cannot kill {self.target}: it is not running")

    def invoke(self) -> None:
        self.process.signal(self.sig)
        self.process.wait(GONE_TIMEOUT)

    def teardown(self) -> None:
        assert self.start_again is not None
        self.start_again()
