"""Instantiation of root jobnet templates into execution trees."""

from __future__ import annotations

import dataclasses
import re

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


def jn0004():
    """tengine-facts section 9: j1 -> (j2 || j3) -> j4, finally jn0004_f."""
    return jobnet(
        "jn0004",
        job("j1", "$HOME/j.sh 1", to=["j2", "j3"]),
        job("j2", "$HOME/j.sh 2", to="j4"),
        job("j3", "$HOME/j.sh 3", to="j4"),
        job("j4", "$HOME/j.sh 4"),
        finally_(job("jn0004_f", "$HOME/j.sh f")),
        boot=["j1"], server_name="test_server1", credential_name="test_credential1")


def ids_of(execution, *paths):
    return [execution.vertex_by_path(p).id for p in paths]


def test_fork_join_with_finally_becomes_a_tree_with_resolved_edges():
    root = jn0004()
    execution = instantiate(definitions(root), "jn0004", execution_id="e1",
                            new_id=counter_ids())
    r = execution.root
    assert execution.id == "e1"
    assert (r.kind, r.name, r.name_path, r.parent_id) == ("jobnet", "jn0004", "/jn0004", None)
    assert r.template_id == root.id and r.template_ancestor_ids == []

    children = execution.children(r)
    assert [c.name for c in children] == ["j1", "j2", "j3", "j4", "finally"]
    assert [c.name_path for c in children] == [
        "/jn0004/j1", "/jn0004/j2", "/jn0004/j3", "/jn0004/j4", "/jn0004/finally"]
    assert [c.template_id for c in children] == [n.id for n in root.children]
    assert all(c.template_ancestor_ids == [root.id] for c in children)
    assert all(c.parent_id == r.id for c in children)

    j1, j2, j3, j4 = ids_of(execution, *(f"/jn0004/j{i}" for i in range(1, 5)))
    fin = execution.vertex_by_path("/jn0004/finally")
    assert r.start_ids == [j1]
    assert r.edges == [(j1, j2), (j1, j3), (j2, j4), (j3, j4)]
    assert r.end_ids == [j4]
    assert r.finally_id == fin.id and fin.kind == "finally"
    assert fin.id not in r.start_ids + r.end_ids + [x for e in r.edges for x in e]

    final_job = execution.vertex_by_path("/jn0004/finally/jn0004_f")
    assert fin.start_ids == [final_job.id] and fin.end_ids == [final_job.id]
    assert final_job.template_ancestor_ids == [root.id, root.children[4].id]
    assert [j.name_path for j in execution.jobs()] == [
        "/jn0004/j1", "/jn0004/j2", "/jn0004/j3", "/jn0004/j4", "/jn0004/finally/jn0004_f"]
    assert execution.vertex_by_path("/jn0004/j2").script == "$HOME/j.sh 2"
    assert {(j.server_name, j.credential_name) for j in execution.jobs()} == {
        ("test_server1", "test_credential1")}


def test_every_vertex_gets_a_fresh_unique_runtime_id():
    root = jn0004()
    first = instantiate(definitions(root), "jn0004")
    second = instantiate(definitions(root), "jn0004")
    assert all(re.fullmatch(r"[0-9a-f]{24}", i) for i in [first.id, *first.vertices])
    assert len(first.vertices) == 7  # root, 4 jobs, finally, its job
    assert not set(first.vertices) & set(second.vertices)
    assert first.id != second.id
    template_ids = {n.id for n in root.walk()}
    assert not template_ids & set(first.vertices)
    assert {v.template_id for v in first.vertices.values()} == template_ids


def test_vertices_are_in_tree_order_and_walk_gives_depths():
    execution = instantiate(definitions(jn0004()), "jn0004", new_id=counter_ids())
    walked = [(v.name_path, depth) for v, depth in execution.walk()]
    assert walked == [(v.name_path, v.name_path.count("/") - 1)
                      for v in execution.vertices.values()]
    assert walked[-2:] == [("/jn0004/finally", 1), ("/jn0004/finally/jn0004_f", 2)]


def test_without_boot_jobs_children_run_in_declaration_order():
    root = jobnet("seq", job("a", "a.sh"), finally_(job("f", "f.sh")), job("b", "b.sh"),
                  job("c", "c.sh"))
    execution = instantiate(definitions(root), "seq", new_id=counter_ids())
    a, b, c = ids_of(execution, "/seq/a", "/seq/b", "/seq/c")
    assert execution.root.start_ids == [a]
    assert execution.root.edges == [(a, b), (b, c)]
    assert execution.root.end_ids == [c]
    assert [v.name for v in execution.children(execution.root)] == ["a", "finally", "b", "c"]


def test_empty_jobnet_has_no_edges():
    execution = instantiate(definitions(jobnet("empty")), "empty")
    assert (execution.root.child_ids, execution.root.start_ids, execution.root.edges,
            execution.root.end_ids) == ([], [], [], [])
    assert execution.jobs() == []


def test_server_and_credential_come_from_the_nearest_runtime_ancestor():
    shared = jobnet("shared", job("s1", "s.sh"), jobnet("inner", job("s2", "s.sh"),
                                                         server_name="inner_server"),
                    credential_name="shared_cred")
    root = jobnet("main",
                  jobnet("sub", expansion("shared"), job("own", "o.sh", server_name="job_srv"),
                         server_name="sub_srv"),
                  job("plain", "p.sh"),
                  server_name="root_srv", credential_name="root_cred")
    execution = instantiate(definitions(root, shared), "main")

    def resolved(path):
        v = execution.vertex_by_path(path)
        return v.server_name, v.credential_name

    assert resolved("/main/plain") == ("root_srv", "root_cred")
    assert resolved("/main/sub/own") == ("job_srv", "root_cred")
    # Inside the copy the copied root's own options apply; what it leaves unset comes from the
    # runtime ancestors (sub), not from nowhere.
    assert resolved("/main/sub/shared") == ("sub_srv", "shared_cred")
    assert resolved("/main/sub/shared/s1") == ("sub_srv", "shared_cred")
    assert resolved("/main/sub/shared/inner/s2") == ("inner_server", "shared_cred")
    # Run on its own, the same template has no server at all.
    alone = instantiate(definitions(root, shared), "shared")
    assert alone.vertex_by_path("/shared/s1").server_name is None


def test_killing_rules_follow_the_runtime_tree():
    shared = jobnet("shared", job("inherits", "i.sh"),
                    killing_signals=["HUP"], killing_signal_interval=1)
    root = jobnet(
        "main",
        job("default_pair", "d.sh"),
        jobnet("sub",
               job("interval_only", "i.sh", killing_signal_interval=99),
               job("signals_only", "s.sh", killing_signals="TERM"),
               job("both", "b.sh", killing_signals=["INT", "KILL"], killing_signal_interval=2),
               expansion("shared"),
               killing_signals=["TERM", "KILL"], killing_signal_interval=10))
    bare = instantiate(definitions(jobnet("bare", job("j", "j.sh"))), "bare")
    assert (bare.vertex_by_path("/bare/j").killing_signals,
            bare.vertex_by_path("/bare/j").killing_signal_interval) == (["KILL"], 5)

    execution = instantiate(definitions(root, shared), "main")

    def pair(path):
        v = execution.vertex_by_path(path)
        return v.killing_signals, v.killing_signal_interval

    assert pair("/main/default_pair") == (["KILL"], 5)
    # An interval alone does not count: the parent's pair applies (Node.killing).
    assert pair("/main/sub/interval_only") == (["TERM", "KILL"], 10)
    assert pair("/main/sub/signals_only") == (["TERM"], 5)
    assert pair("/main/sub/both") == (["INT", "KILL"], 2)
    assert pair("/main/sub/shared/inherits") == (["HUP"], 1)
    # Same answers as the template model where no expansion is involved.
    for template_job, path in [(root.children[1].children[0], "/main/sub/interval_only"),
                               (root.children[1].children[1], "/main/sub/signals_only")]:
        signals, interval = template_job.killing
        assert pair(path) == (list(signals), interval)


def test_description_defaults_to_the_name_and_preparation_is_kept():
    root = jobnet("main", job("j1", "a.sh", description="first job", preparation="export X=1"),
                  job("j2", "b.sh"), description="the main jobnet")
    execution = instantiate(definitions(root), "main")
    j1 = execution.vertex_by_path("/main/j1")
    j2 = execution.vertex_by_path("/main/j2")
    assert execution.root.description == "the main jobnet"
    assert (j1.description, j1.preparation) == ("first job", "export X=1")
    assert (j2.description, j2.preparation) == ("j2", None)


def test_preparation_that_is_not_a_string_is_a_clear_error():
    root = jobnet("main", job("j1", "a.sh", preparation=lambda: "x"))
    with pytest.raises(InstantiationError, match=r"preparation of /main/j1 .*string"):
        instantiate(definitions(root), "main")


def test_expansion_is_inlined_under_the_referenced_roots_name():
    child = jobnet("child", job("c1", "c1.sh"), job("c2", "c2.sh"),
                   finally_(job("cf", "cf.sh")), description="child root")
    root = jobnet("main", job("before", "b.sh", to="child"), expansion("child", to="after"),
                  job("after", "a.sh"), boot=["before"])
    execution = instantiate(definitions(root, child), "main", new_id=counter_ids())

    copy = execution.vertex_by_path("/main/child")
    assert (copy.kind, copy.name, copy.was_expansion) == ("jobnet", "child", True)
    assert copy.template_id == child.id and copy.template_ancestor_ids == []
    assert copy.description == "child root"
    # The expansion node's own `to` gives the edges around it in its parent.
    before, after = ids_of(execution, "/main/before", "/main/after")
    assert execution.root.edges == [(before, copy.id), (copy.id, after)]
    # Inside: the referenced root's children, edges and finally, with its template ids.
    c1, c2 = ids_of(execution, "/main/child/c1", "/main/child/c2")
    assert [v.name for v in execution.children(copy)] == ["c1", "c2", "finally"]
    assert (copy.start_ids, copy.edges, copy.end_ids) == ([c1], [(c1, c2)], [c2])
    assert copy.finally_id == execution.vertex_by_path("/main/child/finally").id
    cf = execution.vertex_by_path("/main/child/finally/cf")
    assert cf.template_id == child.children[2].children[0].id
    assert cf.template_ancestor_ids == [child.id, child.children[2].id]
    assert [v.was_expansion for v in execution.vertices.values()].count(True) == 1


def test_expanding_one_root_twice_gives_two_independent_copies():
    leaf = jobnet("leaf", job("x", "x.sh"))
    root = jobnet("main", jobnet("a", expansion("leaf")), jobnet("b", expansion("leaf")))
    execution = instantiate(definitions(root, leaf), "main")
    xa = execution.vertex_by_path("/main/a/leaf/x")
    xb = execution.vertex_by_path("/main/b/leaf/x")
    assert xa.id != xb.id
    assert xa.template_id == xb.template_id == leaf.children[0].id
    assert xa.parent_id != xb.parent_id


def test_hadoop_job_run_holds_hadoop_jobs_with_the_fixed_map_reduce_box():
    root = jobnet("main", hadoop_job_run("hjr", "$HOME/hadoop.sh", hadoop_job("hj1"),
                                         hadoop_job("hj2"), server_name="hadoop_srv"))
    execution = instantiate(definitions(root), "main", new_id=counter_ids())
    hjr = execution.vertex_by_path("/main/hjr")
    assert (hjr.kind, hjr.script, hjr.runs_script) == ("hadoop_job_run", "$HOME/hadoop.sh", True)
    hj1, hj2 = ids_of(execution, "/main/hjr/hj1", "/main/hjr/hj2")
    assert (hjr.start_ids, hjr.edges, hjr.end_ids) == ([hj1], [(hj1, hj2)], [hj2])
    for name in ("hj1", "hj2"):
        box = execution.vertex_by_path(f"/main/hjr/{name}")
        phases = execution.children(box)
        assert [(p.name, p.kind) for p in phases] == [("Map", "map_phase"),
                                                      ("Reduce", "reduce_phase")]
        assert box.start_ids == box.end_ids == [p.id for p in phases]  # run in parallel
        assert box.edges == [] and box.script is None and not box.runs_script
        assert all(p.script is None and p.child_ids == [] for p in phases)
        assert all(p.name_path == f"/main/hjr/{name}/{p.name}" for p in phases)
        assert all(p.template_id is None for p in phases)
        assert all(p.template_ancestor_ids == [root.id, root.children[0].id, box.template_id]
                   for p in phases)
        assert {p.server_name for p in phases} == {"hadoop_srv"}
    assert [j.name_path for j in execution.jobs()] == ["/main/hjr"]


def test_unknown_root_is_a_clear_error():
    with pytest.raises(InstantiationError, match=r"no root jobnet named 'nope' \(known: a, b\)"):
        instantiate(definitions(jobnet("b"), jobnet("a")), "nope")


def test_self_expansion_is_a_loop_error():
    root = jobnet("self_ref", job("j", "j.sh"), expansion("self_ref"))
    with pytest.raises(InstantiationError,
                       match=r"expansion loop: self_ref -> self_ref "
                             r"\(expansion at /self_ref/self_ref, test_defs.py:1\)"):
        instantiate(definitions(root), "self_ref")


def test_mutual_expansion_is_a_loop_error_naming_the_chain():
    a = jobnet("a", expansion("b"))
    b = jobnet("b", jobnet("inner", expansion("a")))
    with pytest.raises(InstantiationError,
                       match=r"expansion loop: a -> b -> a \(expansion at /a/b/inner/a,"):
        instantiate(definitions(a, b), "a")


def test_loop_reached_from_outside_names_only_the_loop():
    r = jobnet("r", expansion("a"))
    a = jobnet("a", expansion("b"))
    b = jobnet("b", expansion("c"))
    c = jobnet("c", expansion("a"))
    with pytest.raises(InstantiationError, match=r"expansion loop: a -> b -> c -> a \(expan"
                                                 r"sion at /r/a/b/c/a"):
        instantiate(definitions(r, a, b, c), "r")


def test_expansion_of_a_missing_root_names_it_and_where():
    root = jobnet("main", jobnet("sub", expansion("u1pj1_pattern_nothing")))
    with pytest.raises(InstantiationError,
                       match=r"expansion of missing root jobnet 'u1pj1_pattern_nothing' "
                             r"\(expansion at /main/sub/u1pj1_pattern_nothing, test_defs.py:1\)"):
        instantiate(definitions(root), "main")


def test_edge_to_a_name_that_is_no_child_is_a_clear_error():
    root = jobnet("main", job("j1", "a.sh", to="ghost"), boot=["j1"])
    with pytest.raises(InstantiationError, match=r"'ghost' is named by boot_jobs or `to` in "
                                                 r"/main .*but is not a child there"):
        instantiate(definitions(root), "main")


def test_duplicate_child_names_are_a_clear_error():
    root = jobnet("main", job("j1", "a.sh"), job("j1", "b.sh"))
    with pytest.raises(InstantiationError, match=r"two children named 'j1' in /main"):
        instantiate(definitions(root), "main")


def test_vertex_by_path_names_what_is_missing():
    execution = instantiate(definitions(jn0004()), "jn0004")
    with pytest.raises(KeyError, match=r"no vertex at '/jn0004/zz'"):
        execution.vertex_by_path("/jn0004/zz")


def test_tree_is_plain_data_without_object_cycles():
    leaf = jobnet("leaf", job("x", "x.sh"))
    execution = instantiate(definitions(jobnet("main", expansion("leaf")), leaf), "main")
    for vertex in execution.vertices.values():
        row = dataclasses.asdict(vertex)  # would recurse without end on a cycle
        assert all(isinstance(value, (str, int, float, bool, list, type(None)))
                   for value in row.values())
        assert all(isinstance(i, str) for i in row["child_ids"])


def test_ten_thousand_jobs_and_deep_nesting():
    # 100 sub-jobnets of 100 jobs each, the sub-jobnets fanning out from a first job.
    subs = [jobnet(f"sub{i}", *(job(f"j{k}", f"run.sh {i} {k}") for k in range(100)))
            for i in range(100)]
    root = jobnet("big", job("first", "first.sh", to=[s.name for s in subs]), *subs,
                  boot=["first"])
    execution = instantiate(definitions(root), "big")
    assert len(execution.jobs()) == 10_001
    assert len(execution.root.edges) == 100 and len(execution.root.end_ids) == 100
    assert execution.vertex_by_path("/big/sub99/j99").script == "run.sh 99 99"

    # Nesting far deeper than Python's recursion limit.
    node = jobnet("n0", job("deepest", "d.sh"))
    for depth in range(1, 3000):
        node = jobnet(f"n{depth}", node)
    deep = instantiate(definitions(node), "n2999")
    (deepest,) = deep.jobs()
    assert deepest.name_path.count("/") == 3001
    assert len(deepest.template_ancestor_ids) == 3000
    assert len(deep.ancestors(deepest)) == 3000
