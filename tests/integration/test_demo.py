"""The README's demo command: the whole stack runs the demo jobnet to success."""

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from support.runtime import cli_label
from tengine_min.model import phases as ph

pytestmark = pytest.mark.integration


@pytest.fixture
def state_dir():
    # Under /tmp and searchable: the broker runs as the rabbitmq user, who cannot enter pytest's
    # private tmp dirs.
    path = Path(tempfile.mkdtemp(prefix="tengine-demo-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def test_demo_runs_the_demo_jobnet_to_success_and_says_where_to_look(state_dir):
    tmp_path = state_dir
    tengine = Path(sys.executable).parent / "tengine"
    env = {k: v for k, v in os.environ.items() if not k.startswith("TENGINE_")}
    done = subprocess.run([str(tengine), "demo", "--no-keep", "--state-dir", str(tmp_path)],
                          capture_output=True, text=True, timeout=300, env=env,
                          stdin=subprocess.DEVNULL)
    out = done.stdout
    assert done.returncode == 0, out + done.stderr
    assert "15 root jobnets" in out and "0 errors" in out
    assert "execution " in out and cli_label(ph.SUCCESS) in out
    for name in ("prepare", "extract_a", "extract_b", "transform", "demo_publish", "cleanup"):
        assert any(name in line and ph.human_label(ph.SUCCESS) in line
                   for line in out.splitlines()), name
    assert "console:" in out and "http://127.0.0.1:" in out
    log = (tmp_path / "watcher" / "log" / "watcher.log").read_text()
    assert log.count("finished") >= 7
    # everything it started is gone: no process still runs from its state dir
    leftovers = subprocess.run(["pgrep", "-f", str(tmp_path)], capture_output=True, text=True)
    assert leftovers.stdout.strip() == ""
