"""The console's JSON API on a real store driven by the real kernel (support/console_world.py):
every endpoint, its answers, and for each kind of bad input the 4xx, its detail, and that the
store did not change."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from support.console_world import World, make_stuck, make_world, write_watcher_log
from tengine_min.core.handlers import registry
from tengine_min.events import names as ev
from tengine_min.model.phases import ERROR, STUCK, SUCCESS, USER_STOP, human_label
from tengine_min.store import schema


@pytest.fixture
def world(tmp_path) -> World:
    return make_world(tmp_path)


def assert_refused(world: World, method: str, url: str, status: int, *words: str,
                   **kwargs) -> dict:
    """The request gets `status`, a detail naming `words`, and changes nothing in the store."""
    before = world.sim.dump()
    response = world.client.request(method, url, **kwargs)
    assert response.status_code == status, response.text
    body = response.json()
    assert isinstance(body["detail"], str) and body["detail"]
    for word in words:
        assert word in body["detail"], (word, body["detail"])
    assert world.sim.dump() == before
    return body


def outbox_rows(world: World) -> list:
    with world.sim.engine.connect() as conn:
        return list(conn.execute(select(schema.outbox).order_by(schema.outbox.c.id)))


# --- jobnets and run --------------------------------------------------------------------------


def test_jobnets_lists_the_stored_templates(world):
    response = world.client.get("/api/jobnets")
    assert response.status_code == 200
    by_name = {j["name"]: j for j in response.json()}
    assert {"jn0004", "failing", "holding", "serial"} <= set(by_name)
    assert by_name["jn0004"]["jobs"] == 5
    assert by_name["jn0004"]["server"] == "local"
    names = [j["name"] for j in world.client.get("/api/jobnets", params={"name": "/^ser/"}).json()]
    assert names == ["serial"]
    assert_refused(world, "GET", "/api/jobnets", 422, "name", "regular expression",
                   params={"name": "/(/"})


def test_run_creates_an_execution_that_runs_to_success(world):
    response = world.client.post("/api/jobnets/jn0004/run", json={})
    assert response.status_code == 201
    body = response.json()
    execution_id = body["execution_id"]
    assert response.headers["location"] == f"/api/executions/{execution_id}"
    assert body["published"] is True and body["event_type_name"] == ev.START_EXECUTION
    start = [e for e in world.bus.published if e.event_type_name == ev.START_EXECUTION]
    assert start[-1].properties["execution_id"] == execution_id
    assert all(row.published_at is not None for row in outbox_rows(world)
               if row.event["key"] == body["event_key"])
    detail = world.execution(execution_id)
    assert detail["phase"] == "success"
    assert detail["phase_label"] == {"ja": human_label(SUCCESS),
                                     "en": human_label(SUCCESS, lang="en")}
    assert [v["name_path"] for v in detail["vertices"]] == [
        "/jn0004", "/jn0004/j1", "/jn0004/j2", "/jn0004/j3", "/jn0004/j4",
        "/jn0004/finally", "/jn0004/finally/jn0004_f"]
    assert {v["phase"] for v in detail["vertices"]} == {"success"}
    j1 = detail["vertices"][1]
    assert [n["name"] for n in j1["next"]] == ["j2", "j3"]
    assert j1["depth"] == 1 and j1["parent_id"] == detail["root_jobnet_id"]
    assert j1["pid"] is not None and j1["exit_status"] == 0
    assert j1["result"]["stdout_tail"] == "out"


def test_run_with_timeout_and_alert_schedules_both(world):
    world.bus.drive = False  # keep it running: the schedules stay pending
    execution_id = world.run("holding", timeout_min=30, alert_min=10)
    detail = world.execution(execution_id)
    assert (detail["timeout_min"], detail["alert_min"]) == (30, 10)
    with world.sim.engine.connect() as conn:
        kinds = sorted(r.event_type_name for r in conn.execute(
            select(schema.schedules).where(schema.schedules.c.execution_id == execution_id)))
    assert kinds == [ev.ALERT_EXECUTION, ev.STOP_EXECUTION]


def test_run_while_the_broker_is_down_leaves_the_start_for_the_relay(world):
    world.bus.down = True
    response = world.client.post("/api/jobnets/serial/run")
    assert response.status_code == 201
    body = response.json()
    assert body["published"] is False
    execution_id = body["execution_id"]
    assert world.execution(execution_id)["phase"] == "initialized"
    pending = [r for r in outbox_rows(world) if r.published_at is None]
    assert [r.event["event_type_name"] for r in pending] == [ev.START_EXECUTION]
    # The core's relay publishes it once the broker is back: the run goes on.
    world.bus.down = False
    world.sim.settle()
    assert world.execution(execution_id)["phase"] == "success"


def test_run_refuses_bad_input_and_changes_nothing(world):
    assert_refused(world, "POST", "/api/jobnets/no_such/run", 404, "no_such", "stored")
    assert_refused(world, "POST", "/api/jobnets/jn0004/run", 422, "timeout_min",
                   json={"timeout_min": -1})
    assert_refused(world, "POST", "/api/jobnets/jn0004/run", 422, "alert_min",
                   json={"alert_min": "soon"})
    assert_refused(world, "POST", "/api/jobnets/jn0004/run", 422, "timeout",
                   json={"timeout": 5})
    assert_refused(world, "POST", "/api/jobnets/broken/run", 422, "no_such_root",
                   "cannot run")


# --- executions -------------------------------------------------------------------------------


def test_executions_list_filters_and_pages(world):
    ok = world.run("jn0004")
    failed = world.run("failing")
    serial = world.run("serial")
    listed = world.client.get("/api/executions").json()
    assert [x["id"] for x in listed["items"]][:3] == [serial, failed, ok]  # newest first
    assert listed["total"] == 4  # and the one core_sim made, never started

    def ids(**params) -> list[str]:
        response = world.client.get("/api/executions", params=params)
        assert response.status_code == 200, response.text
        return [x["id"] for x in response.json()["items"]]

    assert ids(name="fail") == [failed]
    assert set(ids(name="/^(jn|ser)/")) == {ok, serial, world.sim.execution.id}
    assert ids(status="error") == [failed]
    assert set(ids(status=["error", "success"])) == {ok, failed, serial}
    assert ids(id=failed) == [failed]
    # Ran during the period: nothing ran before 2024-04-30; since a far future day only what
    # has not finished is still "running in" it.
    assert ids(until="2024-04-30") == []
    assert ids(since="2999-01-01T00:00:00+00:00") == [world.sim.execution.id]
    page2 = world.client.get("/api/executions", params={"per_page": 3, "page": 2}).json()
    assert (page2["total"], page2["pages"], len(page2["items"])) == (4, 2, 1)
    item = listed["items"][1]
    assert item["phase_label"] == {"ja": human_label(ERROR), "en": human_label(ERROR, lang="en")}
    assert item["actions"] == {"stop": False, "status": False, "rerun": True}


@pytest.mark.parametrize("params, words", [
    ({"name": "/(unclosed/"}, ["name", "regular expression"]),
    ({"since": "yesterday"}, ["since", "yesterday"]),
    ({"since": "2024-05-02", "until": "2024-05-01"}, ["until", "before"]),
    ({"status": "finished"}, ["status", "finished"]),
    ({"per_page": 0}, ["per_page"]),
    ({"page": "two"}, ["page"]),
])
def test_executions_list_refuses_malformed_filters(world, params, words):
    assert_refused(world, "GET", "/api/executions", 422, *words, params=params)


def test_unknown_execution_is_404(world):
    assert_refused(world, "GET", "/api/executions/ffffffffffffffffffffffff", 404,
                   "ffffffffffffffffffffffff")


# --- force stop -------------------------------------------------------------------------------


def test_stop_a_running_job_ends_it_force_stopped(world):
    execution_id = world.run("holding")
    long = world.vertex(execution_id, "/holding/long")
    assert long["phase"] == "running" and long["actions"]["stop"] is True
    response = world.client.post(f"/api/jobs/{long['id']}/stop")
    assert response.status_code == 202, response.text
    assert response.json()["event_type_name"] == ev.STOP_JOB
    long = world.vertex(execution_id, "/holding/long")
    assert long["phase"] == "error" and long["stop_reason"] == "user_stop"
    assert long["phase_label"]["ja"] == human_label(ERROR, USER_STOP)
    assert world.vertex(execution_id, "/holding/inner/held")["phase"] == "running"
    assert world.execution(execution_id)["phase"] == "running"
    # A second stop of the finished job is refused, and changes nothing.
    assert_refused(world, "POST", f"/api/jobs/{long['id']}/stop", 409, "/holding/long",
                   "already ended")


def test_stop_a_jobnet_then_the_root_ends_error(world):
    execution_id = world.run("holding")
    inner = world.vertex(execution_id, "/holding/inner")
    long = world.vertex(execution_id, "/holding/long")
    assert_refused(world, "POST", f"/api/jobnets/{long['id']}/stop", 404, "is a job")
    assert_refused(world, "POST", f"/api/jobs/{inner['id']}/stop", 404, "is a jobnet")
    response = world.client.post(f"/api/jobnets/{inner['id']}/stop")
    assert response.status_code == 202, response.text
    assert world.vertex(execution_id, "/holding/inner")["phase_label"]["ja"] == \
        human_label(ERROR, USER_STOP)
    assert world.vertex(execution_id, "/holding/inner/held")["stop_reason"] == "user_stop"
    world.client.post(f"/api/jobs/{long['id']}/stop")
    assert world.execution(execution_id)["phase"] == "error"


def test_stop_an_execution(world):
    execution_id = world.run("holding")
    response = world.client.post(f"/api/executions/{execution_id}/stop")
    assert response.status_code == 202, response.text
    detail = world.execution(execution_id)
    assert detail["phase"] == "error" and detail["stop_reason"] == "user_stop"
    assert detail["phase_label"]["ja"] == human_label(ERROR, USER_STOP)
    assert_refused(world, "POST", f"/api/executions/{execution_id}/stop", 409,
                   "already ended")
    assert_refused(world, "POST", "/api/executions/nope/stop", 404, "nope")
    assert_refused(world, "POST", "/api/jobs/nope/stop", 404, "nope")
    assert_refused(world, "POST", "/api/jobnets/nope/stop", 404, "nope")
    # The execution core_sim made was never started.
    assert_refused(world, "POST", f"/api/executions/{world.sim.execution.id}/stop", 409,
                   "not started")


# --- stuck, status change, rerun ----------------------------------------------------------------


def test_a_stuck_job_shows_tengines_notice_and_offers_status_change(world):
    execution_id = make_stuck(world)
    detail = world.execution(execution_id)
    assert detail["stuck_inside"] is True
    assert detail["status_label"] == {"ja": "実行中[状態が不明なジョブあり]",
                                      "en": "running[a job's state is unknown]"}
    a = world.vertex(execution_id, "/serial/a")
    assert a["phase"] == "stuck" and "core restarted" in a["reason"]
    assert a["actions"] == {"stop": False, "status": True, "rerun": True}
    listed = world.client.get("/api/executions", params={"id": execution_id}).json()
    assert listed["items"][0]["status_label"]["ja"] == "実行中[状態が不明なジョブあり]"


def test_status_change_fires_nothing_and_rerun_from_there_ends_success(world):
    execution_id = make_stuck(world)
    a = world.vertex(execution_id, "/serial/a")
    outbox_before = len(outbox_rows(world))
    events_before = world.client.get("/api/events").json()["total"]
    response = world.client.post(f"/api/vertices/{a['id']}/status", json={"status": "error"})
    assert response.status_code == 200, response.text
    assert human_label(STUCK) in response.json()["message"]
    assert world.vertex(execution_id, "/serial/a")["phase"] == "error"
    assert world.vertex(execution_id, "/serial/b")["phase"] == "initialized"
    # Tengine fires nothing: the one new outbox row is the console's command to the core, and
    # the one new event is that command (stored by the core that applied it).
    added = outbox_rows(world)[outbox_before:]
    assert [row.event["event_type_name"] for row in added] == [ev.CHANGE_STATUS_JOB]
    events = world.client.get("/api/events").json()
    assert events["total"] == events_before + 1
    assert events["items"][0]["key"] == added[0].event["key"]
    response = world.client.post(f"/api/jobs/{a['id']}/rerun", json={"spot": False})
    assert response.status_code == 202, response.text
    assert response.json()["event_type_name"] == ev.RESTART_JOB
    detail = world.execution(execution_id)
    assert {v["phase"] for v in detail["vertices"]} == {"success"}
    assert detail["phase"] == "success"


def test_status_change_of_the_root_sets_its_execution(world):
    execution_id = make_stuck(world)
    root = world.execution(execution_id)["root_jobnet_id"]
    response = world.client.post(f"/api/vertices/{root}/status", json={"status": "error"})
    assert response.status_code == 200, response.text
    detail = world.execution(execution_id)
    assert detail["phase"] == "error" and detail["finished_at"] is not None


def test_status_change_is_a_command_event_the_core_applies(world):
    execution_id = make_stuck(world)
    a = world.vertex(execution_id, "/serial/a")
    response = world.client.post(f"/api/vertices/{a['id']}/status", json={"status": "error"})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["event_type_name"] == ev.CHANGE_STATUS_JOB
    assert body["published"] is True and body["applied"] is True
    assert body["message"] == ("status of /serial/a changed: stuck / 状態不明 -> "
                               "error / エラー終了")
    [command] = [e for e in world.bus.published if e.key == body["event_key"]]
    assert command.properties["status"] == "error"
    assert command.properties["target_job_id"] == a["id"]
    assert command.properties["execution_id"] == execution_id
    # The core applied it: the command is in the core's list of processed events.
    assert command.key in [e.key for e in world.sim.processed]


def test_status_change_is_not_written_by_the_console_while_the_broker_is_down(world):
    execution_id = make_stuck(world)
    a = world.vertex(execution_id, "/serial/a")
    world.bus.down = True
    response = world.client.post(f"/api/vertices/{a['id']}/status", json={"status": "error"})
    assert response.status_code == 202, response.text
    body = response.json()
    assert body["published"] is False and body["applied"] is False
    assert body["message"].startswith("status change requested: /serial/a stuck / 状態不明 -> ")
    assert "the core applies it when it handles the event" in body["message"]
    assert world.vertex(execution_id, "/serial/a")["phase"] == "stuck"
    pending = [r for r in outbox_rows(world) if r.published_at is None]
    assert [r.event["event_type_name"] for r in pending] == [ev.CHANGE_STATUS_JOB]
    # The core's relay publishes it once the broker is back, and the core applies it.
    world.bus.down = False
    world.sim.settle()
    assert world.vertex(execution_id, "/serial/a")["phase"] == "error"


def test_status_change_says_requested_when_the_core_is_too_busy_to_apply_it_in_time(tmp_path):
    world = make_world(tmp_path, status_change_wait=0.2)
    execution_id = make_stuck(world)
    root = world.execution(execution_id)["root_jobnet_id"]
    world.bus.busy = True
    response = world.client.post(f"/api/vertices/{root}/status", json={"status": "success"})
    assert response.status_code == 202, response.text
    body = response.json()
    assert body["published"] is True and body["applied"] is False
    assert body["message"] == ("status change requested: /serial running / 実行中 -> "
                               "success / 正常終了; the core applies it when it handles the "
                               "event")
    detail = world.execution(execution_id)
    assert detail["phase"] == "running" and detail["finished_at"] is None
    world.bus.catch_up()
    detail = world.execution(execution_id)
    assert detail["phase"] == "success" and detail["finished_at"] is not None
    assert world.vertex(execution_id, "/serial")["phase"] == "success"


def test_status_change_whose_handling_fails_says_what_the_core_made_of_it(world, monkeypatch):
    execution_id = make_stuck(world)
    b = world.vertex(execution_id, "/serial/b")

    def broken(ctx):
        raise RuntimeError("boom")

    monkeypatch.setitem(registry.HANDLERS, ev.CHANGE_STATUS_JOB, broken)
    response = world.client.post(f"/api/vertices/{b['id']}/status", json={"status": "success"})
    assert response.status_code == 202, response.text
    body = response.json()
    assert body["applied"] is False
    assert body["message"] == ("status change of /serial/b to success / 正常終了 handled by the "
                               "core: it is stuck / 状態不明")
    b = world.vertex(execution_id, "/serial/b")
    assert b["phase"] == "stuck" and "RuntimeError: boom" in b["reason"]


def test_status_change_refuses_bad_input(world):
    execution_id = world.run("hadoop")
    hjr = world.vertex(execution_id, "/hadoop/hjr")
    box = world.vertex(execution_id, "/hadoop/hjr/hj")
    for status in ("running", "stuck", "正常終了", ""):
        assert_refused(world, "POST", f"/api/vertices/{hjr['id']}/status", 422, "status",
                       json={"status": status})
    assert_refused(world, "POST", f"/api/vertices/{hjr['id']}/status", 422, "body",
                   json={})
    assert_refused(world, "POST", "/api/vertices/nope/status", 404, "nope",
                   json={"status": "error"})
    assert_refused(world, "POST", f"/api/vertices/{box['id']}/status", 409, "hadoop_job",
                   json={"status": "error"})
    # answered by the console at once: no command went to the core
    assert [e.event_type_name for e in world.bus.published] == [ev.START_EXECUTION]


def test_spot_rerun_runs_only_the_selected_job(world):
    execution_id = world.run("failing")
    j2 = world.vertex(execution_id, "/failing/j2")
    assert j2["phase"] == "error"
    assert world.vertex(execution_id, "/failing/j3")["phase"] == "initialized"
    world.sim.outcomes["/failing/j2"] = 0  # the cause was fixed
    response = world.client.post(f"/api/jobs/{j2['id']}/rerun", json={"spot": True})
    assert response.status_code == 202, response.text
    j2 = world.vertex(execution_id, "/failing/j2")
    assert (j2["phase"], j2["attempt"]) == ("success", 2)
    assert world.vertex(execution_id, "/failing/j3")["phase"] == "initialized"
    assert world.execution(execution_id)["phase"] == "error"


def test_rerun_of_a_whole_execution(world):
    execution_id = world.run("failing")
    world.sim.outcomes["/failing/j2"] = 0
    response = world.client.post(f"/api/executions/{execution_id}/rerun")
    assert response.status_code == 202, response.text
    assert world.execution(execution_id)["phase"] == "success"


def test_rerun_refuses_bad_input(world):
    execution_id = world.run("holding")
    long = world.vertex(execution_id, "/holding/long")
    assert_refused(world, "POST", f"/api/jobs/{long['id']}/rerun", 409, "running")
    assert_refused(world, "POST", "/api/jobs/nope/rerun", 404, "nope")
    done = world.run("jn0004")
    j1 = world.vertex(done, "/jn0004/j1")
    assert_refused(world, "POST", f"/api/jobs/{j1['id']}/rerun", 422, "spot",
                   json={"spot": "perhaps"})
    box = world.vertex(world.run("hadoop"), "/hadoop/hjr/hj")
    assert_refused(world, "POST", f"/api/jobs/{box['id']}/rerun", 409, "hadoop_job_run")


# --- job detail (D6) ----------------------------------------------------------------------------


def test_job_detail_has_reason_exit_status_stderr_tail_events_and_watcher_log(world):
    execution_id = world.run("failing")
    j2 = world.vertex(execution_id, "/failing/j2")
    other = world.vertex(execution_id, "/failing/j1")
    write_watcher_log(world, [
        f"2024-05-01T10:00:00Z INFO tengine.watcher run started job_id={j2['id']} pid=1001",
        f"2024-05-01T10:00:00Z INFO tengine.watcher start job_id={other['id']}",
        f"2024-05-01T10:00:01Z INFO tengine.watcher process finished job_id={j2['id']} "
        f"exit_status=3",
        f"2024-05-01T10:00:02Z INFO tengine.watcher rerun job_id={j2['id']}.2",
        f"2024-05-01T10:00:03Z INFO tengine.watcher other job_id={j2['id']}0",
    ])
    response = world.client.get(f"/api/jobs/{j2['id']}")
    assert response.status_code == 200, response.text
    job = response.json()
    assert job["phase"] == "error" and job["exit_status"] == 3
    assert job["reason"].startswith("exit status 3")
    assert "Job process failed" in job["reason"]
    assert job["result"]["stderr_tail"] == "/failing/j2: disk full\n"
    assert job["result"]["stderr_log"].endswith("/stderr.log")
    assert job["result"]["stderr_spool_error"] == "[Errno 28] No space left on device"
    assert job["execution"]["id"] == execution_id
    assert [a["name"] for a in job["ancestors"]] == ["failing"]
    assert [n["name"] for n in job["next"]] == ["j3"]
    types = [e["event_type_name"] for e in job["events"]]
    assert ev.FINISHED_PROCESS_JOB in types and ev.ERROR_JOB in types
    log = job["watcher_log"]
    assert log["server"] == "local"
    assert [line.split(" INFO tengine.watcher ")[1].split(" job_id")[0]
            for line in log["lines"]] == ["run started", "process finished", "rerun"]
    assert j2["id"] in log["command"] and log["path"].endswith("watcher/log/watcher.log")


def test_job_detail_says_when_there_is_no_watcher_log(world):
    execution_id = world.run("failing")
    j1 = world.vertex(execution_id, "/failing/j1")
    log = world.client.get(f"/api/jobs/{j1['id']}").json()["watcher_log"]
    assert log["lines"] == [] and "does not exist" in log["note"]
    assert_refused(world, "GET", "/api/jobs/nope", 404, "nope")


# --- events -------------------------------------------------------------------------------------


def test_events_newest_first_paged_and_linked(world):
    execution_id = world.run("failing")
    everything = world.client.get("/api/events", params={"per_page": 500}).json()
    times = [e["occurred_at"] for e in everything["items"]]
    assert times == sorted(times, reverse=True)
    assert everything["total"] == len(everything["items"]) > 10
    page = world.client.get("/api/events", params={"per_page": 4, "page": 2}).json()
    assert [e["id"] for e in page["items"]] == [e["id"] for e in everything["items"][4:8]]
    error_job = next(e for e in everything["items"] if e["event_type_name"] == ev.ERROR_JOB)
    assert error_job["job_id"] == world.vertex(execution_id, "/failing/j2")["id"]
    assert error_job["execution_id"] == execution_id


def test_event_filters(world):
    execution_id = world.run("failing")
    root = world.execution(execution_id)["root_jobnet_id"]

    def items(**params) -> list[dict]:
        response = world.client.get("/api/events", params={"per_page": 500, **params})
        assert response.status_code == 200, response.text
        return response.json()["items"]

    assert {e["event_type_name"] for e in items(type="error.")} == {
        ev.ERROR_JOB, ev.ERROR_JOBNET, ev.ERROR_EXECUTION}
    assert {e["event_type_name"] for e in items(type="/^(success|error)\\.job\\./")} == {
        ev.SUCCESS_JOB, ev.ERROR_JOB}
    of_root = items(source=f"/{root}/")
    assert of_root and all(root in e["source_name"] for e in of_root)
    assert all(e["level"] == "error" for e in items(level="error"))
    assert {e["level"] for e in items(level=["warn", "error"])} <= {"warn", "error"}
    unconfirmed = items(confirmed="false")
    assert unconfirmed and not any(e["confirmed"] for e in unconfirmed)
    kernel_time = "2024-05-01T10:00:00+00:00"  # core_sim's clock
    at = items(since=kernel_time, until=kernel_time)
    assert at and all(e["occurred_at"] in ("2024-05-01T10:00:00Z",) for e in at)
    assert items(sender="tengined:core-host/4242") and all(
        e["sender_name"] == "tengined:core-host/4242" for e in items(sender="tengined:"))
    key = unconfirmed[0]["key"]
    assert [e["key"] for e in items(key=key)] == [key]


@pytest.mark.parametrize("params, words", [
    ({"source": "/[a-/"}, ["source", "regular expression"]),
    ({"type": "/*x/"}, ["type", "regular expression"]),
    ({"since": "10 o'clock"}, ["since"]),
    ({"until": "2024-13-01"}, ["until"]),
    ({"level": "loud"}, ["level", "loud"]),
    ({"confirmed": "maybe"}, ["confirmed", "maybe"]),
    ({"per_page": 501}, ["per_page"]),
])
def test_event_filters_refuse_malformed_input(world, params, words):
    world.run("failing")
    assert_refused(world, "GET", "/api/events", 422, *words, params=params)


def test_confirm_an_event(world):
    world.run("failing")
    unconfirmed = world.client.get("/api/events", params={"confirmed": "false"}).json()["items"]
    key = unconfirmed[0]["key"]
    response = world.client.post(f"/api/events/{key}/confirm")
    assert response.status_code == 200
    assert response.json() == {"key": key, "confirmed_rows": 1}
    after = world.client.get("/api/events", params={"key": key}).json()["items"]
    assert after[0]["confirmed"] is True
    again = world.client.post(f"/api/events/{key}/confirm")
    assert again.status_code == 200  # confirming twice is harmless
    assert_refused(world, "POST", "/api/events/no-such-key/confirm", 404, "no-such-key")


def test_openapi_documents_every_endpoint(world):
    paths = world.client.get("/openapi.json").json()["paths"]
    assert set(paths) == {
        "/api/executions", "/api/executions/{execution_id}",
        "/api/executions/{execution_id}/stop", "/api/executions/{execution_id}/rerun",
        "/api/jobs/{vertex_id}", "/api/jobs/{vertex_id}/stop", "/api/jobs/{vertex_id}/rerun",
        "/api/jobnets/{vertex_id}/stop", "/api/vertices/{vertex_id}/status", "/api/jobnets",
        "/api/jobnets/{name}/run", "/api/events", "/api/events/{key}/confirm"}


def test_job_detail_of_a_jobnet_lists_its_children(world):
    execution_id = world.run("holding")
    inner = world.vertex(execution_id, "/holding/inner")
    job = world.client.get(f"/api/jobs/{inner['id']}").json()
    assert job["kind"] == "jobnet"
    assert [(c["name"], c["phase"]) for c in job["children"]] == [("held", "running")]
    assert job["watcher_log"]["lines"] is None and "runs no script" in job["watcher_log"]["note"]
