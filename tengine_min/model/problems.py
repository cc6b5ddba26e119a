"""Problems found in definitions: one stable code each, a severity, and where."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from .nodes import Where

ERROR = "error"
WARNING = "warning"

# code -> (severity, what it means). The codes are a stable interface: tools and tests match on
# them, so a code is never renamed; a new rule gets a new code.
CODES: dict[str, tuple[str, str]] = {
    "syntax": (ERROR, "the file cannot be read as its format"),
    "unsupported": (ERROR, "a construct the static reader does not evaluate"),
    "cycle": (ERROR, "a loop of `to` edges inside a jobnet"),
    "expansion_missing": (ERROR, "an expansion names a root jobnet that does not exist"),
    "expansion_cycle": (ERROR, "root jobnets expand each other"),
    "expansion_self": (ERROR, "a root jobnet expands itself"),
    "duplicate_root": (ERROR, "two root jobnets with the same name"),
    "duplicate_name": (ERROR, "two children with the same name in one jobnet"),
    "unknown_target": (ERROR, "`to` or boot_jobs names no sibling"),
    "unreachable": (WARNING, "a child that is neither booted nor targeted never runs"),
    "to_ignored": (WARNING, "`to` given in a jobnet that runs in auto_sequence"),
    "duplicate_finally": (ERROR, "more than one finally in a jobnet"),
    "duplicate_auto_sequence": (ERROR, "auto_sequence declared more than once"),
    "boot_jobs_with_auto_sequence": (ERROR, "boot_jobs and auto_sequence in one jobnet"),
    "duplicate_boot_jobs": (ERROR, "boot_jobs declared more than once"),
    "misplaced": (ERROR, "a construct where it is not allowed"),
    "unknown_option": (ERROR, "an option the construct does not take"),
    "empty_script": (ERROR, "a job with no script"),
    "bad_value": (ERROR, "an option with a value of the wrong type"),
    "unknown_server": (ERROR, "a server name the resources do not define (Tengine's W1)"),
    "unknown_credential": (ERROR, "a credential name the resources do not define (Tengine's W2)"),
}


@dataclass(frozen=True)
class Problem:
    code: str
    severity: str
    file: str | None
    line: int | None
    jobnet: str | None  # name path of the jobnet it is in, e.g. /root/child
    message: str

    def as_dict(self) -> dict:
        return asdict(self)

    def __str__(self) -> str:
        where = self.file or "-"
        if self.line:
            where = f"{where}:{self.line}"
        return f"{where}: {self.severity} {self.code}: {self.message}"


def problem(code: str, message: str, where: Where | None = None,
            jobnet: str | None = None) -> Problem:
    """Make a Problem with the code's severity; `where` is a nodes.Where (or None)."""
    severity = CODES[code][0]
    return Problem(code, severity, getattr(where, "file", None),
                   getattr(where, "line", None) or None, jobnet, message)


class UnreadableInput(Exception):
    """A path that does not exist or cannot be read: bad usage rather than a bad definition."""
