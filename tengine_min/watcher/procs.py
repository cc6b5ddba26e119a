"""Small process facts on Linux: is a pid or a process group alive, memory peak, death signal."""

from __future__ import annotations

import ctypes
import os
import signal
from collections.abc import Callable
from pathlib import Path

PR_SET_PDEATHSIG = 1


def pid_alive(pid: int) -> bool:
    """True while ``pid`` exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
    except (FileNotFoundError, ProcessLookupError):
        return False
    # The state letter follows the ")" closing the command name (which may hold spaces).
    state = stat[stat.rfind(b")") + 2: stat.rfind(b")") + 3]
    return state not in (b"Z", b"X")


def group_alive(pgid: int) -> bool:
    """True while any process is left in process group ``pgid``."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by someone else
    return True


def cmdline(pid: int) -> list[str]:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return []
    return [part.decode(errors="replace") for part in raw.split(b"\0") if part]


def vm_hwm_kib(pid: int | str = "self") -> int | None:
    """Peak resident set size (VmHWM) of a process in KiB, or None when unknown."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return None


def die_with_parent_hook() -> Callable[[], None]:
    """A ``preexec_fn`` that makes the child get SIGKILL when its parent dies.

    Linux ties the parent-death signal to the parent THREAD that forked the child: spawn from a
    thread that lives as long as the watchdog (its main thread). It is not inherited by the
    script's own children, and execve of a set-uid program clears it.
    """
    libc = ctypes.CDLL(None, use_errno=True)  # loaded before fork: nothing to load in the child
    parent = os.getpid()

    def hook() -> None:
        if libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")
        if os.getppid() != parent:  # the parent died before prctl took effect
            os._exit(125)

    return hook


def signal_name(number: int) -> str:
    """``9`` -> ``"KILL"`` (the form the kill command takes)."""
    try:
        return signal.Signals(number).name.removeprefix("SIG")
    except ValueError:
        return str(number)


def parse_signal(text: str) -> signal.Signals:
    """``KILL``, ``SIGKILL``, ``kill`` or ``9`` -> the signal; ValueError saying what is wrong."""
    word = text.strip()
    if word.isdigit():
        try:
            return signal.Signals(int(word))
        except ValueError:
            raise ValueError(f"unknown signal number {word}") from None
    name = word.upper()
    if not name.startswith("SIG"):
        name = "SIG" + name
    try:
        return signal.Signals[name]
    except KeyError:
        raise ValueError(f"unknown signal {text!r} (use names like KILL, TERM, INT or numbers)") \
            from None


def find_processes(argv_tail: list[str]) -> list[int]:
    """Pids of live processes whose command line ends with ``argv_tail``."""
    found = []
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            args = cmdline(int(entry.name))
            if args[-len(argv_tail):] == argv_tail and pid_alive(int(entry.name)):
                found.append(int(entry.name))
    return found
