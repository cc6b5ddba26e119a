"""Reading Ruby values and call arguments from the tokens (the lower half of the parser).

What the DSL needs of Ruby: literals, arrays and hashes of them, string interpolation of known
names, local variables and constants holding such values, `__FILE__`, File.expand_path and
File.dirname, and the arguments of a call with or without parentheses. Anything else is named in
an `unsupported` problem (an operator, a method call, a block of code) or is a `syntax` problem.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any, NamedTuple, NoReturn

from ..nodes import Node, Where
from ..problems import Problem, problem
from .lexer import MAX_NESTING, VALUE_KEYWORDS, BadPart, Interp, Token
from .values import RubyHash, Sym, Unreadable, ruby_dirname, ruby_float, shorten, show

__all__ = ["COMPOUND_ASSIGN", "DSL_CALLS", "KEYWORD_CONSTRUCTS", "Args", "ExpressionReader",
           "ReadError", "describe"]

# The DSL's own calls: here to say "the DSL call `job` used as a value"; parser.py reads them.
DSL_CALLS = frozenset({"jobnet", "job", "hadoop_job_run", "hadoop_job", "expansion", "finally",
                        "boot_jobs", "auto_sequence"})
_LOOP_METHODS = frozenset({"each", "each_with_index", "each_with_object", "each_slice", "times",
                           "upto", "downto", "step", "map", "collect", "each_pair", "flat_map",
                           "inject", "reduce", "select", "reject"})
KEYWORD_CONSTRUCTS = {
    "if": "an `if` condition", "unless": "an `unless` condition", "case": "a `case` expression",
    "while": "a `while` loop", "until": "an `until` loop", "for": "a `for` loop",
    "def": "a method definition (`def`)", "class": "a class definition (`class`)",
    "module": "a module definition (`module`)", "begin": "a `begin` block",
    "BEGIN": "a `BEGIN` block", "END": "an `END` block", "alias": "`alias`", "undef": "`undef`",
    "return": "`return`", "yield": "`yield`", "super": "`super`", "self": "`self`",
    "break": "`break`", "next": "`next`", "redo": "`redo`", "retry": "`retry`",
    "defined?": "`defined?`", "not": "`not`", "__LINE__": "`__LINE__`",
    "__ENCODING__": "`__ENCODING__`",
}
COMPOUND_ASSIGN = frozenset({"+=", "-=", "*=", "/=", "%=", "**=", "||=", "&&=", "|=", "&=",
                             "^=", "<<=", ">>="})
_BINARY_OPS = frozenset({"+", "-", "*", "/", "%", "**", "==", "!=", "===", "=~", "!~", "<", ">",
                         "<=", ">=", "<=>", "&&", "||", "&", "|", "^", "<<", ">>"})
# Tokens that, right after a value, make it an expression we do not evaluate.
_AFTER_VALUE = _BINARY_OPS | COMPOUND_ASSIGN | {".", "&.", "::", "[", "?", "..", "...", "=",
                                                 "and", "or"}


class Args(NamedTuple):
    """The arguments of one call as written."""

    positional: list[tuple[Any, int]]  # (value, line)
    options: RubyHash | None
    parens: bool
    given: bool  # any argument written (with or without parentheses)


class ReadError(Exception):
    """A problem that ends the reading of the statement it is in."""

    def __init__(self, found: Problem, index: int, at_eof: bool, suppressed: bool):
        super().__init__(found.message)
        self.problem = found
        self.index = index  # token index where it was found, for recovery
        self.at_eof = at_eof
        self.suppressed = suppressed  # after a lexical error already reported


def describe(tok: Token) -> str:
    """A token as a message names it: "end of line", "the number `3`", "`do`"."""
    kind, value = tok.kind, tok.value
    if kind == "eof":
        return "end of file"
    if kind == "nl":
        return "end of line" if value == "\n" else "`;`"
    if kind == "str":
        return "a string"
    if kind == "num":
        return f"the number `{value}`"
    if kind == "sym":
        return f"the symbol `:{value}`" if isinstance(value, str) else "a symbol"
    if kind == "label":
        return f"`{value}:`"
    if kind == "words":
        return "a word array"
    if kind == "unsup":
        return value
    if kind == "bad":
        return f"the character `{value}`" if value.isprintable() else \
            f"the character U+{ord(value):04X}"
    return f"`{value}`"


class ExpressionReader:
    """A cursor over the tokens of one file, and the reading of values and call arguments from
    it. Every problem is raised as a ReadError at the token that shows it."""

    def __init__(self, path: str, tokens: list[Token]):
        self.path = path
        self.file_path = os.path.abspath(path)  # what __FILE__ means here
        self.toks = tokens
        self.i = 0
        self.scopes: list[dict[str, Any]] = [{}]  # local variables, innermost block last
        self.constants: dict[str, Any] = {}
        self.containers: list[Node] = []  # the nodes whose blocks we are in
        self.depth = 0

    # -- token helpers -----------------------------------------------------------------------

    # Token lists end with three eof tokens, so looking up to two ahead needs no bounds check.
    def _peek(self) -> Token:
        return self.toks[self.i]

    def _peek_next(self) -> Token:
        return self.toks[self.i + 1]

    def _advance(self) -> Token:
        tok = self.toks[self.i]
        if tok.kind != "eof":
            self.i += 1
        return tok

    def _is_op(self, value: str, tok: Token | None = None) -> bool:
        tok = tok or self._peek()
        return tok.kind == "op" and tok.value == value

    def _skip_newlines(self) -> None:
        while self.toks[self.i].kind == "nl":
            self.i += 1

    def _fail(self, code: str, message: str, tok: Token, line: int | None = None) -> NoReturn:
        jobnet = self.containers[-1].path if self.containers else None
        found = problem(code, message, Where(self.path, line or tok.line), jobnet)
        raise ReadError(found, self.i, tok.kind == "eof",
                        tok.kind == "eof" and tok.value == "truncated")

    def _unsupported(self, message: str, tok: Token) -> NoReturn:
        self._fail("unsupported", message, tok)

    # -- nesting and names -------------------------------------------------------------------

    def _enter(self, tok: Token) -> None:
        self.depth += 1
        if self.depth > MAX_NESTING:
            self._unsupported(f"blocks, arrays or hashes nested more than {MAX_NESTING} deep", tok)

    def _lookup(self, name: str) -> tuple[bool, Any]:
        for scope in reversed(self.scopes):
            if name in scope:
                return True, scope[name]
        return False, None

    def _unknown_call_message(self, tok: Token) -> str:
        name = tok.value
        if name == "ruby_job":
            return ("`ruby_job` exists only on Tengine's unmerged branch 20130212_ruby_job (its "
                    "block runs inside tengined); Tengine 1.1 and 1.2 have no such method")
        if name in ("proc", "lambda"):
            return f"`{name}` is a Ruby block evaluated at run time; the static reader cannot " \
                   "evaluate it"
        if name == "loop":
            return "a `loop` is Ruby code the static reader does not run"
        return (f"`{name}` is neither a method of Tengine's jobnet DSL nor a local variable "
                f"assigned before line {tok.line}; the static reader does not call other methods")

    # -- arguments ---------------------------------------------------------------------------

    def _call_args(self, name: Token) -> Args:
        tok = self._peek()
        if self._is_op("(", tok) and not tok.spaced:
            self._advance()
            return self._arg_list(name, tok)
        if self._starts_command_arg(tok):
            return self._arg_list(name, None)
        return Args([], None, False, False)

    def _starts_command_arg(self, tok: Token) -> bool:
        """Can this token start the first argument of a call written without parentheses?"""
        if tok.kind in ("str", "sym", "num", "words", "label", "ident", "const", "unsup"):
            return True
        if tok.kind == "kw":
            return tok.value in VALUE_KEYWORDS or tok.value in ("self", "__LINE__")
        if tok.kind == "op":
            if tok.value in ("[", "(", "->", "::"):
                return tok.spaced
            if tok.value in ("-", "*", "&", "**", "!"):
                return tok.spaced and not self._peek_next().spaced
        return False

    def _arg_list(self, name: Token, opener: Token | None) -> Args:
        """Arguments up to `)` (with `opener`) or to the end of the command (without)."""
        positional: list[tuple[Any, int]] = []
        options: RubyHash | None = None
        if opener is not None:
            self._skip_newlines()
            if self._is_op(")"):
                self._advance()
                return Args([], None, True, False)
        toks = self.toks
        while True:
            tok = toks[self.i]
            if tok.kind == "op" and tok.value == "*":
                self._advance()
                if options is not None:
                    self._fail("syntax", "a `*` argument after options", tok)
                positional.extend((item, tok.line) for item in self._splat(self._value(), tok))
            elif tok.kind == "op" and tok.value in ("**", "&"):
                self._unsupported(f"a `{tok.value}` argument (double splat or block argument)",
                                  tok)
            else:
                is_pair, key, value, line = self._pair_or_value()
                if is_pair:
                    if options is None:
                        options = RubyHash()
                    options.put(key, value, line)
                elif options is not None:
                    self._fail("syntax", f"expected `=>` after {show(value)}: in Ruby, "
                               "positional arguments cannot follow options", self._peek())
                else:
                    positional.append((value, line))
            if opener is not None:
                self._skip_newlines()
            separator = toks[self.i]
            if separator.kind == "op" and separator.value == ",":
                self._advance()
                self._skip_newlines()  # a line ending in a comma continues on the next one
                if opener is not None and self._is_op(")"):
                    self._advance()
                    break
                continue
            if opener is None:
                break
            if self._is_op(")"):
                self._advance()
                break
            self._fail("syntax", f"expected `,` or `)` in the arguments of `{name.value}` "
                       f"(opened at line {opener.line}), found {describe(self._peek())}",
                       self._peek())
        # loader: extract_options! takes a trailing hash as the options
        if options is None and positional and isinstance(positional[-1][0], RubyHash):
            options = positional.pop()[0]
        return Args(positional, options, opener is not None, True)

    def _splat(self, value: Any, tok: Token) -> list[Any]:
        if isinstance(value, list):
            return value
        if value is None:
            return []
        if isinstance(value, dict):
            self._unsupported("a `*` applied to a hash", tok)
        return [value]

    def _pair_or_value(self) -> tuple[bool, Any, Any, int]:
        """`key: value`, `"key": value`, `key => value`, or a plain value."""
        tok = self._peek()
        if tok.kind == "label":
            self._advance()
            self._skip_newlines()
            return True, Sym(tok.value), self._value(f"{tok.value}:"), tok.line
        if tok.kind == "str" and self._is_op(":", self._peek_next()) and \
                not self._peek_next().spaced:
            self._advance()
            name = self._text(tok)
            self._advance()
            self._skip_newlines()
            return True, Sym(name), self._value(f'"{name}":'), tok.line
        value = self._value()
        arrow = self.toks[self.i]
        if arrow.kind != "op" or arrow.value != "=>":
            return False, None, value, tok.line
        self._advance()
        self._skip_newlines()
        if isinstance(value, (list, dict)):
            self._unsupported(f"the hash key {show(value)} (only symbols, strings and numbers)",
                              tok)
        if tok.kind == "sym":
            key, label = Sym(value), f":{value} =>"
        else:
            key, label = value, f"{show(value)} =>"
        return True, key, self._value(label), tok.line

    # -- values ------------------------------------------------------------------------------

    def _value(self, key_label: str | None = None) -> Any:
        """One value. `key_label` (e.g. ":preparation =>") names the option it is given to."""
        self._enter(self.toks[self.i])
        try:
            value = self._primary(key_label)
            after = self.toks[self.i]
            if after.kind in ("op", "kw") and after.value in _AFTER_VALUE:
                self._reject_operator()
            return value
        finally:
            self.depth -= 1

    def _primary(self, key_label: str | None) -> Any:
        tok = self._peek()
        kind, value = tok.kind, tok.value
        if kind == "str":
            self._advance()
            text = self._text(tok)
            while self._peek().kind == "str":  # "a" "b" is one string in Ruby
                text += self._text(self._advance())
            return text
        if kind == "sym":
            self._advance()
            return self._text(tok)
        if kind in ("num", "words"):
            self._advance()
            return list(value) if kind == "words" else value
        if kind == "kw" and value in VALUE_KEYWORDS:
            self._advance()
            if value == "__FILE__":
                return self.file_path
            return {"true": True, "false": False, "nil": None}[value]
        if kind == "kw" and value in KEYWORD_CONSTRUCTS:
            self._unsupported(f"{KEYWORD_CONSTRUCTS[value]} used as a value", tok)
        if kind == "op":
            if value == "[":
                return self._array()
            if value == "{":
                return self._hash()
            if value == "(":
                self._advance()
                self._skip_newlines()
                inner = self._value(key_label)
                self._skip_newlines()
                if not self._is_op(")"):
                    self._fail("syntax", f"expected `)` to close the `(` at line {tok.line}, "
                               f"found {describe(self._peek())}", self._peek())
                self._advance()
                return inner
            if value in ("-", "+") and self._peek_next().kind == "num":
                self._advance()
                number = self._advance().value
                return -number if value == "-" else number
            if value == "->":
                self._unsupported(self._proc_message("->", key_label), tok)
            if value in ("!", "~"):
                self._unsupported(f"the operator `{value}`: expressions are not evaluated", tok)
        if kind == "ident":
            return self._variable(tok, key_label)
        if kind == "const":
            return self._constant(tok)
        if kind == "unsup":
            self._unsupported(f"{value} is not read by the static reader", tok)
        if kind == "label":
            self._unsupported(f"a hash without braces (`{value}: ...`) in this place", tok)
        self._fail("syntax", f"expected a value, found {describe(tok)}", tok)

    def _proc_message(self, name: str, key_label: str | None) -> str:
        if key_label:
            return f"`{key_label} {name}` is evaluated by tengined at run time; the static " \
                   "reader cannot evaluate it"
        return f"`{name}` is a Ruby block evaluated at run time; the static reader cannot " \
               "evaluate it"

    def _reject_operator(self) -> None:
        """After a value: any operator, method call or index makes it an expression we do not
        evaluate."""
        tok = self._peek()
        if tok.kind == "kw" and tok.value in ("and", "or"):
            self._unsupported(f"the operator `{tok.value}`: expressions are not evaluated", tok)
        if tok.kind != "op":
            return
        op = tok.value
        if op in (".", "&."):
            method = self._peek_next()
            name = method.value if method.kind in ("ident", "const", "kw") else ""
            if name in _LOOP_METHODS:
                self._unsupported(f"a loop (`.{name}`) is Ruby code the static reader does not "
                                  "run", tok)
            self._unsupported(f"the method call `.{name}`: the static reader does not call "
                              "methods", tok)
        message = {
            "::": "a constant path (`::`)", "[": "indexing with `[...]`",
            "?": "a conditional expression (`? :`)", "..": "a range (`..`)",
            "...": "a range (`...`)", "=": "an assignment inside an expression",
        }.get(op)
        if message is None and op in COMPOUND_ASSIGN:
            message = f"the compound assignment `{op}`"
        if message is None and op in _BINARY_OPS:
            message = f"the operator `{op}`: arithmetic and other expressions are not evaluated"
        if message is not None:
            self._unsupported(message, tok)

    def _variable(self, tok: Token, key_label: str | None) -> Any:
        found, value = self._lookup(tok.value)
        if not found:
            if tok.value in ("proc", "lambda"):
                self._unsupported(self._proc_message(tok.value, key_label), tok)
            if tok.value in DSL_CALLS:
                self._unsupported(f"the DSL call `{tok.value}` used as a value", tok)
            self._unsupported(self._unknown_call_message(tok), tok)
        if isinstance(value, Unreadable):
            self._unsupported(f"`{tok.value}` has no value the static reader knows: its "
                              f"assignment at line {value.line} could not be read", tok)
        self._advance()
        return value

    def _constant(self, tok: Token) -> Any:
        name = tok.value
        after = self._peek_next()
        if name == "File" and self._is_op(".", after):
            return self._file_call()
        if name == "ENV":
            self._unsupported("`ENV`: the environment of tengined at load time is not known to "
                              "the static reader", tok)
        if name in self.constants and not (after.kind == "op" and after.value in (".", "::")):
            value = self.constants[name]
            if isinstance(value, Unreadable):
                self._unsupported(f"`{name}` has no value the static reader knows: its assignment "
                                  f"at line {value.line} could not be read", tok)
            self._advance()
            return value
        if after.kind == "op" and after.value in (".", "::") and \
                self.toks[self.i + 2].kind in ("ident", "const"):
            name = f"{name}{after.value}{self.toks[self.i + 2].value}"
        self._unsupported(f"`{name}` is Ruby the static reader does not evaluate (it reads only "
                          "literals, local variables and constants assigned literals, __FILE__, "
                          "File.expand_path and File.dirname)", tok)

    def _file_call(self) -> str:
        """File.expand_path(path[, dir]) and File.dirname(path), on strings we know."""
        self._advance()  # File
        self._advance()  # .
        method = self._peek()
        if method.kind != "ident" or method.value not in ("expand_path", "dirname"):
            self._unsupported(f"`File.{method.value}` is not evaluated: the static reader knows "
                              "only File.expand_path and File.dirname", method)
        self._advance()
        args = self._call_args(method)
        values = [value for value, _ in args.positional]
        most = 2 if method.value == "expand_path" else 1
        if args.options or not 1 <= len(values) <= most:
            self._fail("syntax", f"`File.{method.value}` takes 1 to {most} path argument(s)",
                       method)
        for value in values:
            if not isinstance(value, str):
                self._unsupported(f"`File.{method.value}` of {show(value)}: a path must be a "
                                  "string", method)
        if method.value == "dirname":
            return ruby_dirname(values[0])
        path, base = values[0], values[1] if len(values) > 1 else None
        if path.startswith("~") or (base or "").startswith("~"):
            self._unsupported("`File.expand_path` of a `~` path depends on the home directory of "
                              "tengined", method)
        if os.path.isabs(path):
            return os.path.normpath(path)
        if base is None or not os.path.isabs(base):
            self._unsupported("`File.expand_path` of a relative path without an absolute base "
                              "depends on the working directory of tengined, which the static "
                              "reader does not know", method)
        return os.path.normpath(os.path.join(base, path))

    def _array(self) -> list[Any]:
        opener = self._advance()
        self._enter(opener)
        items: list[Any] = []
        while True:
            self._skip_newlines()
            if self._is_op("]"):
                self._advance()
                self.depth -= 1
                return items
            tok = self._peek()
            if self._is_op("*"):
                self._advance()
                items.extend(self._splat(self._value(), tok))
            else:
                items.append(self._value())
                if self._is_op("=>"):
                    self._unsupported("a hash without braces inside an array", self._peek())
            self._skip_newlines()
            if self._is_op(","):
                self._advance()
            elif not self._is_op("]"):
                self._fail("syntax", f"expected `,` or `]` in the array opened at line "
                           f"{opener.line}, found {describe(self._peek())}", self._peek())

    def _hash(self) -> RubyHash:
        opener = self._advance()
        self._enter(opener)
        result = RubyHash()
        while True:
            self._skip_newlines()
            if self._is_op("}"):
                self._advance()
                self.depth -= 1
                return result
            is_pair, key, value, line = self._pair_or_value()
            if not is_pair:
                self._fail("syntax", f"expected `=>` after a key in the hash opened at line "
                           f"{opener.line}, found {describe(self._peek())}", self._peek())
            result.put(key, value, line)
            self._skip_newlines()
            if self._is_op(","):
                self._advance()
            elif not self._is_op("}"):
                self._fail("syntax", f"expected `,` or `}}` in the hash opened at line "
                           f"{opener.line}, found {describe(self._peek())}", self._peek())

    def _text(self, tok: Token) -> str:
        """The value of a string (or quoted symbol) token, interpolations evaluated."""
        if isinstance(tok.value, str):
            return tok.value
        out = []
        for part in tok.value:
            if isinstance(part, str):
                out.append(part)
            elif isinstance(part, BadPart):
                self._unsupported(f"{part.construct} in a string", tok)
            else:
                out.append(self._interpolate(part, tok))
        return "".join(out)

    def _interpolate(self, part: Interp, string: Token) -> str:
        """`#{...}`: only names and literals we can resolve (e.g. `#{base_dir}`)."""
        first = part.tokens[0]
        if first.kind == "ident" and part.tokens[1].kind == "eof":  # `#{name}`, the usual case
            found, value = self._lookup(first.value)
            if found and isinstance(value, str):
                return value
        saved = self.toks, self.i
        self.toks, self.i = part.tokens, 0
        try:
            self._skip_newlines()
            if self._peek().kind == "eof":
                return ""  # "#{}" is nil.to_s
            value = self._value()
            self._skip_newlines()
            if self._peek().kind != "eof":
                self._unsupported("more than one expression", self._peek())
        except ReadError as err:
            message = err.problem.message
            if not message.startswith("in the string interpolation"):  # said once, innermost
                message = f"in the string interpolation `#{{{shorten(part.source)}}}`: {message}"
            raise ReadError(dataclasses.replace(err.problem, message=message), saved[1],
                             False, False) from None
        finally:
            self.toks, self.i = saved
        if isinstance(value, str):
            return value
        if isinstance(value, bool):
            return "true" if value else "false"
        if value is None:
            return ""
        if isinstance(value, int):
            return str(value)
        if isinstance(value, float):
            return ruby_float(value)
        self._unsupported(f"in the string interpolation `#{{{shorten(part.source)}}}`: "
                          "interpolating "
                          f"{show(value)} is not evaluated", string)

