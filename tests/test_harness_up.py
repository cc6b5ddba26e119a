"""A whole cluster brought up and taken down on its own (root, rabbitmq-server, sshd): by the
library, also when the test body fails, and by hand with `python -m harness up` and Ctrl-C;
each time nothing is left behind (no tgh- namespace or link, no process, no proxy, no broker).
Kept apart from test_harness_cluster.py, whose module-wide cluster holds the hosts meanwhile."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time
import urllib.request

import pytest

from harness.cluster import Cluster
from harness.history import Fault
from harness.hosts.lock import HostsLock
from harness.hosts.network import leftover_links, leftover_netns
from harness.plugin import _require_environment
from harness.waiting import wait_for

pytestmark = pytest.mark.integration


def _namespaces_and_links() -> list[str]:
    """tgh- netns and links, looked at under the hosts lock (no other run is making hosts)."""
    lock = HostsLock()
    lock.acquire(120)
    try:
        return leftover_netns() + leftover_links()
    finally:
        lock.release()


def test_a_whole_cluster_comes_up_and_goes_down_and_leaves_nothing_even_after_a_failure():
    _require_environment()
    the_cluster = Cluster(servers=2)
    started = time.monotonic()
    with pytest.raises(RuntimeError, match="the test body failed"), the_cluster:
        up = time.monotonic() - started
        assert the_cluster.console.answers()
        assert the_cluster.core.alive() and the_cluster.broker.status()["running"]
        assert set(the_cluster.servers) == {"s1", "s2"}
        toxiproxy = the_cluster.links.server.process
        work_dir = the_cluster.work_dir
        broker = the_cluster.broker
        s1 = the_cluster.server("s1")
        cut, paused = the_cluster.faults.cut(s1.ssh), the_cluster.faults.pause(the_cluster.core)
        down_started = time.monotonic()
        raise RuntimeError("the test body failed")
    down = time.monotonic() - down_started
    print(f"cluster with broker and 2 servers: up {up:.2f} s, down {down:.2f} s")
    assert the_cluster.leftover_processes() == []
    assert toxiproxy is None or toxiproxy.poll() is not None  # the proxy server is gone
    assert not broker.status()["running"]
    assert not work_dir.exists()
    assert _namespaces_and_links() == []
    # the faults left in effect were ended (healed, resumed) before it went down
    assert (cut.state, paused.state) == ("over", "over")
    ended = [f.kind for f in the_cluster.history.entries(Fault) if f.step == "end"
             and f.stage == "ok"]
    assert ended == ["process-pause", "link-cut"]  # newest first


def test_harness_up_brings_a_cluster_up_by_hand_and_ctrl_c_takes_it_down(tmp_path):
    _require_environment()
    out = tmp_path / "up.out"
    with out.open("wb") as sink:
        process = subprocess.Popen([sys.executable, "-m", "harness", "up", "--servers", "1"],
                                   stdout=sink, stderr=subprocess.STDOUT)
    try:
        text = wait_for(lambda: "Ctrl-C takes it down" in (t := out.read_text()) and t,
                        timeout=90, what="python -m harness up to print its banner")
        console = re.search(r"console\s+(http://\S+)/executions", text).group(1)
        with urllib.request.urlopen(f"{console}/api/jobnets", timeout=10) as answer:
            names = {jobnet["name"] for jobnet in json.load(answer)}
        assert {"test_job", "long_job"} <= names
        assert re.search(r"ssh -i \S+ -o UserKnownHostsFile=\S+ tengine-test@10\.", text)
        process.send_signal(signal.SIGINT)
        assert process.wait(60) == 0, out.read_text()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert "cluster down: no process of it is left" in out.read_text()
    assert _namespaces_and_links() == []
