"""Running the system tools the local backend is made of (`ip`, `nsenter`, `ssh-keygen`...).

Every call goes through `tool()`, so a failure always says which command failed and what it
printed, instead of a bare CalledProcessError.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Sequence

from .base import HostError

# What the local backend runs, and the Debian package that brings each one.
REQUIRED_TOOLS = {
    "ip": "iproute2",
    "bridge": "iproute2",
    "unshare": "util-linux",
    "nsenter": "util-linux",
    "setsid": "util-linux",
    "runuser": "util-linux",
    "mount": "mount",
    "useradd": "passwd",
    "chpasswd": "passwd",
    "ssh-keygen": "openssh-client",
}
SSHD = "/usr/sbin/sshd"

POLL = 0.01  # s between looks while waiting: namespaces and sshd change in milliseconds


def require_local_backend_environment() -> None:
    """Fail at once, saying what is missing, when the local backend cannot work here."""
    problems = []
    if os.geteuid() != 0:
        problems.append("root (network, pid and mount namespaces and a private sshd per host "
                        "need it; run the tests as root, as CI does)")
    missing = sorted({pkg for name, pkg in REQUIRED_TOOLS.items() if shutil.which(name) is None})
    if not os.access(SSHD, os.X_OK):
        missing.append("openssh-server")
    if missing:
        problems.append(f"the Debian packages {', '.join(missing)} "
                        f"(apt-get install -y {' '.join(missing)})")
    if problems:
        raise HostError("the local host backend needs " + " and ".join(problems))


def tool(args: Sequence[str], *, timeout: float = 30.0, input: str | None = None,
         what: str = "") -> str:
    """Run a system command as the harness (root); return its stdout or raise HostError."""
    try:
        done = subprocess.run(list(args), check=False, capture_output=True, text=True,
                              timeout=timeout, input=input,
                              stdin=None if input is not None else subprocess.DEVNULL)
    except subprocess.TimeoutExpired as exc:
        raise HostError(f"{what or args[0]}: `{' '.join(args)}` did not finish "
                        f"within {timeout:g} s") from exc
    except OSError as exc:
        raise HostError(f"{what or args[0]}: cannot run `{' '.join(args)}`: {exc}") from exc
    if done.returncode != 0:
        detail = (done.stderr or done.stdout).strip() or "no output"
        raise HostError(f"{what or args[0]}: `{' '.join(args)}` failed with exit status "
                        f"{done.returncode}: {detail}")
    return done.stdout
