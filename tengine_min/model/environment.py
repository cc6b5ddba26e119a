"""The MM_* variables a job's script sees, with Tengine's names, order and value rules
(tengine-facts section 4; every rule and decision is written out in docs/environment.md)."""

from __future__ import annotations

import re
import shlex

from .execution import HADOOP_JOB, HADOOP_JOB_RUN, Execution, Vertex

# Tengine wrote MM_HADOOP_JOBS as "name\\tid\\n" inside double quotes, which bash does not
# expand: scripts saw a backslash followed by t or n, never a tab or a newline.
HADOOP_FIELD_SEPARATOR = "\\t"
HADOOP_ENTRY_TERMINATOR = "\\n"

_SHELL_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


def job_environment(execution: Execution, job: Vertex) -> dict[str, str]:
    """The MM_* variables for `job`, in Tengine's order. Raises ValueError when `job` does not
    run a script or is not a vertex of `execution`."""
    if execution.vertices.get(job.id) is not job:
        raise ValueError(f"{job.name_path} (id {job.id}) is not a vertex of execution "
                         f"{execution.id}")
    if not job.runs_script:
        raise ValueError(f"{job.name_path} is a {job.kind}, not a job that runs a script: "
                         f"it has no MM_* environment")
    ancestors = execution.ancestors(job)
    env = {
        "MM_SERVER_NAME": job.server_name or "",
        "MM_ROOT_JOBNET_ID": execution.root.id,
        "MM_TARGET_JOBNET_ID": job.parent_id or "",
        "MM_ACTUAL_JOB_ID": job.id,
        "MM_ACTUAL_JOB_ANCESTOR_IDS": ";".join(v.id for v in _since_last_expansion(ancestors)),
        "MM_FULL_ACTUAL_JOB_ANCESTOR_IDS": ";".join(v.id for v in ancestors),
        "MM_ACTUAL_JOB_NAME_PATH": job.name_path,
        "MM_ACTUAL_JOB_SECURITY_TOKEN": "",  # always empty in Tengine (a TODO there)
        "MM_SCHEDULE_ID": execution.id,
        "MM_SCHEDULE_ESTIMATED_TIME": execution.estimated_time,
        # Tengine computes it from the execution's started_at, which is never set when the
        # environment is built; we build it before any start time exists either.
        "MM_SCHEDULE_ESTIMATED_END": "",
        "MM_TEMPLATE_JOB_ID": job.template_id or "",
        "MM_TEMPLATE_JOB_ANCESTOR_IDS": ";".join(job.template_ancestor_ids),
    }
    if job.kind == HADOOP_JOB_RUN:
        env["MM_HADOOP_JOBS"] = "".join(
            f"{child.name}{HADOOP_FIELD_SEPARATOR}{child.id}{HADOOP_ENTRY_TERMINATOR}"
            for child in execution.children(job) if child.kind == HADOOP_JOB)
    return env


def _since_last_expansion(ancestors: list[Vertex]) -> list[Vertex]:
    """The ancestors from the nearest expansion copy (included) down; all of them if none."""
    for index in range(len(ancestors) - 1, -1, -1):
        if ancestors[index].was_expansion:
            return ancestors[index:]
    return ancestors


def shell_exports(env: dict[str, str]) -> str:
    """`export A='...' B='...'`: one shell command setting `env`, every value quoted with
    shlex.quote so it survives an ssh command line unchanged. Empty `env` gives "" (a bare
    `export` would list the whole environment instead). ValueError for a name that is no shell
    variable name, TypeError for a value that is not a string."""
    for name, value in env.items():
        if not _SHELL_NAME.match(name):
            raise ValueError(f"{name!r} is not a valid shell variable name")
        if not isinstance(value, str):
            raise TypeError(f"value of {name} must be a string, got {type(value).__name__}")
    if not env:
        return ""
    return "export " + " ".join(f"{name}={shlex.quote(value)}" for name, value in env.items())
