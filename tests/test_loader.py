"""The loader: files and directories mixed, recursion, order, dispatch by extension, and paths
that cannot be read."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from tengine_min.model.loader import load, load_text
from tengine_min.model.nodes import Where
from tengine_min.model.problems import UnreadableInput

DATA = Path(__file__).parent / "data"
PY = ("from tengine_min.model.python_dsl import jobnet, job\n"
      "with jobnet({name!r}):\n    job('j', 'j.sh')\n")
YAML = "jobnets:\n  - jobnet: {name}\n    children:\n      - job: j\n        script: j.sh\n"


def write(path: Path, text: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text)
    return path


def definition(path: Path) -> Path:
    """A file defining one root jobnet named after the file's stem, in the file's format."""
    template = PY if path.suffix == ".py" else YAML
    return write(path, template.format(name=path.stem))


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """defs/ with definitions in every format the Python side reads, nested, plus files that
    must be skipped."""
    root = tmp_path / "defs"
    for relative in ["b.yaml", "a.py", "c.yml", "sub/z.yaml", "sub/deeper/y.py", "another/x.yml"]:
        definition(root / relative)
    write(root / "notes.txt", "not a definition")
    write(root / "README.md", "# not a definition")
    write(root / ".hidden.yaml", "this: [is not read")
    write(root / ".git" / "config.yaml", "not: [read")
    write(root / "sub" / "dictionary.yml", "sub: Tengine's category caption\n")
    return root


def test_a_directory_is_read_recursively_in_sorted_order(tree: Path):
    defs = load([tree])
    expected = ["a.py", "b.yaml", "c.yml", "another/x.yml", "sub/z.yaml", "sub/deeper/y.py"]
    assert defs.files == [str(tree / name) for name in expected]
    assert [r.name for r in defs.roots] == ["a", "b", "c", "x", "z", "y"]
    assert defs.problems == []
    # every node knows the file it came from
    assert [r.where.file for r in defs.roots] == defs.files


def test_files_and_directories_mix_in_the_order_given(tree: Path, tmp_path: Path):
    single = definition(tmp_path / "single.yaml")
    defs = load([single, str(tree / "sub"), tree / "a.py"])
    assert [r.name for r in defs.roots] == ["single", "z", "y", "a"]
    assert defs.files == [str(single), str(tree / "sub" / "z.yaml"),
                          str(tree / "sub" / "deeper" / "y.py"), str(tree / "a.py")]


def test_a_file_named_twice_is_read_once(tree: Path):
    defs = load([tree / "a.py", tree])
    assert [r.name for r in defs.roots].count("a") == 1
    assert defs.files[0] == str(tree / "a.py")


def test_an_empty_list_and_an_empty_directory_give_nothing(tmp_path: Path):
    assert load([]).roots == []
    (tmp_path / "empty").mkdir()
    defs = load([tmp_path / "empty"])
    assert (defs.roots, defs.problems, defs.files) == ([], [], [])


def test_problems_of_every_file_are_collected_with_their_file(tmp_path: Path):
    bad_py = write(tmp_path / "d" / "1_raises.py",
                   "from tengine_min.model.python_dsl import jobnet\nwith jobnet('r'):\n"
                   "    raise ValueError('boom')\n")
    bad_yaml = write(tmp_path / "d" / "2_broken.yaml", "jobnets: [\n")
    good = definition(tmp_path / "d" / "3_good.yaml")
    defs = load([tmp_path / "d"])
    assert [(p.code, p.file, p.line) for p in defs.problems] == [
        ("syntax", str(bad_py), 3), ("syntax", str(bad_yaml), 1)]
    assert "ValueError: boom" in defs.problems[0].message
    assert [r.name for r in defs.roots] == ["3_good"]
    assert defs.files == [str(bad_py), str(bad_yaml), str(good)]


def test_the_shipped_samples_load(tmp_path: Path):
    defs = load([DATA / "py", DATA / "yaml"])
    assert defs.problems == []
    assert sorted(os.path.basename(f) for f in defs.files) == [
        "all_constructs.py", "all_constructs.yaml", "jn0004.py", "jn0004.yaml"]


# -- what cannot be read ------------------------------------------------------------------------


def test_a_missing_path_raises_naming_it(tmp_path: Path):
    missing = tmp_path / "nowhere.yaml"
    with pytest.raises(UnreadableInput, match=f"{missing}: no such file or directory"):
        load([definition(tmp_path / "fine.yaml"), missing])


@pytest.mark.parametrize("name", ["defs.txt", "defs.json", "Makefile"])
def test_an_explicit_file_with_another_extension_raises(tmp_path: Path, name: str):
    path = write(tmp_path / name, "whatever")
    with pytest.raises(UnreadableInput) as raised:
        load([path])
    message = str(raised.value)
    assert message.startswith(f"{path}: ")
    assert "not a definition format; understood: .py, .rb, .yaml, .yml" in message


def test_a_file_that_is_not_utf8_raises_naming_it(tmp_path: Path):
    write(tmp_path / "latin1.yaml", "jobnets:\n  - jobnet: caf\xe9\n".encode("latin-1"))
    expected = r"latin1.yaml: not UTF-8 text \(byte 0xe9 at line 2\)"
    with pytest.raises(UnreadableInput, match=expected):
        load([tmp_path])


def test_a_byte_order_mark_is_accepted(tmp_path: Path):
    path = write(tmp_path / "bom.yaml", b"\xef\xbb\xbf" + YAML.format(name="bom").encode())
    assert [r.name for r in load([path]).roots] == ["bom"]


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their permissions")
def test_a_file_without_read_permission_raises(tmp_path: Path):
    path = definition(tmp_path / "secret.yaml")
    path.chmod(0)
    with pytest.raises(UnreadableInput, match=re.escape("secret.yaml: permission denied")):
        load([path])


def test_permission_denied_is_reported_by_name(tmp_path: Path, monkeypatch):
    # Root (CI) can read anything, so the OS refusal is simulated at the one call that reads.
    path = definition(tmp_path / "secret.yaml")

    def refuse(self):
        raise PermissionError(13, "Permission denied", str(self))

    monkeypatch.setattr(Path, "read_bytes", refuse)
    with pytest.raises(UnreadableInput, match=f"{path}: permission denied"):
        load([tmp_path])


# -- load_text ----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["x.py", "x.yaml", "x.yml", "X.YAML"])
def test_load_text_dispatches_by_extension(name: str):
    template = PY if name.endswith(".py") else YAML
    defs = load_text(name, template.format(name="r"))
    assert ([r.name for r in defs.roots], defs.files, defs.problems) == (["r"], [name], [])
    assert defs.roots[0].where.file == name


def test_load_text_refuses_an_unknown_extension():
    with pytest.raises(UnreadableInput, match=r"x\.json: extension '\.json' is not a definition"):
        load_text("x.json", "{}")
    with pytest.raises(UnreadableInput, match="no extension"):
        load_text("x", "")


def test_ruby_files_go_to_the_ruby_reader(tmp_path: Path):
    rb = write(tmp_path / "d" / "m.rb",
               "require 'tengine_job'\n\njobnet(\"rb_root\") do\n  job(\"j1\", \"j1.sh\")\nend\n")
    definition(tmp_path / "d" / "n.yaml")
    defs = load([tmp_path / "d"])
    assert defs.problems == []
    assert [r.name for r in defs.roots] == ["rb_root", "n"]
    assert defs.roots[0].where == Where(str(rb), 3)
    assert defs.files[0] == str(rb)
    assert [r.name for r in load_text("x.rb", rb.read_text()).roots] == ["rb_root"]


def test_a_directory_marked_with_tengine_ignore_is_skipped_when_its_parent_is_walked(tmp_path):
    (tmp_path / "good.yaml").write_text("jobnets:\n  - jobnet: good\n    children:\n"
                                        "      - job: j1\n        script: /bin/true\n")
    bad = tmp_path / "invalid"
    bad.mkdir()
    (bad / "bad.yaml").write_text("jobnets:\n  - jobnet: bad\n")
    (bad / ".tengine-ignore").write_text("")
    assert [r.name for r in load([tmp_path]).roots] == ["good"]
    assert [r.name for r in load([bad]).roots] == ["bad"]
