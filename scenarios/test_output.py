"""D3: a job writing very large stdout and stderr (hundreds of MB) completes over ssh; the watcher's
memory stays bounded; the tail of both streams is on the console and the whole output on the
host."""

import json

import pytest

MIB = 1024 * 1024
SIZE_MIB = 200  # on each stream
RSS_BOUND_KIB = 64 * 1024  # DESIGN.md's performance goal for the watcher: under 64 MiB

# Writes SIZE MiB of lines to stdout and to stderr at the same time, then one last line on each.
BIG_OUTPUT = """\
#!/bin/sh
bytes=$(($1 * 1048576))
yes "stdout: a line of the big output job" | head -c "$bytes" &
yes "stderr: a line of the big output job" | head -c "$bytes" >&2
wait
echo "stdout: the end"
echo "stderr: the end" >&2
"""


@pytest.mark.scenario("D3")
def test_a_job_with_hundreds_of_mb_of_stdout_and_stderr(cluster):
    s1 = cluster.server("s1")
    script = s1.install_script("big_output.sh", BIG_OUTPUT)
    run = cluster.run("big_output", server=s1, script=f"{script} {SIZE_MIB}")
    job = run.wait_for_job("/big_output/j1", phase="success", timeout=120)
    assert job.exit_status == 0, job
    detail = cluster.console.get(f"/api/jobs/{job.id}")  # the job detail screen's data
    result = detail["result"]
    for stream in ("stdout", "stderr"):
        expected = SIZE_MIB * MIB + len(f"{stream}: the end\n")
        assert result[f"{stream}_bytes"] == expected, (stream, result[f"{stream}_bytes"])
        assert result[f"{stream}_tail"].endswith(f"{stream}: the end\n"), stream
        assert result[f"{stream}_head"].startswith(f"{stream}: a line of the big output job\n")
        kept = len(result[f"{stream}_head"]) + len(result[f"{stream}_tail"])
        assert result[f"{stream}_dropped_bytes"] == expected - kept, stream  # exact count
        assert s1.file_size(result[f"{stream}_log"]) == expected, stream  # all on disk
    # the result the watcher recorded on the host carries the watchdog's peak RSS (VmHWM)
    peak_kib = json.loads((s1.state_dir_on_disk / "jobs" / job.id / "result.json")
                          .read_text())["watchdog_vm_hwm_kib"]
    assert 0 < peak_kib < RSS_BOUND_KIB, f"watchdog peak RSS {peak_kib} KiB"
    cluster.history.note(f"D3: watchdog peak RSS {peak_kib} KiB for 2 x {SIZE_MIB} MiB")
    print(f"D3: watchdog peak RSS {peak_kib} KiB for 2 x {SIZE_MIB} MiB of output")
    log = s1.watcher_log(job)
    assert log.has("started") and log.has("finished"), log
