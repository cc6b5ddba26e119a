"""The retry policy of the driver's start and kill commands, and the log line of every attempt.

Tengine had no retry at all (tengine-facts section 5), so the default is 0 retries. A server
may set `ssh_retry_count` / `ssh_retry_interval` in the resources; without them the settings
`command_retry_count` / `command_retry_interval` (tengine.toml, TENGINE_COMMAND_RETRY_COUNT...)
apply.

What is retried is decided by the error (transport/base.py): CannotConnect (refused, reset, timed
out: nothing was sent) and ConnectionLost (the request went out, the answer was lost). A
ConnectionLost start or kill may be repeated safely because the watcher recognises a second
request for the same job id: a second `run` returns the PID of the first, a second `kill` says
the job is already stopped. Never retried: AuthFailed, UnknownHost, BadHostKey (the same
request would fail the same way) and CommandTimeout (the command may still be running).

The core log gets one line per attempt and its outcome, then the decision:

    ssh attempt 1/3 server=s1 job_id=... command=start error="connection refused" ...
    ssh retry in 1.0s server=s1 job_id=... command=start
    ssh attempt 2/3 server=s1 job_id=... command=start outcome=ok
    ssh gave up after 3 attempts server=s1 job_id=... command=start error="connection refused"
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from ..config import Settings
from ..logfmt import kv
from ..resources import Server
from ..transport.base import TransportError

T = TypeVar("T")


@dataclass(frozen=True)
class RetryPolicy:
    count: int = 0  # retries after the first attempt
    interval: float = 1.0  # seconds between attempts

    def __post_init__(self) -> None:
        if isinstance(self.count, bool) or not isinstance(self.count, int) or self.count < 0:
            raise ValueError(f"retry count must be a whole number >= 0, got {self.count!r}")
        if self.interval < 0:
            raise ValueError(f"retry interval must be >= 0 seconds, got {self.interval!r}")

    @property
    def attempts(self) -> int:
        return self.count + 1

    def should_retry(self, error: TransportError, attempt: int) -> bool:
        """Whether attempt number `attempt` (1-based), failed with `error`, gets another."""
        return error.retryable and attempt < self.attempts

    @classmethod
    def for_server(cls, server: Server, settings: Settings) -> RetryPolicy:
        """The server's own setting, else the core's."""
        count = server.retry_count if server.retry_count is not None \
            else settings.command_retry_count
        interval = server.retry_interval if server.retry_interval is not None \
            else settings.command_retry_interval
        return cls(count, interval)


def with_retries(policy: RetryPolicy, attempt: Callable[[], T], *, log: logging.Logger,
                 label: str, fields: dict[str, Any],
                 wait: Callable[[float], bool]) -> T:
    """Call `attempt` until it returns, a TransportError is not to be retried, or the attempts
    run out; raises the last TransportError. `wait(seconds)` sleeps between attempts and returns
    True when the wait was cut short (the driver is stopping): then no further attempt is made.
    `label` starts every line ("ssh", "local")."""
    total = policy.attempts
    number = 0
    while True:
        number += 1
        try:
            result = attempt()
        except TransportError as exc:
            log.warning("%s attempt %d/%d %s", label, number, total, kv(
                **fields, error=getattr(exc, "detail", None) or str(exc),
                error_class=type(exc).__name__, retryable=exc.retryable,
                request_sent=exc.request_sent))
            if not policy.should_retry(exc, number):
                why = "not retryable" if not exc.retryable else "no retries left"
                log.error("%s gave up after %d attempt%s %s", label, number,
                          "" if number == 1 else "s", kv(**fields, why=why, error=str(exc)))
                raise
            log.info("%s retry in %.1fs %s", label, policy.interval, kv(**fields))
            if wait(policy.interval):
                log.error("%s gave up after %d attempt%s %s", label, number,
                          "" if number == 1 else "s",
                          kv(**fields, why="the core is stopping", error=str(exc)))
                raise
            continue
        log.info("%s attempt %d/%d %s", label, number, total, kv(**fields, outcome="ok"))
        return result
