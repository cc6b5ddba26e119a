"""The whole runtime, for real: one `tengine core` process on the shared test broker, the CLI,
the watcher through the local transport, real scripts. The core is shared by the tests of this
module (each test has executions of its own); tests that kill the core are in
test_runtime_crash.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.waiting import wait_for
from support.runtime import POLL, Runtime, cli_label
from tengine_min.config import load_settings
from tengine_min.core.driver import build_kill_command, build_run_command
from tengine_min.core.handlers.commands import KillJob, StartJob
from tengine_min.events import names as ev
from tengine_min.model import phases as ph
from tengine_min.transport.local import LocalTransport

DEFINITIONS = """
jobnets:
  - jobnet: rt_serial
    server: local
    credential: local
    children:
      - job: s1
        script: {job} 0.3
      - job: s2
        script: {job} 0.3
      - job: s3
        script: {job} 0.3

  - jobnet: rt_parallel
    server: local
    credential: local
    boot_jobs: [p1]
    children:
      - job: p1
        script: {job} 0.2
        to: [p2, p3]
      - job: p2
        script: {job} 1
        to: p4
      - job: p3
        script: {job} 0.3
        to: p4
      - job: p4
        script: {job} 0
      - finally:
          - job: pf
            script: {job} 0

  - jobnet: rt_nested
    server: local
    credential: local
    boot_jobs: [n1]
    children:
      - job: n1
        script: {job} 0
        to: inner
      - jobnet: inner
        boot_jobs: [i1, i2]
        to: n2
        children:
          - job: i1
            script: {job} 0.3
          - job: i2
            script: {job} 0.3
          - finally:
              - job: inner_f
                script: {job} 0
      - job: n2
        script: {job} 0

  - jobnet: rt_expansion
    server: local
    credential: local
    boot_jobs: [e1]
    children:
      - job: e1
        script: {job} 0
        to: rt_expanded
      - expansion: rt_expanded
        to: e3
      - job: e3
        script: {job} 0

  - jobnet: rt_expanded
    server: local
    credential: local
    children:
      - job: x1
        script: {job} 0.2

  - jobnet: rt_failing
    server: local
    credential: local
    boot_jobs: [j1]
    children:
      - job: j1
        script: {job} 0
        to: [j2, j3]
      - job: j2
        script: {job} 0.2 3
        to: j4
      - job: j3
        script: {job} 2
        to: j4
      - job: j4
        script: {job} 0
      - finally:
          - job: jf
            script: {job} 0

  - jobnet: rt_stop_job
    server: local
    credential: local
    children:
      - job: j1
        script: {job} 60
      - job: j2
        script: {job} 0
      - finally:
          - job: jf
            script: {job} 0

  - jobnet: rt_stop_jobnet
    server: local
    credential: local
    children:
      - jobnet: sub
        children:
          - job: s1
            script: {job} 60
          - finally:
              - job: sub_f
                script: {job} 0
      - job: after
        script: {job} 0
      - finally:
          - job: root_f
            script: {job} 0

  - jobnet: rt_stop_root
    server: local
    credential: local
    children:
      - job: j1
        script: {job} 60
      - finally:
          - job: jf
            script: {job} 0

  - jobnet: rt_timeout
    server: local
    credential: local
    children:
      - job: j1
        script: {job} 60
      - finally:
          - job: jf
            script: {job} 0

  - jobnet: rt_bad_scripts
    server: local
    credential: local
    boot_jobs: [missing, denied]
    children:
      - job: missing
        script: {bin}/no_such_script.sh
      - job: denied
        script: {bin}/not_executable.sh

  - jobnet: rt_unknown_server
    server: mars
    credential: local
    children:
      - job: far
        script: {job} 0

  - jobnet: rt_env
    server: local
    credential: local
    boot_jobs: [env1]
    children:
      - job: env1
        script: {job} 0
        to: rt_env_child
      - expansion: rt_env_child
      - finally:
          - job: env_f
            script: {job} 0

  - jobnet: rt_env_child
    server: local
    credential: local
    children:
      - jobnet: c_inner
        children:
          - expansion: rt_env_grand

  - jobnet: rt_env_grand
    server: local
    credential: local
    children:
      - jobnet: g_inner
        children:
          - job: g1
            script: {job} 0

  - jobnet: rt_duplicates
    server: local
    credential: local
    children:
      - job: d1
        script: {job} 60

  - jobnet: rt_big_output
    server: local
    credential: local
    children:
      - job: big
        script: {bin}/big_output.sh
"""

BIG = 200_000_000  # bytes on each stream
EXCERPT = 64 * 1024  # the watcher keeps this much of the head and of the tail

BIG_OUTPUT = f"""#!/bin/sh
head -c {BIG} /dev/zero | tr '\\0' o
head -c {BIG} /dev/zero | tr '\\0' e >&2
"""


@pytest.fixture(scope="module")
def rt(session_broker, tmp_path_factory) -> Runtime:
    runtime = Runtime(tmp_path_factory.mktemp("runtime"), session_broker.url)
    try:
        runtime.script("not_executable.sh", "#!/bin/sh\nexit 0\n", mode=0o644)
        runtime.script("big_output.sh", BIG_OUTPUT)
        defs = runtime.definition("runtime.yaml", DEFINITIONS.format(job=runtime.job_sh,
                                                                     bin=runtime.bin))
        runtime.load(defs)
        runtime.start_core()
        yield runtime
    finally:
        runtime.close()


def label(vertex) -> str:
    return ph.human_label(vertex.phase, vertex.stop_reason)


# --- structures that succeed ---------------------------------------------------------------------


def test_serial_parallel_nested_and_expansion_jobnets_succeed(rt):
    ids = {name: rt.run(name) for name in ("rt_serial", "rt_parallel", "rt_nested",
                                           "rt_expansion")}
    for name, execution_id in ids.items():
        execution = rt.wait_execution(execution_id)
        assert execution.phase == ph.SUCCESS, (name, rt._phases(execution_id))
        for path, vertex in rt.vertices(execution_id).items():
            assert vertex.phase == ph.SUCCESS, (path, vertex.phase, vertex.reason)
            if vertex.kind == "job":
                assert vertex.exit_status == 0 and vertex.pid is not None

    serial = rt.vertices(ids["rt_serial"])
    s1, s2, s3 = (serial[f"/rt_serial/{n}"] for n in ("s1", "s2", "s3"))
    assert s1.finished_at <= s2.started_at and s2.finished_at <= s3.started_at

    parallel = rt.vertices(ids["rt_parallel"])
    p2, p3, p4 = (parallel[f"/rt_parallel/{n}"] for n in ("p2", "p3", "p4"))
    assert p3.started_at < p2.finished_at  # the fork: both ran at once
    assert p4.started_at >= max(p2.finished_at, p3.finished_at)  # the join
    assert parallel["/rt_parallel/finally/pf"].started_at >= p4.finished_at

    nested = rt.vertices(ids["rt_nested"])
    inner_finally = nested["/rt_nested/inner/finally/inner_f"]
    assert nested["/rt_nested/n2"].started_at >= inner_finally.finished_at

    expansion = rt.vertices(ids["rt_expansion"])
    assert expansion["/rt_expansion/rt_expanded"].was_expansion
    assert "/rt_expansion/rt_expanded/x1" in expansion


def test_run_wait_shows_the_tree_and_exits_by_the_outcome(rt):
    done = rt.cli("run", "rt_serial", "--wait")
    assert done.returncode == 0
    execution_id = done.stdout.splitlines()[0].strip()
    assert rt.execution(execution_id).phase == ph.SUCCESS
    assert f"execution {execution_id} {cli_label(ph.SUCCESS)}" in done.stdout
    assert f"s3  {cli_label(ph.SUCCESS)}" in done.stdout

    failed = rt.cli("run", "rt_bad_scripts", "--wait", check=False)
    assert failed.returncode == 1, failed.stderr

    unknown = rt.cli("run", "no_such_jobnet", check=False)
    assert unknown.returncode == 2
    assert "no stored root jobnet named 'no_such_jobnet'" in unknown.stderr


# --- failures ------------------------------------------------------------------------------------


def test_failing_job_closes_its_edges_lets_the_parallel_branch_finish_and_runs_finally(rt):
    execution_id = rt.run("rt_failing")
    execution = rt.wait_execution(execution_id)
    v = rt.vertices(execution_id)
    root = v["/rt_failing"]
    assert execution.phase == ph.ERROR and root.phase == ph.ERROR
    j2, j3, j4 = v["/rt_failing/j2"], v["/rt_failing/j3"], v["/rt_failing/j4"]
    assert (j2.phase, j2.exit_status) == (ph.ERROR, 3)
    assert j2.reason.startswith("exit status 3")
    assert j3.phase == ph.SUCCESS and j3.finished_at > j2.finished_at  # it went on after j2 failed
    assert j4.phase == ph.INITIALIZED and j4.pid is None  # skipped
    assert v["/rt_failing/finally/jf"].phase == ph.SUCCESS
    edges = {(e.origin, e.destination): e.phase for e in rt.edges_of(root.id)}
    # Everything after j2 is closed up to End; j3's own edge into the join was transmitted.
    assert edges[(j2.id, j4.id)] == edges[(j4.id, None)] == ph.EDGE_CLOSED
    assert edges[(j3.id, j4.id)] == ph.EDGE_TRANSMITTED

    errors = [e for e in rt.events(ev.ERROR_JOB) if e.properties["target_job_id"] == j2.id]
    assert len(errors) == 1 and errors[0].properties["exit_status"] == 3
    listing = rt.cli("events", "--level", "error", "--limit", "200").stdout
    assert "error.job.job.tengine" in listing and "target=/rt_failing/j2" in listing
    tree = rt.cli("jobs", execution_id).stdout
    assert f"j2  {cli_label(ph.ERROR)}" in tree and "exit=3" in tree
    assert f"j4  {cli_label(ph.INITIALIZED)}" in tree
    assert execution_id in rt.cli("jobs").stdout


def test_missing_and_non_executable_scripts_fail_with_the_reason(rt):
    execution_id = rt.run("rt_bad_scripts")
    assert rt.wait_execution(execution_id).phase == ph.ERROR
    v = rt.vertices(execution_id)
    missing, denied = v["/rt_bad_scripts/missing"], v["/rt_bad_scripts/denied"]
    assert missing.phase == ph.ERROR
    assert missing.reason == f"script not found on local: {rt.bin / 'no_such_script.sh'}"
    assert denied.phase == ph.ERROR
    assert denied.reason == f"script not executable on local: {rt.bin / 'not_executable.sh'}"
    rt.wait_watcher_log(rf"spawn failed job_id={missing.id} .*script not found: "
                        rf"{rt.bin}/no_such_script.sh")
    rt.wait_watcher_log(rf"spawn failed job_id={denied.id} .*script not executable: "
                        rf"{rt.bin}/not_executable.sh")
    failed = [e for e in rt.events(ev.START_FAILED_JOB)
              if e.properties["target_job_id"] == missing.id]
    assert len(failed) == 1 and failed[0].level == "error"


def test_a_server_the_resources_do_not_define_is_a_job_error(rt):
    execution_id = rt.run("rt_unknown_server")
    assert rt.wait_execution(execution_id).phase == ph.ERROR
    far = rt.vertices(execution_id)["/rt_unknown_server/far"]
    assert far.phase == ph.ERROR
    assert far.reason == ("server 'mars' is not defined in the built-in resources "
                          "(no resources file)")
    rt.wait_core_log(rf"start failed job_id={far.id} .*server 'mars' is not defined")


# --- force stop ----------------------------------------------------------------------------------


def test_force_stop_of_a_job_runs_finally_and_fails_the_root(rt):
    execution_id = rt.run("rt_stop_job")
    j1 = rt.wait_vertex(execution_id, "/rt_stop_job/j1", {ph.RUNNING})
    done = rt.cli("stop", j1.id)
    assert "stop requested: job /rt_stop_job/j1" in done.stdout
    assert rt.wait_execution(execution_id).phase == ph.ERROR
    v = rt.vertices(execution_id)
    j1 = v["/rt_stop_job/j1"]
    assert (j1.phase, j1.stop_reason, j1.signal) == (ph.ERROR, ph.USER_STOP, "KILL")
    assert label(j1) == "エラー終了(強制停止済)"
    assert v["/rt_stop_job/j2"].phase == ph.INITIALIZED
    assert v["/rt_stop_job/finally/jf"].phase == ph.SUCCESS  # finally runs after a job stop
    assert v["/rt_stop_job"].phase == ph.ERROR
    rt.wait_watcher_log(rf"kill sent job_id={j1.id} signal=KILL")
    rt.wait_core_log(rf"kill sent job_id={j1.id}")

    again = rt.cli("stop", j1.id, check=False)
    assert again.returncode == 1
    assert "it has already ended, nothing to stop" in again.stderr
    unknown = rt.cli("stop", "0123456789abcdef01234567", check=False)
    assert unknown.returncode == 2 and "no execution, jobnet or job" in unknown.stderr


def test_force_stop_of_a_jobnet_skips_its_finally(rt):
    execution_id = rt.run("rt_stop_jobnet")
    rt.wait_vertex(execution_id, "/rt_stop_jobnet/sub/s1", {ph.RUNNING})
    sub = rt.vertices(execution_id)["/rt_stop_jobnet/sub"]
    rt.cli("stop", sub.id)
    assert rt.wait_execution(execution_id).phase == ph.ERROR
    v = rt.vertices(execution_id)
    for path in ("/rt_stop_jobnet/sub", "/rt_stop_jobnet/sub/s1"):
        assert (v[path].phase, v[path].stop_reason) == (ph.ERROR, ph.USER_STOP), path
        assert label(v[path]) == "エラー終了(強制停止済)"
    assert v["/rt_stop_jobnet/sub/finally/sub_f"].phase == ph.INITIALIZED  # skipped
    assert v["/rt_stop_jobnet/after"].phase == ph.INITIALIZED
    # The root was not stopped: its own finally runs, and it ends in error.
    assert v["/rt_stop_jobnet/finally/root_f"].phase == ph.SUCCESS
    assert v["/rt_stop_jobnet"].phase == ph.ERROR


def test_force_stop_of_the_root_skips_finally_and_ends_user_stop(rt):
    execution_id = rt.run("rt_stop_root")
    rt.wait_vertex(execution_id, "/rt_stop_root/j1", {ph.RUNNING})
    root = rt.vertices(execution_id)["/rt_stop_root"]
    rt.cli("stop", root.id)
    execution = rt.wait_execution(execution_id)
    assert (execution.phase, execution.stop_reason) == (ph.ERROR, ph.USER_STOP)
    v = rt.vertices(execution_id)
    assert label(v["/rt_stop_root"]) == ph.human_label(ph.ERROR, ph.USER_STOP)
    assert label(v["/rt_stop_root/j1"]) == ph.human_label(ph.ERROR, ph.USER_STOP)
    assert v["/rt_stop_root/finally/jf"].phase == ph.INITIALIZED
    finished = rt.cli("stop", execution_id, check=False)
    assert finished.returncode == 1 and "already ended" in finished.stderr


def test_timeout_stops_the_execution(rt):
    """`--timeout 1` (minutes, the unit the store keeps); the test then moves the schedule's
    fire time to now instead of waiting a minute: the ticker, the stop and its labels are real."""
    execution_id = rt.run("rt_timeout", "--timeout", "1", "--alert", "1")
    rt.wait_vertex(execution_id, "/rt_timeout/j1", {ph.RUNNING})
    assert rt.execution(execution_id).timeout_min == 1
    assert rt.fast_forward_schedules(execution_id) == 2
    execution = rt.wait_execution(execution_id)
    assert (execution.phase, execution.stop_reason) == (ph.ERROR, ph.TIMEOUT)
    v = rt.vertices(execution_id)
    assert label(v["/rt_timeout/j1"]) == ph.human_label(ph.ERROR, ph.TIMEOUT)
    assert label(v["/rt_timeout"]) == ph.human_label(ph.ERROR, ph.TIMEOUT)
    assert v["/rt_timeout/finally/jf"].phase == ph.INITIALIZED
    stops = [e for e in rt.events(ev.STOP_EXECUTION)
             if e.properties["execution_id"] == execution_id]
    assert len(stops) == 1 and stops[0].properties["stop_reason"] == ph.TIMEOUT
    alerts = wait_for(lambda: [e for e in rt.events(ev.ALERT_EXECUTION)
                               if e.properties["execution_id"] == execution_id],
                      timeout=30, what="the alert event", interval=POLL)
    assert len(alerts) == 1 and alerts[0].level == "warn"
    assert "alert.execution.job.tengine" in rt.cli("events", "--level", "warn",
                                                    "--limit", "500").stdout


# --- what a job sees -----------------------------------------------------------------------------


def expected_env(vertices: dict, job, execution_id: str) -> dict[str, str]:
    """The MM_* values Tengine gives `job`, derived from the stored tree (not from the env the
    core stored for it)."""
    by_id = {v.id: v for v in vertices.values()}
    chain = []
    parent = by_id.get(job.parent_id)
    while parent is not None:
        chain.insert(0, parent)
        parent = by_id.get(parent.parent_id)
    since_expansion = chain
    for index in range(len(chain) - 1, -1, -1):
        if chain[index].was_expansion:
            since_expansion = chain[index:]
            break
    return {"MM_SERVER_NAME": "local", "MM_ROOT_JOBNET_ID": chain[0].id,
            "MM_TARGET_JOBNET_ID": job.parent_id, "MM_ACTUAL_JOB_ID": job.id,
            "MM_ACTUAL_JOB_ANCESTOR_IDS": ";".join(v.id for v in since_expansion),
            "MM_FULL_ACTUAL_JOB_ANCESTOR_IDS": ";".join(v.id for v in chain),
            "MM_ACTUAL_JOB_NAME_PATH": job.name_path, "MM_SCHEDULE_ID": execution_id,
            "MM_TEMPLATE_JOB_ID": job.template_id}


def test_mm_variables_seen_by_jobs_match_the_execution_tree(rt):
    execution_id = rt.run("rt_env")
    assert rt.wait_execution(execution_id).phase == ph.SUCCESS
    v = rt.vertices(execution_id)
    jobs = [x for x in v.values() if x.kind == "job"]
    assert {j.name_path for j in jobs} == {
        "/rt_env/env1", "/rt_env/finally/env_f",
        "/rt_env/rt_env_child/c_inner/rt_env_grand/g_inner/g1"}
    for job in jobs:
        seen = rt.job_env(job.id)
        for name, value in expected_env(v, job, execution_id).items():
            assert seen.get(name) == value, (job.name_path, name, seen.get(name), value)
    g1 = v["/rt_env/rt_env_child/c_inner/rt_env_grand/g_inner/g1"]
    grand = v["/rt_env/rt_env_child/c_inner/rt_env_grand"]
    g_inner = v["/rt_env/rt_env_child/c_inner/rt_env_grand/g_inner"]
    seen = rt.job_env(g1.id)
    assert seen["MM_ACTUAL_JOB_ANCESTOR_IDS"] == f"{grand.id};{g_inner.id}"  # nearest expansion
    assert seen["MM_FULL_ACTUAL_JOB_ANCESTOR_IDS"].count(";") == 4
    finally_job = v["/rt_env/finally/env_f"]
    root, fin = v["/rt_env"], v["/rt_env/finally"]
    seen = rt.job_env(finally_job.id)
    assert seen["MM_ACTUAL_JOB_ANCESTOR_IDS"] == seen["MM_FULL_ACTUAL_JOB_ANCESTOR_IDS"] == \
        f"{root.id};{fin.id}"


# --- duplicates on the host ----------------------------------------------------------------------


def test_duplicate_run_and_kill_are_recognised_by_the_watcher(rt):
    execution_id = rt.run("rt_duplicates")
    d1 = rt.wait_vertex(execution_id, "/rt_duplicates/d1", {ph.RUNNING})
    settings = load_settings(rt.state_dir, env=rt.env)
    transport = LocalTransport("local", settings.watcher_state_dir)
    # The very command the core sent, sent again: as the core would on a retry.
    start = StartJob(task_id=0, vertex_id=d1.id, watcher_job_id=d1.id, attempt=1,
                     execution_id=execution_id, root_jobnet_id=rt.vertices(execution_id)[
                         "/rt_duplicates"].id, name_path=d1.name_path, server_name="local",
                     credential_name="local", script=d1.script, preparation=d1.preparation,
                     env=d1.env, properties={})
    line = build_run_command(start, watcher=transport.watcher_command,
                             state_dir=transport.watcher_state_dir, amqp_url=rt.amqp_url,
                             server_name="local", settings=settings)
    again = transport.run(line, timeout=60)
    assert (again.exit_code, again.stdout.strip()) == (0, f"PID={d1.pid}")
    rt.wait_watcher_log(rf"duplicate start ignored job_id={d1.id} pid={d1.pid}")
    assert len(rt.watcher_log_matches(rf"\bstarted job_id={d1.id} ")) == 1  # ran once

    rt.cli("stop", d1.id)
    stopped = rt.wait_vertex(execution_id, "/rt_duplicates/d1", {ph.ERROR})
    assert stopped.stop_reason == ph.USER_STOP
    kill = KillJob(task_id=0, vertex_id=d1.id, watcher_job_id=d1.id, attempt=1,
                   execution_id=execution_id, root_jobnet_id=start.root_jobnet_id,
                   name_path=d1.name_path, server_name="local", credential_name="local",
                   pid=d1.pid, signals=("KILL",), interval=1.0, properties={})
    repeated = transport.run(build_kill_command(kill, watcher=transport.watcher_command,
                                                state_dir=transport.watcher_state_dir),
                             timeout=60)
    assert repeated.exit_code == 0
    assert f"duplicate kill ignored job_id={d1.id} (already stopped)" in repeated.stdout
    rt.wait_watcher_log(rf"duplicate kill ignored job_id={d1.id}")
    assert rt.execution(execution_id).phase == ph.ERROR  # nothing changed in the core


# --- big output ----------------------------------------------------------------------------------


def test_a_job_printing_200_mb_on_each_stream_finishes_with_excerpts(rt):
    execution_id = rt.run("rt_big_output")
    execution = rt.wait_execution(execution_id, timeout=180)
    big = rt.vertices(execution_id)["/rt_big_output/big"]
    assert execution.phase == ph.SUCCESS, big.reason
    result = big.result
    for stream, char in (("stdout", "o"), ("stderr", "e")):
        assert result[f"{stream}_bytes"] == BIG
        assert result[f"{stream}_dropped_bytes"] == BIG - 2 * EXCERPT
        assert result[f"{stream}_head"] == char * EXCERPT
        assert result[f"{stream}_tail"] == char * EXCERPT
        assert Path(result[f"{stream}_log"]).stat().st_size == BIG
    finished = [e for e in rt.events(ev.FINISHED_PROCESS_JOB)
                if e.properties["job_id"] == big.id]
    assert len(finished) == 1
    assert finished[0].properties["stdout_dropped_bytes"] == BIG - 2 * EXCERPT
    assert finished[0].properties["stderr_dropped_bytes"] == BIG - 2 * EXCERPT


# --- the outbox relay ----------------------------------------------------------------------------


def test_a_start_the_cli_could_not_publish_is_published_by_the_core(rt):
    dead = "amqp://guest:guest@127.0.0.1:1/%2F"
    done = rt.cli("run", "rt_serial", env={"TENGINE_AMQP_URL": dead,
                                           "TENGINE_PUBLISH_RETRY_COUNT": "0"})
    execution_id = done.stdout.strip()
    assert "is stored but not yet published" in done.stderr
    assert rt.wait_execution(execution_id).phase == ph.SUCCESS
    starts = [e for e in rt.events(ev.START_EXECUTION)
              if e.properties["execution_id"] == execution_id]
    assert len(starts) == 1
    wait_for(lambda: rt.core_log_matches(rf"event received event=start.execution.job.tengine "
                                         rf"key={starts[0].key}"), timeout=10,
             what="the start in the log", interval=POLL)
