"""The tokenizer of the Ruby reader: source text to a list of tokens.

Strings are read whole here (escapes applied, `#{...}` interpolations tokenized on their own),
and what the reader never reads (such as regexps, heredocs, backticks, `%x`, global and instance
variables) becomes one `unsup` token naming it, so the parser can say what it met. Comments,
`=begin`/`=end`, line continuations and everything after `__END__` are dropped.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from typing import Any, NamedTuple, NoReturn

__all__ = ["KEYWORDS", "MAX_NESTING", "VALUE_ENDING_KEYWORDS", "VALUE_KEYWORDS", "BadPart",
           "Interp", "LexError", "Lexer", "Token"]

# Blocks, arrays, hashes and interpolations nested deeper than this are refused rather than risking
# Python's recursion limit; real jobnet files nest a handful of levels.
MAX_NESTING = 100


class Token(NamedTuple):
    kind: str  # nl (newline or `;`), ident, const, kw, label, sym, str, num, words, op,
    #            unsup (a Ruby literal we do not read; value names it), bad (a stray char), eof
    value: Any
    line: int
    col: int
    spaced: bool  # whitespace or a line start just before it


@dataclass
class Interp:
    """`#{...}` inside a string: its tokens (ending in eof) and its source for messages."""

    tokens: list[Token]
    source: str


@dataclass
class BadPart:
    """A piece of a string we do not read (a control escape, `#@var` interpolation)."""

    construct: str


KEYWORDS = frozenset([
    "__ENCODING__", "__FILE__", "__LINE__", "BEGIN", "END", "alias", "and", "begin", "break",
    "case", "class", "def", "defined?", "do", "else", "elsif", "end", "ensure", "false", "for",
    "if", "in", "module", "next", "nil", "not", "or", "redo", "rescue", "retry", "return", "self",
    "super", "then", "true", "undef", "unless", "until", "when", "while", "yield"])
VALUE_KEYWORDS = frozenset({"true", "false", "nil", "__FILE__"})
VALUE_ENDING_KEYWORDS = VALUE_KEYWORDS | {"end", "self", "__LINE__", "__ENCODING__"}

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


class LexError(Exception):
    def __init__(self, message: str, line: int, code: str = "syntax"):
        super().__init__(message)
        self.message = message
        self.line = line
        self.code = code


class Lexer:
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
            assert kind is not None  # every alternative of _TOKEN is a named group
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
            raise LexError("a string interpolation `#{` has no closing `}`", self.line)

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
                raise LexError(f"`=begin` at line {self.line} has no matching `=end`", self.line)
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
            return prev.value not in VALUE_ENDING_KEYWORDS
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
                raise LexError(f"invalid octal number `{word}` (a leading 0 means octal)",
                                self.line)
            return "num", int(digits, 8)
        return "num", int(digits)

    def _single_quoted(self, pos: int, spaced: bool) -> None:
        line, col = self._here(pos)
        match = _SINGLE_QUOTED.match(self.text, pos)
        if match is None:
            raise LexError(f"unterminated string: the `'` at line {line} is never closed", line)
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
        raise LexError(f"unterminated literal: the `{closer}` that closes what opens at line "
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
        """The body of a double-quoted literal: a list of str, Interp and BadPart pieces."""
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
                if isinstance(piece, BadPart):
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
                    interp, pos = Interp(tokens, name.group(1)), name.end()
                else:
                    interp, pos = self._interpolation(pos + 2, line)
                parts.append(interp)
                continue
            if c == "#" and text[pos + 1:pos + 2] in ("@", "$") and \
                    re.match(r"[@$]@?[^\W\d]", text[pos + 1:pos + 4]):
                parts.append(BadPart(f"`{text[pos:pos + 2]}...` interpolation of a variable"))
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

    def _interpolation(self, pos: int, line: int) -> tuple[Interp, int]:
        """The tokens of `#{...}` from `pos` (just inside the brace) to its closing brace."""
        saved_out = self.out
        self.out, self.pos = [], pos
        self.depth += 1
        try:
            if self.depth > MAX_NESTING:
                raise LexError(f"string interpolations nested more than {MAX_NESTING} deep",
                                line, "unsupported")
            self._scan(in_interpolation=True)
            tokens = self.out + [Token("eof", None, self.line, 0, True)] * 3
        except LexError as err:
            if self.depth > 1:  # the outermost string says where; nested ones add nothing
                raise
            raise LexError(f"{err.message} (in the string starting at line {line})",
                            line, err.code) from None
        finally:
            self.out = saved_out
            self.depth -= 1
        return Interp(tokens, self.text[pos:self.pos - 1].strip()), self.pos

    def _escape(self, pos: int, line: int) -> tuple[str | BadPart, int]:
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
                    raise LexError("invalid hex escape `\\x` in a string", self.line)
                code = int(match.group(), 16)
            else:
                match = _OCTAL_ESCAPE.match(text, pos)
                assert match is not None  # `c` is an octal digit
                code = int(match.group(), 8) & 0xFF
            if code >= 0x80:  # Ruby makes a raw byte of it, not the character of that code
                return BadPart(f"the byte escape `\\{text[pos:match.end()]}`"), match.end()
            return chr(code), match.end()
        if c == "u":
            return self._unicode_escape(pos + 1)
        if c in "cCM":
            return BadPart(f"the control/meta escape `\\{c}`"), pos + 1
        return c, pos + 1

    def _unicode_escape(self, pos: int) -> tuple[str, int]:
        text = self.text
        match = _UNICODE_ESCAPE.match(text, pos)
        if match is not None:
            codes, end = [match.group()], match.end()
        else:
            match = _UNICODE_BRACED_ESCAPE.match(text, pos)
            if match is None:
                raise LexError("invalid Unicode escape `\\u` in a string", self.line)
            codes, end = match.group(1).split(), match.end()
        chars = []
        for code in codes:
            value = int(code, 16)
            if value > 0x10FFFF or 0xD800 <= value <= 0xDFFF:
                raise LexError(f"invalid Unicode codepoint `\\u{code}` in a string", self.line)
            chars.append(chr(value))
        return "".join(chars), end

    def _skip_heredoc_bodies(self) -> None:
        """Heredoc bodies start on the line after their `<<ID`; skip them whole."""
        text, n = self.text, self.n
        for terminator, indented, line in self.heredocs:
            while True:
                if self.pos >= n:
                    raise LexError(f"the heredoc `<<{terminator}` at line {line} has no "
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
def _plain_run(opener: str, closer: str) -> re.Pattern[str]:
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

