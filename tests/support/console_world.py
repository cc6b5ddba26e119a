"""A console on a real store driven by the real kernel, for the console's tests.

The store is SQLite in a tmp dir; events published by the console go to an in-process bus that
hands them to the real Kernel at once and lets everything they cause run to rest, with
core_sim.py's fake driver and watcher at the boundary (they answer start/kill commands with
the events a real driver and watchdog send). Failed jobs report a stderr excerpt and the
watchdog's failure message, as the real watcher does.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from fastapi.testclient import TestClient

from tengine_min.bus.publisher import PublishFailed
from tengine_min.config import Settings
from tengine_min.console.app import create_app
from tengine_min.console.settings import ConsoleSettings
from tengine_min.core.handlers.commands import StartJob
from tengine_min.events.envelope import Event
from tengine_min.watcher.events import failure_message

from .core_sim import HOLD, Sim
from .templates import definitions, expansion, finally_, hadoop_job, hadoop_job_run, job, jobnet

OUTCOMES: dict[str, int | str] = {
    "/failing/j2": 3,
    "/holding/long": HOLD,
    "/holding/inner/held": HOLD,
}


def templates():
    return definitions(
        # tengine-facts section 9's standard jobnet: j1 -> (j2 || j3) -> j4, finally.
        jobnet("jn0004", job("j1", "j.sh 1", to=["j2", "j3"]), job("j2", "j.sh 2", to="j4"),
               job("j3", "j.sh 3", to="j4"), job("j4", "j.sh 4"),
               finally_(job("jn0004_f", "j.sh f")), boot=["j1"], server_name="local",
               credential_name="local"),
        jobnet("failing", job("j1", "ok.sh"), job("j2", "fail.sh 3"), job("j3", "ok.sh"),
               finally_(job("f", "ok.sh")), server_name="local"),
        jobnet("holding", job("long", "sleep.sh 600"),
               jobnet("inner", job("held", "sleep.sh 600")),
               boot=["long", "inner"], server_name="local"),
        jobnet("serial", job("a", "a.sh"), job("b", "b.sh"), server_name="local"),
        jobnet("hadoop", hadoop_job_run("hjr", "hjr.sh", hadoop_job("hj")), server_name="local"),
        jobnet("broken", expansion("no_such_root"), server_name="local"),
    )


class ConsoleSim(Sim):
    def finished_event(self, command: StartJob, pid: int, *, exit_status: int | None,
                       signal: str | None = None, killed: bool = False) -> Event:
        event = super().finished_event(command, pid, exit_status=exit_status, signal=signal,
                                       killed=killed)
        if exit_status not in (0, None):
            props = event.properties
            props["stderr_head"] = props["stderr_tail"] = f"{command.name_path}: disk full\n"
            props["stderr_bytes"] = len(props["stderr_tail"])
            props["stdout_bytes"] = len(props["stdout_tail"])
            props["stderr_spool_error"] = "[Errno 28] No space left on device"  # as a watchdog
            props["stderr_spool_dropped_bytes"] = props["stderr_bytes"]  # on a full disk says
            props["message"] = failure_message(props["stdout_log"], props["stderr_log"],
                                               command.server_name or "")
        return event


class InProcessBus:
    """The broker and the core in one: `publish` hands the event to the real kernel and runs
    what follows to rest. `down` makes it fail as an unreachable broker; `drive` False leaves
    the driver's commands undone (a core that dies with a start in flight); `busy` True keeps
    the published events from the core until `catch_up()` (a core busy with other events)."""

    def __init__(self, sim: Sim) -> None:
        self.sim = sim
        self.published: list[Event] = []
        self.down = False
        self.drive = True
        self.busy = False
        self.waiting: list[Event] = []

    def publish(self, event: Event) -> None:
        if self.down:
            raise PublishFailed(f"gave up publishing {event.event_type_name}: broker down")
        self.published.append(event)
        if self.busy:
            self.waiting.append(event)
        else:
            self._handle(event)

    def catch_up(self) -> None:
        """The core gets to the events it was sent while busy."""
        self.busy = False
        waiting, self.waiting = self.waiting, []
        for event in waiting:
            self._handle(event)

    def _handle(self, event: Event) -> None:
        self.sim.send(event)
        if self.drive:
            self.sim.settle()
        else:
            self.sim.pump()

    def close(self) -> None:
        pass


@dataclass
class World:
    sim: ConsoleSim
    bus: InProcessBus
    client: TestClient
    state_dir: Path

    def run(self, jobnet_name: str, **body) -> str:
        """Run a jobnet through the API; returns the execution id."""
        response = self.client.post(f"/api/jobnets/{jobnet_name}/run", json=body)
        assert response.status_code == 201, response.text
        return response.json()["execution_id"]

    def execution(self, execution_id: str) -> dict:
        response = self.client.get(f"/api/executions/{execution_id}")
        assert response.status_code == 200, response.text
        return response.json()

    def vertex(self, execution_id: str, name_path: str) -> dict:
        for vertex in self.execution(execution_id)["vertices"]:
            if vertex["name_path"] == name_path:
                return vertex
        raise AssertionError(f"no {name_path} in execution {execution_id}")


def make_world(tmp_path: Path, **console_options) -> World:
    sim = ConsoleSim(tmp_path, templates(), "jn0004", outcomes=dict(OUTCOMES))
    bus = InProcessBus(sim)
    state_dir = tmp_path / "state"
    settings = ConsoleSettings(runtime=Settings(state_dir=state_dir), timezone="UTC",
                               **console_options)
    client = TestClient(create_app(settings, bus=bus, engine=sim.engine))
    return World(sim, bus, client, state_dir)


def make_stuck(world: World) -> str:
    """A core that dies while starting /serial/a, restarted: the job is stuck (kernel.recover)."""
    world.bus.drive = False
    execution_id = world.run("serial")
    world.sim.commands.clear()  # the start never happened: the core died first
    world.sim.kernel.recover()
    world.sim.pump()
    world.bus.drive = True
    return execution_id


def write_watcher_log(world: World, lines: list[str]) -> None:
    """The watcher log of the world's state dir, holding `lines`."""
    log = world.state_dir / "watcher" / "log" / "watcher.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    log.write_text("".join(line + "\n" for line in lines))
