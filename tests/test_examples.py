"""The example definitions under examples/ stay true: the valid ones load (through the real
readers) without an error, and each file or directory under examples/invalid/ gives exactly the
one problem its name says, so an example cannot rot. The scripts the examples call are checked
by running them."""

from __future__ import annotations

import os
import re
import subprocess
import tomllib
from pathlib import Path

import pytest

from tengine_min.model.graph import plan_edges
from tengine_min.model.loader import EXTENSIONS, load
from tengine_min.model.problems import CODES, WARNING
from tengine_min.model.validator import runnable_roots, validate
from tengine_min.resources import parse_resources

REPO = Path(__file__).resolve().parent.parent
EXAMPLES = REPO / "examples"
INVALID = EXAMPLES / "invalid"
SCRIPTS = EXAMPLES / "scripts"
# Tengine's acceptance tests named their two cycle files after the feature, not the code.
TENGINE_FILE_CODES = {"01_01_26_loop_job": "cycle", "01_01_27_loop_expansion_job": "cycle"}
# Warnings the valid examples are allowed to carry: none today; list (code, jobnet) pairs here.
EXPECTED_WARNINGS: set[tuple[str, str]] = set()


def valid_paths() -> list[str]:
    return [str(p) for p in sorted(EXAMPLES.iterdir())
            if p.name != "invalid" and (p.is_dir() or p.suffix in EXTENSIONS)]


def invalid_entries() -> list[Path]:
    return [p for p in sorted(INVALID.iterdir()) if p.is_dir() or p.suffix in EXTENSIONS]


def code_of(entry: Path) -> str:
    """The code an invalid example is named after: the longest code its name starts with."""
    stem = entry.stem if entry.is_file() else entry.name
    if stem in TENGINE_FILE_CODES:
        return TENGINE_FILE_CODES[stem]
    codes = [code for code in CODES if stem == code or stem.startswith(code + "_")]
    assert codes, f"{entry.name}: the name starts with no problem code"
    return max(codes, key=len)


def problems_of(entry: Path) -> list:
    """The problems of an invalid example. One about server or credential names is a directory
    with the resources.toml it is checked against (named relative to the repository)."""
    resources_file = REPO / entry / "resources.toml"
    resources = None
    if resources_file.is_file():
        resources = parse_resources(tomllib.loads(resources_file.read_text()),
                                    str(resources_file.relative_to(REPO)))
    return validate(load([str(entry)]), resources=resources)


def test_valid_examples_have_no_error():
    defs = load(valid_paths())
    problems = validate(defs)
    assert {(p.code, p.jobnet) for p in problems} == EXPECTED_WARNINGS, \
        "\n".join(map(str, problems))
    assert all(p.severity == WARNING for p in problems)
    names = {r.name for r in defs.roots}
    assert runnable_roots(defs, problems) == names
    # the ones the docs and the demo name
    assert {"jn0004", "expansion_jobnet_99_4_1", "child_root2", "grandchild_root",
            "example_serial", "example_nested", "example_expansion", "example_hadoop",
            "example_python_fan_out", "example_yaml"} <= names


def test_examples_have_the_structure_they_describe():
    defs = load(valid_paths())
    jn0004 = defs.root("jn0004")
    plan = plan_edges(jn0004)
    assert plan.start == ["j1"]
    assert sorted(plan.edges) == [("j1", "j2"), ("j1", "j3"), ("j2", "j4"), ("j3", "j4")]
    assert [c.name for c in jn0004.finally_blocks[0].children] == ["jn0004_f"]
    # tengine-facts section 4: the nested expansion ends in jobnet31/job311 of grandchild_root
    chain = [defs.root("expansion_jobnet_99_4_1").children[0].name,
             defs.root("child_root2").children[0].children[0].name]
    assert chain == ["child_root2", "grandchild_root"]
    assert defs.root("grandchild_root").children[0].children[0].path == \
        "/grandchild_root/jobnet31/job311"
    hadoop = defs.root("example_hadoop").children[1]
    assert hadoop.kind == "hadoop_job_run" and [c.kind for c in hadoop.children] == [
        "hadoop_job", "hadoop_job"]
    # every job uses server and credential "local" and a script under examples/scripts
    for root in defs.roots:
        for node in root.walk():
            if node.kind == "job":
                assert (node.server_name, node.credential_name) == ("local", "local")
                script = node.script.split()[0]
                assert script.startswith("$TENGINE_EXAMPLES/scripts/"), node.path
                assert (SCRIPTS / script.rsplit("/", 1)[1]).is_file(), node.path


@pytest.mark.parametrize("entry", invalid_entries(), ids=lambda p: p.name)
def test_each_invalid_example_has_exactly_its_problem(entry: Path):
    problems = problems_of(entry)
    assert [p.code for p in problems] == [code_of(entry)], "\n".join(map(str, problems))
    (found,) = problems
    assert found.file and Path(found.file).resolve().is_relative_to(entry.resolve())
    assert found.line and found.jobnet and found.message


def test_every_code_has_an_invalid_example():
    assert {code_of(entry) for entry in invalid_entries()} == set(CODES)


def test_every_code_is_documented_with_an_example_and_a_fix():
    text = (REPO / "docs" / "validation.md").read_text(encoding="utf-8")
    headings = re.findall(r"^### `([a-z_]+)`", text, flags=re.MULTILINE)
    assert sorted(headings) == sorted(CODES)
    for code in CODES:
        section = text.split(f"### `{code}`", 1)[1].split("\n### ", 1)[0]
        assert "```" in section and "Fix" in section, code


def test_the_messages_quoted_in_the_docs_are_the_ones_given(monkeypatch):
    monkeypatch.chdir(REPO)  # the docs quote paths relative to the repository
    text = (REPO / "docs" / "validation.md").read_text(encoding="utf-8")
    quoted = re.findall(r"^(examples/\S+?):\d+: (?:error|warning) .*$", text,
                        flags=re.MULTILINE)
    lines = re.findall(r"^examples/\S+?:\d+: (?:error|warning) .*$", text, flags=re.MULTILINE)
    assert len(lines) >= len(CODES)
    for file, line in zip(quoted, lines, strict=True):
        entry = file if "/duplicate_root/" not in file else str(Path(file).parent)
        if (REPO / file).parent.joinpath("resources.toml").is_file():
            entry = str(Path(file).parent)
        assert line in [str(p) for p in problems_of(Path(entry))], line


# -- the scripts the examples call -------------------------------------------------------------


def run_script(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(["sh", *args], check=False, capture_output=True, text=True, timeout=30,
                          env={"PATH": os.environ["PATH"], **(env or {})})


@pytest.mark.parametrize("name", ["sleep_and_exit.sh", "print_env.sh", "fail_with_stderr.sh"])
def test_scripts_are_executable_posix_sh(name):
    path = SCRIPTS / name
    assert os.access(path, os.X_OK), f"{path} is not executable"
    assert path.read_text().startswith("#!/bin/sh\n")
    assert run_script("-n", str(path)).returncode == 0


def test_sleep_and_exit_exits_with_the_given_code():
    done = run_script(str(SCRIPTS / "sleep_and_exit.sh"), "0", "3",
                      env={"MM_ACTUAL_JOB_NAME_PATH": "/jn/j1"})
    assert done.returncode == 3
    assert "/jn/j1 start" in done.stdout and "/jn/j1 finish" in done.stdout


def test_print_env_prints_the_mm_variables_sorted():
    done = run_script(str(SCRIPTS / "print_env.sh"),
                      env={"MM_B": "2", "MM_A": "1;2", "OTHER": "x"})
    assert done.returncode == 0
    assert done.stdout.splitlines() == ["MM_A=1;2", "MM_B=2"]


def test_fail_with_stderr_fails_with_its_message_on_stderr():
    done = run_script(str(SCRIPTS / "fail_with_stderr.sh"), "4", "input file is missing")
    assert done.returncode == 4
    assert done.stderr.strip() == "input file is missing"
