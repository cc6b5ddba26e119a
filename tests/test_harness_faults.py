"""The one fault API, `cluster.faults`, on stand-ins for links, hosts, processes and the broker
(no root, no services): each verb records its fault's start and end in the history under one
id, with the failpoint held when it started; ends find their fault; teardown ends what is left;
every fault kind module is registered. test_harness_cluster.py and the scenarios run it for
real."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import signal
from pathlib import Path

import pytest

import harness.faults
from harness.faults import KINDS, FaultError, Faults, Nemesis
from harness.faults import failpoint as failpoint_module
from harness.history import FailpointStep, Fault, History
from harness.links import Link
from harness.servers import Server, Watchdog


class FakeLink(Link):
    def __init__(self, name: str) -> None:
        super().__init__(None, name, "127.0.0.1:1", "10.0.0.2:22")  # type: ignore[arg-type]
        self.calls: list[str] = []

    def cut(self) -> None:
        self.calls.append("cut")

    def enable(self) -> None:
        self.calls.append("enable")

    def blackhole(self) -> None:
        self.calls.append("blackhole")

    def unblackhole(self) -> None:
        self.calls.append("unblackhole")

    def latency(self, ms: int, jitter: int = 0, stream: str = "both") -> None:
        self.calls.append(f"latency {ms} {jitter} {stream}")

    def bandwidth(self, kbps: int, stream: str = "both") -> None:
        self.calls.append(f"bandwidth {kbps} {stream}")

    def remove_toxics(self, type_name: str) -> None:
        self.calls.append(f"remove {type_name}")


class FakeHost:
    def __init__(self, name: str) -> None:
        self.name = name
        self.address = "10.0.0.2"
        self.state_dir = "/home/tengine-test/.tengine-watcher"
        self.home_on_disk = Path("/nonexistent") / name
        self.user = "tengine-test"
        self.calls: list[str] = []

    def __getattr__(self, verb: str):  # down, up, partition, heal, pause, resume
        return lambda: self.calls.append(verb)


class FakeProcess:
    def __init__(self, name: str, pid: int = 100) -> None:
        self.name = name
        self.pid = pid
        self.running = True
        self.signals: list[str] = []

    def alive(self) -> bool:
        return self.running

    def signal(self, sig: signal.Signals) -> None:
        self.signals.append(sig.name)
        if sig in (signal.SIGKILL, signal.SIGTERM):
            self.running = False

    def wait(self, timeout: float) -> int:
        return 0


class FakeBroker:
    def __init__(self) -> None:
        self.calls: list[str] = []

    def stop(self) -> None:
        self.calls.append("stop")

    def start(self) -> None:
        self.calls.append("start")

    def kill(self) -> None:
        self.calls.append("kill")


class FakeCluster:
    def __init__(self) -> None:
        self.history = History()
        self.broker: FakeBroker | None = FakeBroker()
        self.servers = {name: Server(FakeHost(name), FakeLink(f"ssh-{name}"),  # type: ignore
                                     FakeLink(f"amqp-{name}"), history=self.history,
                                     known_hosts=Path("/nonexistent/known_hosts"))
                        for name in ("s1", "s2")}
        self.core = FakeProcess("core", 10)
        self.started_again: list[str] = []

    def start_again(self, process: FakeProcess) -> None:
        self.started_again.append(process.name)
        process.running = True


@pytest.fixture
def cluster() -> FakeCluster:
    return FakeCluster()


@pytest.fixture
def faults(cluster: FakeCluster) -> Faults:
    return Faults(cluster)  # type: ignore[arg-type]


def steps(history: History) -> list[tuple[int, str, str, str]]:
    return [(f.id, f.kind, f.step, f.stage) for f in history.entries(Fault)]


def test_a_fault_with_an_end_records_its_start_and_its_end_under_one_id(cluster, faults):
    s1 = cluster.servers["s1"]
    with faults.cut(s1.ssh) as cut:
        assert cut.state == "in effect" and faults.in_effect == [cut]
        assert s1.ssh.calls == ["cut"]
    assert s1.ssh.calls == ["cut", "enable"] and faults.in_effect == []
    assert steps(cluster.history) == [(1, "link-cut", "start", "invoked"),
                                      (1, "link-cut", "start", "ok"),
                                      (1, "link-cut", "end", "invoked"),
                                      (1, "link-cut", "end", "ok")]
    [start, *_] = cluster.history.entries(Fault)
    assert (start.name, start.target, start.source) == ("ssh link cut (refused/reset)",
                                                        "ssh-s1", "s1")
    with pytest.raises(FaultError, match=r"cannot end .* it is over"):
        cut.end()


def test_the_plain_call_leaves_the_fault_in_effect_until_the_test_ends_it(cluster, faults):
    s2 = cluster.servers["s2"]
    blackhole = faults.cut(s2.amqp, "blackhole")
    assert blackhole.name == "amqp link black hole" and blackhole.state == "in effect"
    blackhole.end()
    assert s2.amqp.calls == ["blackhole", "unblackhole"]
    with pytest.raises(FaultError, match="cut as one of cut, blackhole, not 'sideways'"):
        faults.cut(s2.amqp, "sideways")
    with pytest.raises(FaultError, match="not a link of this cluster"):
        faults.cut(FakeLink("elsewhere"))


def test_a_fault_started_while_a_process_is_held_records_that_point(cluster, faults):
    cluster.history.add(FailpointStep(point="driver.before_kill", target="core", step="hit"))
    faults.partition(cluster.servers["s1"])
    cluster.history.add(FailpointStep(point="driver.before_kill", target="core",
                                      step="released"))
    faults.heal(cluster.servers["s1"])
    points = [(f.step, f.stage, f.point) for f in cluster.history.entries(Fault)]
    assert points == [("start", "invoked", "driver.before_kill"),
                      ("start", "ok", "driver.before_kill"),
                      ("end", "invoked", ""), ("end", "ok", "")]
    assert cluster.servers["s1"].host.calls == ["partition", "heal"]


def test_heal_ends_every_fault_on_that_link_only_newest_first(cluster, faults):
    s1 = cluster.servers["s1"]
    faults.latency(s1.ssh, 200, jitter=20)
    faults.blackhole(s1.ssh)
    faults.bandwidth(s1.amqp, 64, stream="downstream")
    faults.heal(s1.ssh)
    assert s1.ssh.calls == ["latency 200 20 both", "blackhole", "unblackhole",
                            "remove latency"]
    [left] = faults.in_effect
    assert (left.kind, left.params) == ("link-bandwidth", {"kbps": 64, "stream": "downstream"})
    with pytest.raises(FaultError, match="nothing to end: no fault in effect on link ssh-s1"):
        faults.heal(s1.ssh)


def test_hosts_power_off_and_on_partition_and_heal_pause_and_resume(cluster, faults):
    s1 = cluster.servers["s1"]
    faults.power_off(s1)
    faults.power_on(s1)
    faults.partition(s1)
    faults.heal(s1)
    hung = faults.pause(s1)
    assert hung.name == "server paused"
    faults.resume(s1)
    assert s1.host.calls == ["down", "up", "partition", "heal", "pause", "resume"]
    with pytest.raises(FaultError, match="no fault in effect on server s1 powered off"):
        faults.power_on(s1)
    with pytest.raises(FaultError, match="no fault in effect on server s1 paused"):
        faults.resume(s1)
    assert [f.kind for f in cluster.history.entries(Fault) if f.stage == "ok"
            and f.step == "start"] == ["host-down", "host-partition", "host-pause"]


def test_a_killed_core_is_restarted_and_a_running_one_killed_first(cluster, faults):
    killed = faults.kill(cluster.core)
    assert (killed.name, killed.how, killed.params) == ("core killed", "SIGKILL",
                                                        {"signal": "SIGKILL", "pid": 10})
    with pytest.raises(FaultError, match="cannot kill core: it is not running"):
        faults.kill(cluster.core)
    faults.restart(cluster.core)  # ends the kill: the core is started again
    assert cluster.started_again == ["core"] and faults.in_effect == []
    faults.restart(cluster.core, signal.SIGTERM)  # running: a clean stop, then a start
    assert cluster.core.signals == ["SIGKILL", "SIGTERM"]
    assert cluster.started_again == ["core", "core"]
    cluster.core.running = False  # it ended by itself (a failpoint's exit): only a start
    faults.restart(cluster.core)
    assert cluster.started_again == ["core", "core", "core"]
    assert [(f.id, f.name, f.step) for f in cluster.history.entries(Fault)
            if f.stage == "ok"] == [(1, "core killed", "start"), (1, "core killed", "end"),
                                    (2, "core stopped", "start"), (2, "core stopped", "end")]


def test_a_paused_process_is_resumed(cluster, faults):
    with faults.pause(cluster.core):
        assert cluster.core.signals == ["SIGSTOP"]
    assert cluster.core.signals == ["SIGSTOP", "SIGCONT"]
    faults.pause(cluster.core)
    faults.resume(cluster.core)
    with pytest.raises(FaultError, match="no fault in effect on core paused"):
        faults.resume(cluster.core)


def test_a_killed_watchdog_has_no_end(cluster, faults, monkeypatch):
    s1 = cluster.servers["s1"]
    process = FakeProcess("watchdog", 77)
    monkeypatch.setattr(Watchdog, "pid", 77)
    for verb in ("alive", "signal", "wait"):
        monkeypatch.setattr(Watchdog, verb, lambda self, *args, v=verb: getattr(process, v)(*args))
    watchdog = s1.watchdog("J1")
    assert watchdog == s1.watchdog("J1") and watchdog != s1.watchdog("J2")
    killed = faults.kill(watchdog)
    assert (killed.name, killed.target, killed.source, killed.state) == (
        "watcher killed", "watchdog of J1", "s1", "over")
    assert process.signals == ["SIGKILL"] and faults.in_effect == []
    with pytest.raises(FaultError, match="a watchdog is not restarted"):
        faults.restart(watchdog)
    with pytest.raises(FaultError, match="it has no end"):
        killed.end()


def test_the_broker_stopped_or_killed_is_started_again(cluster, faults):
    with faults.stop_broker() as stopped:
        assert stopped.name == "queue stopped"
    faults.kill_broker()
    faults.start_broker()
    assert cluster.broker.calls == ["stop", "start", "kill", "start"]
    with pytest.raises(FaultError, match="nothing to end: no fault in effect on broker"):
        faults.start_broker()
    cluster.broker = None
    with pytest.raises(FaultError, match="the cluster has no broker"):
        faults.stop_broker()


def test_a_bad_target_is_recorded_and_has_no_end(cluster, faults):
    bad = faults.bad_target("wrong password", source="s1")
    assert (bad.name, bad.state, faults.in_effect) == ("bad target: wrong password", "over", [])
    assert steps(cluster.history) == [(1, "bad-target", "start", "invoked"),
                                      (1, "bad-target", "start", "ok")]


def test_teardown_ends_everything_left_newest_first_and_reports_what_failed(cluster, faults):
    s1 = cluster.servers["s1"]
    faults.cut(s1.ssh)
    faults.stop_broker()
    faults.partition(s1)

    def refuse() -> None:
        raise RuntimeError("the host is wedged")

    s1.host.heal = refuse
    with pytest.raises(FaultError, match=r"server partitioned.*RuntimeError: the host is wedged"):
        faults.teardown()
    assert faults.in_effect == []
    assert cluster.broker.calls == ["stop", "start"] and s1.ssh.calls == ["cut", "enable"]
    ends = [(f.kind, f.stage) for f in cluster.history.entries(Fault) if f.step == "end"]
    assert ends == [("host-partition", "invoked"), ("host-partition", "failed"),
                    ("broker-stop", "invoked"), ("broker-stop", "ok"),
                    ("link-cut", "invoked"), ("link-cut", "ok")]
    faults.teardown()  # nothing left: nothing to do


def test_a_failpoint_is_armed_with_its_filters_and_each_step_recorded(cluster, faults,
                                                                      monkeypatch, tmp_path):
    calls = []
    monkeypatch.setattr(failpoint_module.fp, "arm", lambda *args, **kw: calls.append((args, kw)))

    class Core:
        name = "core"
        failpoint_state_dir = tmp_path
        failpoint_owner = None

    point = faults.failpoint(Core(), "core.after_commit_before_ack",
                             when="finished.process.job.tengine", job="J1", nth=2, count=1)
    with point:
        pass
    assert calls == [((tmp_path, "core.after_commit_before_ack", "pause"),
                      {"when": "finished.process.job.tengine", "job": "J1", "count": 1,
                       "nth": 2})]
    armed, disarmed = cluster.history.entries(FailpointStep)
    assert (armed.step, armed.action, armed.filters) == (
        "armed", "pause", {"when": "finished.process.job.tengine", "job": "J1", "count": 1,
                           "nth": 2})
    assert disarmed.step == "disarmed"
    calls.clear()
    faults.failpoint(Core(), "driver.before_kill").arm()  # no filter: every hit acts
    assert calls == [((tmp_path, "driver.before_kill", "pause"), {})]


def test_every_fault_kind_module_is_registered_under_its_own_name():
    found = {}
    for module in pkgutil.iter_modules(harness.faults.__path__):
        loaded = importlib.import_module(f"harness.faults.{module.name}")
        for _, cls in inspect.getmembers(loaded, inspect.isclass):
            if issubclass(cls, Nemesis) and cls.__module__ == loaded.__name__ \
                    and not inspect.isabstract(cls):
                found[cls.kind] = (module.name, cls)
    assert sorted(found) == sorted(KINDS)  # a kind without its registration fails here
    for kind, (module, cls) in found.items():
        assert KINDS[kind] is cls and module == kind.replace("-", "_"), (kind, module)
