"""The static reader of Tengine's Ruby jobnet DSL (tengine_min.model.ruby)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tengine_min.model.graph import plan_edges
from tengine_min.model.nodes import Definitions, Node, Where, set_options
from tengine_min.model.ruby import read_ruby

DATA = Path(__file__).parent / "data" / "ruby"
ORACLE = DATA / "oracle"
RUBY = shutil.which("ruby")
needs_ruby = pytest.mark.skipif(RUBY is None, reason="ruby is not installed on this machine")
PATH = "/defs/sample.rb"


def read(text: str, path: str = PATH) -> Definitions:
    return read_ruby(path, text)


def read_clean(text: str, path: str = PATH) -> Definitions:
    definitions = read(text, path)
    assert definitions.problems == [], [str(p) for p in definitions.problems]
    return definitions


def only_root(text: str) -> Node:
    definitions = read_clean(text)
    assert len(definitions.roots) == 1
    return definitions.roots[0]


def shape(node: Node) -> tuple:
    """Everything the reader decides about a node, comparable across spellings."""
    return (node.kind, node.name, node.description, node.script, node.to, node.options,
            sorted(u.key for u in node.unknown_options),
            [(s.kind, s.names) for s in node.sequencing],
            [shape(child) for child in node.children])


def one_problem(text: str):
    definitions = read(text)
    assert len(definitions.problems) == 1, [str(p) for p in definitions.problems]
    return definitions.problems[0]


def ruby_syntax_ok(text: str, tmp_path: Path) -> bool:
    source = tmp_path / "snippet.rb"
    source.write_text(text)
    result = subprocess.run([RUBY, "-c", str(source)], check=False, capture_output=True, text=True,
                            timeout=60)
    return result.returncode == 0


# -- Tengine's own examples ------------------------------------------------------------------


def test_example_0004_retry_one_layer_is_read_exactly():
    path = str(DATA / "0004_retry_one_layer.rb")
    definitions = read_clean(Path(path).read_text(), path)
    script = os.path.join(str(DATA.resolve()), "0004_retry_one_layer.sh")

    assert definitions.files == [path]
    [root] = definitions.roots
    assert (root.kind, root.name, root.where) == ("jobnet", "jn0004", Where(path, 9))
    assert root.options == {"server_name": "localhost", "credential_name": "ssh_pk"}
    assert [(s.kind, s.names, s.where.line) for s in root.sequencing] == \
        [("boot_jobs", ["j1"], 10)]
    assert [(c.kind, c.name, c.where.line) for c in root.children] == [
        ("job", "j1", 11), ("job", "j2", 12), ("job", "j3", 13), ("job", "j4", 14),
        ("finally", "finally", 15)]
    jobs = {c.name: c for c in root.vertices}
    assert {name: job.to for name, job in jobs.items()} == \
        {"j1": ["j2", "j3"], "j2": ["j4"], "j3": ["j4"], "j4": []}
    assert {job.script for job in jobs.values()} == {script}
    assert all(job.description is None and job.options == {} for job in jobs.values())
    [finally_block] = root.finally_blocks
    [cleanup] = finally_block.children
    assert (cleanup.kind, cleanup.name, cleanup.script, cleanup.where.line) == \
        ("job", "jn0004_f", script, 16)
    assert cleanup.path == "/jn0004/finally/jn0004_f"
    assert cleanup.server_name == "localhost"  # inherited from the root

    plan = plan_edges(root)
    assert (plan.mode, plan.start, plan.end) == ("boot", ["j1"], ["j4"])
    assert sorted(plan.edges) == [("j1", "j2"), ("j1", "j3"), ("j2", "j4"), ("j3", "j4")]


def test_cycle_of_two_jobs_jobnet1051():
    path = str(DATA / "01_01_26_loop_job.rb")
    [root] = read_clean(Path(path).read_text(), path).roots
    assert root.name == "jobnet1051"
    assert root.options == {"server_name": "test_server1", "credential_name": "test_credential1"}
    assert root.boot_job_names == ["job1"]
    assert [(c.kind, c.name, c.to, c.where.line) for c in root.children] == [
        ("job", "job1", ["job2"], 6), ("job", "job2", ["job1"], 7)]


def test_cycle_of_two_expansions_jobnet1052():
    path = str(DATA / "01_01_27_loop_expansion_job.rb")
    definitions = read_clean(Path(path).read_text(), path)
    assert [r.name for r in definitions.roots] == ["jobnet1052", "jobnet1052_2", "jobnet1052_3"]
    root = definitions.roots[0]
    assert root.boot_job_names == ["job1"]
    assert [(c.kind, c.name, c.to, c.where.line) for c in root.children] == [
        ("job", "job1", ["jobnet1052_2"], 6),
        ("expansion", "jobnet1052_2", ["jobnet1052_3"], 7),
        ("expansion", "jobnet1052_3", ["jobnet1052_2"], 8)]
    assert [c.name for c in definitions.roots[2].children] == ["job3"]


# -- call forms ------------------------------------------------------------------------------

SAME_JOBNET = [
    # parentheses, hash rockets
    ('jobnet("jn", "desc", :server_name => "s") do\n'
     '  boot_jobs("a")\n  job("a", "a.sh", :to => "b")\n  job("b", "b.sh")\nend\n'),
    # no parentheses, Ruby 1.9 labels
    ('jobnet "jn", "desc", server_name: "s" do\n'
     '  boot_jobs "a"\n  job "a", "a.sh", to: "b"\n  job "b", "b.sh"\nend\n'),
    # brace block, braces around the options, trailing commas
    ('jobnet("jn", "desc", {:server_name => "s",}) {\n'
     '  boot_jobs("a",)\n  job("a", "a.sh", {to: "b"},)\n  job("b", "b.sh",)\n}\n'),
    # `;` separators, one line
    ('jobnet("jn", "desc", :server_name => "s") { boot_jobs "a"; job "a", "a.sh", :to => "b"; '
     'job "b", "b.sh" }\n'),
    # arguments continued over lines after `(`, `,` and `=>`
    ('jobnet(\n  "jn",\n  "desc",\n  :server_name =>\n    "s"\n) do\n'
     '  boot_jobs(\n    "a"\n  )\n  job "a",\n      "a.sh",\n      :to => "b"\n'
     '  job("b", "b.sh")\nend\n'),
    # symbol values, string keys for ordinary options, alias keys
    ('jobnet(:jn, :caption => "desc", "server_name" => :s) do\n'
     '  boot_jobs(:a)\n  job(:a, "a.sh", :redirect_to => :b)\n  job(:b, "b.sh")\nend\n'),
    # quoted-symbol labels
    ('jobnet("jn", "description": "desc", "instance_name": "s") do\n'
     '  boot_jobs("a")\n  job("a", "a.sh", "to": "b")\n  job("b", \'b.sh\')\nend\n'),
    # comments everywhere, blank lines, a backslash continuation, a block comment
    ('# head\n\njobnet("jn", "desc", # trailing comment\n  :server_name => "s") do # x\n'
     '  # inside\n  boot_jobs("a")\n\n  job "a", \\\n    "a.sh", :to => "b"\n'
     '=begin\n  job("c", "c.sh")\n=end\n  job("b", "b.sh")\nend # done\n'),
]


@pytest.mark.parametrize("text", SAME_JOBNET)
def test_every_call_form_reads_into_the_same_jobnet(text):
    expected = ("jobnet", "jn", "desc", None, [], {"server_name": "s"}, [],
                [("boot_jobs", ["a"])],
                [("job", "a", None, "a.sh", ["b"], {}, [], [], []),
                 ("job", "b", None, "b.sh", [], {}, [], [], [])])
    assert shape(only_root(text)) == expected


def test_require_dsl_version_and_coding_comment_are_accepted_and_ignored():
    text = ('# -*- coding: utf-8 -*-\nrequire \'tengine_job\'\nrequire "socket"\n'
            'dsl_version("1.0")\ndsl_version "1.2.1"\njobnet("jn") do\n  job("j", "j.sh")\nend\n')
    root = only_root(text)
    assert (root.name, root.where.line, [c.name for c in root.children]) == ("jn", 6, ["j"])


def test_nothing_after_end_marker_is_read():
    definitions = read_clean('jobnet("a") do\nend\n__END__\njobnet("b") do\n  this is data\n')
    assert [r.name for r in definitions.roots] == ["a"]


# -- what each DSL call builds ---------------------------------------------------------------


@pytest.mark.parametrize("call, description, script", [
    ('job("j", "s.sh")', None, "s.sh"),
    ('job("j", "a job", "s.sh")', "a job", "s.sh"),
    ('job("j", "a job", nil)', None, "a job"),  # loader: a falsy script makes the first the script
    ('job("j", nil, "s.sh")', None, "s.sh"),
    ('job("j")', None, None),  # no script: the validator reports it
    ('job("j", "")', None, ""),
    ('job "j", "s.sh", :description => "by option"', "by option", "s.sh"),
    ('job "j", "positional", "s.sh", :caption => "caption wins"', "caption wins", "s.sh"),
])
def test_job_positional_arguments_follow_tengines_loader(call, description, script):
    root = only_root(f'jobnet("jn") do\n  {call}\nend\n')
    [job] = root.children
    assert (job.kind, job.name, job.description, job.script, job.where.line) == \
        ("job", "j", description, script, 2)


def test_hadoop_job_run_holds_hadoop_jobs():
    root = only_root('jobnet("jn") do\n'
                     '  hadoop_job_run("hjr", "Hadoop run", "run.sh", :to => "j2") do\n'
                     '    hadoop_job("h1")\n    hadoop_job "h2", :to => "h1"\n  end\n'
                     '  hadoop_job_run "solo", "solo.sh"\n  job("j2", "j2.sh")\nend\n')
    hjr, solo, _ = root.children
    assert (hjr.kind, hjr.description, hjr.script, hjr.to) == \
        ("hadoop_job_run", "Hadoop run", "run.sh", ["j2"])
    assert [(h.kind, h.name, h.to, h.where.line) for h in hjr.children] == [
        ("hadoop_job", "h1", [], 3), ("hadoop_job", "h2", ["h1"], 4)]
    assert (solo.kind, solo.description, solo.script, solo.children) == \
        ("hadoop_job_run", None, "solo.sh", [])
    assert hjr.children[0].path == "/jn/hjr/h1"


def test_nested_jobnets_finally_and_expansions():
    root = only_root('jobnet("outer", :server_name => "s") do\n'
                     '  jobnet("inner", "inner desc", :to => "other", :auto_sequence => true) do\n'
                     '    job("i1", "i1.sh")\n    finally do\n      job("if", "if.sh")\n'
                     '    end\n  end\n  expansion("other", :to => "last")\n'
                     '  expansion "last"\n  finally { job("f", "f.sh") }\nend\n')
    inner, other, last, fin = root.children
    assert (inner.kind, inner.description, inner.to, inner.options) == \
        ("jobnet", "inner desc", ["other"], {"auto_sequence": True})
    assert [c.name for c in inner.children] == ["i1", "finally"]
    assert inner.children[1].children[0].path == "/outer/inner/finally/if"
    assert (other.kind, other.name, other.to, other.where.line) == \
        ("expansion", "other", ["last"], 8)
    assert (last.kind, last.to) == ("expansion", [])
    assert (fin.kind, fin.name, [c.name for c in fin.children]) == ("finally", "finally", ["f"])
    assert inner.children[0].server_name == "s"


@pytest.mark.parametrize("call", [
    'boot_jobs("a", "b")', 'boot_jobs "a", "b"', 'boot_jobs(*["a", "b"])', 'boot_jobs *%w(a b)',
    'boot_jobs(:a, :b)', 'boot_jobs("a",\n            "b")',
])
def test_boot_jobs_forms(call):
    root = only_root(f'jobnet("jn") do\n  {call}\nend\n')
    [sequencing] = root.sequencing
    assert (sequencing.kind, sequencing.names, sequencing.where) == \
        ("boot_jobs", ["a", "b"], Where(PATH, 2))


def test_boot_jobs_from_a_variable_and_auto_sequence():
    root = only_root('names = %w[a b]\njobnet("jn") do\n  boot_jobs(*names)\n  auto_sequence\n'
                     'end\n')
    assert [(s.kind, s.names, s.where.line) for s in root.sequencing] == [
        ("boot_jobs", ["a", "b"], 3), ("auto_sequence", [], 4)]


def test_options_keep_unknown_keys_with_their_own_lines():
    root = only_root('jobnet("jn") do\n  job("j", "j.sh",\n      :hoge => "x",\n'
                     '      :killing_signals => "TERM",\n      fuga: 1)\nend\n')
    [job] = root.children
    assert [(u.key, u.where.line) for u in job.unknown_options] == [("hoge", 3), ("fuga", 5)]
    assert job.options == {"killing_signals": ["TERM"]}


def test_to_nil_means_no_edge_as_in_tengine():
    root = only_root('jobnet("jn") do\n  job("j", "j.sh", :to => nil)\nend\n')
    assert root.children[0].to == []


# -- misplaced constructs --------------------------------------------------------------------


def test_misplaced_constructs_inside_blocks_are_recorded_as_written():
    root = only_root('jobnet("jn") do\n  hadoop_job("h")\n'
                     '  hadoop_job_run("r", "r.sh") do\n    job("j", "j.sh")\n  end\n'
                     '  finally do\n    finally do\n      job("ff", "ff.sh")\n    end\n  end\n'
                     '  job("k", "k.sh") do\n    jobnet("in_job") do\n    end\n    auto_sequence\n'
                     '  end\nend\n')
    h, r, fin, k = root.children
    assert h.kind == "hadoop_job"
    assert [(c.kind, c.name) for c in r.children] == [("job", "j")]
    assert [(c.kind, c.children[0].name) for c in fin.children] == [("finally", "ff")]
    assert [(c.kind, c.name, c.where.line) for c in k.children] == [("jobnet", "in_job", 12)]
    assert [s.kind for s in k.sequencing] == ["auto_sequence"]


def test_top_level_finally_and_hadoop_job_run_become_roots_as_in_tengine():
    definitions = read_clean('finally do\n  job("f", "f.sh")\nend\n'
                             'hadoop_job_run("r", "r.sh") do\n  hadoop_job("h")\nend\n')
    assert [(r.kind, r.name, r.where.line) for r in definitions.roots] == [
        ("finally", "finally", 1), ("hadoop_job_run", "r", 4)]


@pytest.mark.parametrize("call, line", [
    ('job("j", "j.sh")', 2), ('expansion("x")', 2), ('hadoop_job("h")', 2),
    ('boot_jobs("a")', 2), ('auto_sequence', 2),
])
def test_dsl_calls_that_need_a_jobnet_are_misplaced_at_top_level(call, line):
    definitions = read(f'jobnet("before") do\nend\n{call}\njobnet("after") do\nend\n')
    [found] = definitions.problems
    assert (found.code, found.line, found.jobnet) == ("misplaced", 3, None)
    assert "outside any jobnet" in found.message
    assert [r.name for r in definitions.roots] == ["before", "after"]


# -- values ----------------------------------------------------------------------------------

VALUES = [
    ('"plain"', "plain"),
    ("'single'", "single"),
    (r"'it\'s \\ \n'", "it's \\ \\n"),
    (r'"tab\tnew\nq\"bs\\"', 'tab\tnew\nq"bs\\'),
    (r'"\e\s\0\101\x41\u00e9\u{1F600 41}"', "\x1b \x00AA\u00e9\U0001F600A"),
    ('"multi\nline"', "multi\nline"),
    ('"a" \'b\' "c"', "abc"),
    ("%w(a b  c)", ["a", "b", "c"]),
    ("%w[x y]", ["x", "y"]),
    ("%w{p\\ q r}", ["p q", "r"]),
    ("%i(a b)", ["a", "b"]),
    ("%q(a (nested) 'q')", "a (nested) 'q'"),
    ('%Q(x #{1} y)', "x 1 y"),
    ("%(parens)", "parens"),
    (":sym", "sym"),
    (':"quoted sym"', "quoted sym"),
    ("42", 42), ("-3", -3), ("1_000", 1000), ("0x1f", 31), ("0b101", 5), ("017", 15),
    ("0o17", 15), ("1.5", 1.5), ("-2.5e3", -2500.0),
    ("true", True), ("false", False), ("nil", None),
    ('[1, [2, "x"], []]', [1, [2, "x"], []]),
    ('[\n  "a",\n  "b",\n]', ["a", "b"]),
    ('{:a => 1, "b" => [2], c: {d: :e}, 4 => nil}', {"a": 1, "b": [2], "c": {"d": "e"}, 4: None}),
    ("{}", {}),
    ('("paren")', "paren"),
    ('"#{1}-#{2.5}-#{1e20}-#{true}-#{nil}-#{:s}-#{"in"}"', "1-2.5-1.0e+20-true--s-in"),
    ('"#{}"', ""),
    ('"#{\n  "spread"\n}"', "spread"),
]


@pytest.mark.parametrize("literal, expected", VALUES)
def test_value_forms(literal, expected):
    root = only_root(f'jobnet("jn") do\n  job("j", "j.sh", :killing_signal_interval => {literal})\n'
                     'end\n')
    assert root.children[0].options == {"killing_signal_interval": expected}


@needs_ruby
@pytest.mark.parametrize("literal, expected", VALUES)
def test_value_forms_agree_with_ruby(literal, expected, tmp_path):
    script = tmp_path / "v.rb"
    script.write_text(f"require 'json'\nv = {literal}\n"
                      "puts JSON.generate([v.is_a?(Symbol) ? v.to_s : v])\n")
    result = subprocess.run([RUBY, str(script)], check=False, capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, result.stderr
    # compared as JSON, where Ruby's symbols and both sides' hash keys become strings
    assert json.loads(result.stdout)[0] == json.loads(json.dumps([expected]))[0]


def test_local_variables_and_constants_hold_literals():
    definitions = read_clean('dir = "/opt/jobs"\nBASE = "/base"\nsigs = ["INT", "KILL"]\n'
                             'jobnet("jn") do\n  name = "inner"\n  dir = "/changed"\n'
                             '  job(name, "#{dir}/#{name}.sh #{BASE}", :killing_signals => sigs)\n'
                             'end\njobnet("after") do\n  job("a", "#{dir}/a.sh")\nend\n')
    [job] = definitions.roots[0].children
    assert (job.name, job.script, job.options["killing_signals"]) == \
        ("inner", "/changed/inner.sh /base", ["INT", "KILL"])
    # a block assigns the outer variable it can see, as in Ruby
    assert definitions.roots[1].children[0].script == "/changed/a.sh"


def test_a_block_local_variable_is_not_visible_after_the_block():
    definitions = read('jobnet("a") do\n  x = "1"\nend\njobnet("b") do\n  job("j", x)\nend\n')
    [found] = definitions.problems
    assert (found.code, found.line) == ("unsupported", 5)
    assert "`x`" in found.message


def test_file_paths_resolve_to_the_directory_of_the_file():
    text = ('a = File.expand_path("..", __FILE__)\nb = File.dirname(__FILE__)\n'
            'c = File.expand_path(File.dirname(__FILE__))\nd = __FILE__\n'
            'e = File.expand_path("../lib/x.sh", __FILE__)\n'
            'jobnet("jn") do\n  job("j", "#{a}|#{b}|#{c}|#{d}|#{e}")\nend\n')
    root = only_root(text)
    assert root.children[0].script == "/defs|/defs|/defs|/defs/sample.rb|/defs/lib/x.sh"
    relative = read_clean(text, "defs/sample.rb").roots[0].children[0].script
    here = os.path.abspath("defs")
    assert relative == f"{here}|{here}|{here}|{here}/sample.rb|{here}/lib/x.sh"


@needs_ruby
def test_file_paths_agree_with_ruby(tmp_path):
    path = tmp_path / "sub" / "paths.rb"
    path.parent.mkdir()
    body = ('a = File.expand_path("..", __FILE__)\nb = File.dirname(__FILE__)\n'
            'c = File.expand_path(File.dirname(__FILE__))\n'
            'd = File.expand_path("../../x/./y.sh", __FILE__)\ne = File.dirname("/a//b/")\n')
    path.write_text(body + 'jobnet("jn") do\n  job("j", "#{a}|#{b}|#{c}|#{d}|#{e}|#{__FILE__}")\n'
                    'end\n')
    ours = read_clean(path.read_text(), str(path)).roots[0].children[0].script
    assert ours == _oracle(path)[0]["children"][0]["script"]


# -- unsupported constructs ------------------------------------------------------------------

UNSUPPORTED = [
    ('  job("j", "env", :preparation => proc { "export A=1" })',
     ("`:preparation => proc` is evaluated by tengined at run time; the static reader cannot "
      "evaluate it")),
    ('  job("j", "env", preparation: lambda { "x" })', "`preparation: lambda` is evaluated"),
    ('  job("j", "env", :preparation => -> { "x" })', "`:preparation => ->`"),
    ('  %w(a b).each do |n|\n    job(n, "x")\n  end', "loop (`.each`)"),
    ('  3.times { |i| job("j#{i}", "x") }', "loop (`.times`)"),
    ('  while false do\n  end', "`while` loop"),
    ('  for i in [1] do\n  end', "`for` loop"),
    ('  loop do\n    break\n  end', "`loop`"),
    ('  if true\n    job("j", "x")\n  end', "`if` condition"),
    ('  unless false then job("j", "x") end', "`unless` condition"),
    ('  case 1\n  when 1 then job("j", "x")\n  end', "`case` expression"),
    ('  def helper\n  end', "method definition"),
    ('  job("j", "x") if true', "`if` modifier"),
    ('  puts("hello")', "`puts` is neither a method of Tengine's jobnet DSL"),
    ('  job("j", "#{unknown}/x.sh")', "string interpolation `#{unknown}`"),
    ('  job("j", "#{1 + 1}")', "operator `+`"),
    ('  job("j", ENV["HOME"])', "`ENV`"),
    ('  job("j", "a" + "b")', "operator `+`"),
    ('  job("j", "x".upcase)', "method call `.upcase`"),
    ('  job("j", File.join("a", "b"))', "`File.join` is not evaluated"),
    ('  job("j", File.expand_path("x"))', "working directory of tengined"),
    ('  job("j", File.expand_path("~/x"))', "home directory"),
    ('  ruby_job("r") { }', "unmerged branch 20130212_ruby_job"),
    ('  job("j", <<-EOS)\n    echo hi\n  EOS', "heredoc"),
    ('  job("j", "x", :to => /j2/)', "regular expression"),
    ('  job("j", `hostname`)', "backtick"),
    ('  job("j", @script)', "variable `@script`"),
    ('  job("j", $script)', "variable `$script`"),
    ('  job("j", "x", "to" => "k")', 'option key "to" is a string'),
    ('  job("j", "x", :to => 1)', "`:to` must be a name or a list of names"),
    ('  job("j", "x", :to => ["a", 1])', "`:to` must be a name or a list of names"),
    ('  job("j", :script)', None),  # a symbol as script: a string after all
    ('  job("j", "x", "extra", "args")', "Tengine ignores the extra argument"),
    ('  jobnet("n", "d", "extra") do\n  end', "Tengine ignores the extra argument"),
    ('  job(1, "x")', "the name given to `job` must be a string"),
    ('  boot_jobs(["a", "b"])', "boot_jobs(*[...])"),
    ('  jobnet("n") do |j|\n  end', "block parameters"),
    ('  dsl_version "1.0"', "`dsl_version` inside a block"),
    ('  x = foo()\n  job("j", x)', "`foo` is neither"),
    ('  a, b = "x", "y"', "multiple assignment"),
    ('  x ||= "b"', "compound assignment"),
    ('  class Foo\n  end', "class definition"),
    ('  module Foo\n  end', "module definition"),
    ('  job("j", Tengine::VERSION)', "`Tengine::VERSION`"),
    ('  job("j", "x", :to => (1..2))', "range"),
    ('  job("j", "x\\M-a")', "control/meta escape"),
    ('  job("j", true ? "a" : "b")', "conditional expression"),
    ('  job("j", !true)', "operator `!`"),
    ('  job("j", "x", &blk)', "block argument"),
    ('  job("j", "#@x")', "interpolation of a variable"),
    ('  job("j", "caf\\xe9")', "byte escape `\\xe9`"),
    ('  job("j", "\\351")', "byte escape `\\351`"),
    ('  begin\n    job("j", "x")\n  end', "`begin` block"),
]


@pytest.mark.parametrize("body, fragment", UNSUPPORTED)
def test_unsupported_constructs_are_reported_with_their_line(body, fragment):
    text = f'jobnet("before") do\nend\njobnet("jn") do\n{body}\nend\njobnet("after") do\nend\n'
    definitions = read(text)
    if fragment is None:  # controls: these read fine
        assert definitions.problems == []
        return
    assert len(definitions.problems) == 1, [str(p) for p in definitions.problems]
    found = definitions.problems[0]
    assert (found.code, found.file, found.line, found.jobnet) == ("unsupported", PATH, 4, "/jn")
    assert fragment in found.message
    # the jobnet with the problem is skipped whole; its neighbours are read
    assert [r.name for r in definitions.roots] == ["before", "after"]


@needs_ruby
@pytest.mark.parametrize("body", [b for b, f in UNSUPPORTED if f])
def test_unsupported_snippets_are_valid_ruby(body, tmp_path):
    assert ruby_syntax_ok(f'jobnet("jn") do\n{body}\nend\n', tmp_path)


def test_unsupported_at_top_level_names_the_construct_and_reading_goes_on():
    definitions = read('base = ENV["X"]\njobnet("a") do\n  job("j", "#{base}/j.sh")\nend\n'
                       'jobnet("b") do\n  job("j", "j.sh")\nend\n')
    assert [(p.code, p.line) for p in definitions.problems] == \
        [("unsupported", 1), ("unsupported", 3)]
    assert "`ENV`" in definitions.problems[0].message
    assert "assignment at line 1 could not be read" in definitions.problems[1].message
    assert [r.name for r in definitions.roots] == ["b"]


def test_problem_names_the_innermost_jobnet():
    found = one_problem('jobnet("root") do\n  jobnet("child") do\n    finally do\n'
                        '      job("j", ENV["X"])\n    end\n  end\nend\n')
    assert (found.line, found.jobnet) == (4, "/root/child/finally")


# -- syntax errors ---------------------------------------------------------------------------

SYNTAX = [
    # (text, line, fragment)
    ('jobnet("jn") do\n  job("j", "x")\n', 1,
     "the `do` of jobnet \"jn\" at line 1 has no matching `end`: found end of file at line 2"),
    ('jobnet("jn") {\n  job("j", "x")\n', 1, "has no matching `}`"),
    ('jobnet("jn") do\n  job("j", "x")\nend\nend\n', 4, "unexpected `end`"),
    ('jobnet("jn") do\n  job("j", "x)\nend\n', 2, "unterminated"),
    ("jobnet('jn') do\n  job('j', 'x)\nend\n", 2, "unterminated"),
    ('jobnet("jn") do\n  job("j", "#{x")\nend\n', 2, "unterminated"),
    ('jobnet("jn") do\n  job("j",, "x")\nend\n', 2, "expected a value, found `,`"),
    ('jobnet("jn") do\n  job("j" "x"\nend\n', 3,
     "expected `,` or `)` in the arguments of `job` (opened at line 2), found `end`"),
    ('jobnet("jn") do\n  job "j", "x" :to => "k"\nend\n', 2,
     "expected the end of the line, found the symbol `:to`"),
    ('jobnet "jn" { job("j", "x") }\n', 1, "write `do ... end`"),
    ('jobnet("jn") do\n  job("j", "x", :to => "a", "b")\nend\n', 2, "expected `=>`"),
    ('jobnet("jn") do\n  job("j", [1, 2)\nend\n', 2, "expected `,` or `]` in the array"),
    ('jobnet("jn") do\n  job("j", {:a => 1)\nend\n', 2, "expected `,` or `}` in the hash"),
    ('=begin\njobnet("jn") do\nend\n', 1, "`=begin` at line 1 has no matching `=end`"),
    ('jobnet("jn") do\n  job("j", 08)\nend\n', 2, "invalid octal number"),
    ('jobnet("jn") do\n  job("j", "\\u{110000}")\nend\n', 2, "invalid Unicode codepoint"),
    ('jobnet("jn") do\n  job("j", "\\xZZ")\nend\n', 2, "invalid hex escape"),
    ('jobnet("jn") do\n  job("j", "x")\n}\n', 3, "expected `end` to close the `do`"),
    ('jobnet("jn") do\n  job("j", "x"),\nend\n', 2, "expected the end of the line, found `,`"),
    ('jobnet("jn") do\n  job "j",\nend\n', 3, "expected a value, found `end`"),
    ('jobnet("jn") do\n  job("j", "x")\n  )\nend\n', 3, "found `)`"),
]


@pytest.mark.parametrize("text, line, fragment", SYNTAX)
def test_syntax_errors_say_what_was_expected_and_found(text, line, fragment):
    found = one_problem(text)
    assert (found.code, found.line) == ("syntax", line), str(found)
    assert fragment in found.message


@needs_ruby
@pytest.mark.parametrize("text", [t for t, _, _ in SYNTAX])
def test_syntax_error_snippets_are_rejected_by_ruby_too(text, tmp_path):
    assert not ruby_syntax_ok(text, tmp_path)


@pytest.mark.parametrize("text, fragment", [
    ('jobnet("jn") do\n  finally("x") do\n  end\nend\n', "`finally` takes no arguments"),
    ('jobnet("jn") do\n  job()\nend\n', "needs a name"),
    ('jobnet("jn") do\n  auto_sequence("x")\nend\n', "`auto_sequence` takes no arguments"),
    ('jobnet("jn") do\n  expansion("x", "y")\nend\n', "`expansion` takes a name and options"),
])
def test_calls_with_the_wrong_arguments_are_syntax_problems(text, fragment):
    found = one_problem(text)
    assert (found.code, found.line) == ("syntax", 2)
    assert fragment in found.message


def test_an_unterminated_string_is_reported_once():
    definitions = read('jobnet("a") do\n  job("j", "x")\nend\n'
                       'jobnet("b") do\n  job("j", "never closed)\nend\n')
    assert [(p.code, p.line) for p in definitions.problems] == [("syntax", 5)]
    assert [r.name for r in definitions.roots] == ["a"]


def test_missing_end_is_reported_and_the_next_top_level_jobnet_still_read():
    path = str(DATA / "bad_syntax_missing_end.rb")
    definitions = read_ruby(path, Path(path).read_text())
    [found] = definitions.problems
    assert (found.code, found.line) == ("syntax", 3)
    assert "has no matching `end`" in found.message
    assert [r.name for r in definitions.roots] == ["second"]


def test_several_problems_in_one_file_are_all_reported():
    path = str(DATA / "unsupported_several.rb")
    definitions = read_ruby(path, Path(path).read_text())
    assert [(p.code, p.line, p.jobnet) for p in definitions.problems] == [
        ("unsupported", 9, "/uses_proc"), ("unsupported", 13, "/uses_loop"),
        ("unsupported", 23, "/uses_env"), ("unsupported", 27, "/uses_if")]
    assert [r.name for r in definitions.roots] == ["ok1", "ok2"]


def test_mixed_syntax_and_unsupported_problems_in_one_file():
    definitions = read('jobnet("a") do\n  job("j", "x".strip)\nend\n'
                       'jobnet("b") do\n  job("j", "x",, 1)\nend\n'
                       'job("top", "x")\n'
                       'jobnet("c") do\n  job("j", "x")\nend\n'
                       'jobnet("d") do\n  job("j", "unterminated)\nend\n')
    assert [(p.code, p.line) for p in definitions.problems] == [
        ("unsupported", 2), ("syntax", 5), ("misplaced", 7), ("syntax", 12)]
    assert [r.name for r in definitions.roots] == ["c"]


def test_deep_nesting_is_a_problem_not_a_crash():
    found = one_problem('jobnet("jn") do\n  job("j", "x", :a => ' + "[" * 5000 + "]" * 5000 +
                        ')\nend\n')
    assert (found.code, found.line) == ("unsupported", 2)
    assert "nested more than" in found.message
    deep_blocks = "jobnet('a') do\n" * 300 + "end\n" * 300
    assert [p.code for p in read(deep_blocks).problems] == ["unsupported"]


# -- the files under tests/data/ruby agree with real Ruby ------------------------------------


def _oracle(path: Path) -> list[dict]:
    """Run the DSL file in Ruby with stand-in DSL methods (tests/data/ruby/oracle) and return
    what they recorded."""
    result = subprocess.run([RUBY, "-I", str(ORACLE), "-r", "tengine_job", str(path)],
                            check=False, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def _expected_from_ruby(record: dict, path: str) -> tuple:
    where = Where(path, record["line"])
    node = Node(kind=record["kind"], name=record["name"], where=where,
                description=record["description"], script=record["script"])
    set_options(node, record["options"], where)
    sequencing = [tuple(entry) for entry in record["sequencing"]]
    return (node.kind, node.name, node.description, node.script, node.to, node.options,
            sorted(u.key for u in node.unknown_options), sequencing, record["line"],
            [_expected_from_ruby(child, path) for child in record["children"]])


def _ours(node: Node) -> tuple:
    return (node.kind, node.name, node.description, node.script, node.to, node.options,
            sorted(u.key for u in node.unknown_options),
            [(s.kind, s.where.line, s.names) for s in node.sequencing], node.where.line,
            [_ours(child) for child in node.children])


VALID_FILES = sorted(p for p in DATA.glob("*.rb") if not p.name.startswith("bad_syntax"))


@needs_ruby
@pytest.mark.parametrize("path", VALID_FILES, ids=lambda p: p.name)
def test_valid_files_pass_ruby_syntax_check(path):
    result = subprocess.run([RUBY, "-c", str(path)], check=False, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0, result.stderr


@needs_ruby
@pytest.mark.parametrize("path", sorted(DATA.glob("bad_syntax*.rb")), ids=lambda p: p.name)
def test_bad_syntax_files_fail_ruby_syntax_check(path):
    result = subprocess.run([RUBY, "-c", str(path)], check=False, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode != 0


@needs_ruby
@pytest.mark.parametrize("path", [p for p in VALID_FILES if not p.name.startswith("unsupported")],
                         ids=lambda p: p.name)
def test_valid_files_read_as_ruby_evaluates_them(path):
    absolute = str(path.resolve())
    definitions = read_clean(path.read_text(), absolute)
    expected = [_expected_from_ruby(record, absolute) for record in _oracle(path.resolve())]
    assert [_ours(root) for root in definitions.roots] == expected


def test_windows_line_endings_read_the_same():
    text = (DATA / "all_constructs.rb").read_text()
    unix = read_clean(text)
    windows = read_clean(text.replace("\n", "\r\n"))
    assert [shape(r) for r in windows.roots] == [shape(r) for r in unix.roots]
    assert [[n.where.line for n in r.walk()] for r in windows.roots] == \
        [[n.where.line for n in r.walk()] for r in unix.roots]


@pytest.mark.parametrize("text", ["", "\n\n", "# only a comment\n", "=begin\nx\n=end\n",
                                  "\ufeff# coding: utf-8\n", "require 'tengine_job'"])
def test_files_without_jobnets_read_as_empty(text):
    definitions = read_clean(text)
    assert (definitions.roots, definitions.files) == ([], [PATH])


def test_the_validator_finds_the_cycles_of_the_acceptance_definitions():
    from tengine_min.model.validator import validate

    for name, line, path in [("01_01_26_loop_job.rb", 6, "job1 -> job2 -> job1"),
                             ("01_01_27_loop_expansion_job.rb", 7,
                              "jobnet1052_2 -> jobnet1052_3 -> jobnet1052_2")]:
        file = str(DATA / name)
        problems = validate(read_ruby(file, Path(file).read_text()))
        assert [(p.code, p.line) for p in problems] == [("cycle", line)]
        assert "circular dependency" in problems[0].message and path in problems[0].message


def test_deeply_nested_interpolation_is_one_short_problem():
    nested = '"#{' * 150 + "x" + '}"' * 150
    found = one_problem(f'x = "v"\njobnet("a") do\n  job("j", {nested})\nend\n')
    assert (found.code, found.line) == ("unsupported", 3)
    assert found.message == ("string interpolations nested more than 100 deep (in the string "
                             "starting at line 3)")
