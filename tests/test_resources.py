"""Servers and credentials: defaults, TOML and YAML files, run-time lookups, clear errors."""

from __future__ import annotations

import pytest

from tengine_min.resources import DEFAULTS_SOURCE, ResourceError, UnknownResource, load_resources

SSH_FILE = """
[servers.local]
transport = "local"

[servers.s1]
transport = "ssh"
address = "10.0.0.2"
port = 2222
host_key = "ssh-ed25519 AAAAC3Nza"
amqp_url = "amqp://guest:guest@10.0.0.1:5672/%2F"
retry_count = 2
retry_interval = 1

[credentials.c1]
type = "ssh_public_key_file"
username = "job"
private_key_file = "~/.ssh/id_ed25519"
"""


def test_defaults_without_a_file(tmp_path):
    resources = load_resources(None, tmp_path)
    assert resources.source == DEFAULTS_SOURCE
    assert resources.server("local").transport == "local"
    assert resources.credential("local").type == "local"


def test_toml_file_in_the_state_dir(tmp_path):
    (tmp_path / "resources.toml").write_text(SSH_FILE)
    resources = load_resources(None, tmp_path)
    assert resources.source == str(tmp_path / "resources.toml")
    s1 = resources.server("s1")
    assert (s1.transport, s1.address, s1.port, s1.retry_count, s1.retry_interval) == \
        ("ssh", "10.0.0.2", 2222, 2, 1.0)
    assert resources.credential("c1").username == "job"


def test_yaml_file(tmp_path):
    path = tmp_path / "res.yaml"
    path.write_text("servers:\n  h1:\n    transport: local\n    watcher_state_dir: /var/w\n"
                    "credentials:\n  c:\n    type: local\n")
    resources = load_resources(path)
    assert resources.server("h1").watcher_state_dir == "/var/w"
    assert "local" not in resources.servers  # a file replaces the defaults


def test_unknown_names_say_which_and_where(tmp_path):
    path = tmp_path / "resources.toml"
    path.write_text(SSH_FILE)
    resources = load_resources(path)
    with pytest.raises(UnknownResource) as caught:
        resources.server("x")
    assert str(caught.value) == f"server 'x' is not defined in {path}"
    with pytest.raises(UnknownResource, match=f"credential 'local' is not defined in {path}"):
        resources.credential("local")
    with pytest.raises(UnknownResource, match="no server given"):
        resources.server(None)


@pytest.mark.parametrize("text, expected", [
    ('[servers.s]\ntransport = "ssh"\n', "servers.s: an ssh server needs an address"),
    ('[servers.s]\ntransport = "ftp"\n', "servers.s: transport 'ftp' is not one of local, ssh"),
    ('[servers.s]\nport = "22"\n', "servers.s: key 'port': expected a whole number, got '22'"),
    ('[servers.s]\nadress = "x"\n', "servers.s: unknown key 'adress'"),
    ('[credentials.c]\ntype = "ssh_password"\nusername = "u"\n',
     "credentials.c: a ssh_password credential needs password"),
    ('[hosts.h]\n', "unknown section 'hosts'"),
    ('servers = 3\n', "servers must be a table"),
    ('[servers.s\n', "not valid TOML"),
])
def test_bad_files_name_file_entry_and_key(tmp_path, text, expected):
    path = tmp_path / "resources.toml"
    path.write_text(text)
    with pytest.raises(ResourceError) as caught:
        load_resources(path)
    assert str(caught.value).startswith(str(path))
    assert expected in str(caught.value)


def test_missing_explicit_file(tmp_path):
    with pytest.raises(ResourceError, match="resources file not found"):
        load_resources(tmp_path / "none.toml")
