"""What the integration tests (tests/integration, tests/browser) need from the machine, and the
dirs of their private RabbitMQ nodes.

They need root and Debian's ``rabbitmq-server``; without them they fail saying so.
``TENGINE_SKIP_INTEGRATION=1`` skips them instead.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import psutil
import pytest

from harness.processes import processes_mentioning
from tengine_min.broker import RABBITMQ_SERVER, Broker

SKIP_VARIABLE = "TENGINE_SKIP_INTEGRATION"


def missing_requirements() -> list[str]:
    missing = []
    if os.geteuid() != 0:
        missing.append("root (the private RabbitMQ node runs as the rabbitmq user)")
    if not RABBITMQ_SERVER.exists():
        missing.append("Debian's rabbitmq-server package (apt-get install rabbitmq-server)")
    return missing


def require_integration_environment() -> None:
    missing = missing_requirements()
    if os.environ.get(SKIP_VARIABLE) == "1":
        pytest.skip(f"{SKIP_VARIABLE}=1" + (f"; missing: {', '.join(missing)}" if missing else ""))
    if missing:
        pytest.fail(
            f"integration tests need {' and '.join(missing)}; "
            f"set {SKIP_VARIABLE}=1 to skip them",
            pytrace=False,
        )


def new_broker_dir() -> Path:
    # Not pytest's tmp_path: it lives under a 0700 root folder the rabbitmq user cannot enter.
    return Path(tempfile.mkdtemp(prefix="tengine-it-broker-", dir="/tmp"))


def remove_broker_dir(folder: Path) -> list[psutil.Process]:
    """Stop whatever runs there, remove the folder, and return the processes that survived."""
    try:
        Broker(folder).stop()
    finally:
        leftovers = processes_mentioning(folder)
        shutil.rmtree(folder, ignore_errors=True)
    return leftovers


