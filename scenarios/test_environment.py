"""D4: jobs see MM_ACTUAL_JOB_ANCESTOR_IDS, MM_FULL_ACTUAL_JOB_ANCESTOR_IDS and the other MM_*
variables with the right values, also inside expansions, nested expansions and finally blocks.

The definition is examples/06_nested_expansion.rb (tengine-facts section 4) with a job before the
expansion, a job inside the first expansion and a finally block at the root and inside the
nested expansion. Every job prints its MM_* variables; the test compares them with the ids the
console shows."""

import pytest

from harness.cluster import REPO

PRINT_ENV = "$HOME/print_env.sh"  # examples/scripts/print_env.sh, installed on the server
ROOT = "expansion_jobnet_99_4_1"

DEFINITION = f"""\
require 'tengine_job'

jobnet("{ROOT}", :server_name => "s1", :credential_name => "s1") do
  job("job1", "{PRINT_ENV}")
  expansion("child_root2")
  finally do
    job("root_finally_job", "{PRINT_ENV}")
  end
end

jobnet("child_root2", :server_name => "s1", :credential_name => "s1") do
  jobnet("jobnet21") do
    job("job211", "{PRINT_ENV}")
    expansion("grandchild_root")
  end
end

jobnet("grandchild_root", :server_name => "s1", :credential_name => "s1") do
  jobnet("jobnet31") do
    job("job311", "{PRINT_ENV}")
  end
  finally do
    job("grandchild_finally_job", "{PRINT_ENV}")
  end
end
"""

C2 = f"/{ROOT}/child_root2"
G = f"{C2}/jobnet21/grandchild_root"
# job -> (its full ancestor paths from the root, where MM_ACTUAL_JOB_ANCESTOR_IDS starts)
JOBS = {
    f"/{ROOT}/job1": ([f"/{ROOT}"], f"/{ROOT}"),
    f"/{ROOT}/finally/root_finally_job": ([f"/{ROOT}", f"/{ROOT}/finally"], f"/{ROOT}"),
    f"{C2}/jobnet21/job211": ([f"/{ROOT}", C2, f"{C2}/jobnet21"], C2),
    f"{G}/jobnet31/job311": ([f"/{ROOT}", C2, f"{C2}/jobnet21", G, f"{G}/jobnet31"], G),
    f"{G}/finally/grandchild_finally_job": ([f"/{ROOT}", C2, f"{C2}/jobnet21", G,
                                             f"{G}/finally"], G),
}


def install_print_env(server) -> None:
    server.install_script("print_env.sh",
                          (REPO / "examples" / "scripts" / "print_env.sh").read_text())


def printed_env(job) -> dict[str, str]:
    """The MM_* lines the job wrote to its stdout, as the console's job detail shows them."""
    result = job.raw["result"] or {}
    lines = (result.get("stdout_head") or "").splitlines()
    return dict(line.split("=", 1) for line in lines if line.startswith("MM_"))


@pytest.mark.scenario("D4")
def test_jobs_see_their_mm_variables_inside_expansions_and_finally(cluster):
    install_print_env(cluster.server("s1"))
    cluster.load(DEFINITION, "nested_expansion.rb")
    run = cluster.run(ROOT)
    run.wait_for_execution("success")
    by_path = {vertex.name_path: vertex for vertex in run.jobs()}
    assert set(JOBS) <= set(by_path), sorted(by_path)
    for path, (ancestors, actual_from) in JOBS.items():
        job = by_path[path]
        env = printed_env(job)
        ids = [by_path[a].id for a in ancestors]
        actual = ids[ancestors.index(actual_from):]
        assert env == {
            "MM_SERVER_NAME": "s1",
            "MM_ROOT_JOBNET_ID": by_path[f"/{ROOT}"].id,
            "MM_TARGET_JOBNET_ID": by_path[ancestors[-1]].id,
            "MM_ACTUAL_JOB_ID": job.id,
            "MM_ACTUAL_JOB_ANCESTOR_IDS": ";".join(actual),
            "MM_FULL_ACTUAL_JOB_ANCESTOR_IDS": ";".join(ids),
            "MM_ACTUAL_JOB_NAME_PATH": path,
            "MM_ACTUAL_JOB_SECURITY_TOKEN": "",
            "MM_SCHEDULE_ID": run.execution_id,
            "MM_SCHEDULE_ESTIMATED_TIME": "",
            "MM_SCHEDULE_ESTIMATED_END": "",
            "MM_TEMPLATE_JOB_ID": job.raw["template_id"],
            "MM_TEMPLATE_JOB_ANCESTOR_IDS": ";".join(
                by_path[a].raw["template_id"] for a in ancestors[ancestors.index(actual_from):]),
        }, path
    # the worked example of tengine-facts section 4: R;C2;J21;G;J31 and G;J31
    job311 = printed_env(by_path[f"{G}/jobnet31/job311"])
    r, c2, j21, g, j31 = (by_path[p].id for p in JOBS[f"{G}/jobnet31/job311"][0])
    assert job311["MM_FULL_ACTUAL_JOB_ANCESTOR_IDS"] == f"{r};{c2};{j21};{g};{j31}"
    assert job311["MM_ACTUAL_JOB_ANCESTOR_IDS"] == f"{g};{j31}"
