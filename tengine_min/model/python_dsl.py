"""The Python jobnet DSL: Tengine's Ruby DSL, spelled as Python `with` blocks.

    from tengine_min.model.python_dsl import jobnet, job, finally_, boot_jobs

    with jobnet("jn0004", server="localhost", credential="ssh_pk"):
        boot_jobs("j1")
        job("j1", "$HOME/t.sh 0 j1", to=["j2", "j3"])
        ...

A definition file is run by `read_python(path, text)`; code (tests, benchmarks) can build
definitions directly inside `with collect() as defs:`. Like every reader, this one records what the
author wrote, faithfully, and leaves the judging to the validator: unknown keyword options are kept
(so the author gets `unknown_option`, not a Python TypeError), a `hadoop_job` directly in a jobnet
is recorded where it was written. Only what the model cannot hold becomes a problem here: `syntax`
(the file does not compile or raises, an argument of the wrong type) and `misplaced` (a DSL call
outside any jobnet).
"""

from __future__ import annotations

import builtins
import sys
from bisect import bisect_right
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from types import CodeType, FrameType, TracebackType
from typing import Any

from .nodes import (
    EXPANSION,
    FINALLY,
    HADOOP_JOB,
    HADOOP_JOB_RUN,
    JOB,
    JOBNET,
    Definitions,
    Node,
    Sequencing,
    Where,
    set_options,
)
from .problems import Problem, problem

__all__ = [
    "auto_sequence", "boot_jobs", "collect", "expansion", "finally_", "hadoop_job",
    "hadoop_job_run", "job", "jobnet", "read_python",
]

# Short keyword forms, folded onto Tengine's option names before set_options sees them.
SHORT_OPTIONS = {"server": "server_name", "credential": "credential_name"}
# Options whose value set_options iterates: anything but a string or a list of scalars is
# reported here, because the model cannot hold it.
_LIST_OPTIONS = ("to", "redirect_to", "killing_signals")
# How far up the stack to look for a frame of the definition file (helpers in other modules).
_FRAME_SEARCH_DEPTH = 50
# Code objects at least this big get their line table indexed (see _frame_line).
_BIG_CODE_BYTES = 4096
LineTable = tuple[list[int], list[int | None]]  # instruction offsets, their lines


@dataclass
class _Collector:
    """The definitions being built by one read: the open blocks, innermost last."""

    file: str
    defs: Definitions
    stack: list[Node] = field(default_factory=list)
    dropped: list[Node] = field(default_factory=list)  # roots cut short by an exception
    line_tables: dict[int, tuple[CodeType, LineTable | None]] = field(default_factory=dict)


# A context variable, not a global: each thread (and each nested collect) has its own collector.
_ACTIVE: ContextVar[_Collector | None] = ContextVar("tengine_python_dsl", default=None)


def _active(call: str) -> _Collector:
    collector = _ACTIVE.get()
    if collector is None:
        raise RuntimeError(f"{call}() was called outside read_python() or collect(): the Python "
                           "DSL only runs while a definition file is being read")
    return collector


def _caller_line(collector: _Collector) -> int:
    """The line of the definition file that made the current DSL call. The nearest frame of
    the file wins (a helper function in another module called from the file gives the file's
    line); if there is none, the nearest frame outside this module (code calling in collect())."""
    frame: FrameType | None = sys._getframe(1)
    while frame is not None and frame.f_code.co_filename == __file__:
        frame = frame.f_back
    if frame is None:
        return 0
    nearest = frame
    for _ in range(_FRAME_SEARCH_DEPTH):
        if frame is None:
            break
        if frame.f_code.co_filename == collector.file:
            return _frame_line(collector, frame)
        frame = frame.f_back
    return _frame_line(collector, nearest)


def _frame_line(collector: _Collector, frame: FrameType) -> int:
    """frame.f_lineno, without its cost on big code: CPython finds it by scanning the code's
    line table from the start, which makes a generated file of n top-level calls O(n^2) to read.
    For a big code object the table is indexed once per read, then looked up by bisection."""
    code = frame.f_code
    # Keyed by id (hashing a code object hashes all its constants); the code is kept in the
    # entry, so the id cannot be reused by another code object while the entry lives.
    entry = collector.line_tables.get(id(code))
    if entry is None or entry[0] is not code:
        table = None
        if len(code.co_code) >= _BIG_CODE_BYTES:
            ranges = list(code.co_lines())
            table = ([start for start, _, _ in ranges], [line for _, _, line in ranges])
        entry = collector.line_tables[id(code)] = (code, table)
    if entry[1] is None:
        return frame.f_lineno or 0
    starts, lines = entry[1]
    index = bisect_right(starts, frame.f_lasti) - 1
    line = lines[index] if index >= 0 else None
    return line if line is not None else (frame.f_lineno or 0)


class _Block:
    """What `jobnet(...)`, `finally_()` and `hadoop_job_run(...)` return: the node is already in
    place when the call returns; entering the `with` makes it the parent of the calls inside."""

    def __init__(self, collector: _Collector, node: Node):
        self._collector = collector
        self._node = node

    def __enter__(self) -> Node:
        self._collector.stack.append(self._node)
        return self._node

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._collector.stack.pop()
        roots = self._collector.defs.roots
        if exc_type is not None and self._node.parent is None and self._node in roots:
            # An exception cut this root short: keep nothing half-written.
            roots.remove(self._node)
            self._collector.dropped.append(self._node)


class _Call:
    """One DSL call being turned into a node: where it was written and what it may hold."""

    def __init__(self, name: str):
        self.collector = _active(name)
        self.call = name
        self.where = Where(self.collector.file, _caller_line(self.collector))
        self.parent = self.collector.stack[-1] if self.collector.stack else None

    def report(self, code: str, message: str) -> None:
        jobnet_path = self.parent.path if self.parent is not None else None
        self.collector.defs.problems.append(problem(code, message, self.where, jobnet_path))

    def outside_jobnet(self) -> bool:
        """Report and return True when the call is not inside any jobnet block."""
        if self.parent is not None:
            return False
        self.report("misplaced", f"{self.call}() at the top level, outside any jobnet: only "
                                 "jobnet() can stand there; put it inside `with jobnet(...)`")
        return True

    def name(self, value: Any, what: str = "name") -> str | None:
        if value is None:
            return ""
        if isinstance(value, str):
            return value
        self.report("syntax", f"{self.call}() expects the {what} as a string, found "
                              f"{type(value).__name__} {value!r}")
        return None

    def split_positional(self, args: tuple, with_script: bool) -> tuple[Any, Any]:
        """(description, script) from Tengine's `[description,] script` (or `[description]`)."""
        most = 2 if with_script else 1
        if len(args) > most:
            shape = "name, [description,] script" if with_script else "name, [description]"
            self.report("syntax", f"{self.call}() takes ({shape}) and keyword options, found "
                                  f"{len(args) + 1} positional arguments; the extra ones are "
                                  "ignored")
            args = args[:most]
        if not with_script:
            return (args[0] if args else None), None
        if len(args) == 2:
            return args[0], args[1]
        return None, (args[0] if args else None)

    def make(self, kind: str, name: str, description: Any, script: Any,
             options: dict[str, Any]) -> Node:
        node = Node(kind, name, self.where)
        if description is not None:
            node.description = str(description)
        if script is not None:
            if isinstance(script, str):
                node.script = script
            else:
                self.report("syntax", f"{self.call}({name!r}) expects the script as a string, "
                                      f"found {type(script).__name__} {script!r}")
        set_options(node, self.options(options), self.where)
        return node

    def options(self, options: dict[str, Any]) -> dict[str, Any]:
        """Short forms folded, values set_options cannot hold reported and dropped."""
        raw: dict[str, Any] = {}
        for key, value in options.items():
            if key in _LIST_OPTIONS and not _is_name_list(value):
                self.report("syntax", f"{self.call}() option {key}= expects a name or a list of "
                                      f"names, found {type(value).__name__} {value!r}")
                continue
            raw[SHORT_OPTIONS.get(key, key)] = value
        return raw

    def attach(self, node: Node) -> None:
        if self.parent is None:
            self.collector.defs.roots.append(node)
        else:
            self.parent.add(node)

    def block(self, node: Node | None) -> _Block:
        # A node that could not be placed still gets a block, so the calls inside it land
        # somewhere harmless instead of each being reported again.
        return _Block(self.collector, node if node is not None else Node(JOBNET, "", self.where))


def _is_name_list(value: Any) -> bool:
    if isinstance(value, str):
        return True
    return isinstance(value, (list, tuple)) and all(
        isinstance(v, (str, int)) and not isinstance(v, bool) for v in value)


# -- the DSL ----------------------------------------------------------------------------------


def jobnet(name: str, *description: str, **options: Any) -> _Block:
    """`jobnet(name, [description], **options)`: a root jobnet at the top level, else a
    sub-jobnet. Use it as `with jobnet(...):`."""
    call = _Call("jobnet")
    checked = call.name(name)
    if checked is None:
        return call.block(None)
    desc, _ = call.split_positional(description, with_script=False)
    node = call.make(JOBNET, checked, desc, None, options)
    call.attach(node)
    return call.block(node)


def job(name: str, *description_and_script: str, **options: Any) -> None:
    """`job(name, [description,] script, **options)`: a shell job."""
    call = _Call("job")
    checked = call.name(name)
    if checked is None or call.outside_jobnet():
        return
    desc, script = call.split_positional(description_and_script, with_script=True)
    call.attach(call.make(JOB, checked, desc, script, options))


def hadoop_job_run(name: str, *description_and_script: str, **options: Any) -> _Block:
    """`hadoop_job_run(name, [description,] script, **options)`, holding `hadoop_job`s:
    use it as `with hadoop_job_run(...):`."""
    call = _Call("hadoop_job_run")
    checked = call.name(name)
    if checked is None or call.outside_jobnet():
        return call.block(None)
    desc, script = call.split_positional(description_and_script, with_script=True)
    node = call.make(HADOOP_JOB_RUN, checked, desc, script, options)
    call.attach(node)
    return call.block(node)


def hadoop_job(name: str, **options: Any) -> None:
    """`hadoop_job(name)`, inside a hadoop_job_run."""
    call = _Call("hadoop_job")
    checked = call.name(name)
    if checked is None or call.outside_jobnet():
        return
    call.attach(call.make(HADOOP_JOB, checked, None, None, options))


def expansion(root_jobnet_name: str, **options: Any) -> None:
    """`expansion(root_jobnet_name, **options)`: the children of that root jobnet, copied in
    here when the execution is built."""
    call = _Call("expansion")
    checked = call.name(root_jobnet_name, "root jobnet name")
    if checked is None or call.outside_jobnet():
        return
    call.attach(call.make(EXPANSION, checked, None, None, options))


def finally_(**options: Any) -> _Block:
    """`with finally_():` Tengine's `finally do ... end` (`finally` is a Python keyword)."""
    call = _Call("finally_")
    if call.outside_jobnet():
        return call.block(None)
    node = call.make(FINALLY, "finally", None, None, options)
    call.attach(node)
    return call.block(node)


def boot_jobs(*names: str | list[str]) -> None:
    """`boot_jobs("j1", "j2")`: the children that start first. A list is flattened, as Ruby's
    `boot_jobs(*list)` would be."""
    call = _Call("boot_jobs")
    if call.outside_jobnet():
        return
    flat: list[str] = []
    for item in names:
        # What a definition file passes, whatever the signature says.
        given: list[object] = list(item) if isinstance(item, (list, tuple)) else [item]
        for name in given:
            if isinstance(name, str):
                flat.append(name)
            else:
                call.report("syntax", f"boot_jobs() expects job names as strings, found "
                                      f"{type(name).__name__} {name!r}")
    assert call.parent is not None
    call.parent.sequencing.append(Sequencing("boot_jobs", call.where, flat))


def auto_sequence() -> None:
    """`auto_sequence()`: run the children one after another in the order written."""
    call = _Call("auto_sequence")
    if call.outside_jobnet():
        return
    assert call.parent is not None
    call.parent.sequencing.append(Sequencing("auto_sequence", call.where))


# -- reading ----------------------------------------------------------------------------------


@contextmanager
def _collecting(file: str) -> Iterator[_Collector]:
    collector = _Collector(file, Definitions())
    token = _ACTIVE.set(collector)
    try:
        yield collector
    finally:
        _ACTIVE.reset(token)


@contextmanager
def collect(file: str = "<python>") -> Iterator[Definitions]:
    """Build definitions in code: `with collect() as defs: with jobnet("x"): ...`. Nodes get
    the line of the calling code and `file` as their file."""
    with _collecting(file) as collector:
        yield collector.defs


def read_python(path: str, text: str) -> Definitions:
    """Run a Python DSL file and return what it defined. Never raises for a bad file: a syntax
    error, or an exception while it runs, becomes a `syntax` problem at the line in the file;
    the roots completed before it are kept."""
    with _collecting(path) as collector:
        defs = collector.defs
        defs.files.append(path)
        try:
            code = compile(text, path, "exec", dont_inherit=True)
        except SyntaxError as error:
            line = min(max(error.lineno or 0, 0), text.count("\n") + 1)
            found = f" in `{error.text.strip()}`" if error.text and error.text.strip() else ""
            defs.problems.append(problem(
                "syntax", f"not valid Python: {error.msg}{found}", Where(path, line)))
            return defs
        except (ValueError, RecursionError, MemoryError) as error:
            defs.problems.append(problem("syntax", f"not valid Python: {error}", Where(path)))
            return defs
        namespace = {"__name__": "__tengine_definition__", "__file__": path,
                     "__builtins__": builtins}
        try:
            exec(code, namespace)  # noqa: S102 - running the definition file is the point
        except (Exception, SystemExit) as error:  # noqa: BLE001 - the file's failure, reported
            defs.problems.append(_exception_problem(collector, error))
        return defs


def _exception_problem(collector: _Collector, error: BaseException) -> Problem:
    line = 0
    tb = error.__traceback__
    while tb is not None:  # the deepest frame of the definition file
        if tb.tb_frame.f_code.co_filename == collector.file:
            line = tb.tb_lineno
        tb = tb.tb_next
    message = f"the file raised {type(error).__name__}: {error}"
    if isinstance(error, NameError) and getattr(error, "name", None) in __all__:
        message += (f" (add `from tengine_min.model.python_dsl import {error.name}` at the top)")
    for root in collector.dropped:
        message += (f"; jobnet '{root.name}' (line {root.where.line}) was not finished and is "
                    "left out")
    return problem("syntax", message, Where(collector.file, line))
