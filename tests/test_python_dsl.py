"""The Python DSL reader: each construct, Tengine's positional forms, aliases, unknown options,
misplaced calls, lines, and files that do not compile or that raise."""

from __future__ import annotations

import sys
import textwrap
import threading
from pathlib import Path

import pytest

from tengine_min.model import python_dsl as dsl
from tengine_min.model.nodes import EXPANSION, FINALLY, HADOOP_JOB, HADOOP_JOB_RUN, JOB, JOBNET
from tengine_min.model.python_dsl import collect, read_python

DATA = Path(__file__).parent / "data" / "py"
HEADER = "from tengine_min.model.python_dsl import *\n"


def line_of(text: str, needle: str, occurrence: int = 1) -> int:
    """1-based line of the n-th line containing `needle`."""
    hits = [n for n, line in enumerate(text.splitlines(), 1) if needle in line]
    assert len(hits) >= occurrence, f"{needle!r} not in the text"
    return hits[occurrence - 1]


def read(body: str, path: str = "defs.py"):
    text = HEADER + textwrap.dedent(body)
    return read_python(path, text), text


def child(node, name):
    return next(c for c in node.children if c.name == name)


# -- constructs ---------------------------------------------------------------------------------


def test_jn0004_reads_as_tengine_builds_it():
    path = str(DATA / "jn0004.py")
    text = Path(path).read_text()
    defs = read_python(path, text)
    assert defs.problems == []
    assert defs.files == [path]
    [root] = defs.roots
    assert (root.kind, root.name, root.where.file) == (JOBNET, "jn0004", path)
    assert root.where.line == line_of(text, 'with jobnet("jn0004"')
    assert root.options == {"server_name": "localhost", "credential_name": "ssh_pk"}
    assert [(c.kind, c.name) for c in root.children] == [
        (JOB, "j1"), (JOB, "j2"), (JOB, "j3"), (JOB, "j4"), (FINALLY, "finally")]
    assert [(c.name, c.to) for c in root.vertices] == [
        ("j1", ["j2", "j3"]), ("j2", ["j4"]), ("j3", ["j4"]), ("j4", [])]
    assert child(root, "j2").script == "$HOME/t.sh 0 j2"
    [boot] = root.sequencing
    assert (boot.kind, boot.names, boot.where.line) == ("boot_jobs", ["j1"],
                                                        line_of(text, 'boot_jobs("j1")'))
    [final] = root.finally_blocks
    assert final.where.line == line_of(text, "with finally_()")
    [fjob] = final.children
    assert (fjob.name, fjob.script, fjob.where.line) == (
        "jn0004_f", "$HOME/t.sh 0 jn0004_f", line_of(text, 'job("jn0004_f"'))
    # inheritance of server and credential comes from the model
    assert fjob.server_name == "localhost" and fjob.credential_name == "ssh_pk"


def test_every_node_has_the_line_of_its_call():
    defs, text = read("""
        with jobnet("r"):
            job("a", "a.sh")
            with jobnet("sub"):
                job("b", "b.sh")
            with hadoop_job_run("h", "h.sh"):
                hadoop_job("hj")
            expansion("other")
            with finally_():
                job("f", "f.sh")
    """)
    assert defs.problems == []
    expected = {"r": 'jobnet("r")', "a": 'job("a"', "sub": 'jobnet("sub")', "b": 'job("b"',
                "h": "hadoop_job_run(", "hj": 'hadoop_job("hj")', "other": "expansion(",
                "finally": "finally_()", "f": 'job("f"'}
    seen = {node.name: node.where.line for node in defs.roots[0].walk()}
    assert seen == {name: line_of(text, needle) for name, needle in expected.items()}


def test_positional_description_as_tengine():
    defs, _ = read("""
        with jobnet("r", "the root"):
            job("one", "one.sh")
            job("two", "described", "two.sh")
            job("none")
            with hadoop_job_run("h1", "h.sh"):
                pass
            with hadoop_job_run("h2", "a hadoop run", "h2.sh"):
                pass
            with jobnet("sub"):
                pass
    """)
    assert defs.problems == []
    root = defs.roots[0]
    assert root.description == "the root"
    shapes = {c.name: (c.description, c.script) for c in root.children}
    assert shapes == {"one": (None, "one.sh"), "two": ("described", "two.sh"),
                      "none": (None, None),  # no script: the validator's empty_script
                      "h1": (None, "h.sh"), "h2": ("a hadoop run", "h2.sh"), "sub": (None, None)}
    assert child(root, "one").label == "one"  # Tengine's default description is the name


def test_option_aliases_and_short_forms_fold_onto_tengine_names():
    defs, _ = read("""
        with jobnet("r", server="s0", credential="c0"):
            job("a", "a.sh", instance_name="s1", user_group_credential_name="c1", caption="A")
            job("b", "b.sh", vm_instance_name="s2", credential_name="c2", redirect_to="a")
            job("c", "c.sh", server_name="s3", description="C", to=("a", "b"))
    """)
    assert defs.problems == []
    root = defs.roots[0]
    assert root.options == {"server_name": "s0", "credential_name": "c0"}
    a, b, c = root.children
    assert (a.options, a.description) == ({"server_name": "s1", "credential_name": "c1"}, "A")
    assert (b.options, b.to) == ({"server_name": "s2", "credential_name": "c2"}, ["a"])
    assert (c.options, c.description, c.to) == ({"server_name": "s3"}, "C", ["a", "b"])


def test_killing_preparation_and_auto_sequence_options():
    defs, _ = read("""
        with jobnet("r", killing_signals=["TERM", "KILL"], killing_signal_interval=30,
                    auto_sequence=True):
            job("a", "a.sh", preparation="export X=1", killing_signals="INT")
            job("b", "b.sh")
    """)
    assert defs.problems == []
    root = defs.roots[0]
    assert root.options["auto_sequence"] is True and root.auto_sequence
    assert root.killing == (("TERM", "KILL"), 30)
    a, b = root.children
    assert a.options["preparation"] == "export X=1"
    assert a.killing == (("INT",), 5)  # interval only where the signals are set
    assert b.killing == (("TERM", "KILL"), 30)


def test_boot_jobs_and_auto_sequence_declarations():
    defs, text = read("""
        with jobnet("r"):
            boot_jobs("a", ["b", "c"])
            auto_sequence()
            job("a", "a.sh")
    """)
    assert defs.problems == []
    boot, auto = defs.roots[0].sequencing
    assert (boot.kind, boot.names, boot.where.line) == ("boot_jobs", ["a", "b", "c"],
                                                        line_of(text, "boot_jobs("))
    assert (auto.kind, auto.names, auto.where.line) == ("auto_sequence", [],
                                                        line_of(text, "auto_sequence()"))


def test_unknown_options_are_kept_for_the_validator():
    defs, text = read("""
        with jobnet("r", colour="red"):
            job("a", "a.sh", retry=3)
            expansion("x", server="s")
            with finally_(name="f"):
                pass
    """)
    assert defs.problems == []
    root = defs.roots[0]
    a, x, final = root.children
    assert [(u.key, u.where.line) for u in root.unknown_options] == [
        ("colour", line_of(text, "colour"))]
    assert [u.key for u in a.unknown_options] == ["retry"]
    assert [u.key for u in x.unknown_options] == ["server_name"]  # expansions take no server
    assert [u.key for u in final.unknown_options] == ["name"]


def test_what_the_validator_judges_is_recorded_as_written():
    defs, _ = read("""
        with jobnet("r"):
            hadoop_job("stray")
            with hadoop_job_run("h", "h.sh"):
                job("wrong", "w.sh")
            with finally_():
                with finally_():
                    job("deep", "d.sh")
            with finally_():
                pass
            boot_jobs("nobody")
            job("dup", "1.sh")
            job("dup", "2.sh")
    """)
    assert defs.problems == []
    root = defs.roots[0]
    assert [(c.kind, c.name) for c in root.children] == [
        (HADOOP_JOB, "stray"), (HADOOP_JOB_RUN, "h"), (FINALLY, "finally"), (FINALLY, "finally"),
        (JOB, "dup"), (JOB, "dup")]
    assert [(c.kind, c.name) for c in root.children[1].children] == [(JOB, "wrong")]
    assert root.children[2].children[0].kind == FINALLY
    assert root.boot_job_names == ["nobody"]


# -- misplaced and wrong ------------------------------------------------------------------------


@pytest.mark.parametrize("call", [
    'job("a", "a.sh")', 'expansion("x")', 'hadoop_job("h")', "boot_jobs('a')", "auto_sequence()",
])
def test_a_call_outside_any_jobnet_is_misplaced(call):
    defs, text = read(f"""
        {call}
        with jobnet("r"):
            job("ok", "ok.sh")
    """)
    [p] = defs.problems
    assert (p.code, p.file, p.line, p.jobnet) == ("misplaced", "defs.py", line_of(text, call), None)
    assert call.split("(")[0] in p.message and "outside any jobnet" in p.message
    assert [r.name for r in defs.roots] == ["r"]


@pytest.mark.parametrize("opener", ["finally_()", 'hadoop_job_run("h", "h.sh")'])
def test_a_block_outside_any_jobnet_is_reported_once(opener):
    defs, text = read(f"""
        with {opener}:
            job("inside", "i.sh")
            boot_jobs("inside")
    """)
    [p] = defs.problems
    assert (p.code, p.line) == ("misplaced", line_of(text, opener))
    assert defs.roots == []


def test_arguments_of_the_wrong_type_are_syntax_problems():
    defs, text = read("""
        with jobnet("r"):
            job(5, "a.sh")
            job("b", ["not", "a", "script"])
            job("c", "c.sh", to=7)
            job("d", "desc", "d.sh", "extra")
            boot_jobs("b", 3)
    """)
    got = [(p.code, p.line, p.jobnet) for p in defs.problems]
    calls = ["job(5", 'job("b"', 'job("c"', 'job("d"', "boot_jobs("]
    assert got == [("syntax", line_of(text, call), "/r") for call in calls]
    messages = [p.message for p in defs.problems]
    assert "name as a string, found int 5" in messages[0]
    assert "script as a string" in messages[1]
    assert "to= expects a name or a list of names, found int 7" in messages[2]
    assert "4 positional arguments" in messages[3]
    assert "found int 3" in messages[4]
    root = defs.roots[0]
    # the node with an unreadable name is left out; the others keep what could be read
    assert [c.name for c in root.children] == ["b", "c", "d"]
    assert (child(root, "b").script, child(root, "c").to) == (None, [])
    assert (child(root, "d").description, child(root, "d").script) == ("desc", "d.sh")
    assert root.boot_job_names == ["b"]


def test_a_syntax_error_is_reported_with_its_line():
    text = 'from tengine_min.model.python_dsl import *\nwith jobnet("r"):\n    job("a", "a.sh"\n'
    defs = read_python("broken.py", text)
    [p] = defs.problems
    assert (p.code, p.file, p.line) == ("syntax", "broken.py", 3)
    assert p.message.startswith("not valid Python:") and "never closed" in p.message
    assert defs.roots == []


def test_an_exception_is_reported_at_its_line_and_earlier_roots_are_kept():
    defs, text = read("""
        with jobnet("first"):
            job("a", "a.sh")

        def helper():
            return {}["missing"]

        with jobnet("second"):
            job("b", "b.sh")
            helper()
            job("never", "n.sh")
    """)
    [p] = defs.problems
    assert (p.code, p.line) == ("syntax", line_of(text, '{}["missing"]'))
    assert "KeyError" in p.message and "'missing'" in p.message
    second = line_of(text, 'jobnet("second")')
    assert f"jobnet 'second' (line {second}) was not finished" in p.message
    assert [r.name for r in defs.roots] == ["first"]  # nothing half-written


def test_a_forgotten_import_gets_a_hint():
    defs = read_python("noimport.py", 'with jobnet("r"):\n    pass\n')
    [p] = defs.problems
    assert (p.code, p.line) == ("syntax", 1)
    assert "NameError" in p.message
    assert "add `from tengine_min.model.python_dsl import jobnet`" in p.message


def test_sys_exit_in_a_file_is_reported_not_obeyed():
    defs, text = read("""
        import sys
        with jobnet("r"):
            pass
        sys.exit(3)
    """)
    [p] = defs.problems
    assert (p.code, p.line) == ("syntax", line_of(text, "sys.exit"))
    assert "SystemExit" in p.message
    assert [r.name for r in defs.roots] == ["r"]


def test_a_helper_in_another_module_gives_the_line_of_the_file(tmp_path, monkeypatch):
    (tmp_path / "jobnet_helpers.py").write_text(textwrap.dedent("""
        from tengine_min.model.python_dsl import job

        def three_jobs(prefix):
            for n in range(3):
                job(f"{prefix}{n}", "x.sh")
    """))
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "jobnet_helpers", raising=False)
    defs, text = read("""
        import jobnet_helpers
        with jobnet("r"):
            jobnet_helpers.three_jobs("j")
    """)
    assert defs.problems == []
    assert [(c.name, c.where.line) for c in defs.roots[0].children] == [
        (f"j{n}", line_of(text, "three_jobs(")) for n in range(3)]


def test_lines_are_right_in_a_big_generated_file():
    # Big code objects take another path to their lines (an index of the line table).
    lines = [HEADER.strip(), "with jobnet('big'):"]
    expected: list[tuple[str, int]] = []
    for n in range(1500):
        if n % 3 == 0:
            lines.append(f"    job('j{n}', 'x.sh')")
            expected.append((f"j{n}", len(lines)))
        elif n % 3 == 1:
            lines += ["    job(", f"        'j{n}',", "        'x.sh',", "    )"]
            expected.append((f"j{n}", len(lines) - 3))
        else:
            lines += ["    for k in range(2):", f"        job(f'j{n}_{{k}}', 'x.sh')"]
            expected += [(f"j{n}_{k}", len(lines)) for k in range(2)]
    text = "\n".join(lines) + "\n"
    assert len(compile(text, "big.py", "exec").co_code) >= dsl._BIG_CODE_BYTES
    defs = read_python("big.py", text)
    assert defs.problems == []
    assert [(c.name, c.where.line) for c in defs.roots[0].children] == expected


def test_file_has_its_own_name_and_path():
    defs, _ = read("""
        names = (__name__, __file__)
        with jobnet(names[1]):
            pass
    """, path="/defs/here.py")
    assert [r.name for r in defs.roots] == ["/defs/here.py"]


# -- collect() and isolation ------------------------------------------------------------------


def test_collect_builds_definitions_in_code_with_the_callers_lines():
    with collect() as defs, dsl.jobnet("r", server="s") as root:
        start = sys._getframe().f_lineno
        dsl.job("a", "a.sh")
        for n in range(2):
            dsl.job(f"n{n}", "n.sh")
    assert defs.problems == [] and defs.roots == [root]
    assert root.where.file == "<python>"
    assert [(c.name, c.where.line) for c in root.children] == [
        ("a", start + 1), ("n0", start + 3), ("n1", start + 3)]


def test_a_dsl_call_outside_any_reading_is_a_usage_error():
    with pytest.raises(RuntimeError, match=r"job\(\) was called outside read_python\(\)"):
        dsl.job("a", "a.sh")


def test_collect_nests_and_restores():
    with collect("outer") as outer, dsl.jobnet("o"):
        with collect("inner") as inner, dsl.jobnet("i"):
            dsl.job("x", "x.sh")
        dsl.job("y", "y.sh")
    assert [r.name for r in inner.roots] == ["i"]
    assert [(r.name, [c.name for c in r.children]) for r in outer.roots] == [("o", ["y"])]


def test_concurrent_readers_do_not_mix(tmp_path):
    results: dict[int, object] = {}
    start = threading.Barrier(4)

    def worker(n: int) -> None:
        body = "".join(f'    job("j{n}_{k}", "x.sh")\n' for k in range(300))
        start.wait(timeout=10)
        results[n] = read_python(f"t{n}.py", f'{HEADER}with jobnet("r{n}"):\n{body}')

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert sorted(results) == [0, 1, 2, 3]
    for n, defs in results.items():
        [root] = defs.roots
        assert root.name == f"r{n}" and defs.problems == []
        assert [c.name for c in root.children] == [f"j{n}_{k}" for k in range(300)]
        assert {c.where.file for c in root.children} == {f"t{n}.py"}


def test_expansion_node():
    defs, _ = read("""
        with jobnet("r"):
            boot_jobs("other")
            expansion("other", to="j", caption="copy of other")
            job("j", "j.sh")
    """)
    x = defs.roots[0].children[0]
    assert (x.kind, x.name, x.to, x.description) == (EXPANSION, "other", ["j"], "copy of other")
