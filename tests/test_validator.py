"""Unit tests of the validator: every problem code, built from nodes directly (no reader)."""

from __future__ import annotations

import pytest

from tengine_min.model.loops import strongly_connected
from tengine_min.model.nodes import (
    EXPANSION,
    FINALLY,
    HADOOP_JOB,
    HADOOP_JOB_RUN,
    JOB,
    JOBNET,
    Definitions,
    Node,
    Sequencing,
    UnknownOption,
    Where,
)
from tengine_min.model.problems import CODES, ERROR, WARNING, Problem
from tengine_min.model.validator import errors, runnable_roots, validate

# -- building definitions as a reader would ----------------------------------------------------


def jobnet(name, *children, boot=None, auto=False, kind=JOBNET, to=(), script=None, **options):
    """A jobnet (or another container kind) with its children; `boot` adds boot_jobs(...),
    `auto` adds an auto_sequence call. Lines are given later by `defs`."""
    node = Node(kind, name, Where("?"), to=list(to), options=dict(options), script=script)
    if boot is not None:
        node.sequencing.append(Sequencing("boot_jobs", Where("?"), list(boot)))
    if auto:
        node.sequencing.append(Sequencing("auto_sequence", Where("?")))
    for child in children:
        node.add(child)
    return node


def job(name, script="$HOME/work.sh", to=(), **options):
    return Node(JOB, name, Where("?"), script=script, to=list(to), options=dict(options))


def expansion(name, to=()):
    return Node(EXPANSION, name, Where("?"), to=list(to))


def final(*children, **kw):
    return jobnet(FINALLY, *children, kind=FINALLY, **kw)


def hadoop_job_run(name, *children, script="hadoop_job_run.sh", **kw):
    return jobnet(name, *children, kind=HADOOP_JOB_RUN, script=script, **kw)


def hadoop_job(name, to=()):
    return Node(HADOOP_JOB, name, Where("?"), to=list(to))


def defs(*roots, file="t.rb") -> Definitions:
    """Number every node in declaration order, as a file would: the jobnet line, then its
    boot_jobs/auto_sequence lines, then its children."""
    line = 0

    def where():
        nonlocal line
        line += 1
        return Where(file, line)

    stack = list(reversed(roots))
    while stack:
        node = stack.pop()
        node.where = where()
        node.unknown_options = [UnknownOption(u.key, node.where) for u in node.unknown_options]
        for seq in node.sequencing:
            seq.where = where()
        stack.extend(reversed(node.children))
    return Definitions(roots=list(roots), files=[file])


def only(problems: list[Problem], code: str) -> Problem:
    """The one problem of the list, which must have `code`."""
    assert [p.code for p in problems] == [code], [str(p) for p in problems]
    return problems[0]


def codes(problems: list[Problem]) -> list[str]:
    return [p.code for p in problems]


# -- valid definitions ---------------------------------------------------------------------


def test_jn0004_fork_join_finally_is_valid():
    # tengine-facts section 9: j1 -> (j2 || j3) -> j4, finally jn0004_f
    d = defs(jobnet("jn0004",
                    job("j1", to=["j2", "j3"]), job("j2", to=["j4"]), job("j3", to=["j4"]),
                    job("j4"), final(job("jn0004_f")),
                    boot=["j1"], server_name="local", credential_name="local"))
    assert validate(d) == []
    assert runnable_roots(d, validate(d)) == {"jn0004"}


def test_nested_expansion_example_is_valid():
    # tengine-facts section 4: expansion_jobnet_99_4_1 -> child_root2 -> grandchild_root
    d = defs(jobnet("expansion_jobnet_99_4_1", expansion("child_root2")),
             jobnet("child_root2", jobnet("jobnet21", expansion("grandchild_root"))),
             jobnet("grandchild_root", jobnet("jobnet31", job("job311"))))
    assert validate(d) == []
    assert runnable_roots(d, []) == {"expansion_jobnet_99_4_1", "child_root2", "grandchild_root"}


def test_hadoop_job_run_and_empty_jobnet_are_valid():
    d = defs(jobnet("jobnet1021", job("job1"),
                    hadoop_job_run("hadoop_job_run1", hadoop_job("hadoop_job1"),
                                   hadoop_job("hadoop_job2")),
                    job("job3"), auto=True),
             jobnet("empty", auto=True), jobnet("empty_boot", boot=[]))
    assert validate(d) == []


def test_finally_in_a_jobnet_inside_finally_and_same_name_in_other_layers_are_valid():
    d = defs(jobnet("r", job("a"), jobnet("sub", job("a")),
                    final(jobnet("inner", job("a"), final(job("f"))))))
    assert validate(d) == []


# -- cycle -----------------------------------------------------------------------------------


def test_cycle_tengine_01_01_26_message_line_and_path():
    d = defs(jobnet("jobnet1051", job("job1", to=["job2"]), job("job2", to=["job1"]),
                    boot=["job1"]), file="01_01_26_loop_job.rb")
    p = only(validate(d), "cycle")
    assert p.message.startswith(
        "circular dependency in jobnet '/jobnet1051': job1 -> job2 -> job1")
    assert (p.severity, p.file, p.line, p.jobnet) == (ERROR, "01_01_26_loop_job.rb", 3,
                                                     "/jobnet1051")


def test_cycle_through_expansions_tengine_01_01_27_is_the_only_problem():
    d = defs(jobnet("jobnet1052", job("job1", to=["jobnet1052_2"]),
                    expansion("jobnet1052_2", to=["jobnet1052_3"]),
                    expansion("jobnet1052_3", to=["jobnet1052_2"]), boot=["job1"]),
             jobnet("jobnet1052_2", job("job2"), boot=["job2"]),
             jobnet("jobnet1052_3", job("job3"), boot=["job3"]))
    p = only(validate(d), "cycle")
    assert "jobnet1052_2 -> jobnet1052_3 -> jobnet1052_2" in p.message
    assert p.jobnet == "/jobnet1052"
    assert p.line == d.roots[0].children[1].where.line  # the loop's first vertex in the file


def test_self_loop_is_a_cycle():
    d = defs(jobnet("r", job("job1", to=["job1"]), boot=["job1"]))
    assert "'/r': job1 -> job1" in only(validate(d), "cycle").message


def test_cycle_starts_at_first_vertex_in_file_and_excludes_vertices_outside_the_loop():
    # a -> b -> c -> d -> b : the loop is b c d; a leads in, e hangs off it
    d = defs(jobnet("r", job("a", to=["b"]), job("b", to=["c"]), job("c", to=["d", "e"]),
                    job("d", to=["b"]), job("e"), boot=["a"]))
    p = only(validate(d), "cycle")
    assert p.message.startswith("circular dependency in jobnet '/r': b -> c -> d -> b;")
    assert p.line == d.roots[0].children[1].where.line


def test_one_cycle_problem_per_loop_component_in_a_nested_jobnet():
    sub = jobnet("sub", job("a", to=["b"]), job("b", to=["a"]), job("c", to=["d"]),
                 job("d", to=["c"]), boot=["a", "c"])
    d = defs(jobnet("r", sub))
    found = validate(d)
    assert codes(found) == ["cycle", "cycle"]
    assert {p.jobnet for p in found} == {"/r/sub"}
    assert sorted(p.message.split(": ")[1].split(";")[0] for p in found) == [
        "a -> b -> a", "c -> d -> c"]


def test_cycle_in_finally_and_hadoop_job_run():
    d = defs(jobnet("r", hadoop_job_run("h", hadoop_job("m", to=["n"]),
                                        hadoop_job("n", to=["m"]), boot=["m"]),
                    final(job("f1", to=["f2"]), job("f2", to=["f1"]), boot=["f1"]),
                    boot=["h"]))
    assert sorted((p.code, p.jobnet) for p in validate(d)) == [
        ("cycle", "/r/finally"), ("cycle", "/r/h")]


def test_to_in_auto_sequence_mode_is_no_cycle_but_ignored():
    d = defs(jobnet("r", job("job1", to=["job2"]), job("job2", to=["job1"]), auto=True))
    found = validate(d)
    assert codes(found) == ["to_ignored", "to_ignored"]
    assert all(p.severity == WARNING for p in found)
    assert "replace auto_sequence with boot_jobs" in found[0].message


def test_a_100000_long_loop_needs_no_recursion_and_is_shown_shortened():
    n = 100_000
    jobs = [job(f"j{i}", to=[f"j{(i + 1) % n}"]) for i in range(n)]
    d = defs(jobnet("big", *jobs, boot=["j0"]))
    p = only(validate(d), "cycle")
    assert p.message.startswith("circular dependency in jobnet '/big': j0 -> j1 -> j2")
    assert f"({n + 1 - 25} more)" in p.message and p.message.count("->") < 40
    assert "j99999 -> j0;" in p.message


def test_deep_nesting_needs_no_recursion():
    root = jobnet("deep")
    node = root
    for i in range(5000):
        node = node.add(jobnet(f"n{i}"))
    node.add(job("bottom", to=["nowhere"]))
    node.sequencing.append(Sequencing("boot_jobs", Where("?"), ["bottom"]))
    p = only(validate(defs(root)), "unknown_target")
    assert p.jobnet.startswith("/deep/n0/n1/") and p.jobnet.endswith("/n4999")


# -- expansions ------------------------------------------------------------------------------


def test_expansion_missing_suggests_a_close_name():
    d = defs(jobnet("r", jobnet("sub", expansion("u1pj1_pattern_nothing"))),
             jobnet("u1pj1_pattern", job("j")))
    p = only(validate(d), "expansion_missing")
    assert p.message == ("expansion of 'u1pj1_pattern_nothing' in '/r/sub': no root jobnet of "
                         "that name (did you mean 'u1pj1_pattern'?)")
    assert p.jobnet == "/r/sub" and p.line == d.roots[0].children[0].children[0].where.line
    assert runnable_roots(d, validate(d)) == {"u1pj1_pattern"}


def test_expansion_missing_without_anything_close():
    d = defs(jobnet("r", expansion("zzzzzz")))
    assert only(validate(d), "expansion_missing").message.endswith("no root jobnet of that name")


def test_expansion_self_anywhere_inside_the_root():
    # expansion_8.rb: a root that expands itself; also nested in a jobnet inside finally
    d = defs(jobnet("job_reference_test_6_4", job("a"),
                    final(jobnet("fj", expansion("job_reference_test_6_4")))))
    p = only(validate(d), "expansion_self")
    assert "'job_reference_test_6_4' expands itself at " \
           "'/job_reference_test_6_4/finally/fj/job_reference_test_6_4'" in p.message
    assert p.jobnet == "/job_reference_test_6_4/finally/fj"
    assert runnable_roots(d, validate(d)) == set()


def test_expansion_self_inside_a_hadoop_job_run_is_also_misplaced():
    d = defs(jobnet("r", hadoop_job_run("h", expansion("r"))))
    assert sorted(codes(validate(d))) == ["expansion_self", "misplaced"]


def test_mutual_expansion_is_one_problem_with_the_chain():
    # expansion_6.rb + expansion_7.rb, jobnet1053 <-> jobnet1053_2 (feature @01_01_28)
    d = defs(jobnet("jobnet1053", expansion("jobnet1053_2")),
             jobnet("jobnet1053_2", jobnet("inner", expansion("jobnet1053"))))
    p = only(validate(d), "expansion_cycle")
    assert "jobnet1053 -> jobnet1053_2 -> jobnet1053" in p.message
    assert "'jobnet1053_2' expands 'jobnet1053' at '/jobnet1053_2/inner/jobnet1053' (line 5)" \
        in p.message
    assert p.jobnet == "/jobnet1053" and p.line == d.roots[0].children[0].where.line


def test_long_expansion_loop_reports_only_the_roots_in_the_loop():
    d = defs(jobnet("A", expansion("B")), jobnet("B", expansion("C")),
             jobnet("C", final(expansion("A"))), jobnet("D", expansion("B")),
             jobnet("E", job("e")))
    p = only(validate(d), "expansion_cycle")
    assert "A -> B -> C -> A" in p.message and "'D'" not in p.message
    assert p.jobnet == "/A"
    # D is not in the loop but cannot run either: it expands into it
    assert runnable_roots(d, validate(d)) == {"E"}


def test_expansion_cycle_and_self_together():
    d = defs(jobnet("A", expansion("B"), expansion("A")), jobnet("B", expansion("A")))
    assert sorted(codes(validate(d))) == ["expansion_cycle", "expansion_self"]


# -- names and roots -------------------------------------------------------------------------


def test_duplicate_root_tengine_message():
    a = defs(jobnet("x", job("j")), file="a.rb")
    b = defs(jobnet("pad", job("p")), jobnet("x", job("j")), file="b.rb")
    a.extend(b)
    p = only(validate(a), "duplicate_root")
    assert p.message.startswith('2 jobnet named "x" found at a.rb:1 and b.rb:3')
    assert (p.file, p.line, p.jobnet) == ("b.rb", 3, "/x")
    assert runnable_roots(a, validate(a)) == {"pad"}


def test_duplicate_name_in_one_layer_finally_excluded():
    # 01_03_16_duplicated_jobname_on_same_layer.rb
    d = defs(jobnet("jobnet1041", job("job1"), job("job2"), job("job1"), final(job("job1")),
                    auto=True))
    p = only(validate(d), "duplicate_name")
    assert "2 children named 'job1'" in p.message and p.jobnet == "/jobnet1041"
    assert p.line == d.roots[0].children[2].where.line


def test_duplicate_name_between_a_job_and_an_expansion():
    d = defs(jobnet("r", job("s"), expansion("s"), auto=True), jobnet("s", job("j")))
    assert only(validate(d), "duplicate_name").jobnet == "/r"


# -- unknown_target, unreachable, to_ignored -------------------------------------------------


def test_unknown_target_in_to_with_suggestion():
    d = defs(jobnet("r", job("job1", to=["jbo2"]), job("job2"), boot=["job1", "job2"]))
    p = only(validate(d), "unknown_target")
    assert "`to` of 'job1' in jobnet '/r' names 'jbo2'" in p.message
    assert "(did you mean 'job2'?)" in p.message
    assert p.line == d.roots[0].children[0].where.line


def test_unknown_target_in_boot_jobs_at_the_boot_jobs_line():
    d = defs(jobnet("r", job("job1"), boot=["job1", "job3"]))
    p = only(validate(d), "unknown_target")
    assert "boot_jobs of jobnet '/r' names 'job3'" in p.message
    assert p.line == d.roots[0].sequencing[0].where.line


def test_unknown_target_says_where_a_deeper_child_of_that_name_is():
    d = defs(jobnet("r", job("fetch", to=["transform"]), jobnet("transform", job("load")),
                    boot=["fetch", "load"]))
    p = only(validate(d), "unknown_target")
    assert "names 'load'" in p.message
    assert "('load' is '/r/transform/load', inside another jobnet)" in p.message


def test_to_naming_the_finally_says_it_cannot_be_a_target():
    d = defs(jobnet("r", job("a", to=["finally"]), final(job("f")), boot=["a"]))
    p = only(validate(d), "unknown_target")
    assert "names 'finally': a finally block is not part of the sequence and cannot be a " \
           "target" in p.message


def test_to_naming_a_job_of_another_jobnet_is_unknown():
    d = defs(jobnet("r", jobnet("sub", job("inner")), job("a", to=["inner"]),
                    boot=["sub", "a"]))
    assert only(validate(d), "unknown_target").jobnet == "/r"


def test_to_on_a_root_jobnet_leads_nowhere():
    d = defs(jobnet("r", job("a"), to=["other"]), jobnet("other", job("b")))
    assert "not part of any sequence" in only(validate(d), "unknown_target").message


def test_unreachable_child_is_a_warning_and_the_root_still_runs():
    # feature @01_03_13: children neither booted nor targeted never run
    d = defs(jobnet("r", job("a", to=["b"]), job("b"), job("c", to=["d"]), job("d"),
                    boot=["a"]))
    found = validate(d)
    assert [(p.code, p.severity) for p in found] == [("unreachable", WARNING)] * 2
    assert "'c' in jobnet '/r' never runs" in found[0].message
    assert errors(found) == [] and runnable_roots(d, found) == {"r"}


def test_to_ignored_without_boot_jobs_suggests_adding_them():
    d = defs(jobnet("r", job("a", to=["b"]), job("b")))
    p = only(validate(d), "to_ignored")
    assert "add boot_jobs" in p.message and p.severity == WARNING


# -- sequencing and finally ------------------------------------------------------------------


def test_duplicate_finally():
    d = defs(jobnet("r", job("a"), final(job("f1")), final(job("f2"))))
    p = only(validate(d), "duplicate_finally")
    assert "2 finally blocks" in p.message
    assert p.line == d.roots[0].children[2].where.line


def test_duplicate_auto_sequence_by_two_calls_and_by_option_and_call():
    twice = jobnet("r", job("a"), auto=True)
    twice.sequencing.append(Sequencing("auto_sequence", Where("?")))
    d = defs(twice, jobnet("s", job("a"), auto=True, auto_sequence=True))
    assert [(p.code, p.jobnet) for p in validate(d)] == [
        ("duplicate_auto_sequence", "/r"), ("duplicate_auto_sequence", "/s")]


def test_boot_jobs_with_auto_sequence_by_call_and_by_option():
    d = defs(jobnet("r", job("a"), boot=["a"], auto=True),
             jobnet("s", job("a"), boot=["a"], auto_sequence=True),
             jobnet("t", job("a"), boot=["a"], auto_sequence=False))
    assert [(p.code, p.jobnet) for p in validate(d)] == [
        ("boot_jobs_with_auto_sequence", "/r"), ("boot_jobs_with_auto_sequence", "/s")]


def test_duplicate_boot_jobs():
    node = jobnet("r", job("a"), job("b"), boot=["a"])
    node.sequencing.append(Sequencing("boot_jobs", Where("?"), ["a", "b"]))
    d = defs(node)
    p = only(validate(d), "duplicate_boot_jobs")
    assert p.line == node.sequencing[1].where.line and "use only the last" in p.message


# -- misplaced -------------------------------------------------------------------------------


@pytest.mark.parametrize("root, fragment", [
    (jobnet("r", hadoop_job("h")), "Tengine: jobnet block contains unexpected method(hadoop_job)"),
    (jobnet("r", final(hadoop_job("h"))),
     "Tengine: finally block contains unexpected method(hadoop_job)"),
    (jobnet("r", hadoop_job_run("h", job("j"))),
     "Tengine: hadoop_job_run block contains unexpected method(job)"),
    (jobnet("r", final(final(job("j")))),
     "Tengine: finally block contains unexpected method(finally)"),
    (job("lonely"), "only a jobnet can be a root"),
    (jobnet("r", Node("ruby_job", "rj", Where("?"))), "not a construct"),
])
def test_misplaced(root, fragment):
    d = defs(root)
    p = only(validate(d), "misplaced")
    assert fragment in p.message


def test_children_under_a_job_or_expansion_are_misplaced():
    j = job("j")
    j.add(job("inner"))
    e = expansion("s")
    e.add(job("inner2"))
    d = defs(jobnet("r", j, e, auto=True), jobnet("s", job("x")))
    found = validate(d)
    assert codes(found) == ["misplaced", "misplaced"]
    assert "inside job '/r/j', which cannot hold anything" in found[0].message
    assert found[0].jobnet == "/r"


# -- options, scripts, values ----------------------------------------------------------------


def test_unknown_option_names_it_and_lists_the_allowed_ones():
    # 01_03_09_unexpected_option_for_jobnet.rb: :hoge => "hoge"
    node = jobnet("jobnet1034", job("job1"), auto=True)
    node.unknown_options.append(UnknownOption("hoge", Where("?")))
    d = defs(node)
    p = only(validate(d), "unknown_option")
    assert "jobnet '/jobnet1034' does not take option 'hoge'" in p.message
    assert "server_name" in p.message and "instance_name" in p.message
    assert p.line == node.where.line and p.jobnet == "/jobnet1034"


def test_unknown_option_of_a_job_concerns_its_jobnet():
    j = job("j")
    j.unknown_options.append(UnknownOption("retry", Where("?")))
    p = only(validate(defs(jobnet("r", j))), "unknown_option")
    assert p.jobnet == "/r" and "job '/r/j' does not take option 'retry'" in p.message
    assert "preparation" in p.message


@pytest.mark.parametrize("script", [None, "", "   "])
def test_empty_script(script):
    d = defs(jobnet("r", job("j", script=script),
                    hadoop_job_run("h", hadoop_job("hj"), script=script)))
    found = validate(d)
    assert codes(found) == ["empty_script", "empty_script"]
    assert "job '/r/j' has no script" in found[0].message
    assert [p.jobnet for p in found] == ["/r", "/r/h"]


@pytest.mark.parametrize("node, fragment", [
    (job(""), "has no name"),
    (job(None), "has no name"),
    (job("a/b"), "contains '/'"),
    (job(42), "a name of type int"),
    (job("j", killing_signals=[]), "killing_signals must be a non-empty list"),
    (job("j", killing_signals=["TERM", "NOPE"]), "killing_signals must be"),
    (job("j", killing_signals="KILL"), "killing_signals must be"),
    (job("j", killing_signal_interval=0), "killing_signal_interval must be a positive"),
    (job("j", killing_signal_interval=-1), "killing_signal_interval"),
    (job("j", killing_signal_interval="5"), "killing_signal_interval"),
    (job("j", killing_signal_interval=True), "killing_signal_interval"),
    (job("j", killing_signal_interval=float("nan")), "killing_signal_interval"),
    (job("j", server_name=5), "server_name must be a non-empty string"),
    (job("j", credential_name=None), "credential_name must be"),
    (job("j", script=["ls"]), "the script must be a string"),
    (jobnet("n", job("x"), auto_sequence="yes"), "auto_sequence must be true or false"),
])
def test_bad_value(node, fragment):
    d = defs(jobnet("r", node))
    assert fragment in only(validate(d), "bad_value").message


def test_good_values_are_quiet():
    d = defs(jobnet("r", job("j", killing_signals=["TERM", "SIGKILL"],
                             killing_signal_interval=2.5, server_name="local",
                             credential_name="local"), auto_sequence=True))
    assert validate(d) == []


def test_non_string_to_and_boot_names_are_bad_values_and_stop_the_edge_checks():
    bad_to = job("a")
    bad_to.to = [1]
    d = defs(jobnet("r", bad_to, job("b", to=["a"]), boot=["b"]),
             jobnet("s", job("c"), boot=[None]))
    assert sorted((p.code, p.jobnet) for p in validate(d)) == [
        ("bad_value", "/r"), ("bad_value", "/s")]


# -- robustness, order, helpers --------------------------------------------------------------


def test_odd_definitions_do_not_raise():
    nameless = Node(JOBNET, None, Where("odd.py", 1))
    nameless.add(Node(JOB, None, Where("odd.py", 2)))
    nameless.add(Node(JOB, ["x"], Where("odd.py", 3), script="x", to=["y"]))
    exp_root = Node(EXPANSION, "exp_root", Where("odd.py", 4))
    weird = Node("weird", "w", Where("odd.py", 5))
    weird.add(Node(FINALLY, "finally", Where("odd.py", 6), to=["zz"]))
    hj = Node(HADOOP_JOB, "hj", Where("odd.py", 7))
    hj.add(Node(EXPANSION, None, Where("odd.py", 8)))
    no_where = Node(JOBNET, "no_where", None)  # type: ignore[arg-type]
    no_where.add(Node(JOB, "j", None, script=None))  # type: ignore[arg-type]
    d = Definitions(roots=[nameless, exp_root, weird, hj, no_where])
    found = validate(d)
    assert found and all(p.code in CODES for p in found)
    assert "no_where" not in runnable_roots(d, found)


def test_result_is_sorted_and_keeps_the_readers_problems_without_changing_defs():
    d = defs(jobnet("r", job("a", to=["zz"]), job("", script=None), boot=["a"]))
    reader = Problem("syntax", ERROR, "t.rb", 2, None, "unexpected token")
    d.problems.append(reader)
    found = validate(d)
    assert reader in found and d.problems == [reader]
    keys = [(p.file or "", p.line or 0, p.code) for p in found]
    assert keys == sorted(keys)
    assert sorted(codes(found)) == ["bad_value", "empty_script", "syntax", "unknown_target",
                                    "unreachable"]


def test_runnable_roots_follows_expansions_and_file_level_errors():
    d = defs(jobnet("ok", job("a")), jobnet("uses_bad", expansion("bad")),
             jobnet("bad", job("b", script=None)), jobnet("uses_uses", jobnet("s",
                                                                            expansion("uses_bad"))))
    found = validate(d)
    assert runnable_roots(d, found) == {"ok"}
    other = defs(jobnet("elsewhere", job("c")), file="other.rb")
    d.extend(other)
    syntax = Problem("syntax", ERROR, "other.rb", 9, None, "broken")
    assert runnable_roots(d, [syntax]) == {"ok", "uses_bad", "bad", "uses_uses"}
    warn = Problem("unreachable", WARNING, "t.rb", 1, "/ok", "w")
    assert "ok" in runnable_roots(d, [warn])


def test_errors_keeps_only_errors():
    e = Problem("cycle", ERROR, "f", 1, "/r", "m")
    w = Problem("to_ignored", WARNING, "f", 2, "/r", "m")
    assert errors([w, e, w]) == [e]


def test_every_code_has_a_known_severity():
    assert all(sev in (ERROR, WARNING) for sev, _ in CODES.values())
    assert CODES["duplicate_boot_jobs"][0] == ERROR


def test_strongly_connected_components():
    graph = {1: [2], 2: [3], 3: [1, 4], 4: [5], 5: [4], 6: [6], 7: []}
    comps = sorted(sorted(c) for c in strongly_connected(graph, graph.__getitem__))
    assert comps == [[1, 2, 3], [4, 5], [6], [7]]
