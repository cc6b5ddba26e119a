"""Server and credential names against the resources: the validator's unknown_server /
unknown_credential (Tengine's W1/W2), `tengine load` using them, and the ssh keys of the
resource file."""

from __future__ import annotations

import re

import pytest

from tengine_min.cli import main
from tengine_min.model.loader import load
from tengine_min.model.validator import runnable_roots, validate
from tengine_min.resources import ResourceError, load_resources, parse_resources

DEFINITIONS = """
jobnets:
  - jobnet: jn_ok
    server: s1
    credential: c1
    children:
      - job: j1
        script: /bin/true
  - jobnet: jn_bad
    server: s2
    credential: c1
    children:
      - job: j1
        script: /bin/true
      - jobnet: inner
        credential: key1
        children:
          - job: j2
            script: /bin/true
            server: s1
"""

RESOURCES = """
[servers.s1]
transport = "ssh"
address = "10.0.0.5"
host_key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIH"

[servers.local]

[credentials.c1]
type = "ssh_password"
username = "job"
password = "pw"

[credentials.key_1]
type = "ssh_public_key"
username = "job"
private_key_file = "~/.ssh/id_ed25519"
"""


@pytest.fixture
def files(tmp_path):
    definitions = tmp_path / "defs.yaml"
    definitions.write_text(DEFINITIONS)
    resources = tmp_path / "resources.toml"
    resources.write_text(RESOURCES)
    return definitions, resources


def test_unknown_names_are_errors_where_they_are_written(files):
    definitions, resources_file = files
    defs = load([str(definitions)])
    resources = load_resources(resources_file)
    problems = validate(defs, resources=resources)
    found = [(p.code, p.severity, p.jobnet, p.line) for p in problems]
    assert found == [("unknown_server", "error", "/jn_bad", 9),
                     ("unknown_credential", "error", "/jn_bad/inner", 15)]
    server, credential = problems
    assert server.file == str(definitions)
    assert server.message == (f"jobnet '/jn_bad' names server 's2', which {resources_file} "
                              f"does not define; defined: local, s1")
    assert credential.message == (f"jobnet '/jn_bad/inner' names credential 'key1', which "
                                  f"{resources_file} does not define (did you mean 'key_1'?); "
                                  f"defined: c1, key_1")
    assert runnable_roots(defs, problems) == {"jn_ok"}
    assert validate(defs) == []  # without resources nothing is said about names


def test_a_job_naming_an_unknown_server_is_shown_under_its_jobnet(files):
    definitions, _ = files
    resources = parse_resources({"servers": {"s2": {}}, "credentials": {"c1": {},
                                                                        "key1": {}}}, "res")
    problems = validate(load([str(definitions)]), resources=resources)
    assert [(p.code, p.jobnet, p.message.split(",")[0]) for p in problems] == [
        ("unknown_server", "/jn_ok", "jobnet '/jn_ok' names server 's1'"),
        ("unknown_server", "/jn_bad/inner", "job '/jn_bad/inner/j2' names server 's1'")]


def test_tengine_load_refuses_unknown_names_and_stores_nothing(files, tmp_path, capsys):
    definitions, resources = files
    state = tmp_path / "state"
    code = main(["load", "--state-dir", str(state), "--resources", str(resources),
                 str(definitions)])
    out, err = capsys.readouterr()
    assert code == 1
    assert "error unknown_server: jobnet '/jn_bad' names server 's2'" in out
    assert "error unknown_credential: jobnet '/jn_bad/inner' names credential 'key1'" in out
    assert "2 error(s) in 1 file(s): nothing stored" in err


def test_tengine_load_uses_the_state_dirs_resources_file(files, tmp_path, capsys):
    definitions, resources = files
    state = tmp_path / "state"
    state.mkdir()
    (state / "resources.toml").write_text(resources.read_text())
    assert main(["load", "--state-dir", str(state), str(definitions)]) == 1
    assert "unknown_server" in capsys.readouterr().out


def test_tengine_load_without_a_resources_file_says_names_are_not_checked(files, tmp_path,
                                                                          capsys):
    definitions, _ = files
    state = tmp_path / "state"
    code = main(["load", "--state-dir", str(state), str(definitions)])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "stored 2 root jobnet(s): jn_ok, jn_bad" in out
    assert "server and credential names are not checked now" in err


def test_ssh_keys_of_the_resource_file():
    resources = parse_resources({"servers": {"s1": {
        "transport": "ssh", "address": "h1", "ssh_port": 2222,
        "host_key_file": "~/.ssh/known_hosts", "ssh_retry_count": 3, "ssh_retry_interval": 2,
        "ssh_connect_timeout": 1, "ssh_banner_timeout": 2, "ssh_auth_timeout": 3,
        "ssh_keepalive_interval": 4, "ssh_keepalive_timeout": 5}},
        "credentials": {"k": {"type": "ssh_public_key", "username": "u",
                              "private_key_file": "/k", "passphrase": "p"}}}, "res")
    s1 = resources.server("s1")
    assert (s1.port, s1.retry_count, s1.retry_interval) == (2222, 3, 2.0)
    assert (s1.connect_timeout, s1.banner_timeout, s1.auth_timeout, s1.keepalive_interval,
            s1.keepalive_timeout) == (1.0, 2.0, 3.0, 4.0, 5.0)
    assert s1.endpoint == "h1:2222"
    assert resources.credential("k").is_ssh


@pytest.mark.parametrize("server, expected", [
    ({"transport": "ssh", "address": "h"},
     "an ssh server needs its host key pinned (host keys are never accepted unseen)"),
    ({"transport": "ssh", "address": "h", "host_key": "k", "host_key_file": "f"},
     "give host_key or host_key_file, not both"),
    ({"transport": "ssh", "address": "h", "host_key": "ssh-ed25519"},
     "host_key 'ssh-ed25519' is neither a public key"),
    ({"transport": "ssh", "address": "h", "host_key": "@revoked h ssh-ed25519 AAAA"},
     "is neither a public key"),
    ({"port": 22, "ssh_port": 22}, "'port' and 'ssh_port' set the same thing; keep one"),
    ({"ssh_keepalive_timeout": 0}, "ssh_keepalive_timeout must be > 0 seconds, got 0.0"),
    ({"ssh_retry_count": -1}, "retry_count must be >= 0, got -1"),
])
def test_bad_ssh_servers_are_refused_with_the_reason(server, expected):
    with pytest.raises(ResourceError) as caught:
        parse_resources({"servers": {"s": server}}, "res.toml")
    assert str(caught.value).startswith("res.toml: servers.s: ")
    assert expected in str(caught.value)


def test_a_public_key_credential_needs_its_key():
    with pytest.raises(ResourceError, match=re.escape(
            "credentials.k: a ssh_public_key credential needs private_key_file")):
        parse_resources({"credentials": {"k": {"type": "ssh_public_key", "username": "u"}}},
                        "res.toml")
