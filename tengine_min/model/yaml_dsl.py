"""Jobnet definitions in YAML, one-to-one with the Python DSL (docs/definitions.md).

    jobnets:
      - jobnet: jn0004
        server: localhost
        boot_jobs: [j1]
        children:
          - job: j1
            script: $HOME/t.sh 0 j1
            to: [j2, j3]
          - finally:
              children:
                - job: f1
                  script: $HOME/t.sh 0 f1

Every entry of `jobnets:` or `children:` is a mapping whose construct key (`jobnet`, `job`,
`expansion`, `hadoop_job_run`, `hadoop_job`, `finally`) holds the name; the other keys are its
script, children, boot_jobs / auto_sequence and options. We read the composed node tree (not the
constructed Python objects) so that every entry keeps its line, duplicate keys are caught (PyYAML
would silently keep the last) and names and scripts are taken as written (`job: 007` is "007",
not 7).
Like every reader this one records what the author wrote and leaves judging to the validator;
only what the model cannot hold becomes a `syntax` or `misplaced` problem here.
"""

from __future__ import annotations

from typing import Any

import yaml
from yaml.nodes import MappingNode, ScalarNode, SequenceNode
from yaml.nodes import Node as YamlNode

from .nodes import (
    ALLOWED_OPTIONS,
    CONTAINERS,
    EXPANSION,
    FINALLY,
    HADOOP_JOB,
    HADOOP_JOB_RUN,
    JOB,
    JOBNET,
    OPTION_ALIASES,
    Definitions,
    Node,
    Sequencing,
    Where,
    set_options,
)
from .problems import problem

NULL_TAG = "tag:yaml.org,2002:null"
MERGE_TAG = "tag:yaml.org,2002:merge"
CONSTRUCT_KEYS = (JOBNET, JOB, EXPANSION, HADOOP_JOB_RUN, HADOOP_JOB, FINALLY)
SHORT_OPTIONS = {"server": "server_name", "credential": "credential_name"}
# Options whose value is text, taken exactly as written (after alias folding).
TEXT_OPTIONS = frozenset({"description", "server_name", "credential_name", "preparation"})
# Options that take one name or a list of names.
NAME_LIST_OPTIONS = frozenset({"to", "killing_signals"})

# libyaml composes about five times faster; it is used when present, for valid files.
_FAST_LOADER = getattr(yaml, "CSafeLoader", None)

_BAD = object()  # a value of the wrong type, already reported
Fields = dict[str, tuple[YamlNode, YamlNode]]  # key -> (key node, value node)


def read_yaml(path: str, text: str) -> Definitions:
    """Read a YAML definition file. Never raises for bad input: what cannot be read becomes a
    problem in the returned Definitions, with the file and line."""
    return _YamlReader(path, text).read()


def _describe(ynode: YamlNode) -> str:
    """How a value looks to the author, for messages: `a list`, `the text 'abc'`."""
    if isinstance(ynode, MappingNode):
        return "a mapping"
    if isinstance(ynode, SequenceNode):
        return "a list"
    if ynode.tag == NULL_TAG:
        return "an empty value"
    shown = ynode.value if len(ynode.value) <= 40 else ynode.value[:37] + "..."
    return f"'{shown}'"


class _YamlReader:
    def __init__(self, path: str, text: str):
        self.path = path
        self.source = text
        self.defs = Definitions(files=[path])
        self.last_line = max(1, len(text.splitlines()))
        self.reported: set[tuple[str, int, str]] = set()
        self.open_entries: set[int] = set()  # entries being read: an alias back into one loops
        self.constructor = yaml.SafeLoader("")  # turns scalars into int/float/bool

    # -- reporting --------------------------------------------------------------------------

    def line(self, ynode: YamlNode) -> int:
        return min(ynode.start_mark.line + 1, self.last_line)

    def report(self, code: str, message: str, line: int, jobnet: str | None = None) -> None:
        key = (code, line, message)
        if key in self.reported:  # an aliased mapping is read once per use: report it once
            return
        self.reported.add(key)
        self.defs.problems.append(problem(code, message, Where(self.path, line), jobnet))

    # -- the document -----------------------------------------------------------------------

    def read(self) -> Definitions:
        document = self.compose()
        if document is None:
            return self.defs
        for item in self.top_entries(document):
            try:
                node = self.entry(item, None)
            except RecursionError:
                self.open_entries.clear()
                self.report("syntax", "jobnets nested too deeply to read", self.line(item))
                continue
            if node is not None:
                self.defs.roots.append(node)
        return self.defs

    def compose(self) -> YamlNode | None:
        if _FAST_LOADER is not None:
            try:
                return yaml.compose(self.source, Loader=_FAST_LOADER)
            except (yaml.YAMLError, ValueError, RecursionError):
                pass  # the pure-Python loader below says exactly what is wrong and where
        loader: yaml.SafeLoader | None = None
        try:
            loader = yaml.SafeLoader(self.source)  # checks the characters first
            return loader.get_single_node()
        except yaml.MarkedYAMLError as error:
            mark = error.problem_mark or error.context_mark
            line = min(mark.line + 1, self.last_line) if mark else 0
            what = error.problem or "unreadable"
            if error.context:
                where = f" (line {error.context_mark.line + 1})" if error.context_mark else ""
                what = f"{error.context}{where}: {what}"
            self.report("syntax", f"not valid YAML: {what}", line)
        except yaml.reader.ReaderError as error:
            line = self.source.count("\n", 0, error.position) + 1
            self.report("syntax", f"not valid YAML: character #x{error.character:04x} is not "
                                  f"allowed ({error.reason})", min(line, self.last_line))
        except RecursionError:
            line = loader.line + 1 if loader is not None else 0
            self.report("syntax", "not valid YAML here: nested too deeply to read",
                        min(line, self.last_line))
        finally:
            if loader is not None:
                loader.dispose()
        return None

    def top_entries(self, document: YamlNode) -> list[YamlNode]:
        """The jobnet entries: a list, or the list under `jobnets:`."""
        if isinstance(document, SequenceNode):
            return document.value
        if isinstance(document, MappingNode):
            fields = self.fields(document, None)
            if "jobnets" not in fields:
                hint = (" (one jobnet is written as `jobnets:` then `  - jobnet: <name>`)"
                        if any(k in CONSTRUCT_KEYS for k in fields) else "")
                self.report("syntax", "expected `jobnets:` holding a list of jobnets, found "
                                      f"keys {', '.join(fields) or 'none'}{hint}",
                            self.line(document))
                return []
            for key, (key_node, _) in fields.items():
                if key != "jobnets":
                    self.report("syntax", f"unknown top-level key '{key}': a definition file "
                                          "holds only `jobnets:`", self.line(key_node))
            return self.items(fields["jobnets"][1], "`jobnets:`", None)
        if document.tag == NULL_TAG:
            return []
        self.report("syntax", "expected a list of jobnets or `jobnets:` with a list, found "
                              f"{_describe(document)}", self.line(document))
        return []

    def items(self, ynode: YamlNode, what: str, jobnet: str | None) -> list[YamlNode]:
        if isinstance(ynode, SequenceNode):
            return ynode.value
        if isinstance(ynode, ScalarNode) and ynode.tag == NULL_TAG:
            return []
        self.report("syntax", f"expected a list under {what}, found {_describe(ynode)}",
                    self.line(ynode), jobnet)
        return []

    def fields(self, mapping: MappingNode, jobnet: str | None,
               merging: frozenset[int] = frozenset()) -> Fields:
        """The keys of a mapping in order, duplicates reported (the last one kept, as YAML does),
        `<<: *alias` merge keys applied (explicit keys win)."""
        own: Fields = {}
        merged: Fields = {}
        merging = merging | {id(mapping)}
        for key_node, value_node in mapping.value:
            if key_node.tag == MERGE_TAG:
                sources = (value_node.value if isinstance(value_node, SequenceNode)
                           else [value_node])
                for source in sources:
                    if not isinstance(source, MappingNode) or id(source) in merging:
                        self.report("syntax", "`<<` merges in a mapping (e.g. `<<: *defaults`), "
                                              f"found {_describe(source)}", self.line(key_node),
                                    jobnet)
                        continue
                    for key, pair in self.fields(source, jobnet, merging).items():
                        merged.setdefault(key, pair)
                continue
            if not isinstance(key_node, ScalarNode):
                self.report("syntax", f"expected a plain key, found {_describe(key_node)}",
                            self.line(key_node), jobnet)
                continue
            key = key_node.value
            if key in own:
                first, second = self.line(own[key][0]), self.line(key_node)
                self.report("syntax", f"duplicate key '{key}' at lines {first} and {second}: "
                                      "YAML keeps only the last one; write it once", second, jobnet)
            own[key] = (key_node, value_node)
        merged.update(own)
        return merged

    # -- entries ----------------------------------------------------------------------------

    def entry(self, ynode: YamlNode, parent: Node | None) -> Node | None:
        """One entry of `jobnets:` or `children:` as a Node (not yet attached), or None when it
        cannot be read (reported)."""
        context = parent.path if parent is not None else None
        if not isinstance(ynode, MappingNode):
            self.report("syntax", "expected an entry such as `job: <name>` (a mapping), found "
                                  f"{_describe(ynode)}", self.line(ynode), context)
            return None
        if id(ynode) in self.open_entries:
            self.report("syntax", "this entry contains itself through an alias",
                        self.line(ynode), context)
            return None
        fields = self.fields(ynode, context)
        kinds = [k for k in fields if k in CONSTRUCT_KEYS]
        if len(kinds) != 1:
            found = (f"both {' and '.join(kinds)}: one entry is one construct, give each its own "
                     "`- ` item" if kinds else f"keys {', '.join(fields) or 'none'}")
            self.report("syntax", f"expected an entry with one of the keys "
                                  f"{', '.join(CONSTRUCT_KEYS)}, found {found}",
                        self.line(ynode), context)
            return None
        kind = kinds[0]
        _, value_node = fields.pop(kind)
        where = Where(self.path, self.line(ynode))
        if parent is None and kind != JOBNET:
            self.report("misplaced", f"{kind} at the top level, outside any jobnet: only "
                                     "jobnets can stand there; put it under a jobnet's children",
                        where.line)
            return None
        if kind == FINALLY:
            node = Node(FINALLY, "finally", where)
            self.finally_value(value_node, fields, context)
        else:
            name = self.text(value_node, f"the name after `{kind}:`", context)
            if name is _BAD:
                return None
            node = Node(kind, name or "", where)
        node.parent = parent  # for paths in messages; the caller attaches it
        self.open_entries.add(id(ynode))
        try:
            for key, (field_key, field_value) in fields.items():
                self.field(node, key, field_key, field_value)
        finally:
            self.open_entries.discard(id(ynode))
        return node

    def finally_value(self, ynode: YamlNode, fields: Fields, jobnet: str | None) -> None:
        """`finally:` may hold its fields (`children:`...), just its children (a list), or nothing
        (its fields are then written beside it, like any other entry's)."""
        if isinstance(ynode, MappingNode):
            for key, pair in self.fields(ynode, jobnet).items():
                self.add_field(fields, key, pair, jobnet)
        elif isinstance(ynode, SequenceNode):
            self.add_field(fields, "children", (ynode, ynode), jobnet)
        elif ynode.tag != NULL_TAG:
            self.report("syntax", f"`finally:` takes no name, found {_describe(ynode)}; write "
                                  "`finally:` with `children:` under it", self.line(ynode), jobnet)

    def add_field(self, fields: Fields, key: str, pair: tuple[YamlNode, YamlNode],
                  jobnet: str | None) -> None:
        if key in fields:
            first, second = sorted((self.line(fields[key][0]), self.line(pair[0])))
            self.report("syntax", f"duplicate key '{key}' at lines {first} and {second} of a "
                                  "finally: write it once", second, jobnet)
        fields[key] = pair

    def field(self, node: Node, key: str, key_node: YamlNode, value: YamlNode) -> None:
        where = Where(self.path, self.line(key_node))
        context = node.path if node.kind in CONTAINERS or node.parent is None else node.parent.path
        if key == "children":
            for item in self.items(value, "`children:`", context):
                child = self.entry(item, node)
                if child is not None:
                    node.add(child)
            return
        if key == "script" and node.kind in (JOB, HADOOP_JOB_RUN):
            script = self.text(value, "`script:`", context)
            if script is not _BAD:
                node.script = script
            return
        if key in ("boot_jobs", "auto_sequence") and node.kind in CONTAINERS:
            self.sequencing(node, key, value, where, context)
            return
        option = SHORT_OPTIONS.get(key, key)
        canonical = OPTION_ALIASES.get(option, option)
        if canonical not in ALLOWED_OPTIONS[node.kind]:
            set_options(node, {key: None}, where)  # kept as an unknown option for the validator
            return
        option_value = self.option(canonical, key, value, context)
        if option_value is not _BAD:
            set_options(node, {option: option_value}, where)

    def sequencing(self, node: Node, key: str, value: YamlNode, where: Where,
                   jobnet: str | None) -> None:
        """`boot_jobs: [...]` and `auto_sequence: true` are the DSL's boot_jobs/auto_sequence
        statements; `auto_sequence: false` is the absence of the statement."""
        if key == "boot_jobs":
            names = self.names(value, "`boot_jobs:`", jobnet)
            if names is not _BAD:
                node.sequencing.append(Sequencing("boot_jobs", where, names))
            return
        flag = self.scalar(value) if isinstance(value, ScalarNode) else _BAD
        if flag is True:
            node.sequencing.append(Sequencing("auto_sequence", where))
        elif flag is not False:
            self.report("syntax", f"expected true or false after `auto_sequence:`, found "
                                  f"{_describe(value)}", self.line(value), jobnet)

    # -- values -----------------------------------------------------------------------------

    def option(self, canonical: str, key: str, value: YamlNode, jobnet: str | None) -> Any:
        if canonical in TEXT_OPTIONS:
            return self.text(value, f"`{key}:`", jobnet)
        if canonical in NAME_LIST_OPTIONS:
            return self.names(value, f"`{key}:`", jobnet)
        if isinstance(value, ScalarNode):
            return self.scalar(value)
        self.report("syntax", f"expected a single value after `{key}:`, found {_describe(value)}",
                    self.line(value), jobnet)
        return _BAD

    def text(self, value: YamlNode, what: str, jobnet: str | None) -> Any:
        """A scalar exactly as written (None for an empty value), or _BAD."""
        if isinstance(value, ScalarNode):
            return None if value.tag == NULL_TAG else value.value
        self.report("syntax", f"expected text for {what}, found {_describe(value)}",
                    self.line(value), jobnet)
        return _BAD

    def names(self, value: YamlNode, what: str, jobnet: str | None) -> Any:
        """One name or a list of names, as a list of strings, or _BAD."""
        if isinstance(value, ScalarNode):
            return [] if value.tag == NULL_TAG else [value.value]
        if isinstance(value, SequenceNode):
            if all(isinstance(v, ScalarNode) and v.tag != NULL_TAG for v in value.value):
                return [v.value for v in value.value]
            bad = next(v for v in value.value
                       if not isinstance(v, ScalarNode) or v.tag == NULL_TAG)
            self.report("syntax", f"expected names in the list of {what}, found "
                                  f"{_describe(bad)}", self.line(bad), jobnet)
            return _BAD
        self.report("syntax", f"expected a name or a list of names for {what}, found "
                              f"{_describe(value)}", self.line(value), jobnet)
        return _BAD

    def scalar(self, value: ScalarNode) -> Any:
        """A scalar as YAML types it (5 -> int, true -> bool); its text when it cannot be."""
        try:
            return self.constructor.construct_object(value, deep=True)
        except (yaml.YAMLError, ValueError, TypeError, OverflowError):
            return value.value
