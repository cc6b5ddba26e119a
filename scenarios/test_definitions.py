"""D1: unexecutable jobnet definitions are rejected before anything runs, each with a precise
message. D2: a big complex jobnet (the Asakusa-like set) is generated fast."""

import time

import pytest

from benchmarks import generate
from harness.cluster import REPO, ClusterError

INVALID = REPO / "examples" / "invalid"

# file of examples/invalid -> (the roots it defines, the message `tengine load` must give)
REJECTED = {
    "cycle.rb": (["invalid_cycle"], "cycle.rb:8: error cycle: circular dependency in jobnet "
                 "'/invalid_cycle': extract -> transform -> load -> extract"),
    "01_01_26_loop_job.rb": (["jobnet1051"], "01_01_26_loop_job.rb:6: error cycle: circular "
                             "dependency in jobnet '/jobnet1051': job1 -> job2 -> job1"),
    "01_01_27_loop_expansion_job.rb": (
        ["jobnet1052", "jobnet1052_2", "jobnet1052_3"],
        "01_01_27_loop_expansion_job.rb:7: error cycle: circular dependency in jobnet "
        "'/jobnet1052': jobnet1052_2 -> jobnet1052_3 -> jobnet1052_2"),
    "expansion_missing.rb": (
        ["u1pj1_pattern", "invalid_expansion_missing"],
        "expansion_missing.rb:11: error expansion_missing: expansion of 'u1pj1_pattern_nothing' "
        "in '/invalid_expansion_missing/sub': no root jobnet of that name"),
    "expansion_cycle.rb": (
        ["jobnet1053", "jobnet1053_2"],
        "expansion_cycle.rb:7: error expansion_cycle: root jobnets expand each other: "
        "jobnet1053 -> jobnet1053_2 -> jobnet1053"),
    "expansion_cycle_long.rb": (
        ["loop_a", "loop_b", "loop_c"],
        "expansion_cycle_long.rb:6: error expansion_cycle: root jobnets expand each other: "
        "loop_a -> loop_b -> loop_c -> loop_a"),
    "expansion_self.rb": (
        ["job_reference_test_6_4"],
        "expansion_self.rb:8: error expansion_self: root jobnet 'job_reference_test_6_4' "
        "expands itself at '/job_reference_test_6_4/jobnet2/job_reference_test_6_4'"),
}


@pytest.mark.scenario("D1")
def test_unexecutable_definitions_are_rejected_with_a_precise_message(cluster):
    for name, (roots, message) in REJECTED.items():
        definition = (INVALID / name).read_text()  # named for their servers: ours is s1
        for server in ('"local"', '"test_server1"', '"test_credential1"'):
            definition = definition.replace(server, '"s1"')
        with pytest.raises(ClusterError) as rejected:
            cluster.load(definition, name)
        said = str(rejected.value)
        assert message in said, f"{name}: {said}"
        assert "1 error(s) in 1 file(s): nothing stored" in said, f"{name}: {said}"
        stored = {jobnet["name"] for jobnet in cluster.console.get("/api/jobnets")}
        assert not stored & set(roots), f"{name}: stored {stored & set(roots)}"
    assert cluster.console.get("/api/jobnets") == []  # nothing stored, so nothing can run
    assert cluster.console.get("/api/executions")["total"] == 0
    job_events = [e for e in cluster.recorder.received()
                  if e.get("event_type_name", "").endswith(".job.tengine")]
    assert job_events == []  # and nothing ran: not one job event on the bus


def install_test_script(server) -> None:
    """Tengine's acceptance test script, `$HOME/tengine_job_test.sh SLEEP NAME`, on the server."""
    server.install_script("tengine_job_test.sh", '#!/bin/sh\nsleep "$1"\necho "$2"\n')


@pytest.mark.scenario("D2")
def test_the_asakusa_like_jobnet_is_loaded_instantiated_and_started_fast(cluster):
    s1 = cluster.server("s1")
    install_test_script(s1)
    ruby = "\n".join(generate.to_ruby(generate.asakusa()).values())
    ruby = ruby.replace(generate.SERVER, s1.name).replace(generate.CREDENTIAL, s1.name)
    began = time.monotonic()
    cluster.load(ruby, "asakusa.rb")  # read, validate and store the six roots
    loaded = time.monotonic()
    run = cluster.run(generate.ASAKUSA_ROOT)  # instantiate and start: the console's 実行
    created = time.monotonic()
    first = run.wait_for_job("/expand_root_jobnet.001/STAGE_GRAPH/stage0001",
                             phase=("running", "success"), timeout=60)
    started = time.monotonic()
    vertices = run.jobs()
    assert len(vertices) == 1000, len(vertices)  # the figures of tengine-facts section 10
    assert sum(v.kind in ("job", "hadoop_job_run") for v in vertices) == 292
    assert first.pid is not None
    assert started - loaded < 60  # Tengine's promise: the first job runs within a minute
    cluster.history.note(f"D2 timings: load {loaded - began:.2f} s, run request "
                         f"{created - loaded:.2f} s, first job running "
                         f"{started - loaded:.2f} s after the click")
    print(f"D2: load {loaded - began:.2f} s; run request (instantiate + store) "
          f"{created - loaded:.2f} s; first job running {started - loaded:.2f} s after run")
