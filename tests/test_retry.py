"""The retry policy: what is retried, how often, and the core log line of every attempt. The
attempts are plain functions here (the policy is pure logic); the ssh errors are the real ones."""

from __future__ import annotations

import logging

import pytest

from support.logs import recording
from tengine_min.config import load_settings
from tengine_min.core.retry import RetryPolicy, with_retries
from tengine_min.resources import Server
from tengine_min.transport.base import (
    AuthFailed,
    CannotConnect,
    CommandTimeout,
    ConnectionLost,
)
from tengine_min.transport.ssh import BadHostKey, UnknownHost


@pytest.fixture
def log():
    with recording("test.retry") as handler:
        yield logging.getLogger("test.retry"), handler.lines


def refused() -> CannotConnect:
    error = CannotConnect("cannot connect to server s1 (10.0.0.5:22): connection refused")
    error.detail = "connection refused"
    return error


class Outcomes:
    """Returns or raises what it is given, in order; counts the calls."""

    def __init__(self, *outcomes) -> None:
        self.outcomes = list(outcomes)
        self.calls = 0

    def __call__(self):
        outcome = self.outcomes[self.calls]
        self.calls += 1
        if isinstance(outcome, Exception):
            raise outcome
        return outcome


def run(policy, attempt, log, waits=None):
    logger, _ = log
    waited = waits if waits is not None else []
    return with_retries(policy, attempt, log=logger, label="ssh",
                        fields={"server": "s1", "job_id": "j1", "command": "start"},
                        wait=lambda seconds: waited.append(seconds) or False)


@pytest.mark.parametrize("error, retried", [
    (CannotConnect("refused"), True),
    (ConnectionLost("lost"), True),
    (AuthFailed("auth"), False),
    (UnknownHost("bad.example"), False),
    (BadHostKey("key"), False),
    (CommandTimeout("slow"), False),
])
def test_what_is_retried(error, retried):
    policy = RetryPolicy(count=3, interval=0)
    assert policy.should_retry(error, 1) is retried
    assert policy.should_retry(error, 4) is False  # the last of 4 attempts


def test_the_default_is_tengines_no_retry():
    assert RetryPolicy().attempts == 1
    assert RetryPolicy().should_retry(CannotConnect("refused"), 1) is False


@pytest.mark.parametrize("count, interval, message", [
    (-1, 1.0, "retry count must be a whole number >= 0, got -1"),
    (True, 1.0, "retry count must be a whole number >= 0, got True"),
    (1, -0.5, "retry interval must be >= 0 seconds, got -0.5"),
])
def test_bad_policies_say_what_is_wrong(count, interval, message):
    with pytest.raises(ValueError, match=message):
        RetryPolicy(count, interval)


def test_the_server_setting_wins_over_the_core_setting(tmp_path):
    settings = load_settings(tmp_path, env={"TENGINE_COMMAND_RETRY_COUNT": "2",
                                            "TENGINE_COMMAND_RETRY_INTERVAL": "0.5"})
    assert RetryPolicy.for_server(Server("s1"), settings) == RetryPolicy(2, 0.5)
    own = Server("s2", retry_count=5, retry_interval=3.0)
    assert RetryPolicy.for_server(own, settings) == RetryPolicy(5, 3.0)
    assert RetryPolicy.for_server(Server("s3", retry_count=0), settings) == RetryPolicy(0, 0.5)


def test_refused_then_success_logs_every_attempt(log):
    attempt = Outcomes(refused(), refused(), "done")
    waits: list[float] = []
    assert run(RetryPolicy(3, 1.0), attempt, log, waits) == "done"
    assert attempt.calls == 3 and waits == [1.0, 1.0]
    _, lines = log
    assert lines[0].startswith('ssh attempt 1/4 server=s1 job_id=j1 command=start '
                               'error="connection refused" error_class=CannotConnect '
                               'retryable=true request_sent=false')
    assert lines[1] == "ssh retry in 1.0s server=s1 job_id=j1 command=start"
    assert lines[2].startswith("ssh attempt 2/4 ")
    assert lines[4] == "ssh attempt 3/4 server=s1 job_id=j1 command=start outcome=ok"
    assert len(lines) == 5


def test_gives_up_after_the_last_attempt(log):
    attempt = Outcomes(*[refused()] * 3)
    with pytest.raises(CannotConnect):
        run(RetryPolicy(2, 0.0), attempt, log)
    _, lines = log
    assert attempt.calls == 3
    assert lines[-1].startswith("ssh gave up after 3 attempts server=s1 job_id=j1 "
                                "command=start why=\"no retries left\"")
    assert len([line for line in lines if line.startswith("ssh attempt ")]) == 3


def test_an_authentication_failure_is_tried_once(log):
    attempt = Outcomes(AuthFailed("authentication failed for credential c1 on server s1"))
    with pytest.raises(AuthFailed):
        run(RetryPolicy(5, 0.0), attempt, log)
    _, lines = log
    assert attempt.calls == 1
    assert lines[-1].startswith('ssh gave up after 1 attempt server=s1 job_id=j1 '
                                'command=start why="not retryable"')


def test_a_stopping_driver_makes_no_further_attempt(log):
    logger, lines = log
    attempt = Outcomes(refused(), "never")
    with pytest.raises(CannotConnect):
        with_retries(RetryPolicy(3, 10.0), attempt, log=logger, label="ssh",
                     fields={"server": "s1"}, wait=lambda seconds: True)
    assert attempt.calls == 1
    assert 'why="the core is stopping"' in lines[-1]
