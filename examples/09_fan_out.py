"""A fan-out and fan-in written in the Python DSL: the loop makes the parallel jobs.

[S]-->[prepare]-->|-->[part1]-->|-->[merge]-->[E]     finally: [cleanup]
                  |-->[part2]-->|
                  |-->[part3]-->|
"""

from tengine_min.model.python_dsl import boot_jobs, finally_, job, jobnet

SCRIPTS = "$TENGINE_EXAMPLES/scripts"
PARTS = [f"part{i}" for i in range(1, 4)]

with jobnet("example_python_fan_out", server="local", credential="local"):
    boot_jobs("prepare")
    job("prepare", f"{SCRIPTS}/sleep_and_exit.sh 1 0", to=PARTS)
    for seconds, part in enumerate(PARTS, start=1):
        job(part, f"{SCRIPTS}/sleep_and_exit.sh {seconds} 0", to="merge")
    job("merge", f"{SCRIPTS}/sleep_and_exit.sh 1 0")
    with finally_():
        job("cleanup", f"{SCRIPTS}/sleep_and_exit.sh 0 0")
