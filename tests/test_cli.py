"""`tengine validate`, `tengine show` and `tengine demo` as a user runs them: exit codes and
output."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tengine_min.cli import main

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
INVALID = EXAMPLES / "invalid"


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_the_examples_validate_clean(capsys):
    code, out, _ = run(capsys, "validate", str(EXAMPLES))
    assert code == 0
    assert out.rstrip().endswith("0 errors, 0 warnings")


def test_a_cycle_exits_1_with_file_line_code_and_the_loop(capsys):
    code, out, _ = run(capsys, "validate", str(INVALID / "01_01_26_loop_job.rb"))
    assert code == 1
    first = out.splitlines()[0]
    assert first.startswith(f"{INVALID / '01_01_26_loop_job.rb'}:")
    assert " error cycle: " in first and "jobnet1051" in first
    assert "job1 -> job2 -> job1" in first or "job2 -> job1 -> job2" in first


def test_json_output_has_the_documented_shape(capsys):
    code, out, _ = run(capsys, "validate", "--format", "json", str(INVALID / "expansion_self.rb"))
    assert code == 1
    data = json.loads(out)
    assert data["ok"] is False and data["jobnets"]
    assert [p["code"] for p in data["problems"]] == ["expansion_self"]
    assert set(data["problems"][0]) == {"code", "severity", "file", "line", "jobnet", "message"}


def test_every_invalid_example_exits_1(capsys):
    entries = [p for p in sorted(INVALID.iterdir()) if not p.name.startswith(".")]
    for entry in entries:
        code, out, _ = run(capsys, "validate", "--format", "json", str(entry))
        problems = json.loads(out)["problems"]
        errors = [p for p in problems if p["severity"] == "error"]
        assert code == (1 if errors else 0), entry


def test_a_missing_path_is_bad_usage_exit_2(capsys, tmp_path):
    code, _, err = run(capsys, "validate", str(tmp_path / "nope.rb"))
    assert code == 2
    assert "nope.rb" in err and "no such file" in err


def test_show_prints_the_expanded_tree(capsys):
    code, out, _ = run(capsys, "show", str(EXAMPLES), "expansion_jobnet_99_4_1")
    assert code == 0
    lines = out.splitlines()
    assert lines[0].startswith("expansion_jobnet_99_4_1")
    assert any("job311" in line for line in lines)
    assert any("expansion of grandchild_root" in line for line in lines)


def test_show_refuses_an_unknown_or_invalid_root(capsys):
    code, _, err = run(capsys, "show", str(EXAMPLES), "no_such_root")
    assert code == 2 and "no root jobnet named 'no_such_root'" in err
    code, _, err = run(capsys, "show", str(INVALID / "cycle.rb"), "invalid_cycle")
    assert code == 1 and "cycle" in err


@pytest.mark.parametrize("argv, code", [(["validate", str(EXAMPLES)], 0),
                                        (["validate", str(INVALID / "cycle.rb")], 1),
                                        (["validate"], 2)])
def test_the_installed_command_exits_as_documented(argv, code):
    tengine = Path(sys.executable).parent / "tengine"
    assert subprocess.run([str(tengine), *argv], capture_output=True).returncode == code
