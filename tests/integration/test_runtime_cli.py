"""The runtime commands' answers to bad input: all-or-nothing loads, unknown names and ids,
broken settings and resource files. Real CLI processes and store; no core, and a broker URL
where nothing listens (these paths must not need one)."""

from __future__ import annotations

import pytest

from support.runtime import Runtime, cli_label
from tengine_min.model import phases as ph

DEAD_URL = "amqp://guest:guest@127.0.0.1:1/%2F"

GOOD = """
jobnets:
  - jobnet: cli_good
    server: local
    credential: local
    children:
      - job: j1
        script: /bin/true
"""

KILLING = """
jobnets:
  - jobnet: cli_killing
    server: local
    credential: local
    children:
      - job: plain
        script: /bin/true
      - job: own
        script: /bin/true
        killing_signals: [INT]
        killing_signal_interval: 7
"""

BAD = """
jobnets:
  - jobnet: cli_bad
    boot_jobs: [nowhere]
    children:
      - job: j1
        script: /bin/true
"""


@pytest.fixture
def rt(tmp_path):
    runtime = Runtime(tmp_path, DEAD_URL, settings="publish_retry_count = 0\n")
    yield runtime
    runtime.close()


def test_load_is_all_or_nothing(rt):
    folder = rt.root / "defs"
    folder.mkdir()
    (folder / "a_good.yaml").write_text(GOOD)
    (folder / "b_bad.yaml").write_text(BAD)
    refused = rt.cli("load", str(folder), check=False)
    assert refused.returncode == 1
    assert "error unknown_target" in refused.stdout
    assert "nothing stored" in refused.stderr
    unknown = rt.cli("run", "cli_good", check=False)
    assert unknown.returncode == 2
    assert "no stored root jobnet named 'cli_good' (stored: none)" in unknown.stderr

    stored = rt.cli("load", str(folder / "a_good.yaml"))
    assert "stored 1 root jobnet(s): cli_good" in stored.stdout
    missing = rt.cli("load", str(rt.root / "nope.yaml"), check=False)
    assert missing.returncode == 2 and "nope.yaml" in missing.stderr


def test_a_stop_of_something_not_started_is_refused(rt):
    rt.load(rt.definition("good.yaml", GOOD))
    done = rt.cli("run", "cli_good")  # no broker: stored, left for the core's relay
    execution_id = done.stdout.strip()
    assert "not yet published" in done.stderr
    refused = rt.cli("stop", execution_id, check=False)
    assert refused.returncode == 1
    assert (f"is initialized ({ph.human_label(ph.INITIALIZED)}): it has not started, nothing to "
            f"stop") in refused.stderr
    listing = rt.cli("jobs").stdout
    assert execution_id in listing and cli_label(ph.INITIALIZED) in listing
    tree = rt.cli("jobs", execution_id).stdout
    assert f"j1  {cli_label(ph.INITIALIZED)}" in tree
    wrong = rt.cli("jobs", "ffffffffffffffffffffffff", check=False)
    assert wrong.returncode == 2


def test_broken_settings_and_resources_stop_the_core_with_a_clear_message(rt):
    config = rt.state_dir / "tengine.toml"
    config.write_text('heartbeat_interval = "often"\n')
    bad_config = rt.cli("core", check=False, timeout=30)
    assert bad_config.returncode == 2
    assert (f"tengine core: {config}: key 'heartbeat_interval': expected a number of seconds, "
            f"got 'often'") in bad_config.stderr
    assert "Traceback" not in bad_config.stderr

    config.write_text("publish_retry_count = 0\n")
    resources = rt.state_dir / "resources.toml"
    resources.write_text('[servers.s1]\ntransport = "ssh"\n')
    bad_resources = rt.cli("core", check=False, timeout=30)
    assert bad_resources.returncode == 2
    assert f"{resources}: servers.s1: an ssh server needs an address" in bad_resources.stderr


def test_broker_commands_with_an_external_broker(rt):
    status = rt.cli("broker", "status")
    assert "is used: there is no private node" in status.stdout
    assert "guest:***@" in status.stdout
    start = rt.cli("broker", "start", check=False)
    assert start.returncode == 2 and "there is no private node to start" in start.stderr


def test_kill_defaults_apply_where_the_definition_sets_none(rt):
    rt.load(rt.definition("killing.yaml", KILLING))
    execution_id = rt.cli("run", "cli_killing", env={"TENGINE_KILL_SIGNALS": "TERM,KILL",
                                                     "TENGINE_KILL_INTERVAL": "2"}).stdout.strip()
    v = rt.vertices(execution_id)
    plain, own = v["/cli_killing/plain"], v["/cli_killing/own"]
    assert (plain.killing_signals, plain.killing_signal_interval) == (["TERM", "KILL"], 2.0)
    assert (own.killing_signals, own.killing_signal_interval) == (["INT"], 7.0)
    default = rt.vertices(rt.cli("run", "cli_killing").stdout.strip())["/cli_killing/plain"]
    assert (default.killing_signals, default.killing_signal_interval) == (["KILL"], 5.0)


def test_no_executions_and_no_events_yet(rt):
    assert "no executions yet" in rt.cli("jobs").stdout
    assert rt.cli("events").stdout == ""
