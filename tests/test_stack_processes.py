"""tengine_min.processes: the stack's own child processes (the console beside `tengine up`, the
demo's core and console)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from tengine_min.ports import free_port
from tengine_min.processes import spawn, wait_http


def test_a_server_that_exits_before_answering_is_named_by_its_command(tmp_path):
    port = free_port()
    process = spawn([sys.executable, "-c", "raise SystemExit(3)", "--port", str(port)],
                    dict(os.environ), tmp_path / "out.log")
    with pytest.raises(RuntimeError) as failed:
        wait_http(f"http://127.0.0.1:{port}/", process, timeout=30)
    # The whole command line, not its last word (which was the port number).
    assert str(failed.value) == (
        f"{Path(sys.executable).name} -c 'raise SystemExit(3)' --port {port} exited with 3 "
        f"before http://127.0.0.1:{port}/ answered")
