"""expansion_missing in the Python DSL: "nightly_loadd" is a typo of the root "nightly_load"."""

from tengine_min.model.python_dsl import expansion, job, jobnet

with jobnet("nightly_load", server="local", credential="local"):
    job("load", "$TENGINE_EXAMPLES/scripts/sleep_and_exit.sh 1 0")

with jobnet("invalid_python_expansion", server="local", credential="local"):
    expansion("nightly_loadd")
