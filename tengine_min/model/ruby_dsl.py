"""Read Tengine's own Ruby jobnet DSL files statically, without Ruby.

Tengine users write jobnets in Ruby (`jobnet("jn") do job("j1", "x.sh") end`). This module reads
those files unchanged into the shared template model (nodes.py), with a tokenizer and a
recursive-descent parser for the part of Ruby the DSL uses: literals, local variables holding
literals, a few `File` path functions, and the DSL calls. Nothing is guessed: anything outside that
subset becomes a Problem, `syntax` (Ruby we cannot parse) or `unsupported` (Ruby we do not evaluate,
named in the message), and the rest of the top-level statement it is in is skipped, so one file can
report several problems and no half-read jobnet reaches the model.

How arguments are read follows Tengine's loader (tengine_job/lib/tengine/job/dsl/loader.rb); the
comments below say where.
"""

from __future__ import annotations

import dataclasses
import decimal
import functools
import gc
import math
import os
import re
from dataclasses import dataclass
from typing import Any, NamedTuple, NoReturn

from .nodes import (
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
from .problems import Problem, problem

__all__ = ["read_ruby"]

# Blocks, arrays, hashes and interpolations nested deeper than this are refused rather than risking
# Python's recursion limit; real jobnet files nest a handful of levels.
MAX_NESTING = 100


def read_ruby(path: str, text: str) -> Definitions:
    """Read one Ruby DSL file. `path` is used in every Where and for `__FILE__`. Never raises for
    bad input: what cannot be read is a Problem in the result."""
    definitions = Definitions(files=[path])
    # A big file makes millions of tokens that all live until the end; pausing the cyclic garbage
    # collector meanwhile spares it from walking them again and again (a third of the time).
    collecting = gc.isenabled()
    gc.disable()
    try:
        lexer = _Lexer(text)
        try:
            tokens = lexer.run()
        except _LexError as err:
            definitions.problems.append(problem(err.code, err.message, Where(path, err.line)))
            tokens = lexer.truncated(err.line)
        _Parser(path, tokens, definitions).parse_program()
    finally:
        if collecting:
            gc.enable()
    definitions.problems.sort(key=lambda p: p.line or 0)
    return definitions


# ------------------------------------------------------------------------------------------------
# Tokens


class Token(NamedTuple):
    kind: str  # nl (newline or `;`), ident, const, kw, label, sym, str, num, words, op,
    #            unsup (a Ruby literal we do not read; value names it), bad (a stray char), eof
    value: Any
    line: int
    col: int
    spaced: bool  # whitespace or a line start just before it


@dataclass
class _Interp:
    """`#{...}` inside a string: its tokens (ending in eof) and its source for messages."""

    tokens: list[Token]
    source: str


@dataclass
class _BadPart:
    """A piece of a string we do not read (a control escape, `#@var` interpolation)."""

    construct: str


KEYWORDS = frozenset([
    "__ENCODING__", "__FILE__", "__LINE__", "BEGIN", "END", "alias", "and", "begin", "break",
    "case", "class", "def", "defined?", "do", "else", "elsif", "end", "ensure", "false", "for",
    "if", "in", "module", "next", "nil", "not", "or", "redo", "rescue", "retry", "return", "self",
    "super", "then", "true", "undef", "unless", "until", "when", "while", "yield"])
_VALUE_KEYWORDS = frozenset({"true", "false", "nil", "__FILE__"})
_VALUE_ENDING_KEYWORDS = _VALUE_KEYWORDS | {"end", "self", "__LINE__", "__ENCODING__"}

# One token, after optional blanks. Strings on one line without escapes or interpolation are
# read here; the rest (and quotes, backslashes, stray characters) go to `other`.
_TOKEN = re.compile(r"""[ \t\r\f\v]*(?:
  (?P<nl>\n)
| (?P<comment>\#[^\n]*)
| (?P<dq>"[^"\\\#\n]*")
| (?P<sq>'[^'\\\n]*')
| (?P<num>0[xX][0-9a-fA-F]+(?:_[0-9a-fA-F]+)*|0[bB][01]+(?:_[01]+)*|0[oO]?[0-7]+(?:_[0-7]+)*
         |0[dD]\d+(?:_\d+)*|\d+(?:_\d+)*(?:\.\d+(?:_\d+)*)?(?:[eE][+-]?\d+)?)
| (?P<label>[^\W\d]\w*[?!]?:(?!:))
| (?P<ident>[^\W\d]\w*(?:[?!](?!=))?)
| (?P<qsym>:["'])
| (?P<sym>:(?:[^\W\d]\w*(?:[?!]|=(?![=>~]))?|\[\]=?|<=>|===?|=~|!=|!~|\*\*|[-+]@|<<|>>|<=|>=
         |[-+*/%<>!~^&|]))
| (?P<op>\*\*=|<=>|===|\.\.\.|<<=|>>=|&&=|\|\|=|\*\*|==|=~|!=|!~|>=|<=|&&|\|\||<<|>>|=>|->|::
         |\.\.|\+=|-=|\*=|/=|%=|\|=|&=|\^=|&\.|[-+*/%=<>!&|^~?:,.;()\[\]{}])
| (?P<var>@@?[^\W\d]\w*|\$(?:\w+|[^\s\w]))
| (?P<other>.)
)""", re.VERBOSE | re.DOTALL)
_SINGLE_QUOTED = re.compile(r"'(?:[^'\\]|\\.)*'", re.DOTALL)
_PLAIN_DOUBLE_QUOTED = re.compile(r'"[^"\\#]*"')
_NAME_INTERPOLATION = re.compile(r"#\{([^\W\d]\w*)\}")
_PERCENT = re.compile(r"%([qQwWiIrsx]?)([^\w\s])")
_HEREDOC = re.compile(r"<<([~-]?)(['\"`]?)([A-Za-z_]\w*)\2")
_EQ_END = re.compile(r"^=end(?=\s|$)", re.MULTILINE)
_HEX_ESCAPE = re.compile(r"[0-9a-fA-F]{1,2}")
_OCTAL_ESCAPE = re.compile(r"[0-7]{1,3}")
_UNICODE_ESCAPE = re.compile(r"[0-9a-fA-F]{4}")
_UNICODE_BRACED_ESCAPE = re.compile(
    r"\{[ \t]*([0-9a-fA-F]{1,6}(?:[ \t]+[0-9a-fA-F]{1,6})*)[ \t]*\}")
_PAIRS = {"(": ")", "[": "]", "{": "}", "<": ">"}
_SIMPLE_ESCAPES = {"n": "\n", "t": "\t", "s": " ", "r": "\r", "a": "\a", "b": "\b", "e": "\x1b",
                   "f": "\f", "v": "\v"}
_PERCENT_UNREAD = {"W": "a `%W` word array", "I": "an `%I` symbol array",
                   "r": "a regular expression literal (`%r`)", "s": "a `%s` symbol literal",
                   "x": "a shell command literal (`%x`)"}


class _LexError(Exception):
    def __init__(self, message: str, line: int, code: str = "syntax"):
        super().__init__(message)
        self.message = message
        self.line = line
        self.code = code


class _Lexer:
    """Turns the text into tokens. Strings are read whole, `#{...}` interpolations into tokens of
    their own; comments, `=begin`/`=end`, line continuations and `__END__` are dropped here."""

    def __init__(self, text: str):
        self.text = text.removeprefix("\ufeff")
        self.n = len(self.text)
        self.pos = 0
        self.line = 1
        self.line_start = 0
        self.out: list[Token] = []
        self.heredocs: list[tuple[str, bool, int]] = []  # (terminator, indented, line)
        self.depth = 0

    def run(self) -> list[Token]:
        self._at_line_start()
        self._scan(in_interpolation=False)
        return self.out + [Token("eof", None, self._end_line(), 0, True)] * 3

    def truncated(self, line: int) -> list[Token]:
        """The tokens read before a lexical error, closed by an eof the parser will not blame."""
        return self.out + [Token("eof", "truncated", line, 0, True)] * 3

    def _end_line(self) -> int:
        if self.line > 1 and not self.text[self.line_start:self.pos].strip():
            return self.line - 1
        return self.line

    # -- the main loop -----------------------------------------------------------------------

    def _scan(self, in_interpolation: bool) -> None:
        """Read tokens up to the end (or, in an interpolation, up to its closing brace)."""
        text, n, out = self.text, self.n, self.out
        match_token = _TOKEN.match
        braces = 0
        while self.pos < n:
            pos = self.pos
            match = match_token(text, pos)
            if match is None:  # only blanks are left
                self.pos = n
                break
            kind = match.lastgroup
            start, end = match.span(kind)
            if kind == "nl":
                out.append(Token("nl", "\n", self.line, start - self.line_start, True))
                self.pos = end
                self._newline(start)
                if self.heredocs:
                    self._skip_heredoc_bodies()
                if not in_interpolation:
                    self._at_line_start()
                continue
            if kind == "comment":
                self.pos = end
                continue
            spaced = start > pos or start == self.line_start
            word = match.group(kind)
            value: Any = word
            if kind == "dq" or kind == "sq":
                kind, value = "str", word[1:-1]
            elif kind == "ident":
                if word in KEYWORDS:
                    prev = out[-1] if out else None  # `x.class` is a method, not a keyword
                    if prev is None or prev.kind != "op" or prev.value not in (".", "&.", "::"):
                        kind = "kw"
                elif "A" <= word[0] <= "Z":
                    kind = "const"
            elif kind == "op":
                if word[0] in "%/<?" and self._value_expected(spaced, start) and \
                        self._special(start, spaced):
                    continue
                if word == ";":
                    kind = "nl"
                elif in_interpolation and word == "{":
                    braces += 1
                elif in_interpolation and word == "}":
                    if braces == 0:
                        self.pos = end
                        return
                    braces -= 1
            elif kind == "num":
                kind, value = self._number(word)
            elif kind == "label":
                value = word[:-1]
            elif kind == "sym":
                value = word[1:]
            elif kind == "var":
                kind, value = "unsup", f"the variable `{word}`"
            else:  # qsym, other
                self._other(start, spaced)
                continue
            out.append(Token(kind, value, self.line, start - self.line_start, spaced))
            self.pos = end
        if in_interpolation:
            raise _LexError("a string interpolation `#{` has no closing `}`", self.line)

    def _other(self, pos: int, spaced: bool) -> None:
        """What the token pattern leaves to code: quoted literals that need escapes,
        interpolation or several lines, line continuations, and stray characters."""
        text = self.text
        c = text[pos]
        if c == '"':
            self._double_quoted(pos, spaced)
        elif c == "'":
            self._single_quoted(pos, spaced)
        elif c == ":":
            self._quoted_symbol(pos, spaced)
        elif c == "`":
            line, col = self._here(pos)
            _, self.pos = self._read_interpolated(pos + 1, "`", "`", line)
            self._emit("unsup", "a backtick shell command", pos, spaced, line, col)
        elif c == "\\" and text.startswith("\n", pos + 1):
            self.pos = pos + 2
            self._newline(pos + 1)
        elif c == "\\" and text.startswith("\r\n", pos + 1):
            self.pos = pos + 3
            self._newline(pos + 2)
        else:
            self._emit("bad", c, pos, spaced)
            self.pos = pos + 1

    def _here(self, pos: int) -> tuple[int, int]:
        return self.line, pos - self.line_start

    def _emit(self, kind: str, value: Any, pos: int, spaced: bool, line: int | None = None,
              col: int | None = None) -> None:
        token = Token(kind, value, self.line if line is None else line,
                      pos - self.line_start if col is None else col, spaced)
        self.out.append(token)

    def _newline(self, newline_pos: int) -> None:
        self.line += 1
        self.line_start = newline_pos + 1

    def _count_lines(self, start: int, end: int) -> None:
        count = self.text.count("\n", start, end)
        if count:
            self.line += count
            self.line_start = self.text.rfind("\n", start, end) + 1

    def _at_line_start(self) -> None:
        text, pos = self.text, self.pos
        if text.startswith("=begin", pos) and (pos + 6 == self.n or text[pos + 6].isspace()):
            match = _EQ_END.search(text, pos + 6)
            if match is None:
                raise _LexError(f"`=begin` at line {self.line} has no matching `=end`", self.line)
            end = text.find("\n", match.end())
            end = self.n if end < 0 else end
            self._count_lines(pos, end)
            self.pos = end
        elif text.startswith("__END__", pos) and (
                pos + 7 == self.n or text[pos + 7] == "\n" or text.startswith("\r\n", pos + 7)):
            self.pos = self.n  # everything after __END__ is data, not code

    def _value_expected(self, spaced: bool, pos: int) -> bool:
        """Ruby's rule for `/`, `%`, `<<`, `?`: a literal where a value may start (after an
        operator, a comma, a line start, or as the first argument of `foo /x/`), else an
        operator."""
        prev = self.out[-1] if self.out else None
        if prev is None or prev.kind in ("nl", "label"):
            return True
        if prev.kind == "op":
            return prev.value not in (")", "]", "}")
        if prev.kind == "kw":
            return prev.value not in _VALUE_ENDING_KEYWORDS
        if prev.kind == "ident":
            after = self.text[pos + 2:pos + 3] if self.text.startswith("<<", pos) else \
                self.text[pos + 1:pos + 2]
            return spaced and after not in ("", " ", "\t", "\n", "\r")
        return False

    def _special(self, pos: int, spaced: bool) -> bool:
        """Percent literals, regexps, heredocs and `?c` where a value is expected. False when the
        text turns out to be an operator after all."""
        text = self.text
        line, col = self._here(pos)
        c = text[pos]
        if c == "%":
            match = _PERCENT.match(text, pos)
            if match is None or (not match.group(1) and match.group(2) == "="):
                return False
            kind, opener = match.group(1) or "Q", match.group(2)
            closer = _PAIRS.get(opener, opener)
            start = match.end()
            if kind in ("Q", "W", "I", "r", "x"):
                parts, self.pos = self._read_interpolated(start, opener, closer, line)
            else:
                raw, self.pos = self._read_raw(start, opener, closer, line)
            if kind == "Q":
                self._emit("str", _join_plain(parts), pos, spaced, line, col)
            elif kind == "q":
                self._emit("str", _unescape_single(raw, opener, closer), pos, spaced, line, col)
            elif kind in ("w", "i"):
                self._emit("words", _split_words(raw), pos, spaced, line, col)
            else:
                if kind == "r":
                    self.pos = _skip_regexp_flags(text, self.pos)
                self._emit("unsup", _PERCENT_UNREAD[kind], pos, spaced, line, col)
            return True
        if c == "/":
            _, end = self._read_interpolated(pos + 1, "/", "/", line)
            self.pos = _skip_regexp_flags(text, end)
            self._emit("unsup", "a regular expression literal", pos, spaced, line, col)
            return True
        if c == "<":
            match = _HEREDOC.match(text, pos)
            if match is None:
                return False
            self.heredocs.append((match.group(3), bool(match.group(1)), line))
            self.pos = match.end()
            self._emit("unsup", f"a heredoc (`{match.group()}`)", pos, spaced, line, col)
            return True
        # `?a` is a one-character string literal
        if pos + 1 < self.n and not text[pos + 1].isspace() and not (
                pos + 2 < self.n and (text[pos + 2].isalnum() or text[pos + 2] == "_")):
            self.pos = pos + 2
            self._emit("unsup", f"a character literal (`{text[pos:pos + 2]}`)", pos, spaced)
            return True
        return False

    # -- literals ----------------------------------------------------------------------------

    def _number(self, word: str) -> tuple[str, Any]:
        digits = word.replace("_", "")
        if len(digits) > 4000:  # Python refuses to convert longer digit strings
            return "unsup", "a number with more than 4000 digits"
        prefix = digits[:2].lower()
        if prefix in ("0x", "0b", "0o", "0d"):
            return "num", int(digits[2:], {"0x": 16, "0b": 2, "0o": 8, "0d": 10}[prefix])
        if any(ch in digits for ch in ".eE"):
            return "num", float(digits)
        if len(digits) > 1 and digits[0] == "0":
            if any(ch in "89" for ch in digits):
                raise _LexError(f"invalid octal number `{word}` (a leading 0 means octal)",
                                self.line)
            return "num", int(digits, 8)
        return "num", int(digits)

    def _single_quoted(self, pos: int, spaced: bool) -> None:
        line, col = self._here(pos)
        match = _SINGLE_QUOTED.match(self.text, pos)
        if match is None:
            raise _LexError(f"unterminated string: the `'` at line {line} is never closed", line)
        self.pos = match.end()
        self._count_lines(pos, self.pos)
        self._emit("str", _unescape_single(match.group()[1:-1], "'", "'"), pos, spaced, line, col)

    def _double_quoted(self, pos: int, spaced: bool) -> None:
        line, col = self._here(pos)
        match = _PLAIN_DOUBLE_QUOTED.match(self.text, pos)
        if match is not None:  # the common case: no escapes, no interpolation
            self.pos = match.end()
            self._count_lines(pos, self.pos)
            self._emit("str", match.group()[1:-1], pos, spaced, line, col)
            return
        parts, self.pos = self._read_interpolated(pos + 1, '"', '"', line)
        self._emit("str", _join_plain(parts), pos, spaced, line, col)

    def _quoted_symbol(self, pos: int, spaced: bool) -> None:
        line, col = self._here(pos)
        quote = self.text[pos + 1]
        if quote == "'":
            raw, self.pos = self._read_raw(pos + 2, "'", "'", line)
            value: Any = _unescape_single(raw, "'", "'")
        else:
            parts, self.pos = self._read_interpolated(pos + 2, '"', '"', line)
            value = _join_plain(parts)
        self._emit("sym", value, pos, spaced, line, col)

    def _unterminated(self, closer: str, line: int) -> NoReturn:
        raise _LexError(f"unterminated literal: the `{closer}` that closes what opens at line "
                        f"{line} is never found", line)

    def _read_raw(self, pos: int, opener: str, closer: str, line: int) -> tuple[str, int]:
        """The body of a literal without interpolation, up to its unescaped closer (nested pairs
        such as `%w(a (b))` counted). Returns the raw body and the position after the closer."""
        text, n = self.text, self.n
        start, nesting = pos, 0
        while pos < n:
            c = text[pos]
            if c == "\\":
                pos += 2
                continue
            if c == closer and nesting == 0:
                self._count_lines(start, pos)
                return text[start:pos], pos + 1
            if c == closer:
                nesting -= 1
            elif c == opener and opener != closer:
                nesting += 1
            pos += 1
        self._unterminated(closer, line)

    def _read_interpolated(self, pos: int, opener: str, closer: str,
                           line: int) -> tuple[list[Any], int]:
        """The body of a double-quoted literal: a list of str, _Interp and _BadPart pieces."""
        text, n = self.text, self.n
        parts: list[Any] = []
        chunk: list[str] = []
        nesting = 0
        plain_run = _plain_run(opener, closer).match
        while pos < n:
            run = plain_run(text, pos)
            if run is not None:
                chunk.append(run.group())
                pos = run.end()
                continue
            c = text[pos]
            if c == "\\":
                piece, pos = self._escape(pos + 1, line)
                if isinstance(piece, _BadPart):
                    parts.append("".join(chunk))
                    chunk = []
                    parts.append(piece)
                else:
                    chunk.append(piece)
                continue
            if c == "#" and text.startswith("{", pos + 1):
                parts.append("".join(chunk))
                chunk = []
                name = _NAME_INTERPOLATION.match(text, pos)
                if name is not None and name.group(1) not in KEYWORDS and \
                        not "A" <= name.group(1)[0] <= "Z":
                    # `#{base_dir}`, the usual case, without a sub-scan
                    col = name.start(1) - self.line_start
                    tokens = [Token("ident", name.group(1), self.line, col, False)] + \
                        [Token("eof", None, self.line, col, True)] * 3
                    interp, pos = _Interp(tokens, name.group(1)), name.end()
                else:
                    interp, pos = self._interpolation(pos + 2, line)
                parts.append(interp)
                continue
            if c == "#" and text[pos + 1:pos + 2] in ("@", "$") and \
                    re.match(r"[@$]@?[^\W\d]", text[pos + 1:pos + 4]):
                parts.append(_BadPart(f"`{text[pos:pos + 2]}...` interpolation of a variable"))
            if c == closer and nesting == 0:
                parts.append("".join(chunk))
                return parts, pos + 1
            if c == closer:
                nesting -= 1
            elif c == opener and opener != closer:
                nesting += 1
            if c == "\n":
                self._newline(pos)
            chunk.append(c)
            pos += 1
        self._unterminated(closer, line)

    def _interpolation(self, pos: int, line: int) -> tuple[_Interp, int]:
        """The tokens of `#{...}` from `pos` (just inside the brace) to its closing brace."""
        saved_out = self.out
        self.out, self.pos = [], pos
        self.depth += 1
        try:
            if self.depth > MAX_NESTING:
                raise _LexError(f"string interpolations nested more than {MAX_NESTING} deep",
                                line, "unsupported")
            self._scan(in_interpolation=True)
            tokens = self.out + [Token("eof", None, self.line, 0, True)] * 3
        except _LexError as err:
            if self.depth > 1:  # the outermost string says where; nested ones add nothing
                raise
            raise _LexError(f"{err.message} (in the string starting at line {line})",
                            line, err.code) from None
        finally:
            self.out = saved_out
            self.depth -= 1
        return _Interp(tokens, self.text[pos:self.pos - 1].strip()), self.pos

    def _escape(self, pos: int, line: int) -> tuple[str | _BadPart, int]:
        """One backslash escape of a double-quoted string; `pos` is just after the backslash."""
        text = self.text
        if pos >= self.n:
            self._unterminated('"', line)
        c = text[pos]
        if c in _SIMPLE_ESCAPES:
            return _SIMPLE_ESCAPES[c], pos + 1
        if c == "\n":
            self._newline(pos)
            return "", pos + 1
        if c in "01234567" or c == "x":
            if c == "x":
                match = _HEX_ESCAPE.match(text, pos + 1)
                if match is None:
                    raise _LexError("invalid hex escape `\\x` in a string", self.line)
                code = int(match.group(), 16)
            else:
                match = _OCTAL_ESCAPE.match(text, pos)
                code = int(match.group(), 8) & 0xFF
            if code >= 0x80:  # Ruby makes a raw byte of it, not the character of that code
                return _BadPart(f"the byte escape `\\{text[pos:match.end()]}`"), match.end()
            return chr(code), match.end()
        if c == "u":
            return self._unicode_escape(pos + 1)
        if c in "cCM":
            return _BadPart(f"the control/meta escape `\\{c}`"), pos + 1
        return c, pos + 1

    def _unicode_escape(self, pos: int) -> tuple[str, int]:
        text = self.text
        match = _UNICODE_ESCAPE.match(text, pos)
        if match is not None:
            codes, end = [match.group()], match.end()
        else:
            match = _UNICODE_BRACED_ESCAPE.match(text, pos)
            if match is None:
                raise _LexError("invalid Unicode escape `\\u` in a string", self.line)
            codes, end = match.group(1).split(), match.end()
        chars = []
        for code in codes:
            value = int(code, 16)
            if value > 0x10FFFF or 0xD800 <= value <= 0xDFFF:
                raise _LexError(f"invalid Unicode codepoint `\\u{code}` in a string", self.line)
            chars.append(chr(value))
        return "".join(chars), end

    def _skip_heredoc_bodies(self) -> None:
        """Heredoc bodies start on the line after their `<<ID`; skip them whole."""
        text, n = self.text, self.n
        for terminator, indented, line in self.heredocs:
            while True:
                if self.pos >= n:
                    raise _LexError(f"the heredoc `<<{terminator}` at line {line} has no "
                                    f"terminating line `{terminator}`", line)
                end = text.find("\n", self.pos)
                line_end = n if end < 0 else end
                content = text[self.pos:line_end].rstrip("\r")
                self.pos = n if end < 0 else end + 1
                if end >= 0:
                    self._newline(end)
                if (content.strip() if indented else content) == terminator:
                    break
        self.heredocs.clear()


@functools.cache
def _plain_run(opener: str, closer: str) -> re.Pattern:
    """Characters a double-quoted body can take as they are, between escapes and delimiters."""
    return re.compile("[^\\\\#\n" + re.escape(opener + closer) + "]+")


def _join_plain(parts: list[Any]) -> str | list[Any]:
    """A string token's value: a plain str when nothing needs evaluating, else its parts."""
    if all(isinstance(p, str) for p in parts):
        return "".join(parts)
    return [p for p in parts if p != ""]


def _unescape_single(raw: str, opener: str, closer: str) -> str:
    """Single-quoted rules: only `\\\\` and an escaped delimiter lose their backslash."""
    if "\\" not in raw:
        return raw
    out, i = [], 0
    while i < len(raw):
        if raw[i] == "\\" and i + 1 < len(raw) and raw[i + 1] in ("\\", opener, closer):
            out.append(raw[i + 1])
            i += 2
        else:
            out.append(raw[i])
            i += 1
    return "".join(out)


def _split_words(raw: str) -> list[str]:
    """`%w(a b\\ c)`: words split on whitespace; a backslash keeps the next char in the word."""
    words, current, i, in_word = [], [], 0, False
    while i < len(raw):
        c = raw[i]
        if c == "\\" and i + 1 < len(raw):
            current.append(raw[i + 1])
            in_word = True
            i += 2
            continue
        if c.isspace():
            if in_word:
                words.append("".join(current))
                current, in_word = [], False
        else:
            current.append(c)
            in_word = True
        i += 1
    if in_word:
        words.append("".join(current))
    return words


def _skip_regexp_flags(text: str, pos: int) -> int:
    while pos < len(text) and text[pos] in "imxounse":
        pos += 1
    return pos


# ------------------------------------------------------------------------------------------------
# Values


@dataclass(frozen=True)
class _Sym:
    """A symbol used as a hash key (`:to =>`, `to:`): told apart from the string key "to",
    which Tengine's loader does not recognise."""

    name: str


class _Hash(dict):
    """A Ruby hash read from the file, remembering the line of each key."""

    def __init__(self) -> None:
        super().__init__()
        self.lines: dict[Any, int] = {}

    def put(self, key: Any, value: Any, line: int) -> None:
        self[key] = value
        self.lines[key] = line


@dataclass
class _Unreadable:
    """The value of a variable whose assignment could not be read."""

    line: int


class _Args(NamedTuple):
    positional: list[tuple[Any, int]]  # (value, line)
    options: _Hash | None
    parens: bool
    given: bool  # any argument written (with or without parentheses)


def _plain(value: Any) -> Any:
    """A value as the model stores it: symbols as their names, fresh lists and dicts."""
    if isinstance(value, dict):
        return {_plain(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, _Sym):
        return value.name
    return value


def _show(value: Any) -> str:
    """A value as Ruby's `inspect` would write it, shortened for messages."""
    if value is None:
        text = "nil"
    elif isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, str):
        text = '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    elif isinstance(value, _Sym):
        text = f":{value.name}"
    elif isinstance(value, list):
        text = "[" + ", ".join(_show(v) for v in value) + "]"
    elif isinstance(value, dict):
        text = "{" + ", ".join(f"{_show(k)} => {_show(v)}" for k, v in value.items()) + "}"
    else:
        text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _shorten(text: str) -> str:
    return text if len(text) <= 40 else text[:37] + "..."


def _ruby_float(value: float) -> str:
    """Float#to_s: fixed notation for 1e-4 <= |x| < 1e16, else `1.0e+16`."""
    if math.isnan(value):
        return "NaN"
    if value in (float("inf"), float("-inf")):
        return "Infinity" if value > 0 else "-Infinity"
    sign, digits, exponent = decimal.Decimal(repr(value)).normalize().as_tuple()
    text = "".join(map(str, digits))
    point = len(text) + exponent  # digits before the decimal point
    prefix = "-" if sign else ""
    if value == 0:
        return prefix + "0.0"
    if -4 < point <= 0:
        return prefix + "0." + "0" * -point + text
    if 0 < point < 16:
        whole, frac = text[:point].ljust(point, "0"), text[point:]
        return prefix + whole + "." + (frac or "0")
    return f"{prefix}{text[0]}.{text[1:] or '0'}e{point - 1:+03d}"


def _ruby_dirname(path: str) -> str:
    """File.dirname: trailing slashes ignored, "." for a bare name, "/" for the root."""
    stripped = path.rstrip("/")
    if not stripped:
        return "/" if path else "."
    cut = stripped.rfind("/")
    if cut < 0:
        return "."
    return stripped[:cut].rstrip("/") or "/"


# ------------------------------------------------------------------------------------------------
# Parser

_DSL_CALLS = frozenset({"jobnet", "job", "hadoop_job_run", "hadoop_job", "expansion", "finally",
                        "boot_jobs", "auto_sequence"})
_IGNORED_CALLS = frozenset({"require", "dsl_version"})
_LOOP_METHODS = frozenset({"each", "each_with_index", "each_with_object", "each_slice", "times",
                           "upto", "downto", "step", "map", "collect", "each_pair", "flat_map",
                           "inject", "reduce", "select", "reject"})
_KEYWORD_CONSTRUCTS = {
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
_MODIFIERS = frozenset({"if", "unless", "while", "until", "rescue"})
_COMPOUND_ASSIGN = frozenset({"+=", "-=", "*=", "/=", "%=", "**=", "||=", "&&=", "|=", "&=",
                              "^=", "<<=", ">>="})
_BINARY_OPS = frozenset({"+", "-", "*", "/", "%", "**", "==", "!=", "===", "=~", "!~", "<", ">",
                         "<=", ">=", "<=>", "&&", "||", "&", "|", "^", "<<", ">>"})
# Tokens that, right after a value, make it an expression we do not evaluate.
_AFTER_VALUE = _BINARY_OPS | _COMPOUND_ASSIGN | {".", "&.", "::", "[", "?", "..", "...", "=",
                                                  "and", "or"}
# Option keys Tengine's loader looks up as symbols (options.delete(:to), options[:caption], ...):
# written as strings they would be silently ignored or misapplied by Tengine, so we refuse them.
_SYMBOL_ONLY_KEYS = frozenset({"to", "redirect_to", "caption", "preparation", "auto_sequence",
                               "description", "script"})


class _ReadError(Exception):
    def __init__(self, found: Problem, index: int, at_eof: bool, suppressed: bool):
        super().__init__(found.message)
        self.problem = found
        self.index = index  # token index where it was found, for recovery
        self.at_eof = at_eof
        self.suppressed = suppressed  # after a lexical error already reported


def _describe(tok: Token) -> str:
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


def _ends_value(tok: Token | None) -> bool:
    if tok is None:
        return False
    if tok.kind in ("str", "num", "sym", "words", "ident", "const", "unsup"):
        return True
    if tok.kind == "op":
        return tok.value in (")", "]", "}")
    return tok.kind == "kw" and tok.value in _VALUE_ENDING_KEYWORDS


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


class _Parser:
    def __init__(self, path: str, tokens: list[Token], definitions: Definitions):
        self.path = path
        self.file_path = os.path.abspath(path)  # what __FILE__ means here
        self.toks = tokens
        self.i = 0
        self.definitions = definitions
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

    def _is_closer(self, tok: Token, closer: str | None) -> bool:
        if closer == "end":
            return tok.kind == "kw" and tok.value == "end"
        return closer == "}" and tok.kind == "op" and tok.value == "}"

    def _skip_newlines(self) -> None:
        while self.toks[self.i].kind == "nl":
            self.i += 1

    def _fail(self, code: str, message: str, tok: Token, line: int | None = None) -> NoReturn:
        jobnet = self.containers[-1].path if self.containers else None
        found = problem(code, message, Where(self.path, line or tok.line), jobnet)
        raise _ReadError(found, self.i, tok.kind == "eof",
                         tok.kind == "eof" and tok.value == "truncated")

    def _unsupported(self, message: str, tok: Token) -> NoReturn:
        self._fail("unsupported", message, tok)

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
            except _ReadError as err:
                if not err.suppressed:
                    self.definitions.problems.append(err.problem)
                self._recover(start, err)
                continue
            if root is not None:
                self.definitions.roots.append(root)

    def _recover(self, start: int, err: _ReadError) -> None:
        """Skip the rest of the top-level statement that failed: to the end of its line once
        every block it opened is closed again (a closer of the wrong kind is taken as a stray)."""
        self.scopes = self.scopes[:1]
        self.containers = []
        self.depth = 0
        toks = self.toks
        i, expected, loop_do, prev = start, [], False, None  # expected: the closers still due
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
        if kind in ("ident", "const") and after.kind == "op" and after.value in _COMPOUND_ASSIGN:
            self._unsupported(f"compound assignment `{value} {after.value}`", tok)
        if kind == "ident":
            if self._lookup(value)[0]:
                self._value()  # a bare local variable: no effect
                return None
            if self._is_op(",", after):
                self._unsupported("multiple assignment (`a, b = ...`)", tok)
            if value in _DSL_CALLS:
                return self._dsl_call(container)
            if value in _IGNORED_CALLS:
                self._ignored_call(container)
                return None
            self._unsupported(self._unknown_call_message(tok), tok)
        if kind in ("const", "str", "sym", "num", "words") or \
                (kind == "kw" and value in _VALUE_KEYWORDS) or \
                (kind == "op" and value in ("[", "(", "-", "{", "->")):
            self._value()  # a literal on its own: no effect
            return None
        if kind == "kw" and value in _KEYWORD_CONSTRUCTS:
            self._unsupported(f"{_KEYWORD_CONSTRUCTS[value]} is Ruby code the static reader "
                              "does not run", tok)
        if kind == "unsup":
            self._unsupported(f"{value} is not read by the static reader", tok)
        if kind == "kw" and value == "end":
            self._fail("syntax", "unexpected `end`: there is no open `do` block to close", tok)
        self._fail("syntax", f"expected a statement, found {_describe(tok)}", tok)

    def _end_of_statement(self, closer: str | None) -> None:
        tok = self._peek()
        if tok.kind in ("nl", "eof") or self._is_closer(tok, closer):
            return
        if tok.kind == "kw" and tok.value in _MODIFIERS:
            self._unsupported(f"a `{tok.value}` modifier is Ruby code the static reader does not "
                              "run", tok)
        self._reject_operator()
        self._fail("syntax", f"expected the end of the line, found {_describe(tok)}", tok)

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
                           f"{label} (line {opener.line}), found {_describe(tok)}", tok)
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

    def _enter(self, tok: Token) -> None:
        self.depth += 1
        if self.depth > MAX_NESTING:
            self._unsupported(f"blocks, arrays or hashes nested more than {MAX_NESTING} deep", tok)

    def _assignment(self) -> None:
        name = self._advance()
        self._advance()  # =
        self._skip_newlines()
        try:
            value = self._value()
        except _ReadError:
            self._assign(name, _Unreadable(name.line))  # later uses say why they fail
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

    def _block_follows(self, args: _Args) -> bool:
        tok = self._peek()
        if tok.kind == "kw" and tok.value == "do":
            return True
        if self._is_op("{", tok):
            if args.parens or not args.given:
                return True
            self._fail("syntax", "a `{ ... }` block after arguments without parentheses: write "
                       "`do ... end`, or put the arguments in parentheses", tok)
        return False

    def _node(self, tok: Token, args: _Args, where: Where) -> Node:
        call = tok.value
        positional = args.positional
        if call == "finally":
            if positional or args.options:
                self._fail("syntax", "`finally` takes no arguments, only a block", tok)
            return Node(kind=FINALLY, name="finally", where=where)
        if not positional:
            self._fail("syntax", f"`{call}` needs a name as its first argument", tok)
        name = self._string_arg(positional[0], "name", call, required=True)
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
                   f"{_show(value)}", self._peek(), line=line)

    def _apply_options(self, node: Node, options: _Hash) -> None:
        for key, value in options.items():
            line = options.lines[key]
            if isinstance(key, _Sym):
                name = key.name
            elif isinstance(key, str) and key not in _SYMBOL_ONLY_KEYS:
                name = key
            elif isinstance(key, str):
                self._fail("unsupported", f'the option key "{key}" is a string: Tengine\'s loader '
                           f"only recognises the symbol :{key} (write `:{key} =>` or `{key}:`)",
                           self._peek(), line=line)
            else:
                self._fail("unsupported", f"the option key {_show(key)} must be a symbol such as "
                           ":server_name", self._peek(), line=line)
            value = _plain(value)
            canonical = OPTION_ALIASES.get(name, name)
            if canonical in ALLOWED_OPTIONS[node.kind]:
                if canonical == "to" and value is None:
                    continue  # loader: Array(nil) is no edge at all
                if not _option_value_fits(canonical, value):
                    self._fail("unsupported", f"`:{name}` must be {_OPTION_SHAPES[canonical]}, "
                               f"found {_show(value)}", self._peek(), line=line)
            set_options(node, {name: value}, Where(self.path, line))

    def _sequencing(self, tok: Token, args: _Args, where: Where) -> Sequencing:
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
                           f"{_show(value)}{hint}", tok, line=line)
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

    # -- arguments ---------------------------------------------------------------------------

    def _call_args(self, name: Token) -> _Args:
        tok = self._peek()
        if self._is_op("(", tok) and not tok.spaced:
            self._advance()
            return self._arg_list(name, tok)
        if self._starts_command_arg(tok):
            return self._arg_list(name, None)
        return _Args([], None, False, False)

    def _starts_command_arg(self, tok: Token) -> bool:
        """Can this token start the first argument of a call written without parentheses?"""
        if tok.kind in ("str", "sym", "num", "words", "label", "ident", "const", "unsup"):
            return True
        if tok.kind == "kw":
            return tok.value in _VALUE_KEYWORDS or tok.value in ("self", "__LINE__")
        if tok.kind == "op":
            if tok.value in ("[", "(", "->", "::"):
                return tok.spaced
            if tok.value in ("-", "*", "&", "**", "!"):
                return tok.spaced and not self._peek_next().spaced
        return False

    def _arg_list(self, name: Token, opener: Token | None) -> _Args:
        """Arguments up to `)` (with `opener`) or to the end of the command (without)."""
        positional: list[tuple[Any, int]] = []
        options: _Hash | None = None
        if opener is not None:
            self._skip_newlines()
            if self._is_op(")"):
                self._advance()
                return _Args([], None, True, False)
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
                        options = _Hash()
                    options.put(key, value, line)
                elif options is not None:
                    self._fail("syntax", f"expected `=>` after {_show(value)}: in Ruby, "
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
                       f"(opened at line {opener.line}), found {_describe(self._peek())}",
                       self._peek())
        # loader: extract_options! takes a trailing hash as the options
        if options is None and positional and isinstance(positional[-1][0], _Hash):
            options = positional.pop()[0]
        return _Args(positional, options, opener is not None, True)

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
            return True, _Sym(tok.value), self._value(f"{tok.value}:"), tok.line
        if tok.kind == "str" and self._is_op(":", self._peek_next()) and \
                not self._peek_next().spaced:
            self._advance()
            key = self._text(tok)
            self._advance()
            self._skip_newlines()
            return True, _Sym(key), self._value(f'"{key}":'), tok.line
        value = self._value()
        arrow = self.toks[self.i]
        if arrow.kind != "op" or arrow.value != "=>":
            return False, None, value, tok.line
        self._advance()
        self._skip_newlines()
        if isinstance(value, (list, dict)):
            self._unsupported(f"the hash key {_show(value)} (only symbols, strings and numbers)",
                              tok)
        if tok.kind == "sym":
            key, label = _Sym(value), f":{value} =>"
        else:
            key, label = value, f"{_show(value)} =>"
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
        if kind == "kw" and value in _VALUE_KEYWORDS:
            self._advance()
            if value == "__FILE__":
                return self.file_path
            return {"true": True, "false": False, "nil": None}[value]
        if kind == "kw" and value in _KEYWORD_CONSTRUCTS:
            self._unsupported(f"{_KEYWORD_CONSTRUCTS[value]} used as a value", tok)
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
                               f"found {_describe(self._peek())}", self._peek())
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
        self._fail("syntax", f"expected a value, found {_describe(tok)}", tok)

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
        if message is None and op in _COMPOUND_ASSIGN:
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
            if tok.value in _DSL_CALLS:
                self._unsupported(f"the DSL call `{tok.value}` used as a value", tok)
            self._unsupported(self._unknown_call_message(tok), tok)
        if isinstance(value, _Unreadable):
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
            if isinstance(value, _Unreadable):
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
                self._unsupported(f"`File.{method.value}` of {_show(value)}: a path must be a "
                                  "string", method)
        if method.value == "dirname":
            return _ruby_dirname(values[0])
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
                           f"{opener.line}, found {_describe(self._peek())}", self._peek())

    def _hash(self) -> _Hash:
        opener = self._advance()
        self._enter(opener)
        result = _Hash()
        while True:
            self._skip_newlines()
            if self._is_op("}"):
                self._advance()
                self.depth -= 1
                return result
            is_pair, key, value, line = self._pair_or_value()
            if not is_pair:
                self._fail("syntax", f"expected `=>` after a key in the hash opened at line "
                           f"{opener.line}, found {_describe(self._peek())}", self._peek())
            result.put(key, value, line)
            self._skip_newlines()
            if self._is_op(","):
                self._advance()
            elif not self._is_op("}"):
                self._fail("syntax", f"expected `,` or `}}` in the hash opened at line "
                           f"{opener.line}, found {_describe(self._peek())}", self._peek())

    def _text(self, tok: Token) -> str:
        """The value of a string (or quoted symbol) token, interpolations evaluated."""
        if isinstance(tok.value, str):
            return tok.value
        out = []
        for part in tok.value:
            if isinstance(part, str):
                out.append(part)
            elif isinstance(part, _BadPart):
                self._unsupported(f"{part.construct} in a string", tok)
            else:
                out.append(self._interpolate(part, tok))
        return "".join(out)

    def _interpolate(self, part: _Interp, string: Token) -> str:
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
        except _ReadError as err:
            message = err.problem.message
            if not message.startswith("in the string interpolation"):  # said once, innermost
                message = f"in the string interpolation `#{{{_shorten(part.source)}}}`: {message}"
            raise _ReadError(dataclasses.replace(err.problem, message=message), saved[1],
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
            return _ruby_float(value)
        self._unsupported(f"in the string interpolation `#{{{_shorten(part.source)}}}`: "
                          "interpolating "
                          f"{_show(value)} is not evaluated", string)


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
