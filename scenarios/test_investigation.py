"""D6: investigating a failure is easy. In a real browser (Debian's Chromium through Playwright),
a person goes from the event notification screen (イベント通知画面) to a failed job and reads its
reason, its exit status, its stderr tail and the watcher log lines about it, in at most three
clicks. Each screen is saved under reports/screens/ (d6_*.png)."""

import pytest
from playwright.sync_api import expect

from harness.cluster import REPO

SCREENS = REPO / "reports" / "screens"
FAILING = """\
#!/bin/sh
echo "loading 4096 bytes into /data"
echo "load_data: disk full on /data (wrote 0 of 4096 bytes)" >&2
exit 3
"""


def shot(page, name: str) -> None:
    SCREENS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENS / f"d6_{name}.png"), full_page=True)


@pytest.mark.scenario("D6")
def test_from_the_event_screen_to_a_failed_jobs_cause_in_three_clicks(
        cluster, harness_screenshotter):
    s1 = cluster.server("s1")
    run = cluster.run("load_data", server=s1, script=s1.install_script("load_data.sh", FAILING))
    job = run.wait_for_job("/load_data/j1", phase="error")
    s1.wait_watcher_log(job, "finished")
    run.wait_for_event("error.job.job.tengine", job=job)  # on the event screen by now
    with harness_screenshotter.new_page() as page:
        clicks = 0
        page.goto(f"{cluster.console.url}/events")
        expect(page.locator("h1")).to_have_text("イベント通知画面")
        shot(page, "1_events")
        page.fill('#event-filters input[name="type"]', "error.job.job")
        page.locator('#event-filters button[type="submit"]').click()
        clicks += 1
        row = page.locator('tr.event[data-type="error.job.job.tengine"]').first
        expect(row).to_be_visible()
        shot(page, "2_events_filtered")
        row.locator("a.to-job").click()
        clicks += 1
        page.wait_for_url(f"{cluster.console.url}/jobs/{job.id}")
        shot(page, "3_job_detail")
        expect(page.locator("#reason")).to_contain_text("exit status 3")
        expect(page.locator("#job-exit-status")).to_have_text("3")
        expect(page.locator("#stderr .stderr-tail")).to_contain_text(
            "load_data: disk full on /data (wrote 0 of 4096 bytes)")
        # the watcher's own lines about this job, not only where to look for them
        watcher_log = page.locator("#watcher-log")
        expect(watcher_log).to_contain_text(f"started job_id={job.id}")
        expect(watcher_log).to_contain_text(f"finished job_id={job.id}")
        expect(watcher_log).to_contain_text("exit_status=3")
    assert clicks <= 3
