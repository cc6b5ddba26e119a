# Every construct of the DSL once, with the option aliases. The YAML twin is
# tests/data/yaml/all_constructs.yaml; the tests check both read into the same model.
from tengine_min.model.python_dsl import (
    auto_sequence,
    boot_jobs,
    expansion,
    finally_,
    hadoop_job,
    hadoop_job_run,
    job,
    jobnet,
)

with jobnet("main", "the main jobnet", instance_name="vm1", user_group_credential_name="cred1",
            killing_signals=["TERM", "KILL"], killing_signal_interval=30):
    boot_jobs("prepare", "sub")
    job("prepare", "prepare the data", "$HOME/prepare.sh", to=["hadoop", "other"],
        preparation="export STAGE=1")
    with jobnet("sub", caption="a sub-jobnet", server_name="vm2", to="hadoop"):
        auto_sequence()
        job("s1", "$HOME/s1.sh", credential_name="cred2")
        job("s2", "$HOME/s2.sh", killing_signals="INT")
    with hadoop_job_run("hadoop", "run hadoop", "$HOME/hadoop.sh", vm_instance_name="vm3",
                        redirect_to="other"):
        hadoop_job("hj1")
        hadoop_job("hj2")
    expansion("other", description="the other root")
    with finally_():
        boot_jobs("cleanup")
        job("cleanup", "$HOME/cleanup.sh")

with jobnet("other"):
    auto_sequence()
    job("o1", "$HOME/o1.sh")
