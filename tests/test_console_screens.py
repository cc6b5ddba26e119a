"""The console's HTML screens on a real store driven by the real kernel: Tengine's labels, the
language switch, the buttons (forms) and their answers, and the D6 path from an event to a failed
job's reason and stderr."""

from __future__ import annotations

import re
from html import unescape
from urllib.parse import parse_qs, urlsplit

import pytest

from support.console_world import World, make_stuck, make_world, write_watcher_log
from tengine_min.model.phases import ERROR, INITIALIZED, STUCK, SUCCESS, USER_STOP, human_label


@pytest.fixture
def world(tmp_path) -> World:
    return make_world(tmp_path)


def page(world: World, url: str, status: int = 200, **kw) -> str:
    response = world.client.get(url, **kw)
    assert response.status_code == status, response.text[:500]
    return unescape(response.text)


def hrefs(html: str, pattern: str) -> list[str]:
    return [h for h in re.findall(r'href="([^"]+)"', html) if re.search(pattern, h)]


def test_every_screen_shows_tengines_japanese_labels(world):
    execution_id = world.run("failing")
    j2 = world.vertex(execution_id, "/failing/j2")
    events = page(world, "/events")
    for label in ("イベント通知画面", "種別名", "イベントキー", "発生源名", "発生時刻",
                  "通知レベル", "通知確認済み", "送信者名"):
        assert label in events
    executions = page(world, "/executions")
    for label in ("実行ジョブ一覧画面", "ジョブネット名", "ステータス", "開始日時", "終了日時",
                  "説明", "監視", "再実行", "エラー終了"):
        assert label in executions
    monitor = page(world, f"/executions/{execution_id}")
    for label in ("ジョブネット監視画面", "構成ジョブ", "実行スクリプト", "接続サーバ名",
                  "認証情報名", "次のジョブ", "実行時PID", "終了ステータス", "メッセージ一覧",
                  "一覧に戻る"):
        assert label in monitor
    root = world.execution(execution_id)["root_jobnet_id"]
    assert f"/events?source=%2F{root}%2F" in monitor  # the events of this execution
    assert 'data-refresh="15"' in monitor  # Tengine's default auto refresh
    job = page(world, f"/jobs/{j2['id']}")
    for label in ("エラーメッセージ", "終了ステータス", "標準エラー出力", "ウォッチャのログ",
                  "強制終了シグナル"):
        assert label in job
    assert "テンプレートジョブ一覧画面" in page(world, "/jobnets")
    run = page(world, "/jobnets/serial/run")
    assert "警告設定" in run and "強制停止設定" in run


def test_the_language_switch_is_kept_in_a_cookie(world):
    assert "イベント通知画面" in page(world, "/events")
    english = world.client.get("/events", params={"lang": "en"})
    assert "Event notification" in english.text
    assert english.cookies.get("tengine_lang") == "en"
    assert "Job execution list" in page(world, "/executions")  # the cookie, no parameter
    assert "実行ジョブ一覧画面" in page(world, "/executions?lang=ja")


def test_a_stuck_job_shows_the_notice_and_status_change_on_the_screens(world):
    execution_id = make_stuck(world)
    assert "実行中[状態が不明なジョブあり]" in page(world, "/executions")
    monitor = page(world, f"/executions/{execution_id}")
    assert human_label(STUCK) in monitor
    a = world.vertex(execution_id, "/serial/a")
    assert hrefs(monitor, rf"/vertices/{a['id']}/status")


def test_d6_from_an_event_to_the_failed_jobs_reason_and_stderr(world):
    execution_id = world.run("failing")
    j2 = world.vertex(execution_id, "/failing/j2")
    write_watcher_log(world, [f"2024-05-01T10:00:01Z INFO tengine.watcher process finished "
                              f"job_id={j2['id']} exit_status=3"])
    events = page(world, "/events?type=error.job.job")  # click 1: filter the job failures
    links = hrefs(events, r"^/jobs/")
    assert links == [f"/jobs/{j2['id']}"]
    job = page(world, links[0])  # click 2: the job
    assert "exit status 3" in job and "Job process failed" in job
    assert "/failing/j2: disk full" in job  # the stderr tail
    # the watchdog could not write the stderr spool file (a full disk on the host)
    assert re.search(r'id="stderr-spool-incomplete">[^<]*No space left on device', job)
    assert 'id="stdout-spool-incomplete"' not in job
    assert re.search(r'id="job-exit-status">3<', job)
    assert f"process finished job_id={j2['id']} exit_status=3" in job  # the watcher log line


def test_force_stop_from_the_monitor_asks_first_and_comes_back_with_a_message(world):
    execution_id = world.run("holding")
    long = world.vertex(execution_id, "/holding/long")
    monitor = page(world, f"/executions/{execution_id}")
    button = f'action="/vertices/{long["id"]}/stop" data-confirm="本当に強制停止しますか？"'
    assert button in monitor
    response = world.client.post(f"/vertices/{long['id']}/stop",
                                 data={"next": f"/executions/{execution_id}"},
                                 follow_redirects=False)
    assert response.status_code == 303
    location = response.headers["location"]
    assert urlsplit(location).path == f"/executions/{execution_id}"
    assert "stop requested" in parse_qs(urlsplit(location).query)["msg"][0]
    after = page(world, location)
    assert 'id="message"' in after
    assert human_label(ERROR, USER_STOP) in after
    # The same button again: the job has ended, an error page says why (409).
    refused = world.client.post(f"/vertices/{long['id']}/stop", data={})
    assert refused.status_code == 409 and "already ended" in unescape(refused.text)


def test_a_redirect_never_leaves_the_console(world):
    execution_id = world.run("holding")
    long = world.vertex(execution_id, "/holding/long")
    for target in ("https://evil.example/", "//evil.example/", "/\\evil.example"):
        response = world.client.post(f"/vertices/{long['id']}/stop", data={"next": target},
                                     follow_redirects=False)
        if response.status_code == 409:
            continue
        assert response.status_code == 303
        assert response.headers["location"].startswith(f"/jobs/{long['id']}?msg=")


def test_run_from_the_jobnet_list_with_settings(world):
    jobnets = page(world, "/jobnets")
    assert "/jobnets/serial/run" in hrefs(jobnets, r"/run$")
    response = world.client.post("/jobnets/serial/run",
                                 data={"timeout_min": "30", "alert_min": ""},
                                 follow_redirects=False)
    assert response.status_code == 303
    execution_id = urlsplit(response.headers["location"]).path.rsplit("/", 1)[1]
    detail = world.execution(execution_id)
    assert detail["timeout_min"] == 30 and detail["alert_min"] is None
    assert detail["phase"] == "success"


def test_bad_input_on_the_screens_gets_an_error_page_and_changes_nothing(world):
    before = world.sim.dump()
    response = world.client.post("/jobnets/serial/run", data={"timeout_min": "ten"})
    assert response.status_code == 422 and "timeout_min" in unescape(response.text)
    response = world.client.post("/jobnets/nope/run", data={})
    assert response.status_code == 404
    assert world.sim.dump() == before
    assert "no execution" in page(world, "/executions/nope", 404)
    assert "no job or jobnet" in page(world, "/jobs/nope", 404)
    bad = page(world, "/events?source=/x(/", 422)
    assert "regular expression" in bad and 'id="events"' not in bad
    assert "status" in page(world, "/executions?status=finished", 422)
    assert "per_page" in page(world, "/events?per_page=0", 422)


def test_status_change_and_rerun_through_their_forms(world):
    execution_id = make_stuck(world)
    a = world.vertex(execution_id, "/serial/a")
    form = page(world, f"/vertices/{a['id']}/status?next=/executions/{execution_id}")
    assert all(label in form for label in (human_label(INITIALIZED), human_label(SUCCESS),
                                            human_label(ERROR), "更新する"))
    response = world.client.post(f"/vertices/{a['id']}/status",
                                 data={"status": "error", "next": f"/executions/{execution_id}"},
                                 follow_redirects=False)
    assert response.status_code == 303
    assert world.vertex(execution_id, "/serial/a")["phase"] == "error"
    form = page(world, f"/vertices/{a['id']}/rerun")
    assert "選択したジョブを起点として再実行する" in form
    assert "選択したジョブのみを再実行する" in form
    response = world.client.post(f"/vertices/{a['id']}/rerun", data={"method": "spot"},
                                 follow_redirects=False)
    assert response.status_code == 303
    assert world.vertex(execution_id, "/serial/a")["phase"] == "success"
    assert world.vertex(execution_id, "/serial/b")["phase"] == "initialized"  # spot: only a
    bad = world.client.post(f"/vertices/{a['id']}/rerun", data={"method": "sideways"})
    assert bad.status_code == 422


def test_the_status_form_answers_what_the_core_did(tmp_path):
    world = make_world(tmp_path, status_change_wait=0.2)
    execution_id = make_stuck(world)
    a = world.vertex(execution_id, "/serial/a")

    def post(status: str) -> str:
        response = world.client.post(f"/vertices/{a['id']}/status",
                                     data={"status": status,
                                           "next": f"/executions/{execution_id}"},
                                     follow_redirects=False)
        assert response.status_code == 303
        return parse_qs(urlsplit(response.headers["location"]).query)["msg"][0]

    assert post("error") == "status of /serial/a changed: stuck / 状態不明 -> error / エラー終了"
    world.bus.busy = True  # the core has not got to it within the wait
    message = post("success")
    assert message == ("status change requested: /serial/a error / エラー終了 -> success / "
                       "正常終了; the core applies it when it handles the event")
    assert world.vertex(execution_id, "/serial/a")["phase"] == "error"
    world.bus.catch_up()
    assert world.vertex(execution_id, "/serial/a")["phase"] == "success"


def test_confirm_an_event_from_the_event_screen(world):
    world.run("failing")
    unconfirmed = world.client.get("/api/events", params={"confirmed": "false"}).json()["items"]
    key = unconfirmed[0]["key"]
    events = page(world, "/events?confirmed=false")
    assert f'action="/events/{key}/confirm"' in events
    response = world.client.post(f"/events/{key}/confirm", data={"next": "/events"},
                                 follow_redirects=False)
    assert response.status_code == 303
    assert world.client.get("/api/events", params={"key": key}).json()["items"][0]["confirmed"]


def test_events_screen_pages_and_refreshes(world):
    world.run("jn0004")
    first = page(world, "/events?per_page=5&refresh=7")
    assert 'data-refresh="7"' in first
    assert len(re.findall(r'<tr class="event"', first)) == 5
    next_links = hrefs(first, r"page=2")
    assert next_links and "per_page=5" in next_links[0]
