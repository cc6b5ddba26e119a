"""The backend-neutral view of a virtual server, so scenarios do not care how hosts are made.

A `Host` is a job host as the core sees it: an address with an sshd on it, a user to log in as
(password and key), and a disk (`state_dir`) where the watcher keeps its state and log. The
harness also gets the faults a real server can suffer: power off and on (`down`/`up`), a
pulled cable (`partition`/`heal`) and a hung server (`pause`/`resume`). The local backend
makes hosts from Linux namespaces; a Docker backend can implement the same interface later.
"""

from __future__ import annotations

import subprocess
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Self


class HostError(RuntimeError):
    """A host could not be made, changed or reached; the message says which host and why."""


class Host(ABC):
    """One virtual server. Attributes are set by the backend when the host is created.

    - `name`: the host's name (also its hostname inside).
    - `address`, `ssh_port`: where its sshd listens, reachable from the harness's own namespace.
    - `host_key`: the sshd's public host key, ``"<type> <base64>"``, for a known_hosts file.
    - `user`, `password`, `key_file`: an account that can log in over ssh; `key_file` is the
      private key (a file readable by the harness) whose public half the host authorizes.
    - `state_dir`: a path inside the host (the user's ``~/.tengine-watcher``) that survives
      `down`/`up` like a disk survives a reboot.
    """

    name: str
    address: str
    ssh_port: int
    host_key: str
    user: str
    password: str
    key_file: Path
    state_dir: str

    @abstractmethod
    def run(self, cmd: str | Sequence[str], *, user: str | None = None, timeout: float = 30.0,
            check: bool = False, input: str | None = None,
            env: Mapping[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        """Run `cmd` inside the host (a string goes through ``sh -c``), as root or as `user`."""

    @abstractmethod
    def down(self) -> None:
        """Power off: every process of the host dies and its link goes down. The disk stays."""

    @abstractmethod
    def up(self) -> None:
        """Power on again after `down`: link up, fresh processes, sshd answering."""

    @abstractmethod
    def partition(self) -> None:
        """Pull the cable: nothing reaches the host or leaves it; its processes keep running."""

    @abstractmethod
    def heal(self) -> None:
        """Plug the cable back in after `partition`."""

    @abstractmethod
    def pause(self) -> None:
        """Hang the host: every process of it stopped (SIGSTOP), the network left up."""

    @abstractmethod
    def resume(self) -> None:
        """Let every process of a paused host go on (SIGCONT)."""

    @property
    @abstractmethod
    def home_on_disk(self) -> Path:
        """The user's home inside the host (holding `state_dir`), as a path of the harness."""

    @abstractmethod
    def pids(self) -> list[int]:
        """The processes running in the host, as pids of the harness's own namespace."""

    @abstractmethod
    def destroy(self) -> None:
        """Remove the host and everything it left: processes, network, files."""

    def known_hosts_line(self) -> str:
        """One known_hosts line that pins this host's key to its address and port."""
        where = self.address if self.ssh_port == 22 else f"[{self.address}]:{self.ssh_port}"
        return f"{where} {self.host_key}"


class Backend(ABC):
    """Makes hosts and removes them all. Use it as a context manager so teardown always runs."""

    @abstractmethod
    def create(self, name: str) -> Host:
        """Bring up a new host called `name`, its sshd answering, and return it."""

    @abstractmethod
    def destroy_all(self) -> None:
        """Remove every host of this backend and what the backend set up for them."""

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.destroy_all()
