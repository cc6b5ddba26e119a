"""The plain-text tree printer."""

from __future__ import annotations

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
from tengine_min.model.instantiate import InstantiationError, instantiate
from tengine_min.model.render import render_execution, render_template


def sample():
    child = jobnet("child", job("c1", "c1.sh"), finally_(job("cf", "cf.sh")),
                   credential_name="child_cred")
    root = jobnet("jn0004",
                  job("j1", "$HOME/j.sh 1", to=["j2", "j3"]),
                  job("j2", "j.sh 2", to="j4"),
                  job("j3", "j.sh 3", to="child"),
                  expansion("child", to="j4"),
                  job("j4", "j.sh 4"),
                  hadoop_job_run("hjr", "h.sh", hadoop_job("hj1")),
                  finally_(job("f", "f.sh")),
                  boot=["j1"], server_name="s1")
    return definitions(root, child)


EXPECTED = """\
jn0004 (jobnet)
  j1 (job)  script: $HOME/j.sh 1  server: s1  credential: -  -> j2, j3
  j2 (job)  script: j.sh 2  server: s1  credential: -  -> j4
  j3 (job)  script: j.sh 3  server: s1  credential: -  -> child
  child (jobnet)  [expansion of child]  -> j4
    c1 (job)  script: c1.sh  server: s1  credential: child_cred
    finally (finally)
      cf (job)  script: cf.sh  server: s1  credential: child_cred
  j4 (job)  script: j.sh 4  server: s1  credential: -
  hjr (hadoop_job_run)  script: h.sh  server: s1  credential: -
    hj1 (hadoop_job)
      Map (map_phase)
      Reduce (reduce_phase)
  finally (finally)
    f (job)  script: f.sh  server: s1  credential: -
"""


def test_template_tree_with_expansion_finally_and_hadoop_box():
    assert render_template(sample(), "jn0004") == EXPECTED


def test_template_rendering_is_deterministic_and_id_free():
    defs = sample()
    assert render_template(defs, "jn0004") == render_template(defs, "jn0004")
    assert "id:" not in render_template(defs, "jn0004")


def test_template_ids_on_request():
    defs = sample()
    root, child = defs.roots
    lines = render_template(defs, "jn0004", show_ids=True).splitlines()
    assert lines[0] == f"jn0004 (jobnet)  id: {root.id}"
    assert lines[1].endswith(f"-> j2, j3  id: {root.children[0].id}")
    # The inlined copy shows the referenced root template's ids.
    assert lines[4].endswith(f"[expansion of child]  -> j4  id: {child.id}")
    assert lines[5].endswith(f"id: {child.children[0].id}")
    assert lines[11].startswith("      Map (map_phase)  id: -")
    assert [line.split("  id: ")[0] for line in lines] == EXPECTED.splitlines()


def test_execution_tree_shows_runtime_ids():
    execution = instantiate(sample(), "jn0004", new_id=counter_ids())
    text = render_execution(execution)
    ids = [line.rsplit("  id: ", 1)[1] for line in text.splitlines()]
    assert ids == list(execution.vertices)
    assert render_execution(execution, show_ids=False) == EXPECTED


def test_rendering_an_expansion_loop_is_the_instantiation_error():
    defs = definitions(jobnet("a", expansion("b")), jobnet("b", expansion("a")))
    with pytest.raises(InstantiationError, match=r"expansion loop: a -> b -> a"):
        render_template(defs, "a")
