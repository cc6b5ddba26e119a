"""Read definition files and directories into one Definitions, each file by its extension.

A file that cannot be read at all (missing, no permission, not UTF-8, an extension no reader
understands) is bad usage, not a bad definition: it raises UnreadableInput naming the path and
the reason. What is wrong inside a readable file is a problem in the returned Definitions.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from pathlib import Path

from .nodes import Definitions
from .problems import UnreadableInput

Reader = Callable[[str, str], Definitions]

EXTENSIONS = (".py", ".rb", ".yaml", ".yml")
# Tengine keeps the captions of its category directories in `dictionary.yml` beside the DSL files;
# it is not a definition, so a Tengine directory loads unchanged.
SKIPPED_NAMES = frozenset({"dictionary.yml"})


def _reader(path: str) -> Reader:
    """The reader for a file name, imported when first needed."""
    extension = os.path.splitext(path)[1].lower()
    if extension == ".rb":
        from .ruby import read_ruby
        return read_ruby
    if extension == ".py":
        from .python_dsl import read_python
        return read_python
    if extension in (".yaml", ".yml"):
        from .yaml_dsl import read_yaml
        return read_yaml
    shown = f"extension '{extension}'" if extension else "no extension"
    raise UnreadableInput(f"{path}: {shown} is not a definition format; understood: "
                          f"{', '.join(EXTENSIONS)}")


def load_text(path: str, text: str) -> Definitions:
    """Read one definition given as text; the reader is chosen by the extension of `path`."""
    defs = _reader(path)(path, text)
    defs.files = [path]
    return defs


def read_text(path: str) -> str:
    """The file's text, or UnreadableInput saying why it cannot be had."""
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        raise UnreadableInput(f"{path}: no such file or directory") from None
    except PermissionError:
        raise UnreadableInput(f"{path}: permission denied") from None
    except IsADirectoryError:
        raise UnreadableInput(f"{path}: is a directory") from None
    except OSError as error:
        raise UnreadableInput(f"{path}: cannot be read ({error.strerror or error})") from None
    try:
        return data.decode("utf-8-sig")  # a leading byte-order mark is dropped
    except UnicodeDecodeError as error:
        line = data.count(b"\n", 0, error.start) + 1
        raise UnreadableInput(f"{path}: not UTF-8 text (byte 0x{data[error.start]:02x} at line "
                              f"{line}); save the file as UTF-8") from None

IGNORE_MARKER = ".tengine-ignore"


def definition_files(directory: str) -> list[str]:
    """Every definition file under `directory`, recursively, in sorted order (a directory's files
    before its sub-directories, each level sorted by name). Hidden files and directories (a
    leading dot: editor and VCS files) are skipped, and so are other extensions. A sub-directory
    holding a file named `.tengine-ignore` is skipped too (examples/invalid/ has one, so that
    `tengine validate examples/` checks the good examples); named directly, it is read."""
    found: list[str] = []
    for current, dirs, files in os.walk(directory, onerror=_walk_error):
        dirs[:] = sorted(d for d in dirs if not d.startswith(".")
                         and not os.path.exists(os.path.join(current, d, IGNORE_MARKER)))
        for name in sorted(files):
            if (not name.startswith(".") and name not in SKIPPED_NAMES
                    and os.path.splitext(name)[1].lower() in EXTENSIONS):
                found.append(os.path.join(current, name))
    return found


def _walk_error(error: OSError) -> None:
    raise UnreadableInput(f"{error.filename}: cannot be listed ({error.strerror or error})")


def load(paths: Iterable[str | os.PathLike[str]]) -> Definitions:
    """Read files and directories (mixed, in the order given) into one Definitions. A file named
    twice (directly and inside a directory given too) is read once."""
    defs = Definitions()
    seen: set[str] = set()
    for given in paths:
        path = os.fspath(given)
        if os.path.isdir(path):
            files = definition_files(path)
        elif os.path.exists(path):
            _reader(path)  # an explicit file with an unknown extension is an error, not skipped
            files = [path]
        else:
            raise UnreadableInput(f"{path}: no such file or directory")
        for file in files:
            real = os.path.realpath(file)
            if real in seen:
                continue
            seen.add(real)
            defs.extend(load_text(file, read_text(file)))
    return defs
