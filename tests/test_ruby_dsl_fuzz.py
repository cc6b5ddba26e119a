"""Property tests of the Ruby DSL reader: whatever the text, it returns Definitions and every
problem is well formed; generated valid definitions read back exactly (and as Ruby runs them)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tengine_min.model.nodes import KINDS, Definitions, Node, Where, set_options
from tengine_min.model.problems import Problem
from tengine_min.model.ruby import read_ruby

DATA = Path(__file__).parent / "data" / "ruby"
RUBY = shutil.which("ruby")
PATH = "/defs/fuzz.rb"
CODES = {"syntax", "unsupported", "misplaced"}

SAMPLES = [(DATA / name).read_text() for name in (
    "0004_retry_one_layer.rb", "01_01_27_loop_expansion_job.rb", "all_constructs.rb",
    "unsupported_several.rb")]
# Pieces of Ruby that matter to the reader, for building and mutating text.
FRAGMENTS = [
    "jobnet", "job", "finally", "expansion", "hadoop_job_run", "hadoop_job", "boot_jobs",
    "auto_sequence", "do", "end", "(", ")", "{", "}", "[", "]", '"', "'", "#{", "#", ":", "=>",
    ",", "\n", " ", "\\", "%w(", "%q[", "/", "<<EOS", "<<-EOS\n", "EOS", "=begin", "=end\n",
    "__END__", "@x", "$y", "`", ";", "1", "0x1f", "08", "1.5e3", "a", "x = ", '"s"', "'s'",
    ":to", "to:", "*", "|", "?", "-", ".", "__FILE__", 'File.expand_path("..", __FILE__)',
    "proc {", "if", "\\u{41}", "\\x", "\r\n", "\t", "\ufeff", "é",
]
CHUNKS = re.compile(r'"(?:[^"\\\n]|\\.)*"|\'(?:[^\'\\\n]|\\.)*\'|\w+|\s+|.', re.DOTALL)


def check_well_formed(text: str) -> Definitions:
    definitions = read_ruby(PATH, text)
    assert isinstance(definitions, Definitions)
    last_line = text.count("\n") + 1
    for found in definitions.problems:
        assert isinstance(found, Problem)
        assert found.code in CODES, found
        assert found.file == PATH
        assert found.line is not None and 1 <= found.line <= last_line, found
        assert found.message.strip(), found
    for root in definitions.roots:
        for node in root.walk():
            assert node.kind in KINDS
            assert 1 <= node.where.line <= last_line
            assert all(1 <= u.where.line <= last_line for u in node.unknown_options)
            assert all(1 <= s.where.line <= last_line for s in node.sequencing)
    return definitions


@settings(max_examples=200, deadline=None)
@given(st.text())
def test_arbitrary_text_never_raises(text):
    check_well_formed(text)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from(FRAGMENTS), max_size=60).map("".join))
def test_rubyish_fragments_never_raise(text):
    check_well_formed(text)


MUTATIONS = st.lists(st.tuples(st.sampled_from(["delete", "duplicate", "swap", "insert"]),
                               st.integers(min_value=0), st.integers(min_value=0),
                               st.sampled_from(FRAGMENTS)),
                     min_size=1, max_size=6)


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(SAMPLES), MUTATIONS)
def test_mutated_valid_definitions_never_raise(sample, mutations):
    chunks = CHUNKS.findall(sample)
    for operation, a, b, fragment in mutations:
        i, j = a % len(chunks), b % len(chunks)
        if operation == "delete" and len(chunks) > 1:
            del chunks[i]
        elif operation == "duplicate":
            chunks.insert(i, chunks[i])
        elif operation == "swap":
            chunks[i], chunks[j] = chunks[j], chunks[i]
        elif operation == "insert":
            chunks.insert(i, fragment)
    check_well_formed("".join(chunks))


def test_the_unmutated_samples_read_cleanly():
    """The control for the mutation test: its starting points are valid."""
    for sample in SAMPLES[:3]:
        assert check_well_formed(sample).problems == []


# -- generated valid definitions -------------------------------------------------------------

NAMES = st.text(alphabet="abcxyz_019-é", min_size=1, max_size=6)
TEXTS = st.text(max_size=12)
STYLES = st.fixed_dictionaries({
    "parens": st.booleans(), "labels": st.booleans(), "quote": st.sampled_from(['"', "'"]),
    "braces": st.booleans()})


def ruby_string(text: str, quote: str) -> str:
    if quote == "'" and text.isprintable():
        return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"
    escaped = []
    for ch in text:
        if ch in '"\\#':
            escaped.append("\\" + ch)
        elif not ch.isprintable() and ch != " ":
            escaped.append(f"\\u{{{ord(ch):x}}}")
        else:
            escaped.append(ch)
    return '"' + "".join(escaped) + '"'


def leaf(kind: str):
    return st.fixed_dictionaries({
        "kind": st.just(kind), "name": NAMES, "to": st.lists(NAMES, max_size=2),
        "style": STYLES})


def jobs():
    def job(kind: str, children):
        return st.fixed_dictionaries({
            "kind": st.just(kind), "name": NAMES, "description": st.none() | TEXTS,
            "script": TEXTS, "to": st.lists(NAMES, max_size=2), "style": STYLES,
            "children": children})
    return job("job", st.just([])) | job("hadoop_job_run",
                                         st.lists(leaf("hadoop_job"), max_size=2))


def jobnets(depth: int = 0):
    children = jobs() | leaf("expansion")
    if depth < 2:
        children = children | st.deferred(lambda: jobnets(depth + 1)) | st.fixed_dictionaries({
            "kind": st.just("finally"), "style": STYLES,
            "children": st.lists(jobs(), max_size=2)})
    return st.fixed_dictionaries({
        "kind": st.just("jobnet"), "name": NAMES, "description": st.none() | TEXTS,
        "server": st.none() | TEXTS, "to": st.lists(NAMES, max_size=2), "style": STYLES,
        "boot": st.none() | st.lists(NAMES, min_size=1, max_size=3), "auto": st.booleans(),
        "children": st.lists(children, max_size=4)})


def render(spec: dict, indent: str = "") -> str:
    kind, style = spec["kind"], spec["style"]

    def quoted(text: str) -> str:
        return ruby_string(text, style["quote"])

    def option(key: str, value: str) -> str:
        return f"{key}: {value}" if style["labels"] else f":{key} => {value}"

    args = []
    if kind != "finally":
        args.append(quoted(spec["name"]))
        if spec.get("description") is not None:
            args.append(quoted(spec["description"]))
        if "script" in spec:
            args.append(quoted(spec["script"]))
        if spec.get("server") is not None:
            args.append(option("server_name", quoted(spec["server"])))
        if len(spec["to"]) == 1:
            args.append(option("to", quoted(spec["to"][0])))
        elif spec["to"]:
            args.append(option("to", "[" + ", ".join(quoted(t) for t in spec["to"]) + "]"))
    parens = style["parens"] or not args
    line = f"{kind}({', '.join(args)})" if parens else f"{kind} {', '.join(args)}"
    inner = []
    if spec.get("boot"):
        inner.append(f"{indent}  boot_jobs({', '.join(quoted(b) for b in spec['boot'])})")
    if spec.get("auto"):
        inner.append(f"{indent}  auto_sequence")
    inner += [render(child, indent + "  ") for child in spec.get("children", [])]
    if kind in ("job", "hadoop_job", "expansion") or (kind == "hadoop_job_run" and not inner):
        return indent + line
    if style["braces"] and parens:  # `{ }` binds to the call only with parentheses
        return indent + line + " {\n" + "\n".join(inner) + f"\n{indent}}}"
    return indent + line + " do\n" + "\n".join(inner) + f"\n{indent}end"


def expected_shape(spec: dict) -> tuple:
    kind = spec["kind"]
    options = {"server_name": spec["server"]} if spec.get("server") is not None else {}
    sequencing = ([("boot_jobs", spec["boot"])] if spec.get("boot") else []) + \
        ([("auto_sequence", [])] if spec.get("auto") else [])
    return (kind, spec.get("name", "finally"), spec.get("description"), spec.get("script"),
            list(spec.get("to", [])), options, [], sequencing,
            [expected_shape(child) for child in spec.get("children", [])])


def shape(node: Node) -> tuple:
    return (node.kind, node.name, node.description, node.script, node.to, node.options,
            sorted(u.key for u in node.unknown_options),
            [(s.kind, s.names) for s in node.sequencing],
            [shape(child) for child in node.children])


@settings(max_examples=200, deadline=None)
@given(jobnets())
def test_generated_definitions_read_back_exactly(spec):
    text = "require 'tengine_job'\n\n" + render(spec) + "\n"
    definitions = read_ruby(PATH, text)
    assert definitions.problems == [], [str(p) for p in definitions.problems]
    assert [shape(root) for root in definitions.roots] == [expected_shape(spec)]


def ruby_shape(record: dict) -> tuple:
    """What the Ruby oracle recorded, folded through the same model functions."""
    where = Where(PATH, record["line"])
    node = Node(kind=record["kind"], name=record["name"], where=where,
                description=record["description"], script=record["script"])
    set_options(node, record["options"], where)
    return (node.kind, node.name, node.description, node.script, node.to, node.options,
            sorted(u.key for u in node.unknown_options),
            [(kind, names) for kind, _, names in record["sequencing"]],
            [ruby_shape(child) for child in record["children"]])


@pytest.mark.skipif(RUBY is None, reason="ruby is not installed on this machine")
@settings(max_examples=30, deadline=None)
@given(jobnets())
def test_generated_definitions_read_as_ruby_evaluates_them(spec):
    text = "require 'tengine_job'\n\n" + render(spec) + "\n"
    with tempfile.TemporaryDirectory() as directory:
        source = Path(directory) / "generated.rb"
        source.write_text(text, encoding="utf-8")
        result = subprocess.run([RUBY, "-I", str(DATA / "oracle"), str(source)],
                                check=False, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    ours = read_ruby(PATH, text)
    assert ours.problems == []
    assert [shape(root) for root in ours.roots] == \
        [ruby_shape(record) for record in json.loads(result.stdout)]
