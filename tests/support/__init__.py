"""The helpers the tests share (pytest's `pythonpath` puts tests/ on the path: `from support.x
import y`). Fixtures are not here: they are in the conftest.py files.

In-process worlds (no broker, no processes):

- `templates`: template trees built straight on the model (`jobnet`, `job`, `definitions`).
- `core_sim`: the real kernel on a SQLite store with a fake driver and watcher at the boundary.
- `console_world`: the console app on such a store, its events handed to the kernel at once.
- `logs`: the messages of a logger, kept for a test to read or wait for.

Real processes and sockets:

- `watcher`: the real watcher CLI, its job dirs and its log.
- `tcp`: TCP upstreams on 127.0.0.1 and socket helpers (the toxiproxy and link tests).
- `sshd`: a small ssh server (paramiko's server side) and a black-hole proxy.
- `integration`: what the integration tests need from the machine, and broker dirs.
- `runtime`: a state dir with a real `tengine core` on the test broker, the CLI and readers of
  the store and the logs, built on the harness's process management (harness/processes.py).
- `ssh_runtime`: such a runtime whose jobs run on a namespaced host over ssh.
- `console_process`: the console as its own process on a runtime's state dir.

Waiting is `harness.waiting.wait_for`; a free port is `tengine_min.ports.free_port`; labels come
from the product's `human_label`.
"""
