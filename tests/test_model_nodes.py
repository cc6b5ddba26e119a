"""The shared template model: option folding, inheritance, sequencing and Tengine's edge rules."""

from tengine_min.model.graph import plan_edges
from tengine_min.model.nodes import (
    FINALLY,
    JOB,
    JOBNET,
    Node,
    Sequencing,
    Where,
    new_id,
    set_options,
)

W = Where("t.rb", 1)


def jobnet(name, *children, boot=None, **options):
    node = Node(JOBNET, name, W)
    set_options(node, options, W)
    if boot is not None:
        node.sequencing.append(Sequencing("boot_jobs", W, list(boot)))
    for child in children:
        node.add(child)
    return node


def job(name, to=(), **options):
    node = Node(JOB, name, W, script=f"/bin/{name}")
    set_options(node, dict(options, to=list(to)), W)
    return node


def test_aliases_fold_onto_canonical_options_and_unknown_ones_are_kept():
    node = Node(JOB, "j", W)
    set_options(node, {"instance_name": "s1", "user_group_credential_name": "c1",
                       "caption": "cap", "redirect_to": "j2", "colour": "red"}, W)
    assert node.options == {"server_name": "s1", "credential_name": "c1"}
    assert node.description == "cap" and node.to == ["j2"]
    assert [u.key for u in node.unknown_options] == ["colour"]


def test_server_and_credential_come_from_the_nearest_ancestor():
    inner = jobnet("inner", job("j1"), server_name="s2")
    root = jobnet("root", inner, job("j2"), server_name="s1", credential_name="c1")
    assert inner.children[0].server_name == "s2"
    assert root.children[1].server_name == "s1"
    assert inner.children[0].credential_name == "c1"
    assert inner.children[0].path == "/root/inner/j1"


def test_killing_interval_is_honoured_only_beside_its_signals():
    j = job("j", killing_signal_interval=30)
    root = jobnet("root", j, killing_signals=["INT", "KILL"], killing_signal_interval=10)
    assert j.killing == (("INT", "KILL"), 10)
    assert jobnet("r2", job("k")).children[0].killing == (("KILL",), 5)
    assert root.killing == (("INT", "KILL"), 10)


def test_without_boot_jobs_children_chain_in_order_and_finally_is_left_out():
    fin = Node(FINALLY, "finally", W)
    root = jobnet("root", job("a", to=["c"]), fin, job("b"), job("c"))
    plan = plan_edges(root)
    assert plan.mode == "sequence"
    assert plan.start == ["a"] and plan.end == ["c"]
    assert plan.edges == [("a", "b"), ("b", "c")]


def test_boot_jobs_use_to_edges_with_fork_join_and_end_points():
    root = jobnet("jn0004", job("j1", to=["j2", "j3"]), job("j2", to=["j4"]),
                  job("j3", to=["j4"]), job("j4"), boot=["j1"])
    plan = plan_edges(root)
    assert plan.mode == "boot"
    assert plan.start == ["j1"]
    assert sorted(plan.edges) == [("j1", "j2"), ("j1", "j3"), ("j2", "j4"), ("j3", "j4")]
    assert plan.end == ["j4"]


def test_auto_sequence_declared_after_boot_jobs_wins_as_in_tengine():
    root = jobnet("r", job("a"), job("b"), boot=["b"])
    root.sequencing.append(Sequencing("auto_sequence", W))
    assert plan_edges(root).mode == "sequence"


def test_ids_are_24_hex_and_unique():
    ids = {new_id() for _ in range(10_000)}
    assert len(ids) == 10_000
    assert all(len(i) == 24 and int(i, 16) >= 0 for i in ids)
