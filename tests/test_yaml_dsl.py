"""The YAML reader: each construct, the same model as the Python DSL, lines, duplicate keys,
wrong types, YAML errors, and what it records for the validator to judge."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from tengine_min.model.nodes import EXPANSION, FINALLY, HADOOP_JOB, HADOOP_JOB_RUN, JOB, JOBNET
from tengine_min.model.python_dsl import read_python
from tengine_min.model.yaml_dsl import read_yaml

DATA = Path(__file__).parent / "data"


def line_of(text: str, needle: str, occurrence: int = 1) -> int:
    hits = [n for n, line in enumerate(text.splitlines(), 1) if needle in line]
    assert len(hits) >= occurrence, f"{needle!r} not in the text"
    return hits[occurrence - 1]


def read(body: str, path: str = "defs.yaml"):
    text = textwrap.dedent(body).lstrip("\n")
    return read_yaml(path, text), text


def shape(node) -> tuple:
    """Everything a reader decides about a node, lines and ids aside."""
    return (node.kind, node.name, node.description, node.script, tuple(node.to),
            tuple(sorted((k, str(v)) for k, v in node.options.items())),
            tuple(u.key for u in node.unknown_options),
            tuple((s.kind, tuple(s.names)) for s in node.sequencing),
            tuple(shape(c) for c in node.children))


def problems(defs) -> list[tuple]:
    return [(p.code, p.line) for p in defs.problems]


# -- the same model as the Python DSL ------------------------------------------------------------


@pytest.mark.parametrize("name", ["jn0004", "all_constructs"])
def test_yaml_and_python_read_into_the_same_model(name):
    py_path, yaml_path = DATA / "py" / f"{name}.py", DATA / "yaml" / f"{name}.yaml"
    from_python = read_python(str(py_path), py_path.read_text())
    from_yaml = read_yaml(str(yaml_path), yaml_path.read_text())
    assert from_python.problems == [] and from_yaml.problems == []
    assert from_yaml.files == [str(yaml_path)]
    assert [shape(r) for r in from_yaml.roots] == [shape(r) for r in from_python.roots]
    assert len(from_yaml.roots) >= 1


def test_all_constructs_in_detail():
    path = DATA / "yaml" / "all_constructs.yaml"
    text = path.read_text()
    defs = read_yaml(str(path), text)
    main, other = defs.roots
    assert (main.description, main.options) == ("the main jobnet", {
        "server_name": "vm1", "credential_name": "cred1", "killing_signals": ["TERM", "KILL"],
        "killing_signal_interval": 30})
    prepare, sub, hadoop, expansion, final = main.children
    assert (prepare.kind, prepare.description, prepare.to, prepare.options) == (
        JOB, "prepare the data", ["hadoop", "other"], {"preparation": "export STAGE=1"})
    assert (sub.kind, sub.description, sub.options["server_name"], sub.to) == (
        JOBNET, "a sub-jobnet", "vm2", ["hadoop"])
    assert sub.children[1].killing == (("INT",), 5)
    assert (hadoop.kind, hadoop.script, hadoop.to) == (HADOOP_JOB_RUN, "$HOME/hadoop.sh", ["other"])
    assert [(c.kind, c.name) for c in hadoop.children] == [(HADOOP_JOB, "hj1"), (HADOOP_JOB, "hj2")]
    assert (expansion.kind, expansion.name) == (EXPANSION, "other")
    assert final.kind == FINALLY and final.boot_job_names == ["cleanup"]
    assert other.auto_sequence and [s.kind for s in other.sequencing] == ["auto_sequence"]
    # lines: each entry where it starts, each declaration at its key
    assert [(n.name, n.where.line) for n in main.walk()] == [
        (n.name, line_of(text, f"{n.kind}: {n.name}") if n.kind != FINALLY
         else line_of(text, "- finally:")) for n in main.walk()]
    assert main.sequencing[0].where.line == line_of(text, "boot_jobs: [prepare, sub]")
    assert sub.sequencing[0].where.line == line_of(text, "auto_sequence: true")


def test_a_top_level_list_is_accepted():
    defs, _ = read("""
        - jobnet: a
          children:
            - job: j
              script: j.sh
        - jobnet: b
    """)
    assert defs.problems == []
    assert [(r.name, [c.name for c in r.children]) for r in defs.roots] == [("a", ["j"]), ("b", [])]


@pytest.mark.parametrize("text", ["", "# only a comment\n", "jobnets:\n", "jobnets: []\n", "~\n"])
def test_an_empty_file_defines_nothing(text):
    defs = read_yaml("empty.yaml", text)
    assert (defs.roots, defs.problems, defs.files) == ([], [], ["empty.yaml"])


def test_names_and_scripts_are_taken_as_written():
    defs, _ = read("""
        jobnets:
          - jobnet: 2024
            children:
              - job: 007
                script: 1.50
              - job: yes
                script: "quoted: yes"
              - job: 'null'
                script: ~
    """)
    assert defs.problems == []
    root = defs.roots[0]
    assert root.name == "2024"
    assert [(c.name, c.script) for c in root.children] == [
        ("007", "1.50"), ("yes", "quoted: yes"), ("null", None)]


def test_typed_option_values_keep_their_yaml_type():
    defs, _ = read("""
        jobnets:
          - jobnet: r
            killing_signals: [15, KILL]
            killing_signal_interval: 2.5
            children:
              - job: j
                script: j.sh
                killing_signal_interval: soon
    """)
    assert defs.problems == []
    root = defs.roots[0]
    assert root.killing == (("15", "KILL"), 2.5)
    assert root.children[0].options["killing_signal_interval"] == "soon"  # the validator judges


# -- finally ---------------------------------------------------------------------------------------


def test_the_three_ways_to_write_finally_and_two_of_them_recorded():
    defs, text = read("""
        jobnets:
          - jobnet: r
            children:
              - job: j
                script: j.sh
              - finally:
                  auto_sequence: true
                  children:
                    - job: f1
                      script: f.sh
              - finally:
                children:
                  - job: f2
                    script: f.sh
              - finally:
                  - job: f3
                    script: f.sh
              - finally:
    """)
    assert defs.problems == []
    finals = defs.roots[0].finally_blocks
    assert [[c.name for c in f.children] for f in finals] == [["f1"], ["f2"], ["f3"], []]
    assert [f.where.line for f in finals] == [line_of(text, "- finally:", n) for n in (1, 2, 3, 4)]
    assert [s.kind for s in finals[0].sequencing] == ["auto_sequence"]


def test_finally_with_a_name_or_twice_the_same_key_is_a_syntax_problem():
    defs, text = read("""
        jobnets:
          - jobnet: r
            children:
              - finally: cleanup
              - finally:
                  children: []
                children: []
    """)
    assert problems(defs) == [("syntax", line_of(text, "finally: cleanup")),
                              ("syntax", line_of(text, "children: []", 2))]
    assert "takes no name" in defs.problems[0].message
    assert "duplicate key 'children'" in defs.problems[1].message
    assert len(defs.roots[0].finally_blocks) == 2


# -- recorded for the validator ------------------------------------------------------------------


def test_unknown_keys_become_unknown_options_at_their_line():
    defs, text = read("""
        jobnets:
          - jobnet: r
            script: not for a jobnet
            colour: red
            children:
              - job: j
                script: j.sh
                boot_jobs: [x]
                retry: 3
              - expansion: other
                server: s1
              - hadoop_job_run: h
                script: h.sh
                children:
                  - hadoop_job: hj
                    preparation: no
    """)
    assert defs.problems == []
    found = [(n.name, u.key, u.where.line) for n in defs.roots[0].walk() for u in n.unknown_options]
    assert found == [("r", "script", line_of(text, "script: not")),
                     ("r", "colour", line_of(text, "colour")),
                     ("j", "boot_jobs", line_of(text, "boot_jobs")),
                     ("j", "retry", line_of(text, "retry")),
                     ("other", "server", line_of(text, "server: s1")),
                     ("hj", "preparation", line_of(text, "preparation"))]


def test_misplaced_structure_is_recorded_as_written():
    defs, _ = read("""
        jobnets:
          - jobnet: r
            boot_jobs: [nobody]
            children:
              - hadoop_job: stray
              - hadoop_job_run: h
                script: h.sh
                children:
                  - job: wrong
                    script: w.sh
              - job: parent
                script: p.sh
                children:
                  - job: under_a_job
                    script: u.sh
              - finally:
                  children:
                    - finally:
              - job: dup
                script: 1.sh
              - job: dup
                script: 2.sh
    """)
    assert defs.problems == []
    root = defs.roots[0]
    assert [(c.kind, c.name) for c in root.children] == [
        (HADOOP_JOB, "stray"), (HADOOP_JOB_RUN, "h"), (JOB, "parent"), (FINALLY, "finally"),
        (JOB, "dup"), (JOB, "dup")]
    assert root.children[1].children[0].kind == JOB
    assert root.children[2].children[0].name == "under_a_job"
    assert root.children[3].children[0].kind == FINALLY
    assert root.boot_job_names == ["nobody"]


def test_auto_sequence_false_is_no_declaration():
    defs, _ = read("""
        jobnets:
          - jobnet: r
            auto_sequence: false
            boot_jobs: a
            children:
              - job: a
                script: a.sh
    """)
    assert defs.problems == []
    assert [(s.kind, s.names) for s in defs.roots[0].sequencing] == [("boot_jobs", ["a"])]


def test_merge_keys_share_options():
    defs, _ = read("""
        jobnets:
          - jobnet: r
            children:
              - &first
                job: a
                script: a.sh
                server: s1
                credential: c1
              - <<: *first
                job: b
                server: s2
    """)
    assert defs.problems == []
    a, b = defs.roots[0].children
    assert (b.name, b.script) == ("b", "a.sh")
    assert b.options == {"server_name": "s2", "credential_name": "c1"}
    assert a.options == {"server_name": "s1", "credential_name": "c1"}


# -- what the model cannot hold ------------------------------------------------------------------


def test_duplicate_keys_are_reported_with_both_lines():
    defs, text = read("""
        jobnets:
          - jobnet: r
            children:
              - job: a
                script: one.sh
                script: two.sh
    """)
    [p] = defs.problems
    first, second = line_of(text, "one.sh"), line_of(text, "two.sh")
    assert (p.code, p.line, p.jobnet) == ("syntax", second, "/r")
    assert f"duplicate key 'script' at lines {first} and {second}" in p.message
    assert defs.roots[0].children[0].script == "two.sh"  # as YAML itself would read it


@pytest.mark.parametrize("body, needle, expected", [
    ("- jobnet: {a: 1}", "jobnet:", "expected text for the name after `jobnet:`, found a mapping"),
    ("- jobnet: r\n  children: {job: a}", "children:", "expected a list under `children:`"),
    ("- jobnet: r\n  children:\n    - just_a_name", "just_a_name",
     "expected an entry such as `job: <name>` (a mapping), found 'just_a_name'"),
    ("- jobnet: r\n  children:\n    - job: a\n      jobnet: b", "job: a",
     "found both job and jobnet"),
    ("- jobnet: r\n  children:\n    - script: a.sh", "script:", "found keys script"),
    ("- jobnet: r\n  children:\n    - job: a\n      script: [a, b]", "script:",
     "expected text for `script:`, found a list"),
    ("- jobnet: r\n  children:\n    - job: a\n      to: {b: 1}", "to:",
     "expected a name or a list of names for `to:`, found a mapping"),
    ("- jobnet: r\n  children:\n    - job: a\n      to: [b, [c]]", "to:",
     "expected names in the list of `to:`, found a list"),
    ("- jobnet: r\n  boot_jobs: {a: 1}", "boot_jobs", "for `boot_jobs:`, found a mapping"),
    ("- jobnet: r\n  auto_sequence: maybe", "auto_sequence",
     "expected true or false after `auto_sequence:`, found 'maybe'"),
    ("- jobnet: r\n  server: [a, b]", "server", "expected text for `server:`, found a list"),
    ("- jobnet: r\n  killing_signal_interval: [1]", "killing_signal_interval",
     "expected a single value after `killing_signal_interval:`"),
    ("- jobnet: r\n  [a]: 1", "[a]", "expected a plain key, found a list"),
    ("jobnet: r", "jobnet: r", "(one jobnet is written as `jobnets:`"),
    ("jobnets: []\nextra: 1", "extra", "unknown top-level key 'extra'"),
    ("jobnets: {jobnet: r}", "jobnets", "expected a list under `jobnets:`, found a mapping"),
    ("just text", "just text", "expected a list of jobnets or `jobnets:` with a list"),
    ("- &a {jobnet: r, children: [*a]}", "jobnet: r", "contains itself through an alias"),
])
def test_wrong_structure_is_a_syntax_problem_at_its_line(body, needle, expected):
    defs = read_yaml("bad.yaml", body + "\n")
    assert [p.code for p in defs.problems] == ["syntax"], defs.problems
    [p] = defs.problems
    assert p.file == "bad.yaml"
    assert p.line == line_of(body, needle)
    assert expected in p.message


def test_a_bad_entry_is_left_out_and_the_rest_is_read():
    defs, _ = read("""
        jobnets:
          - jobnet: r
            children:
              - job: [bad]
              - job: good
                script: g.sh
                to: {bad: 1}
          - jobnet: second
    """)
    assert [p.code for p in defs.problems] == ["syntax", "syntax"]
    assert [r.name for r in defs.roots] == ["r", "second"]
    [good] = defs.roots[0].children
    assert (good.name, good.script, good.to) == ("good", "g.sh", [])


@pytest.mark.parametrize("kind", ["job", "expansion", "hadoop_job_run", "hadoop_job", "finally"])
def test_a_top_level_construct_other_than_jobnet_is_misplaced(kind):
    defs, text = read(f"""
        jobnets:
          - jobnet: ok
          - {kind}: x
    """.replace("finally: x", "finally:"))
    [p] = defs.problems
    assert (p.code, p.line) == ("misplaced", line_of(text, f"- {kind}:"))
    assert kind in p.message and "outside any jobnet" in p.message
    assert [r.name for r in defs.roots] == ["ok"]


@pytest.mark.parametrize("text, line, expected", [
    ("jobnets:\n  - jobnet: r\n    children: [\n", 4, "but found '<stream end>'"),
    ("jobnets:\n  - jobnet: r\n    children: [a b: c\n  - x\n", 4, "expected ',' or ']'"),
    ("jobnets:\n  - jobnet: r\n   bad: indent\n", 3, "expected <block end>"),
    ("jobnets:\n  - jobnet: 'r\n", 3, "found unexpected end of stream"),
    ("jobnets: []\n---\njobnets: []\n", 2, "expected a single document"),
    ("jobnets:\n  - jobnet: *nowhere\n", 2, "found undefined alias 'nowhere'"),
    ("jobnets:\n  - jobnet: r\x00\n", 2, "character #x0000 is not allowed"),
    ("jobnets:\n\t- jobnet: r\n", 2, "found character '\\t' that cannot start any token"),
])
def test_yaml_errors_are_syntax_problems_with_the_line(text, line, expected):
    defs = read_yaml("bad.yaml", text)
    [p] = defs.problems
    assert (p.code, p.file) == ("syntax", "bad.yaml")
    assert p.line == min(line, len(text.splitlines()))
    assert p.message.startswith("not valid YAML") and expected in p.message
    assert defs.roots == []


def test_deep_nesting_is_reported_not_crashed():
    text = "jobnets:\n" + "".join(
        f"{'  ' * (2 * d + 1)}- jobnet: n{d}\n{'  ' * (2 * d + 2)}children:\n" for d in range(600))
    defs = read_yaml("deep.yaml", text)
    assert [p.code for p in defs.problems] == ["syntax"]
    assert "nested too deeply" in defs.problems[0].message


def test_the_documented_examples_read_into_the_same_jobnet():
    doc = (Path(__file__).parent.parent / "docs" / "definitions.md").read_text()
    blocks = doc.split("```")
    python = next(b[len("python\n"):] for b in blocks if b.startswith("python\n"))
    yaml_text = next(b[len("yaml\n"):] for b in blocks if b.startswith("yaml\njobnets:"))
    from_python = read_python("/docs/example.py", python)
    from_yaml = read_yaml("example.yaml", yaml_text)
    assert from_python.problems == [] and from_yaml.problems == []
    # the scripts differ on purpose (a Python variable, a shell variable); the rest is the same
    for defs in (from_python, from_yaml):
        for node in defs.roots[0].walk():
            node.script = "script" if node.script else None
    assert [shape(r) for r in from_yaml.roots] == [shape(r) for r in from_python.roots]
    assert [c.name for c in from_yaml.roots[0].children] == ["j1", "j2", "j3", "j4", "finally"]
