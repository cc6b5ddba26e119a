"""pid 1 of a harness host: reaps every process that ends (orphans are re-parented to it, as to
a real init) and holds the host's namespaces open. Exits on SIGTERM or SIGINT; the harness
powers a host off with SIGKILL, which makes the kernel kill every process of the namespace.

Run as a script (``python -I -S hostinit.py <hostname>``) inside fresh uts/pid namespaces.
"""

import os
import signal
import socket
import sys


def main() -> None:
    socket.sethostname(sys.argv[1])
    signals = {signal.SIGCHLD, signal.SIGTERM, signal.SIGINT}
    signal.pthread_sigmask(signal.SIG_BLOCK, signals)  # taken with sigwait: no race, no handler
    print("ready", flush=True)
    while True:
        while True:
            try:
                pid, _ = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if pid == 0:
                break
        if signal.sigwait(signals) != signal.SIGCHLD:
            sys.exit(0)


if __name__ == "__main__":
    main()
