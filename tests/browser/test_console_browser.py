"""The console in a real headless Chromium, on the real stack: a private RabbitMQ node, a
`tengine core` process running real scripts through the watcher, the console as its own process.

A person runs a jobnet from the jobnet list and watches it to 正常終了 on the execution list and
the monitor; force-stops a running job and sees エラー終了(強制停止済); and from the event screen
reaches a failed job's reason, exit status, stderr tail and watcher log lines in at most three
clicks (D6). Each screen is saved to reports/screens/.
"""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from harness.cluster import purge_event_queue
from harness.waiting import wait_for
from support.console_process import ConsoleProcess
from support.runtime import POLL, Runtime

pytestmark = pytest.mark.integration

DEFINITIONS = """
jobnets:
  - jobnet: br_ok
    description: 画面から実行する正常終了のジョブネット
    server: local
    credential: local
    boot_jobs: [prepare]
    children:
      - job: prepare
        script: {job} 0.5
        to: [left, right]
      - job: left
        script: {job} 1
        to: report
      - job: right
        script: {job} 0.5
        to: report
      - job: report
        script: {job} 0
      - finally:
          - job: cleanup
            script: {job} 0

  - jobnet: br_long
    description: 強制停止するジョブネット
    server: local
    credential: local
    children:
      - job: sleeper
        script: {job} 300
      - finally:
          - job: after_stop
            script: {job} 0

  - jobnet: br_fail
    description: 標準エラー出力に理由を書いて失敗するジョブネット
    server: local
    credential: local
    children:
      - job: load_data
        script: {bin}/fail.sh
"""

FAIL_SCRIPT = """#!/bin/sh
echo "loading /data/input.csv"
echo "load_data: disk full on /data (wrote 0 of 4096 bytes)" >&2
exit 3
"""


@dataclass
class Stack:
    runtime: Runtime
    console: ConsoleProcess

    @property
    def url(self) -> str:
        return self.console.url

    def api(self, method: str, path: str, body: dict | None = None) -> dict:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(f"{self.url}{path}", data=data, method=method,
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.loads(response.read())


@pytest.fixture(scope="module")
def stack(session_broker, tmp_path_factory) -> Iterator[Stack]:
    purge_event_queue(session_broker.url)  # the broker is the session's: start from an empty queue
    runtime = Runtime(tmp_path_factory.mktemp("browser"), session_broker.url)
    console = None
    try:
        runtime.script("fail.sh", FAIL_SCRIPT)
        definition = runtime.definition("browser.yaml", DEFINITIONS.format(
            job=runtime.job_sh, bin=runtime.bin))
        runtime.load(definition)
        runtime.start_core()
        console = ConsoleProcess(runtime)
        wait_for(console.ready, timeout=30, what="the console to answer", interval=POLL)
        yield Stack(runtime, console)
    finally:
        if console is not None:
            console.close()
        runtime.close()


def shot(page: Page, screens_dir: Path, name: str, *, full_page: bool = True) -> None:
    page.screenshot(path=str(screens_dir / f"{name}.png"), full_page=full_page)


def test_run_from_the_jobnet_list_and_watch_it_to_success(stack, page, screens_dir):
    page.goto(f"{stack.url}/jobnets")
    expect(page.locator("h1")).to_have_text("テンプレートジョブ一覧画面")
    shot(page, screens_dir, "jobnets")
    page.locator('tr.jobnet[data-name="br_ok"] a.run').click()
    expect(page.locator("h1")).to_contain_text("ジョブネット実行設定")
    page.fill('input[name="timeout_min"]', "30")
    shot(page, screens_dir, "run_settings")
    page.click("#run-submit")
    # The run lands on the monitor of the new execution.
    page.wait_for_url(f"{stack.url}/executions/*")
    execution_id = page.url.split("/executions/")[1].split("?")[0]
    expect(page.locator("#message")).to_contain_text(execution_id)
    # Auto refresh every second until the jobnet ends.
    page.goto(f"{stack.url}/executions/{execution_id}?refresh=1")
    expect(page.locator("#execution-status")).to_have_text("正常終了", timeout=60_000)
    rows = page.locator("tr.vertex")
    expect(rows).to_have_count(7)
    for path in ("/br_ok/prepare", "/br_ok/left", "/br_ok/right", "/br_ok/report",
                 "/br_ok/finally/cleanup"):
        expect(page.locator(f'tr.vertex[data-path="{path}"] .phase')).to_have_text("正常終了")
    shot(page, screens_dir, "monitor")
    page.goto(f"{stack.url}/executions?refresh=1")
    row = page.locator(f'tr.execution[data-id="{execution_id}"]')
    expect(row.locator(".phase")).to_have_text("正常終了")
    shot(page, screens_dir, "executions")
    assert stack.runtime.execution(execution_id).phase == "success"


def test_force_stop_a_running_job(stack, page, screens_dir):
    execution_id = stack.api("POST", "/api/jobnets/br_long/run", {})["execution_id"]
    stack.runtime.wait_vertex(execution_id, "/br_long/sleeper", ["running"], timeout=60)
    page.goto(f"{stack.url}/executions/{execution_id}")
    sleeper = page.locator('tr.vertex[data-path="/br_long/sleeper"]')
    expect(sleeper.locator(".phase")).to_have_text("実行中")
    dialogs: list[str] = []

    def accept(dialog) -> None:
        dialogs.append(dialog.message)
        dialog.accept()

    page.on("dialog", accept)
    sleeper.locator("button.danger").click()
    page.wait_for_url(f"{stack.url}/executions/{execution_id}?*")
    assert dialogs == ["本当に強制停止しますか？"]
    page.goto(f"{stack.url}/executions/{execution_id}?refresh=1")
    expect(sleeper.locator(".phase")).to_have_text("エラー終了(強制停止済)", timeout=60_000)
    # A job's stop is a failure of the job: its finally runs and the root ends in error.
    expect(page.locator("#execution-status")).to_have_text("エラー終了", timeout=60_000)
    expect(page.locator('tr.vertex[data-path="/br_long/finally/after_stop"] .phase')
           ).to_have_text("正常終了")
    shot(page, screens_dir, "monitor_force_stopped")
    job_id = sleeper.get_attribute("data-id")
    stack.runtime.wait_watcher_log(rf"kill requested job_id={job_id}\b")


def test_from_the_event_screen_to_a_failed_jobs_reason_in_three_clicks(stack, page,
                                                                       screens_dir):
    execution_id = stack.api("POST", "/api/jobnets/br_fail/run", {})["execution_id"]
    stack.runtime.wait_execution(execution_id, ["error"], timeout=60)
    job_id = stack.runtime.vertices(execution_id)["/br_fail/load_data"].id
    stack.runtime.wait_watcher_log(rf"job_id={job_id}\b")
    clicks = 0
    page.goto(f"{stack.url}/events")
    expect(page.locator("h1")).to_have_text("イベント通知画面")
    shot(page, screens_dir, "events", full_page=False)
    page.fill('#event-filters input[name="type"]', "error.job.job")
    page.locator('#event-filters button[type="submit"]').click()
    clicks += 1
    row = page.locator('tr.event[data-type="error.job.job.tengine"]').first
    expect(row).to_be_visible()
    shot(page, screens_dir, "events_filtered")
    row.locator("a.to-job").click()
    clicks += 1
    page.wait_for_url(f"{stack.url}/jobs/{job_id}")
    expect(page.locator("#reason")).to_contain_text("exit status 3")
    expect(page.locator("#reason")).to_contain_text("Job process failed")
    expect(page.locator("#job-exit-status")).to_have_text("3")
    expect(page.locator("#stderr .stderr-tail")).to_contain_text(
        "load_data: disk full on /data (wrote 0 of 4096 bytes)")
    expect(page.locator("#watcher-log")).to_contain_text(f"job_id={job_id}")
    assert clicks <= 3
    shot(page, screens_dir, "job_detail")
    page.locator("#lang-switch").click()
    expect(page.locator("h1")).to_contain_text("Job detail")
    page.goto(f"{stack.url}/events")
    expect(page.locator("h1")).to_have_text("Event notification")  # the cookie keeps it
    shot(page, screens_dir, "events_en", full_page=False)
