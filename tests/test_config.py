"""Settings: defaults, the TOML file, environment variables, and clear errors."""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path

import pytest

from tengine_min.config import SETTING_NAMES, ConfigError, Settings, load_settings


def test_defaults_follow_tengine(tmp_path):
    settings = load_settings(tmp_path, env={})
    assert settings.state_dir == tmp_path
    assert settings.source == "defaults"
    assert (settings.publish_retry_count, settings.publish_retry_interval) == (30, 1.0)
    assert (settings.heartbeat_interval, settings.heartbeat_expiry) == (5.0, 20.0)
    assert (settings.kill_signals, settings.kill_interval) == (("KILL",), 5.0)
    assert settings.amqp_url is None and settings.db_url is None
    assert settings.core_log == tmp_path / "log" / "core.log"
    assert settings.store_target() == str(tmp_path)


def test_state_dir_from_environment_else_dot_tengine(tmp_path, monkeypatch):
    assert load_settings(env={"TENGINE_STATE_DIR": str(tmp_path / "s")}).state_dir == \
        tmp_path / "s"
    monkeypatch.chdir(tmp_path)
    assert load_settings(env={}).state_dir == tmp_path / ".tengine"


def test_toml_file_in_the_state_dir_then_environment_wins(tmp_path):
    (tmp_path / "tengine.toml").write_text(
        'heartbeat_interval = 1\npublish_retry_count = 3\nkill_signals = ["TERM", "KILL"]\n'
        'db_url = "postgresql://u:p@h/db"\n')
    settings = load_settings(tmp_path, env={"TENGINE_PUBLISH_RETRY_COUNT": "7"})
    assert settings.source == str(tmp_path / "tengine.toml")
    assert settings.heartbeat_interval == 1.0 and isinstance(settings.heartbeat_interval, float)
    assert settings.publish_retry_count == 7
    assert settings.kill_signals == ("TERM", "KILL")
    assert settings.store_target() == "postgresql://u:p@h/db"


def test_explicit_config_file_and_env_lists(tmp_path):
    other = tmp_path / "elsewhere.toml"
    other.write_text("driver_threads = 2\n")
    settings = load_settings(tmp_path / "state", other,
                             env={"TENGINE_KILL_SIGNALS": "sigterm, KILL",
                                  "TENGINE_AMQP_URL": "amqp://a:b@host:5672/%2F"})
    assert settings.driver_threads == 2
    assert settings.kill_signals == ("TERM", "KILL")
    assert settings.broker_url() == "amqp://a:b@host:5672/%2F"


@pytest.mark.parametrize("text, expected", [
    ("heartbeat_interval = \"fast\"\n", "key 'heartbeat_interval': expected a number of seconds"),
    ("publish_retry_count = 1.5\n", "key 'publish_retry_count': expected a whole number"),
    ("publish_retry_count = -1\n", "key 'publish_retry_count': expected a value >= 0"),
    ("driver_threads = 0\n", "key 'driver_threads': expected a value >= 1"),
    ("kill_signals = [\"NOPE\"]\n", "key 'kill_signals': 'NOPE' is not a signal name"),
    ("log_level = \"LOUD\"\n", "key 'log_level': expected one of DEBUG"),
    ("hartbeat_interval = 1\n", "unknown key 'hartbeat_interval'"),
    ("heartbeat_interval = \n", "not valid TOML"),
])
def test_bad_file_names_file_key_and_expectation(tmp_path, text, expected):
    path = tmp_path / "tengine.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as caught:
        load_settings(tmp_path, env={})
    assert str(caught.value).startswith(str(path))
    assert expected in str(caught.value)


def test_bad_environment_value_names_the_variable(tmp_path):
    with pytest.raises(ConfigError, match="environment variable TENGINE_HEARTBEAT_INTERVAL: "
                                          "expected a number of seconds, got 'soon'"):
        load_settings(tmp_path, env={"TENGINE_HEARTBEAT_INTERVAL": "soon"})


def test_a_broker_url_must_be_amqp(tmp_path):
    with pytest.raises(ConfigError, match="environment variable TENGINE_AMQP_URL: expected "
                                          "amqp://user:password@host:port/vhost, got 'http://x'"):
        load_settings(tmp_path, env={"TENGINE_AMQP_URL": "http://x"})


def test_missing_explicit_config_file(tmp_path):
    with pytest.raises(ConfigError, match="config file not found"):
        load_settings(tmp_path, tmp_path / "nope.toml", env={})


def test_every_setting_can_be_set():
    settable = {f.name for f in fields(Settings)} - {"state_dir", "source"}
    assert settable == set(SETTING_NAMES)


def test_private_broker_url_comes_from_the_state_dir(tmp_path):
    settings = load_settings(tmp_path, env={})
    url = settings.broker_url()
    assert url.startswith("amqp://guest:guest@127.0.0.1:")
    assert url == settings.broker_url()  # the port is chosen once and kept
    assert Path(tmp_path / "broker" / "broker.json").exists()
