"""The harness as a pytest plugin: fixtures, markers and the acceptance report.

Loaded by ``scenarios/conftest.py`` (``pytest_plugins = ["harness.plugin"]``), so it acts only
when scenarios run. What it gives:

- markers: ``@pytest.mark.scenario("S04")`` (the SCENARIOS.md id; an unknown id stops the run at
  collection) and ``@pytest.mark.cluster(servers=2, heartbeat_expiry=3, ...)`` (the number of
  servers and settings of the test's cluster; settings are the keys of `tengine.toml`);
- fixtures: ``cluster`` (a whole cluster for the test, torn down even when it fails, its end
  state gathered first), ``history`` (the test's history, harness.history), ``harness_broker``
  (one RabbitMQ node for the session, shared by the clusters: the slowest part to start);
- the report: per test its history (operations, faults, failpoints, phase changes, events,
  watcher log lines) as a timeline, the scenario
  with its expected outcome, the job states, the event rows, the watcher log lines and a
  screenshot of the jobnet monitor, inside pytest-html's ``reports/acceptance.html``
  (self-contained; ``--html`` to put it elsewhere) and the JSON twin ``reports/acceptance.json``
  with per-scenario pass/fail (a skipped scenario is not passed);
- a session-end check that the clusters left nothing behind: no ``tgh-`` network namespace or
  link, no process they started, no proxy server; a leftover fails the run.
"""

from __future__ import annotations

import base64
import os
import shutil
import tempfile
from collections.abc import Generator, Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest
from pluggy import Result

from harness.hosts.base import HostError
from harness.hosts.lock import HostsLock
from harness.hosts.network import leftover_links, leftover_netns
from tengine_min.broker import Broker, BrokerError

from .cluster import Cluster, ClusterError
from .history import History
from .report import ScenarioRecord, scenario_html, write_json
from .scenarios import CATALOGUE, USE_CASE_JA, UnknownScenario, scenario
from .screenshots import Screenshotter

SKIP_VARIABLE = "TENGINE_SKIP_INTEGRATION"
DEFAULT_HTML = Path("reports") / "acceptance.html"
RECORD = pytest.StashKey[ScenarioRecord]()


class HarnessSession:
    """What the plugin keeps across the session: the records and everything clusters started."""

    def __init__(self) -> None:
        self.records: list[ScenarioRecord] = []
        self.clusters: list[Cluster] = []
        self.brokers: list[Broker] = []
        self.json_path: Path | None = None
        self.leftovers: list[str] = []


SESSION = pytest.StashKey[HarnessSession]()


# --- configuration ------------------------------------------------------------------------------


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("tengine-harness")
    group.addoption("--harness-json", default=None, metavar="PATH",
                    help="the JSON twin of the acceptance report (default: beside the HTML "
                         "report, reports/acceptance.json)")
    group.addoption("--scenario", action="append", default=[], metavar="ID",
                    help="run only the tests marked with this SCENARIOS.md id (repeatable, "
                         "e.g. --scenario S04 --scenario D1)")


@pytest.hookimpl(tryfirst=True)  # before pytest-html reads its options
def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "scenario(id): the SCENARIOS.md id this test proves")
    config.addinivalue_line("markers", "cluster(servers=1, **settings): the test's cluster: "
                                       "number of servers and tengine.toml settings")
    if getattr(config.option, "htmlpath", "missing") is None:
        config.option.htmlpath = str(config.rootpath / DEFAULT_HTML)
    if hasattr(config.option, "self_contained_html"):
        config.option.self_contained_html = True  # one file: screenshots inside
    state = HarnessSession()
    html = getattr(config.option, "htmlpath", None)
    json_option = config.getoption("--harness-json")
    state.json_path = (Path(json_option) if json_option else
                       Path(html).with_suffix(".json") if html else
                       config.rootpath / DEFAULT_HTML.with_suffix(".json"))
    config.stash[SESSION] = state
    if config.pluginmanager.hasplugin("html"):
        config.pluginmanager.register(HtmlColumns(), "tengine-harness-html")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        marker = item.get_closest_marker("scenario")
        if marker is None:
            continue
        if len(marker.args) != 1:
            raise pytest.UsageError(f"{item.nodeid}: @pytest.mark.scenario takes one id, "
                                    f"e.g. scenario(\"S04\")")
        try:
            scenario(marker.args[0])
        except UnknownScenario as exc:
            raise pytest.UsageError(f"{item.nodeid}: {exc}") from None
    wanted = {i.upper() for i in config.getoption("--scenario")}
    if wanted:
        for wanted_id in wanted:
            try:
                scenario(wanted_id)
            except UnknownScenario as exc:
                raise pytest.UsageError(f"--scenario {wanted_id}: {exc}") from None
        keep = [item for item in items if scenario_id_of(item) in wanted]
        config.hook.pytest_deselected(items=[i for i in items if i not in keep])
        items[:] = keep


def scenario_id_of(item: pytest.Item) -> str | None:
    marker = item.get_closest_marker("scenario")
    return marker.args[0] if marker is not None else None


# --- fixtures ------------------------------------------------------------------------------------


def _require_environment() -> None:
    missing = []
    if os.geteuid() != 0:
        missing.append("root (virtual servers are network namespaces; the broker runs as the "
                       "rabbitmq user)")
    if os.environ.get(SKIP_VARIABLE) == "1":
        pytest.skip(f"{SKIP_VARIABLE}=1" + (f"; missing: {', '.join(missing)}" if missing
                                             else ""))
    if missing:
        pytest.fail(f"the scenarios need {' and '.join(missing)}; set {SKIP_VARIABLE}=1 to "
                    f"skip them", pytrace=False)


@pytest.fixture(scope="session")
def harness_broker(request: pytest.FixtureRequest) -> Iterator[Broker]:
    """One RabbitMQ node for the session (under /tmp, where the rabbitmq user can enter)."""
    _require_environment()
    folder = Path(tempfile.mkdtemp(prefix="tengine-harness-broker-", dir="/tmp"))
    folder.chmod(0o755)
    broker = Broker(folder / "node")
    request.config.stash[SESSION].brokers.append(broker)
    try:
        try:
            broker.start()
        except BrokerError as exc:
            pytest.fail(f"the harness broker did not start: {exc}", pytrace=False)
        yield broker
    finally:
        try:
            broker.stop()
        finally:
            shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="session")
def harness_screenshotter() -> Iterator[Screenshotter]:
    shooter = Screenshotter()
    yield shooter
    shooter.close()


@pytest.fixture
def history(request: pytest.FixtureRequest) -> History:
    record = request.node.stash.get(RECORD, None)
    if record is None or record.history is None:  # not run through the plugin's hooks
        return History()
    return record.history


@pytest.fixture
def cluster(request: pytest.FixtureRequest, harness_broker: Broker, history: History,
            harness_screenshotter: Screenshotter) -> Iterator[Cluster]:
    """A whole cluster for this test (``@pytest.mark.cluster(servers=..., **settings)``)."""
    marker = request.node.get_closest_marker("cluster")
    options: dict[str, Any] = dict(marker.kwargs) if marker else {}
    servers = options.pop("servers", 1)
    the_cluster = Cluster(servers, settings=options, broker=harness_broker, history=history)
    request.config.stash[SESSION].clusters.append(the_cluster)
    try:
        the_cluster.up()
    except (ClusterError, HostError, BrokerError) as exc:
        pytest.fail(f"the cluster did not come up: {exc}", pytrace=False)
    try:
        yield the_cluster
    finally:
        record = request.node.stash.get(RECORD, None)
        try:
            evidence = the_cluster.gather_evidence(harness_screenshotter)
            if record is not None:
                record.evidence = evidence
        finally:
            the_cluster.down()


# --- per test records and the report ------------------------------------------------------------


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    record = ScenarioRecord(item.nodeid, scenario_id_of(item), history=History())
    item.stash[RECORD] = record
    item.config.stash[SESSION].records.append(record)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None],
                               ) -> Generator[None, Result[pytest.TestReport], None]:
    outcome = yield
    report = outcome.get_result()
    record = item.stash.get(RECORD, None)
    if record is None:
        return
    # Attributes of our own on the report, the way pytest-html expects them (`extras` too).
    report.scenario_id = record.scenario_id  # type: ignore[attr-defined]
    record.duration += report.duration
    reason = _reason(report, call)
    if report.skipped:
        if record.outcome in ("not run", "passed"):
            record.outcome, record.reason = "skipped", reason
    elif report.failed:
        if report.when == "call":
            record.outcome, record.reason = "failed", reason
        elif record.outcome not in ("failed", "error"):
            record.outcome, record.reason = "error", f"{report.when}: {reason}"
    elif report.when == "call" and record.outcome == "not run":
        record.outcome = "passed"
    if report.when == "teardown":
        report.extras = [*getattr(report, "extras", []), *_extras(record)]  # type: ignore[attr-defined]


def _reason(report: pytest.TestReport, call: pytest.CallInfo[None]) -> str:
    if report.skipped and isinstance(report.longrepr, tuple):
        return str(report.longrepr[2]).removeprefix("Skipped: ")
    if call.excinfo is not None and not report.passed:
        return call.excinfo.exconly()[:4000]
    return ""


def _extras(record: ScenarioRecord) -> list[dict[str, Any]]:
    try:
        from pytest_html import extras
    except ImportError:
        return []
    known = CATALOGUE.get(record.scenario_id or "")
    out = [extras.html(scenario_html(known, record.history, record.evidence))]
    if record.outcome == "skipped":
        out.insert(0, extras.html(f"<div><b>skipped:</b> {record.reason}</div>"))
    if record.evidence is not None and record.evidence.screenshot_png:
        out.append(extras.png(base64.b64encode(record.evidence.screenshot_png).decode(),
                              "jobnet monitor"))
    return out


class HtmlColumns:
    """pytest-html hooks (registered only when pytest-html is there): a Scenario column, the
    report's title, and the per-scenario summary above the table."""

    def pytest_html_report_title(self, report: Any) -> None:
        report.title = f"Tengine acceptance: {USE_CASE_JA}"

    def pytest_html_results_table_header(self, cells: list[str]) -> None:
        cells.insert(1, '<th class="sortable" data-column-type="scenario">Scenario</th>')

    def pytest_html_results_table_row(self, report: Any, cells: list[str]) -> None:
        cells.insert(1, f'<td class="col-scenario">{getattr(report, "scenario_id", "") or ""}'
                        f'</td>')

    def pytest_html_results_summary(self, prefix: list[str], summary: list[str],
                                    postfix: list[str], session: pytest.Session) -> None:
        from .report import coverage_hits, coverage_html, scenario_statuses, summary_html

        records = session.config.stash[SESSION].records
        prefix.append(summary_html(scenario_statuses(records)))
        prefix.append(coverage_html(coverage_hits(records)))


# --- the end of the session ----------------------------------------------------------------------


def leftovers_of(state: HarnessSession) -> list[str]:
    """What the session's clusters left: tgh- netns and links (checked under the hosts lock, so
    another run's live hosts are not mistaken for ours), processes they started, proxies."""
    found: list[str] = []
    for the_cluster in state.clusters:
        for proc in the_cluster.leftover_processes():
            found.append(f"process {proc.pid} ({' '.join(_cmdline(proc))[:120]})")
    for broker in state.brokers:
        if broker.status()["running"]:
            found.append(f"broker node {broker.node_name} still running")
    if os.geteuid() == 0 and state.clusters:
        lock = HostsLock()
        try:
            lock.acquire(60)
        except HostError as exc:
            return [*found, f"could not check the namespaces: {exc}"]
        try:
            found += [f"network namespace {name}" for name in leftover_netns()]
            found += [f"network link {name}" for name in leftover_links()]
        finally:
            lock.release()
    return found


def _cmdline(proc: psutil.Process) -> list[str]:
    try:
        return proc.cmdline()
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return ["?"]


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    state = session.config.stash.get(SESSION, None)
    if state is None:
        return
    if state.json_path is not None and state.records:
        write_json(state.json_path, state.records)
    state.leftovers = leftovers_of(state)
    if state.leftovers and session.exitstatus == 0:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    state = config.stash.get(SESSION, None)
    if state is None or not state.records:
        return
    from .report import scenario_statuses

    terminalreporter.section("tengine scenarios")
    for s in scenario_statuses(state.records).values():
        if s["status"] != "no test":
            terminalreporter.write_line(f"{s['id']:<4} {s['status']:<8} {s['title']}")
    if state.json_path is not None:
        terminalreporter.write_line(f"JSON report: {state.json_path}")
    if state.leftovers:
        terminalreporter.write_line("LEFT BEHIND by the clusters (run `python -m harness.hosts "
                                    "cleanup`): " + "; ".join(state.leftovers), red=True)
    elif state.clusters:
        terminalreporter.write_line("teardown check: nothing left behind (no tgh- namespace or "
                                    "link, no process, no proxy)")
