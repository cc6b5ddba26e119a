"""What `tengine run` and the console's 実行 both do: make a new execution of a stored root
jobnet and the `start.execution.job.tengine` event that starts it (Tengine's console did this in
the web request). The caller stores both in one transaction and publishes the event."""

from __future__ import annotations

from sqlalchemy import Engine

from .config import Settings
from .events import names as ev
from .events.envelope import Event
from .model.execution import Execution
from .model.instantiate import InstantiationError, instantiate
from .model.nodes import DEFAULT_KILLING_SIGNAL_INTERVAL, DEFAULT_KILLING_SIGNALS, Definitions
from .store import repo


class UnknownJobnet(LookupError):
    def __str__(self) -> str:  # LookupError would quote the message
        return self.args[0]


class CannotRun(ValueError):
    pass


def new_execution(engine: Engine, settings: Settings, jobnet: str, *, source: str,
                  sender: str) -> tuple[Execution, Event]:
    """The execution of stored root jobnet `jobnet` (kill defaults applied) and its start event.
    `source` is `<host>/<pid>` of the caller, for Tengine's source name."""
    with engine.connect() as conn:
        stored = repo.load_definitions(conn)
    if stored.root(jobnet) is None:
        known = ", ".join(sorted(r.name for r in stored.roots)) or "none"
        raise UnknownJobnet(f"no stored root jobnet named {jobnet!r} (stored: {known}); "
                            f"store it first with `tengine load PATH`")
    try:
        execution = instantiate(stored, jobnet)
    except InstantiationError as exc:
        raise CannotRun(f"{jobnet} cannot run: {exc}") from None
    apply_kill_defaults(execution, stored, settings)
    root = execution.root
    event = Event(event_type_name=ev.START_EXECUTION,
                  source_name=f"execution:{source}/{root.id}/{execution.id}",
                  sender_name=sender,
                  properties={"execution_id": execution.id, "root_jobnet_id": root.id,
                              "root_jobnet_name_path": root.name_path,
                              "target_jobnet_id": root.id,
                              "target_jobnet_name_path": root.name_path})
    return execution, event


def apply_kill_defaults(execution: Execution, defs: Definitions, settings: Settings) -> None:
    """Jobs whose definition (and ancestors) set no killing_signals get the configured kill
    defaults instead of Tengine's built-in ones (KILL, 5 s)."""
    if (settings.kill_signals == tuple(DEFAULT_KILLING_SIGNALS)
            and settings.kill_interval == DEFAULT_KILLING_SIGNAL_INTERVAL):
        return
    options_by_template: dict[str, dict] = {}
    for root in defs.roots:
        stack = [root]
        while stack:
            node = stack.pop()
            options_by_template[node.id] = node.options
            stack.extend(node.children)
    for vertex, _depth in execution.walk():
        options = options_by_template.get(vertex.template_id or "", {})
        if "killing_signals" in options:
            continue
        parent = execution.parent(vertex)
        if parent is None:
            vertex.killing_signals = list(settings.kill_signals)
            vertex.killing_signal_interval = settings.kill_interval
        else:
            vertex.killing_signals = list(parent.killing_signals)
            vertex.killing_signal_interval = parent.killing_signal_interval
