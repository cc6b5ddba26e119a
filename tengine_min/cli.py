"""`tengine ...`: the command line of the job system.

Exit codes follow one rule everywhere: 0 all good, 1 the input was read and found wrong (a
definition with errors, a job that failed), 2 bad usage or input that cannot be read.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # imported where used, so that `tengine --help` starts fast
    from .model.nodes import Definitions
    from .model.problems import Problem


def _load_and_validate(paths: list[str]) -> tuple[Definitions, list[Problem]]:
    """(definitions, problems); raises UnreadableInput for a path that cannot be read."""
    from .model.loader import load
    from .model.validator import validate

    defs = load(paths)
    return defs, validate(defs)


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'s' * (n != 1)}"


def _counts(defs: Definitions) -> str:
    return f"{_plural(len(defs.roots), 'root jobnet')} in {_plural(len(defs.files), 'file')}"


def _summary(problems: list[Problem]) -> str:
    errors = sum(1 for p in problems if p.severity == "error")
    return f"{_plural(errors, 'error')}, {_plural(len(problems) - errors, 'warning')}"


def cmd_validate(args: argparse.Namespace) -> int:
    defs, problems = _load_and_validate(args.paths)
    ok = not any(p.severity == "error" for p in problems)
    if args.format == "json":
        print(json.dumps({"ok": ok, "jobnets": [root.name for root in defs.roots],
                          "problems": [p.as_dict() for p in problems]},
                         ensure_ascii=False, indent=2))
    else:
        for p in problems:
            print(p)
        print(f"{_counts(defs)}: {_summary(problems)}")
    return 0 if ok else 1


def cmd_show(args: argparse.Namespace) -> int:
    from .model.instantiate import InstantiationError
    from .model.render import render_template

    defs, problems = _load_and_validate(args.paths)
    if defs.root(args.jobnet) is None:
        names = ", ".join(sorted({r.name for r in defs.roots})) or "none"
        print(f"tengine show: no root jobnet named {args.jobnet!r} (found: {names})",
              file=sys.stderr)
        return 2
    from .model.validator import runnable_roots

    if args.jobnet not in runnable_roots(defs, problems):
        for p in problems:
            if p.severity == "error":
                print(p, file=sys.stderr)
        print(f"tengine show: {args.jobnet!r} cannot be expanded: {_summary(problems)}",
              file=sys.stderr)
        return 1
    try:
        print(render_template(defs, args.jobnet, show_ids=args.ids), end="")
    except InstantiationError as exc:
        print(f"tengine show: {exc}", file=sys.stderr)
        return 1
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tengine", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("validate", help="check jobnet definitions (Ruby DSL, Python DSL, YAML)")
    p.add_argument("paths", nargs="+", metavar="PATH", help="definition files or directories")
    p.add_argument("--format", choices=("text", "json"), default="text")
    p.set_defaults(func=cmd_validate)

    p = sub.add_parser("show", help="print the expanded tree of a root jobnet")
    p.add_argument("paths", nargs="+", metavar="PATH")
    p.add_argument("jobnet", metavar="JOBNET", help="root jobnet name")
    p.add_argument("--ids", action="store_true", help="show template ids")
    p.set_defaults(func=cmd_show)

    from .cli_runtime import add_runtime_commands
    from .console.server import add_console_command
    from .demo import add_demo_command

    add_runtime_commands(sub)
    add_console_command(sub)
    add_demo_command(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    from .model.problems import UnreadableInput

    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except UnreadableInput as exc:
        print(f"tengine {args.command}: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
