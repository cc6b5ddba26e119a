"""Parsing the tokens of one file into the template model (the upper half of the parser).

Statements, blocks and the DSL calls: `jobnet`, `job`, `hadoop_job_run`, `hadoop_job`,
`expansion`, `finally`, `boot_jobs`, `auto_sequence` become Nodes, with their arguments read the
way Tengine's loader reads them (tengine_job/lib/tengine/job/dsl/loader.rb; the comments say
where). A top-level statement that fails is skipped whole (`_recover`), so one file can report
several problems and no half-read jobnet reaches the model.
"""

from __future__ import annotations

import gc
from typing import Any, NoReturn

from ..nodes import (
    ALLOWED_OPTIONS,
    CONTAINERS,
    FINALLY,
    OPTION_ALIASES,
    Definitions,
    Node,
    Sequencing,
    Where,
    set_options,
)
from ..problems import problem
from .expressions import (
    COMPOUND_ASSIGN,
    DSL_CALLS,
    KEYWORD_CONSTRUCTS,
    Args,
    ExpressionReader,
    ReadError,
    describe,
)
from .lexer import VALUE_ENDING_KEYWORDS, VALUE_KEYWORDS, Lexer, LexError, Token
from .values import RubyHash, Sym, Unreadable, plain, show

__all__ = ["read_ruby"]


def read_ruby(path: str, text: str) -> Definitions:
    """Read one Ruby DSL file. `path` is used in every Where and for `__FILE__`. Never raises for
    bad input: what cannot be read is a Problem in the result."""
    definitions = Definitions(files=[path])
    # A big file makes millions of tokens that all live until the end; pausing the cyclic garbage
    # collector meanwhile spares it from walking them again and again (a third of the time).
    collecting = gc.isenabled()
    gc.disable()
    try:
        lexer = Lexer(text)
        try:
            tokens = lexer.run()
        except LexError as err:
            definitions.problems.append(problem(err.code, err.message, Where(path, err.line)))
            tokens = lexer.truncated(err.line)
        Parser(path, tokens, definitions).parse_program()
    finally:
        if collecting:
            gc.enable()
    definitions.problems.sort(key=lambda p: p.line or 0)
    return definitions


_IGNORED_CALLS = frozenset({"require", "dsl_version"})
_MODIFIERS = frozenset({"if", "unless", "while", "until", "rescue"})
# Option keys Tengine's loader looks up as symbols (options.delete(:to), options[:caption], ...):
# written as strings they would be silently ignored or misapplied by Tengine, so we refuse them.
_SYMBOL_ONLY_KEYS = frozenset({"to", "redirect_to", "caption", "preparation", "auto_sequence",
                               "description", "script"})


def _ends_value(tok: Token | None) -> bool:
    if tok is None:
        return False
    if tok.kind in ("str", "num", "sym", "words", "ident", "const", "unsup"):
        return True
    if tok.kind == "op":
        return tok.value in (")", "]", "}")
    return tok.kind == "kw" and tok.value in VALUE_ENDING_KEYWORDS


def _opens(tok: Token, prev: Token | None) -> bool:
    """Does this token open something closed by `end`, `}`, `)` or `]`? (for recovery only)"""
    if tok.kind == "op":
        return tok.value in ("(", "[", "{")
    if tok.kind != "kw":
        return False
    if tok.value in ("do", "case", "def", "class", "module", "begin", "for"):
        return True
    # `x if y` is a modifier (no `end`); `if y` at the start of an expression opens a block
    return tok.value in ("if", "unless", "while", "until") and not _ends_value(prev)


_CLOSER_OF = {"(": ")", "[": "]", "{": "}"}


def _closes(tok: Token) -> bool:
    return (tok.kind == "kw" and tok.value == "end") or \
        (tok.kind == "op" and tok.value in (")", "]", "}"))


class Parser(ExpressionReader):
    """Reads one file's statements into `definitions`: its roots, and a Problem for each
    statement it cannot read."""

    def __init__(self, path: str, tokens: list[Token], definitions: Definitions):
        super().__init__(path, tokens)
        self.definitions = definitions

    def _is_closer(self, tok: Token, closer: str | None) -> bool:
        if closer == "end":
            return tok.kind == "kw" and tok.value == "end"
        return closer == "}" and tok.kind == "op" and tok.value == "}"

    # -- top level and recovery --------------------------------------------------------------

    def parse_program(self) -> None:
        while True:
            self._skip_newlines()
            if self._peek().kind == "eof":
                return
            start = self.i
            try:
                root = self._statement(None)
                self._end_of_statement(None)
            except ReadError as err:
                if not err.suppressed:
                    self.definitions.problems.append(err.problem)
                self._recover(start, err)
                continue
            if root is not None:
                self.definitions.roots.append(root)

    def _recover(self, start: int, err: ReadError) -> None:
        """Skip the rest of the top-level statement that failed: to the end of its line once
        every block it opened is closed again (a closer of the wrong kind is taken as a stray)."""
        self.scopes = self.scopes[:1]
        self.containers = []
        self.depth = 0
        toks = self.toks
        expected: list[str] = []  # the closers still due
        prev: Token | None = None
        i, loop_do = start, False
        while toks[i].kind != "eof":
            tok = toks[i]
            if tok.kind == "nl":
                if not expected and i > start:
                    break
                loop_do = False
            elif tok.kind == "kw" and tok.value == "do" and loop_do:
                loop_do = False  # `while x do`: one `end` closes both
            elif _opens(tok, prev):
                expected.append(_CLOSER_OF.get(tok.value, "end"))
                loop_do = tok.value in ("while", "until", "for")
            elif _closes(tok):
                if not expected:
                    i += 1
                    break
                if tok.value == expected[-1]:
                    expected.pop()
            prev = tok
            i += 1
        if toks[i].kind == "eof" and expected and toks[i].value != "truncated":
            # The block never closes (or holds Ruby whose blocks we miscounted): resume at the next
            # line starting in column 0, where top-level statements conventionally start.
            after = start if err.at_eof else err.index
            first_line = toks[start].line
            for j in range(after + 1, len(toks)):
                tok = toks[j]
                if tok.col == 0 and tok.line > first_line and tok.kind not in ("nl", "eof") \
                        and not _closes(tok):
                    i = j
                    break
        self.i = min(max(i, start + 1), len(toks) - 3)

    # -- statements --------------------------------------------------------------------------

    def _statement(self, container: Node | None) -> Node | None:
        """One statement. Returns a root node when a top-level statement defines one."""
        tok = self._peek()
        kind, value = tok.kind, tok.value
        after = self._peek_next()
        if kind in ("ident", "const") and self._is_op("=", after):
            self._assignment()
            return None
        if kind in ("ident", "const") and after.kind == "op" and after.value in COMPOUND_ASSIGN:
            self._unsupported(f"compound assignment `{value} {after.value}`", tok)
        if kind == "ident":
            if self._lookup(value)[0]:
                self._value()  # a bare local variable: no effect
                return None
            if self._is_op(",", after):
                self._unsupported("multiple assignment (`a, b = ...`)", tok)
            if value in DSL_CALLS:
                return self._dsl_call(container)
            if value in _IGNORED_CALLS:
                self._ignored_call(container)
                return None
            self._unsupported(self._unknown_call_message(tok), tok)
        if kind in ("const", "str", "sym", "num", "words") or \
                (kind == "kw" and value in VALUE_KEYWORDS) or \
                (kind == "op" and value in ("[", "(", "-", "{", "->")):
            self._value()  # a literal on its own: no effect
            return None
        if kind == "kw" and value in KEYWORD_CONSTRUCTS:
            self._unsupported(f"{KEYWORD_CONSTRUCTS[value]} is Ruby code the static reader "
                              "does not run", tok)
        if kind == "unsup":
            self._unsupported(f"{value} is not read by the static reader", tok)
        if kind == "kw" and value == "end":
            self._fail("syntax", "unexpected `end`: there is no open `do` block to close", tok)
        self._fail("syntax", f"expected a statement, found {describe(tok)}", tok)

    def _end_of_statement(self, closer: str | None) -> None:
        tok = self._peek()
        if tok.kind in ("nl", "eof") or self._is_closer(tok, closer):
            return
        if tok.kind == "kw" and tok.value in _MODIFIERS:
            self._unsupported(f"a `{tok.value}` modifier is Ruby code the static reader does not "
                              "run", tok)
        self._reject_operator()
        self._fail("syntax", f"expected the end of the line, found {describe(tok)}", tok)

    def _statements(self, container: Node, opener: Token, closer: str, label: str) -> None:
        """The statements of a block, up to (not including) its closer."""
        while True:
            self._skip_newlines()
            tok = self._peek()
            if self._is_closer(tok, closer):
                return
            if tok.kind == "eof":
                self._fail("syntax", f"the `{opener.value}` of {label} at line {opener.line} has "
                           f"no matching `{closer}`: found end of file at line {tok.line}", tok,
                           line=opener.line)
            if _closes(tok):
                self._fail("syntax", f"expected `{closer}` to close the `{opener.value}` of "
                           f"{label} (line {opener.line}), found {describe(tok)}", tok)
            self._statement(container)
            self._end_of_statement(closer)

    def _block(self, node: Node, label: str) -> None:
        opener = self._advance()
        closer = "end" if opener.value == "do" else "}"
        if self._is_op("|") or self._is_op("||"):
            self._unsupported(f"block parameters (`|...|`) on {label}: the DSL passes none",
                              self._peek())
        self._enter(opener)
        self.scopes.append({})
        self.containers.append(node)
        self._statements(node, opener, closer, label)
        self.containers.pop()
        self.scopes.pop()
        self.depth -= 1
        self._advance()

    def _assignment(self) -> None:
        name = self._advance()
        self._advance()  # =
        self._skip_newlines()
        try:
            value = self._value()
        except ReadError:
            self._assign(name, Unreadable(name.line))  # later uses say why they fail
            raise
        self._assign(name, value)

    def _assign(self, name: Token, value: Any) -> None:
        if name.kind == "const":
            self.constants[name.value] = value
            return
        for scope in reversed(self.scopes):  # a block assigns an outer variable it can see
            if name.value in scope:
                scope[name.value] = value
                return
        self.scopes[-1][name.value] = value

    # -- DSL calls ---------------------------------------------------------------------------

    def _dsl_call(self, container: Node | None) -> Node | None:
        tok = self._advance()
        name = tok.value
        where = Where(self.path, tok.line)
        args = self._call_args(tok)
        has_block = self._block_follows(args)
        if name in ("boot_jobs", "auto_sequence"):
            sequencing = self._sequencing(tok, args, where)
            if has_block:
                self._unsupported(f"a block given to `{name}` is ignored by Tengine",
                                  self._peek())
            if container is None:
                self._misplaced(f"`{name}` at top level, outside any jobnet: there is no jobnet "
                                "for it to apply to", where)
            else:
                container.sequencing.append(sequencing)
            return None
        node = self._node(tok, args, where)
        label = "finally" if name == "finally" else f'{name} "{node.name}"'
        root = None
        if container is not None:
            container.add(node)  # even where it does not belong: the validator says so
        elif node.kind in CONTAINERS:
            root = node  # Tengine's loader makes any jobnet-like call at top level a root
        else:
            self._misplaced(f"{label} at top level, outside any jobnet: Tengine's loader has no "
                            "jobnet to add it to (it fails with NoMethodError)", where)
        if has_block:
            self._block(node, label)
        return root

    def _misplaced(self, message: str, where: Where) -> None:
        self.definitions.problems.append(problem("misplaced", message, where, None))

    def _block_follows(self, args: Args) -> bool:
        tok = self._peek()
        if tok.kind == "kw" and tok.value == "do":
            return True
        if self._is_op("{", tok):
            if args.parens or not args.given:
                return True
            self._fail("syntax", "a `{ ... }` block after arguments without parentheses: write "
                       "`do ... end`, or put the arguments in parentheses", tok)
        return False

    def _node(self, tok: Token, args: Args, where: Where) -> Node:
        call = tok.value
        positional = args.positional
        if call == "finally":
            if positional or args.options:
                self._fail("syntax", "`finally` takes no arguments, only a block", tok)
            return Node(kind=FINALLY, name="finally", where=where)
        if not positional:
            self._fail("syntax", f"`{call}` needs a name as its first argument", tok)
        name = self._string_arg(positional[0], "name", call, required=True)
        assert name is not None  # required: a missing name was refused
        node = Node(kind=call, name=name, where=where)
        rest = positional[1:]
        if call == "jobnet":
            # loader: jobnet(name, *args) takes args.first as the description
            if len(rest) > 1:
                self._extra_arguments(call, "a name, an optional description and options",
                                      rest[1][1], tok)
            if rest:
                node.description = self._string_arg(rest[0], "description", call)
        elif call in ("job", "hadoop_job_run"):
            # loader: with a second (truthy) value the first is the description, else the script
            if len(rest) > 2:
                self._extra_arguments(call, "a name, an optional description, a script and "
                                      "options", rest[2][1], tok)
            first, second = (rest + [(None, tok.line)] * 2)[:2]
            if second[0] is not None and second[0] is not False:
                node.description = self._string_arg(first, "description", call)
                node.script = self._string_arg(second, "script", call)
            else:
                node.script = self._string_arg(first, "script", call)
        elif rest:  # hadoop_job(name, options = {}), expansion(root_jobnet_name, options = {})
            self._fail("syntax", f"`{call}` takes a name and options (`:to => ...`); found "
                       f"{len(rest)} more argument(s) at line {rest[0][1]}", tok)
        if args.options:
            self._apply_options(node, args.options)
        return node

    def _extra_arguments(self, call: str, takes: str, line: int, tok: Token) -> NoReturn:
        self._fail("unsupported", f"`{call}` takes {takes}; Tengine ignores the extra argument "
                   f"at line {line}, so the static reader does not guess what it meant", tok)

    def _string_arg(self, arg: tuple[Any, int], what: str, call: str,
                    required: bool = False) -> str | None:
        value, line = arg
        if isinstance(value, str) or (value is None and not required):
            return value
        self._fail("unsupported", f"the {what} given to `{call}` must be a string, found "
                   f"{show(value)}", self._peek(), line=line)

    def _apply_options(self, node: Node, options: RubyHash) -> None:
        for key, value in options.items():
            line = options.lines[key]
            if isinstance(key, Sym):
                name = key.name
            elif isinstance(key, str) and key not in _SYMBOL_ONLY_KEYS:
                name = key
            elif isinstance(key, str):
                self._fail("unsupported", f'the option key "{key}" is a string: Tengine\'s loader '
                           f"only recognises the symbol :{key} (write `:{key} =>` or `{key}:`)",
                           self._peek(), line=line)
            else:
                self._fail("unsupported", f"the option key {show(key)} must be a symbol such as "
                           ":server_name", self._peek(), line=line)
            value = plain(value)
            canonical = OPTION_ALIASES.get(name, name)
            if canonical in ALLOWED_OPTIONS[node.kind]:
                if canonical == "to" and value is None:
                    continue  # loader: Array(nil) is no edge at all
                if not _option_value_fits(canonical, value):
                    self._fail("unsupported", f"`:{name}` must be {_OPTION_SHAPES[canonical]}, "
                               f"found {show(value)}", self._peek(), line=line)
            set_options(node, {name: value}, Where(self.path, line))

    def _sequencing(self, tok: Token, args: Args, where: Where) -> Sequencing:
        if tok.value == "auto_sequence":
            if args.positional or args.options:
                self._fail("syntax", "`auto_sequence` takes no arguments", tok)
            return Sequencing("auto_sequence", where)
        if args.options:
            self._fail("unsupported", "`boot_jobs` takes job names; Tengine would take a hash "
                       "here for a name", tok)
        names = []
        for value, line in args.positional:
            if not isinstance(value, str):
                hint = " (write `boot_jobs(*[...])` to pass an array)" \
                    if isinstance(value, list) else ""
                self._fail("unsupported", f"`boot_jobs` takes job names (strings), found "
                           f"{show(value)}{hint}", tok, line=line)
            names.append(value)
        return Sequencing("boot_jobs", where, names)

    def _ignored_call(self, container: Node | None) -> None:
        tok = self._advance()
        if tok.value == "dsl_version" and container is not None:
            # At top level dsl_version only stamps the templates with a version; we key templates
            # by name alone, so it is read and ignored. Inside a block it would change the version
            # mid-definition, which we do not track.
            self._unsupported("`dsl_version` inside a block changes the version of the templates "
                              "mid-definition; the static reader accepts it only at top level",
                              tok)
        args = self._call_args(tok)  # read (and so checked), then ignored
        if self._block_follows(args):
            self._unsupported(f"a block given to `{tok.value}`", self._peek())


_OPTION_SHAPES = {
    "to": "a name or a list of names",
    "killing_signals": "a signal name or a list of signal names",
    "description": "a string",
}


def _option_value_fits(canonical: str, value: Any) -> bool:
    """The few options set_options reshapes must have a shape it can take."""
    if canonical == "to":
        return isinstance(value, str) or (isinstance(value, list) and
                                          all(isinstance(v, str) for v in value))
    if canonical == "killing_signals":
        return isinstance(value, str) or (isinstance(value, list) and all(
            isinstance(v, (str, int)) and not isinstance(v, bool) for v in value))
    if canonical == "description":
        return value is None or isinstance(value, str)
    return True
