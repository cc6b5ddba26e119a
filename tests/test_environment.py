"""The MM_* variables (tengine-facts section 4) and their export line."""

from __future__ import annotations

import subprocess

import pytest

from support.templates import (
    counter_ids,
    definitions,
    expansion,
    finally_,
    hadoop_job,
    hadoop_job_run,
    job,
    jobnet,
)
from tengine_min.model.environment import job_environment, shell_exports
from tengine_min.model.instantiate import instantiate

TENGINE_ORDER = [
    "MM_SERVER_NAME", "MM_ROOT_JOBNET_ID", "MM_TARGET_JOBNET_ID", "MM_ACTUAL_JOB_ID",
    "MM_ACTUAL_JOB_ANCESTOR_IDS", "MM_FULL_ACTUAL_JOB_ANCESTOR_IDS", "MM_ACTUAL_JOB_NAME_PATH",
    "MM_ACTUAL_JOB_SECURITY_TOKEN", "MM_SCHEDULE_ID", "MM_SCHEDULE_ESTIMATED_TIME",
    "MM_SCHEDULE_ESTIMATED_END", "MM_TEMPLATE_JOB_ID", "MM_TEMPLATE_JOB_ANCESTOR_IDS",
]


def env_at(execution, path):
    return job_environment(execution, execution.vertex_by_path(path))


def test_worked_example_of_nested_expansions():
    grandchild_root = jobnet("grandchild_root", jobnet("jobnet31", job("job311", "env.sh")))
    child_root2 = jobnet("child_root2", jobnet("jobnet21", expansion("grandchild_root")))
    top = jobnet("expansion_jobnet_99_4_1", expansion("child_root2"), server_name="test_server1")
    execution = instantiate(definitions(top, child_root2, grandchild_root),
                            "expansion_jobnet_99_4_1", execution_id="5a1b2c3d4e5f60718293a4b5",
                            new_id=counter_ids())
    path = "/expansion_jobnet_99_4_1/child_root2/jobnet21/grandchild_root/jobnet31/job311"
    by_path = execution.vertex_by_path
    r = execution.root.id
    c2 = by_path("/expansion_jobnet_99_4_1/child_root2").id
    j21 = by_path("/expansion_jobnet_99_4_1/child_root2/jobnet21").id
    g = by_path("/expansion_jobnet_99_4_1/child_root2/jobnet21/grandchild_root").id
    j31 = by_path("/expansion_jobnet_99_4_1/child_root2/jobnet21/grandchild_root/jobnet31").id
    j = by_path(path).id
    t_g = grandchild_root.id
    t_j31 = grandchild_root.children[0].id
    t_j = grandchild_root.children[0].children[0].id
    assert len({r, c2, j21, g, j31, j, t_g, t_j31, t_j}) == 9

    env = env_at(execution, path)
    assert list(env) == TENGINE_ORDER
    assert env["MM_ACTUAL_JOB_NAME_PATH"] == path
    assert env["MM_FULL_ACTUAL_JOB_ANCESTOR_IDS"] == f"{r};{c2};{j21};{g};{j31}"
    assert env["MM_ACTUAL_JOB_ANCESTOR_IDS"] == f"{g};{j31}"
    assert env["MM_ROOT_JOBNET_ID"] == r
    assert env["MM_TARGET_JOBNET_ID"] == j31
    assert env["MM_ACTUAL_JOB_ID"] == j
    assert env["MM_TEMPLATE_JOB_ID"] == t_j
    assert env["MM_TEMPLATE_JOB_ANCESTOR_IDS"] == f"{t_g};{t_j31}"
    assert env["MM_SERVER_NAME"] == "test_server1"
    assert env["MM_SCHEDULE_ID"] == "5a1b2c3d4e5f60718293a4b5"
    assert env["MM_ACTUAL_JOB_SECURITY_TOKEN"] == ""
    assert env["MM_SCHEDULE_ESTIMATED_TIME"] == ""
    assert env["MM_SCHEDULE_ESTIMATED_END"] == ""


def jobnet1048():
    return jobnet("jobnet1048", jobnet("jobnet1048_2", job("job1", "env.sh")),
                  finally_(job("jobnet1048_finally", "env.sh")))


def test_without_expansion_actual_and_full_ancestors_are_the_same():
    execution = instantiate(definitions(jobnet1048()), "jobnet1048")
    env = env_at(execution, "/jobnet1048/jobnet1048_2/job1")
    sub = execution.vertex_by_path("/jobnet1048/jobnet1048_2")
    assert env["MM_ACTUAL_JOB_ANCESTOR_IDS"] == env["MM_FULL_ACTUAL_JOB_ANCESTOR_IDS"]
    assert env["MM_ACTUAL_JOB_ANCESTOR_IDS"].count(";") == 1
    assert env["MM_FULL_ACTUAL_JOB_ANCESTOR_IDS"] == f"{execution.root.id};{sub.id}"
    assert env["MM_TARGET_JOBNET_ID"] == sub.id


def test_finally_job_counts_finally_as_an_ancestor():
    execution = instantiate(definitions(jobnet1048()), "jobnet1048")
    env = env_at(execution, "/jobnet1048/finally/jobnet1048_finally")
    fin = execution.vertex_by_path("/jobnet1048/finally")
    expected = f"{execution.root.id};{fin.id}"
    assert env["MM_ACTUAL_JOB_ANCESTOR_IDS"] == expected
    assert env["MM_FULL_ACTUAL_JOB_ANCESTOR_IDS"] == expected
    assert env["MM_ACTUAL_JOB_NAME_PATH"] == "/jobnet1048/finally/jobnet1048_finally"


def test_expansion_directly_above_the_job():
    jobnet1049_2 = jobnet("jobnet1049_2", job("job1", "env.sh"))
    root = jobnet("jobnet1049", expansion("jobnet1049_2"))
    execution = instantiate(definitions(root, jobnet1049_2), "jobnet1049")
    env = env_at(execution, "/jobnet1049/jobnet1049_2/job1")
    copy = execution.vertex_by_path("/jobnet1049/jobnet1049_2")
    assert ";" not in env["MM_ACTUAL_JOB_ANCESTOR_IDS"]
    assert env["MM_ACTUAL_JOB_ANCESTOR_IDS"] == copy.id
    assert env["MM_FULL_ACTUAL_JOB_ANCESTOR_IDS"] == f"{execution.root.id};{copy.id}"
    assert ";" not in env["MM_TEMPLATE_JOB_ANCESTOR_IDS"]
    assert env["MM_TEMPLATE_JOB_ANCESTOR_IDS"] == jobnet1049_2.id
    assert env["MM_TEMPLATE_JOB_ID"] == jobnet1049_2.children[0].id


def test_job_directly_under_the_root():
    root = jobnet("solo", job("j", "env.sh"))
    execution = instantiate(definitions(root), "solo", estimated_time="30")
    env = env_at(execution, "/solo/j")
    assert env["MM_ACTUAL_JOB_ANCESTOR_IDS"] == execution.root.id
    assert env["MM_FULL_ACTUAL_JOB_ANCESTOR_IDS"] == execution.root.id
    assert env["MM_TEMPLATE_JOB_ANCESTOR_IDS"] == root.id
    assert env["MM_SCHEDULE_ESTIMATED_TIME"] == "30"
    assert env["MM_SERVER_NAME"] == ""  # no server anywhere: empty, never "None"
    assert "MM_HADOOP_JOBS" not in env


def test_hadoop_job_run_lists_its_hadoop_jobs_with_literal_escapes():
    root = jobnet("main", hadoop_job_run("hjr", "hadoop.sh", hadoop_job("hj1"),
                                         hadoop_job("hj2")))
    execution = instantiate(definitions(root), "main")
    env = env_at(execution, "/main/hjr")
    hj1 = execution.vertex_by_path("/main/hjr/hj1").id
    hj2 = execution.vertex_by_path("/main/hjr/hj2").id
    assert list(env) == [*TENGINE_ORDER, "MM_HADOOP_JOBS"]
    assert env["MM_HADOOP_JOBS"] == f"hj1\\t{hj1}\\nhj2\\t{hj2}\\n"
    assert "\t" not in env["MM_HADOOP_JOBS"] and "\n" not in env["MM_HADOOP_JOBS"]


def test_only_jobs_of_this_execution_have_an_environment():
    execution = instantiate(definitions(jobnet1048()), "jobnet1048")
    other = instantiate(definitions(jobnet1048()), "jobnet1048")
    with pytest.raises(ValueError, match=r"/jobnet1048/jobnet1048_2 is a jobnet, not a job"):
        env_at(execution, "/jobnet1048/jobnet1048_2")
    with pytest.raises(ValueError, match=r"is not a vertex of execution"):
        job_environment(execution, other.vertex_by_path("/jobnet1048/jobnet1048_2/job1"))


TRICKY = {
    "MM_PLAIN": "5a1b2c3d4e5f60718293a4b5",
    "MM_EMPTY": "",
    "MM_SPACES": "a b  c",
    "MM_QUOTES": "it's \"quoted\"",
    "MM_SHELL": "$HOME `id` $(id) ; && | > *",
    "MM_ESCAPES": "hj1\\tid\\n",
    "MM_UNICODE": "/ジョブネット/ジョブ",
    "MM_NEWLINE": "two\nlines",
}


def test_shell_exports_survive_a_real_shell_unchanged():
    line = shell_exports(TRICKY)
    assert line.startswith("export MM_PLAIN=5a1b2c3d4e5f60718293a4b5 MM_EMPTY='' ")
    # What the remote end does with it: one shell parses the line, then the command runs.
    script = line + " && env -0"
    out = subprocess.run(["sh", "-c", script], capture_output=True, check=True,
                         env={"PATH": "/usr/bin:/bin"}).stdout.decode()
    seen = dict(item.split("=", 1) for item in out.split("\0") if item.startswith("MM_"))
    assert seen == TRICKY


def test_shell_exports_with_the_real_environment_of_a_job():
    execution = instantiate(definitions(jobnet1048()), "jobnet1048")
    env = env_at(execution, "/jobnet1048/jobnet1048_2/job1")
    out = subprocess.run(["bash", "-c", shell_exports(env) + " && env -0"], capture_output=True,
                         check=True, env={"PATH": "/usr/bin:/bin"}).stdout.decode()
    seen = dict(item.split("=", 1) for item in out.split("\0") if item.startswith("MM_"))
    assert seen == env


def test_shell_exports_rejects_bad_names_and_values():
    with pytest.raises(ValueError, match=r"'MM-X' is not a valid shell variable name"):
        shell_exports({"MM-X": "1"})
    with pytest.raises(ValueError, match=r"'A; rm' is not a valid shell variable name"):
        shell_exports({"A; rm": "1"})
    with pytest.raises(TypeError, match=r"value of MM_X must be a string, got int"):
        shell_exports({"MM_X": 1})
    assert shell_exports({}) == ""
