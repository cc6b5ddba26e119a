"""Virtual hosts of the harness: real namespaces, real sshd, real ssh logins (paramiko).

Needs root, like every integration test; without it the tests fail saying so
(``TENGINE_SKIP_INTEGRATION=1`` skips them instead).
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import re
import selectors
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import paramiko
import psutil
import pytest

from harness.hosts import HostError, LocalBackend, LocalHost
from harness.hosts.cleanup import cleanup
from harness.hosts.lock import LOCK_ENV, HostsLock
from harness.hosts.network import SUBNET_ENV, leftover_links, leftover_netns, subnet_from_env
from harness.hosts.sshd import read_banner
from harness.hosts.system import POLL
from harness.waiting import wait_for

pytestmark = pytest.mark.integration

SKIP_VARIABLE = "TENGINE_SKIP_INTEGRATION"
WATCHER = Path(sys.prefix) / "bin" / "tengine-watcher"


def require_root() -> None:
    if os.environ.get(SKIP_VARIABLE) == "1":
        pytest.skip(f"{SKIP_VARIABLE}=1")
    if os.geteuid() != 0:
        pytest.fail(f"host tests need root (namespaces, sshd); set {SKIP_VARIABLE}=1 to skip",
                    pytrace=False)


@pytest.fixture
def backend() -> Iterator[LocalBackend]:
    require_root()
    with LocalBackend() as made:
        yield made
    assert_nothing_left(made)


@contextlib.contextmanager
def no_other_run() -> Iterator[None]:
    """Hold the hosts lock: another test process's hosts cannot exist meanwhile, so what is
    seen on the machine is this test's doing."""
    lock = HostsLock()
    lock.acquire(timeout=300)
    try:
        yield
    finally:
        lock.release()


def assert_nothing_left(backend: LocalBackend) -> None:
    assert backend.work_dir is None
    with no_other_run():
        assert leftover_netns() == []
        assert leftover_links() == []
        assert processes_naming("/tmp/tgh-") == []


def processes_naming(text: str) -> list[psutil.Process]:
    found = []
    for proc in psutil.process_iter(["cmdline"]):
        if any(text in part for part in proc.info["cmdline"] or []):
            found.append(proc)
    return found


def known_hosts(tmp_path: Path, *hosts: LocalHost) -> Path:
    path = tmp_path / "known_hosts"
    path.write_text("".join(host.known_hosts_line() + "\n" for host in hosts))
    return path


def ssh(host: LocalHost, known: Path, *, key: bool = False, timeout: float = 5.0,
        password: str | None = None, key_file: Path | None = None) -> paramiko.SSHClient:
    """A strict client: only keys in `known` are accepted, an unknown host is refused. Logs in
    with the host's password, or its key (`key`), or the given `password`/`key_file`."""
    if key:
        key_file = host.key_file
    elif password is None and key_file is None:
        password = host.password
    client = paramiko.SSHClient()
    client.load_host_keys(str(known))
    client.set_missing_host_key_policy(paramiko.RejectPolicy())
    try:
        client.connect(host.address, port=host.ssh_port, username=host.user, password=password,
                       key_filename=str(key_file) if key_file else None,
                       look_for_keys=False, allow_agent=False, timeout=timeout,
                       banner_timeout=timeout, auth_timeout=timeout)
    except BaseException:
        client.close()
        raise
    return client


def ssh_run(client: paramiko.SSHClient, command: str) -> tuple[int, str]:
    _, stdout, _ = client.exec_command(command, timeout=20)
    out = stdout.read().decode()
    return stdout.channel.recv_exit_status(), out


def start_marker(host: LocalHost, seconds: int) -> psutil.Process:
    """A `sleep <seconds>` detached inside the host, as a process of the harness's namespace."""
    host.run(f"setsid -f sleep {seconds} >/dev/null 2>&1", check=True)

    def find() -> psutil.Process | None:
        for pid in host.pids():
            try:
                proc = psutil.Process(pid)
                if proc.cmdline() == ["sleep", str(seconds)]:
                    return proc
            except psutil.NoSuchProcess:
                continue
        return None
    return wait_for(find, timeout=5, what=f"sleep {seconds} in {host.name}", interval=POLL)


def connect_from_inside(host: LocalHost, address: str, port: int, timeout: float = 5) -> bool:
    result = host.run(f"timeout {timeout:g} bash -c 'exec 3<>/dev/tcp/{address}/{port}'")
    return result.returncode == 0


def test_two_hosts_come_up_with_their_own_addresses(backend: LocalBackend) -> None:
    h1, h2 = backend.create("h1"), backend.create("h2")
    subnet = subnet_from_env()
    assert h1.address != h2.address
    for host in (h1, h2):
        assert ipaddress.ip_address(host.address) in subnet
        assert host.address != backend.gateway
        assert host.run("hostname").stdout.strip() == host.name
        assert f"inet {host.address}/" in host.run("ip -4 -o addr show eth0").stdout
        assert "default" not in host.run("ip route").stdout  # nothing can leave the machine
        assert read_banner(host.address, host.ssh_port, timeout=2).startswith("SSH-2.0-OpenSSH")
    # Hosts reach each other and the harness's side of the bridge.
    with socket.create_server((backend.gateway, 0)) as listener:
        assert connect_from_inside(h1, backend.gateway, listener.getsockname()[1])
    assert connect_from_inside(h1, h2.address, 22)


def test_ssh_login_with_password_and_key_under_strict_host_key_checking(
        backend: LocalBackend, tmp_path: Path) -> None:
    h1, h2 = backend.create("h1"), backend.create("h2")
    known = known_hosts(tmp_path, h1, h2)
    for host in (h1, h2):
        for key in (False, True):
            with ssh(host, known, key=key) as client:
                status, out = ssh_run(client, "hostname; id -un")
            assert (status, out.split()) == (0, [host.name, host.user])
    # Strict: a host whose key is not the pinned one, or not pinned at all, is refused.
    wrong = tmp_path / "wrong_known_hosts"
    wrong.write_text(f"{h1.address} {h2.host_key}\n")
    with pytest.raises(paramiko.BadHostKeyException):
        ssh(h1, wrong)
    empty = tmp_path / "empty_known_hosts"
    empty.write_text("")
    with pytest.raises(paramiko.SSHException, match="not found in known_hosts"):
        ssh(h1, empty)
    with pytest.raises(paramiko.AuthenticationException):
        ssh(h1, known, password="wrong password")
    with pytest.raises(paramiko.AuthenticationException):  # each host trusts only its own key
        ssh(h1, known, key_file=h2.key_file)


def test_test_user_runs_the_watcher_and_each_host_has_its_own_disk(
        backend: LocalBackend, tmp_path: Path) -> None:
    h1, h2 = backend.create("h1"), backend.create("h2")
    known = known_hosts(tmp_path, h1, h2)
    with ssh(h1, known, key=True) as client:
        status, out = ssh_run(client, f"{WATCHER} --help && mkdir -p {h1.state_dir} "
                                      f"&& echo on-h1 > {h1.state_dir}/marker && echo written")
    assert status == 0, out
    assert "tengine-watcher" in out and out.strip().endswith("written")
    assert (h1.home_on_disk / ".tengine-watcher" / "marker").read_text() == "on-h1\n"
    assert h2.run(f"test -e {h2.state_dir}/marker").returncode == 1
    assert h1.run(f"cat {h1.state_dir}/marker", user=h1.user).stdout == "on-h1\n"


def test_commands_see_only_their_hosts_processes(backend: LocalBackend) -> None:
    h1, h2 = backend.create("h1"), backend.create("h2")
    marker = start_marker(h1, 4241)
    h1_ps = h1.run("ps -e -o pid=,args=").stdout
    h2_ps = h2.run("ps -e -o pid=,args=").stdout
    assert "sleep 4241" in h1_ps and "sleep 4241" not in h2_ps
    for ps in (h1_ps, h2_ps):
        pids_and_args = [line.split(None, 1) for line in ps.strip().splitlines()]
        assert pids_and_args[0][0] == "1" and "hostinit.py" in pids_and_args[0][1]
        # init, sshd (and children for connections), the marker (h1 only), sh and ps: nothing
        # of the harness's namespace.
        for _, args in pids_and_args:
            assert re.match(r"(\S*python\S* -I -S \S*hostinit\.py|sshd: |sleep 4241|sh -c |ps -e)",
                            args), ps
    assert marker.pid in h1.pids() and marker.pid not in h2.pids()
    assert set(h1.pids()).isdisjoint(h2.pids())


def test_down_kills_every_process_and_up_brings_the_same_server_back(
        backend: LocalBackend, tmp_path: Path) -> None:
    h1, h2 = backend.create("h1"), backend.create("h2")
    known = known_hosts(tmp_path, h1, h2)
    marker = start_marker(h1, 4242)
    h1.run(f"mkdir -p {h1.state_dir} && echo kept > {h1.state_dir}/disk", user=h1.user,
           check=True)
    before = [psutil.Process(pid) for pid in h1.pids()]
    assert len(before) >= 3  # init, sshd, the marker

    h1.down()
    wait_for(lambda: not marker.is_running(), timeout=5, what="the marker to be gone",
             interval=POLL)
    assert not any(proc.is_running() for proc in before)
    assert h1.pids() == []
    with pytest.raises(OSError):
        ssh(h1, known, timeout=1)
    with pytest.raises(HostError, match="down"):
        h1.run("true")
    with ssh(h2, known) as client:  # the other host does not notice
        assert ssh_run(client, "hostname") == (0, "h2\n")

    h1.up()
    with ssh(h1, known, key=True) as client:  # same host key: the pinned one still matches
        status, out = ssh_run(client, f"cat {h1.state_dir}/disk; pgrep -x sleep || echo none")
    assert (status, out.split()) == (0, ["kept", "none"])
    assert set(h1.pids()).isdisjoint(proc.pid for proc in before)


def test_partition_cuts_the_host_off_while_its_processes_keep_running(
        backend: LocalBackend, tmp_path: Path) -> None:
    h1, h2 = backend.create("h1"), backend.create("h2")
    known = known_hosts(tmp_path, h1, h2)
    marker = start_marker(h1, 4243)
    listener = h1.run("pgrep -o -x sshd").stdout.split()  # not its per-connection children
    with socket.create_server((backend.gateway, 0)) as server:
        port = server.getsockname()[1]
        assert connect_from_inside(h1, backend.gateway, port)

        h1.partition()
        with pytest.raises(OSError):  # times out or finds no route: nothing reaches it
            ssh(h1, known, timeout=1)
        assert not connect_from_inside(h1, backend.gateway, port, timeout=1)  # nor leaves it
        assert not connect_from_inside(h2, h1.address, 22, timeout=1)
        assert marker.is_running()
        assert h1.run("pgrep -o -x sshd").stdout.split() == listener  # sshd alive inside
        assert "LOWER_UP" in h1.run("ip link show eth0").stdout  # a silent cut: link still up

        h1.heal()
        assert connect_from_inside(h1, backend.gateway, port)
    with ssh(h1, known) as client:
        assert ssh_run(client, "hostname") == (0, "h1\n")
    assert marker.is_running()


def test_a_partitioned_host_can_be_powered_off_and_stays_dark_until_healed(
        backend: LocalBackend, tmp_path: Path) -> None:
    h1 = backend.create("h1")
    known = known_hosts(tmp_path, h1)
    h1.partition()
    h1.down()
    h1.up()  # sshd comes up inside, the cable is still pulled
    assert h1.run("pgrep -x sshd").returncode == 0
    with pytest.raises(OSError):
        ssh(h1, known, timeout=1)
    h1.heal()
    with ssh(h1, known) as client:
        assert ssh_run(client, "hostname") == (0, "h1\n")


def test_pause_hangs_every_process_of_the_host_until_resumed(
        backend: LocalBackend, tmp_path: Path) -> None:
    h1, h2 = backend.create("h1"), backend.create("h2")
    known = known_hosts(tmp_path, h1, h2)
    marker = start_marker(h1, 4244)

    h1.pause()
    assert h1.paused
    states = {pid: psutil.Process(pid).status() for pid in h1.pids()}
    assert len(states) >= 3 and set(states.values()) == {psutil.STATUS_STOPPED}, states
    with pytest.raises((OSError, paramiko.SSHException)):  # the port answers, sshd does not
        ssh(h1, known, timeout=1)
    assert "LOWER_UP" in h1.run("ip link show eth0").stdout  # the network is up: a hang
    with ssh(h2, known) as client:  # the other host does not notice
        assert ssh_run(client, "hostname") == (0, "h2\n")
    with pytest.raises(HostError, match="already paused"):
        h1.pause()

    h1.resume()
    assert not h1.paused
    assert marker.status() != psutil.STATUS_STOPPED
    with ssh(h1, known) as client:
        assert ssh_run(client, "hostname") == (0, "h1\n")
    with pytest.raises(HostError, match="not paused"):
        h1.resume()
    h1.pause()
    h1.down()  # a hung host can be powered off: SIGKILL ends stopped processes too
    assert h1.pids() == [] and not h1.paused
    with pytest.raises(HostError, match="down: nothing to pause"):
        h1.pause()


def test_misuse_gets_a_clear_error(backend: LocalBackend) -> None:
    h1 = backend.create("h1")
    with pytest.raises(HostError, match="already exists"):
        backend.create("h1")
    with pytest.raises(HostError, match="not valid"):
        backend.create("Bad_Name")
    with pytest.raises(HostError, match="already up"):
        h1.up()
    with pytest.raises(HostError, match="not partitioned"):
        h1.heal()
    with pytest.raises(HostError, match=r"another harness run .* holds the hosts"):
        LocalBackend(lock_timeout=0.2).create("h9")
    with pytest.raises(HostError, match=r"another harness run .* holds the hosts"):
        cleanup()  # would break this run
    assert sorted(backend.hosts) == ["h1"]
    assert read_banner(h1.address, 22, timeout=2)


def test_teardown_leaves_nothing_behind_even_when_the_test_fails() -> None:
    require_root()
    seen: list[psutil.Process] = []
    made = LocalBackend()
    with pytest.raises(RuntimeError, match="the test failed"), made:
        h1, h2, h3 = made.create("h1"), made.create("h2"), made.create("h3")
        start_marker(h1, 4244)
        h2.partition()
        h3.down()
        seen = [psutil.Process(pid) for host in (h1, h2) for pid in host.pids()]
        work_dir = made.work_dir
        raise RuntimeError("the test failed")
    assert len(seen) >= 5
    assert not any(proc.is_running() for proc in seen)
    assert work_dir is not None and not work_dir.exists()
    assert_nothing_left(made)


CRASHING_RUN = """
import sys
from harness.hosts import LocalBackend
host = LocalBackend().create("h1")
host.run("setsid -f sleep 4245 >/dev/null 2>&1", check=True)
print("up", flush=True)
sys.stdin.read()
"""


def test_cleanup_removes_what_a_crashed_run_left(tmp_path: Path) -> None:
    require_root()
    repo = Path(__file__).parents[1]
    # The crashing run and the cleanups use a lock of their own, while this test holds the real
    # one: no other test process can make or clean hosts in between.
    env = {**os.environ, LOCK_ENV: str(tmp_path / "lock")}
    with no_other_run():
        run = subprocess.Popen([sys.executable, "-c", CRASHING_RUN], stdin=subprocess.PIPE,
                               stdout=subprocess.PIPE, text=True, cwd=repo, env=env)
        try:
            assert run.stdout is not None
            with selectors.DefaultSelector() as selector:
                selector.register(run.stdout, selectors.EVENT_READ)
                assert selector.select(60) and run.stdout.readline() == "up\n"
            marker = wait_for(lambda: next(iter(processes_naming("4245")), None), timeout=5,
                              what="the crashed run's marker", interval=POLL)
        finally:
            run.kill()  # the crash: no destroy_all(), no cleanup of any kind
            run.wait()
        assert leftover_netns() == ["tgh-h1"] and "tgh-br" in leftover_links()

        def cleanup_command() -> subprocess.CompletedProcess[str]:
            return subprocess.run([sys.executable, "-m", "harness.hosts", "cleanup"],
                                  capture_output=True, text=True, check=False, cwd=repo, env=env)
        done = cleanup_command()
        assert done.returncode == 0, done.stderr
        removed = done.stdout.splitlines()
        assert any(re.fullmatch(r"removed netns tgh-h1 \(killed \d+ processes\)", line)
                   for line in removed), removed
        assert "removed link tgh-br" in removed
        assert any(line.startswith("removed dir /tmp/tgh-") for line in removed), removed
        wait_for(lambda: not marker.is_running(), timeout=5, what="the marker to be gone",
                 interval=POLL)
        assert leftover_netns() == [] and leftover_links() == []
        assert processes_naming("/tmp/tgh-") == []
        again = cleanup_command()
        assert (again.returncode, again.stdout) == (0, "nothing to remove\n")


def test_without_root_the_backend_fails_at_once_saying_why(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    with pytest.raises(HostError, match="needs root"):
        LocalBackend()


def test_a_bad_subnet_setting_is_named_in_the_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(SUBNET_ENV, "10.213.0.0/33")
    with pytest.raises(HostError, match=SUBNET_ENV):
        subnet_from_env()
    monkeypatch.setenv(SUBNET_ENV, "8.8.8.0/24")
    with pytest.raises(HostError, match="private range"):
        subnet_from_env()
    monkeypatch.setenv(SUBNET_ENV, "10.99.0.0/29")
    assert str(subnet_from_env()) == "10.99.0.0/29"
