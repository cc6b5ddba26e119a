"""Read Tengine's own Ruby jobnet DSL files statically, without Ruby.

Tengine users write jobnets in Ruby (`jobnet("jn") do job("j1", "x.sh") end`). This package reads
those files unchanged into the shared template model (nodes.py), with a tokenizer (lexer.py) and
a recursive-descent parser for the part of Ruby the DSL uses: literals, local variables holding
literals, a few `File` path functions (expressions.py, on the values of values.py), and the DSL
calls (parser.py). Nothing is guessed: anything outside that subset becomes a Problem, `syntax`
(Ruby we cannot parse) or `unsupported` (Ruby we do not evaluate, named in the message), and the
rest of the top-level statement it is in is skipped, so one file can report several problems and
no half-read jobnet reaches the model.

How arguments are read follows Tengine's loader (tengine_job/lib/tengine/job/dsl/loader.rb); the
comments in parser.py and expressions.py say where.
"""

from .parser import read_ruby

__all__ = ["read_ruby"]
