# Tengine's standard test jobnet (tengine_job/examples/0004_retry_one_layer.rb) in the Python DSL:
# j1 -> (j2 || j3) -> j4, then the finally job.
from tengine_min.model.python_dsl import boot_jobs, finally_, job, jobnet

with jobnet("jn0004", server="localhost", credential="ssh_pk"):
    boot_jobs("j1")
    job("j1", "$HOME/t.sh 0 j1", to=["j2", "j3"])
    job("j2", "$HOME/t.sh 0 j2", to="j4")
    job("j3", "$HOME/t.sh 0 j3", to="j4")
    job("j4", "$HOME/t.sh 0 j4")
    with finally_():
        job("jn0004_f", "$HOME/t.sh 0 jn0004_f")
