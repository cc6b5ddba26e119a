"""The scenario catalogue: every id of SCENARIOS.md with its English and Japanese title and the
outcome a test must show.

Copied from ``SCENARIOS.md`` (English rows) and ``seed-usecase.ja.txt`` (the ``#...`` headings of
the original use case, which wins where the two differ). A scenario test names its id with
``@pytest.mark.scenario("S04")``; the report shows the titles and the expected outcome from here.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Scenario:
    id: str
    title: str  # English
    title_ja: str  # the use case's own heading
    expected: str  # what the test asserts, as the SCENARIOS.md row says it


class UnknownScenario(KeyError):
    def __str__(self) -> str:
        return str(self.args[0])


_OVERVIEW_JA = "アプリケーション開発者がTengineを運用に耐えられるか検証する"
_SSH = "ジョブ制御ドライバがジョブ実行するマシンにsshで接続する際にネットワークが切れた場合"
_STOP = "アプリケーション開発者はジョブを強制停止する"
_STOP_NET = "強制停止する際にネットワークの接続が切れた場合"

CATALOGUE: dict[str, Scenario] = {s.id: s for s in (
    Scenario("D1", "Unexecutable jobnet definitions are rejected before anything runs",
             "循環参照や存在しない参照など、実行不可能なジョブネット定義の検出",
             "a cycle of `to` edges, an expansion of a missing root jobnet, mutual and self "
             "references: each rejected with a precise message, nothing runs"),
    Scenario("D2", "Big complex jobnets are generated fast",
             "複雑で大きなジョブネットの生成が遅い",
             "load, validate and instantiate within the performance goals of DESIGN.md"),
    Scenario("D3", "A job with very large stdout and stderr",
             "大量の標準出力、標準エラー出力があるジョブ",
             "the job completes; watcher memory stays bounded; both tails on the console, the "
             "whole output kept on the host"),
    Scenario("D4", "MM_* environment variables of jobs",
             "環境変数 MM_FULL_ACTUAL_JOB_ANCESTOR_IDS / MM_ACTUAL_JOB_ANCESTOR_IDS",
             "the right values, also inside expansions, nested expansions and finally blocks"),
    Scenario("D5", "Core, queue, network, watcher or its server goes down",
             "ジョブ実行中にコアやキュー、ネットワーク、ジョブプロセスウォッチャ自身や"
             "ジョブプロセスウォッチャが稼働サーバがダウンする",
             "each case ends in a state a person can understand, with an event; nothing "
             "recorded is lost"),
    Scenario("D6", "Investigating a failure is easy",
             "原因の調査方法が容易であること",
             "from the console: a failed job's reason, exit status, stderr tail and watcher "
             "log lines"),
    Scenario("S00", "Basic course: start a virtual server and the test job",
             "基本コース: 仮想サーバを起動し、ジョブをテスト起動し、正常に終了したことを確認する",
             "the job ends normally (success), visible on the execution list; events fired"),
    Scenario("S01", "ssh cut after connecting, before the watcher is started (no retry)",
             f"{_SSH}_起動していない",
             "job error; the watcher log shows the job was NOT executed; a job error event"),
    Scenario("S02", "ssh cut after the command ran, before the PID reaches the core (no retry)",
             f"{_SSH}_起動したがPIDを返せない",
             "job error (the real outcome recorded when it becomes known); the watcher log "
             "shows the job WAS executed; a job error event"),
    Scenario("S03", "ssh cut before the request reaches the watcher, restored within the retries",
             f"{_SSH}_起動しない_リトライ設定あり",
             "job success; executed once; the core's log shows the retry"),
    Scenario("S04", "ssh cut after the command ran, before the PID returns; restored within "
             "the retries", f"{_SSH}_起動したがPIDを返せない_リトライ設定あり",
             "job success; executed once; the second start request recognised as a duplicate "
             "and ignored"),
    Scenario("S05", "Queue down during a long job, back within the watcher's retries",
             "ジョブプロセスウォッチャがキューとの接続が切れていても、リトライするか",
             "the watcher log shows the disconnect and the reconnect; the job ends success"),
    Scenario("S06", "Queue down during a long job, past all retries",
             "キューが落ちている時間が長いため、リトライ回数分リトライしても接続ができなかった場合",
             "the watcher log shows it could not reach the queue and gave up; job error; a job "
             "error event; the core finds out (as documented)"),
    Scenario("S07", "The job host goes down during a long job",
             "ジョブ実行中にジョブを実行しているサーバが落ちた場合",
             "job error, the reason says the host went down; an event"),
    Scenario("S08", "The watcher process dies during a long job",
             "ジョブ実行中にジョブを実行しているジョブプロセスウォッチャが落ちた場合",
             "job error, the reason says the watcher was lost (detected by monitoring); an event"),
    Scenario("S09", "The script does not exist (or is not executable)",
             "ジョブプロセスウォッチャで実行しようとしたスクリプトがない場合 #権限がないとかも",
             "the watcher log says so; job error with that reason; an event"),
    Scenario("S10", "The job's host is wrong or not running",
             "接続先が間違っている_or_起動していない",
             "job error, reason: cannot connect to the host; an event"),
    Scenario("S11", "The job's credentials are wrong", "認証情報が間違っている",
             "job error, reason: authentication failed; an event"),
    Scenario("S12", "Force stop a running job / jobnet / root jobnet",
             f"{_STOP}(ジョブ、ジョブネット、ルートジョブネット)",
             "stopped (error phase, reason: force stopped); the watcher log shows the kill; "
             "stop/error events"),
    Scenario("S13", "Queue down during a force stop, past the retries",
             f"{_STOP}_キューが停止している_リトライ回数内に復旧しない",
             "the execution list shows the job was killed AND that the watcher failed to "
             "report it; the watcher log shows the disconnect and the failed report"),
    Scenario("S14", "Queue down during a force stop, back within the retries",
             f"{_STOP}_キューが停止している_リトライ回数内に復旧する",
             "stopped; the watcher log shows the disconnect and the reconnect"),
    Scenario("S15", "The script ends normally just as the force stop arrives",
             f"{_STOP}_強制停止を行う際にスクリプトが正常終了している",
             "success; the watcher log shows the normal end and that the kill found nothing "
             "to stop"),
    Scenario("S16", "The job host is down when the force stop is sent",
             "強制停止_接続先のマシンがダウンしている",
             "error; the stop failed because the host could not be reached; a stop-failed event"),
    Scenario("S17", "ssh cut before the kill command runs (no retry)",
             f"{_STOP_NET}、強制停止実行前",
             "still running; the stop failed because of the connection; nothing arrived at the "
             "watcher; a stop-failed event"),
    Scenario("S18", "ssh cut after the kill command ran (no retry)",
             f"{_STOP_NET}、強制停止実行後",
             "stopped; the watcher log shows the kill; a job failed event"),
    Scenario("S19", "ssh cut before the kill command runs, restored within the retry interval",
             f"{_STOP_NET}、強制停止実行前_リトライあり",
             "stopped; nothing at first, then the kill in the watcher log"),
    Scenario("S20", "ssh cut after the kill command ran; the retry repeats it",
             f"{_STOP_NET}、強制停止実行後_リトライあり",
             "stopped; the kill, then the repeated kill recognised and ignored; a job failed "
             "event"),
    Scenario("S21", "A job with a timeout runs past it",
             "アプリケーション開発者はタイムアウト強制停止するとか (強制停止と一緒)",
             "stopped by the timeout, as S12; the watcher log shows the kill; events"),
)}

USE_CASE_JA = _OVERVIEW_JA


def scenario(scenario_id: str) -> Scenario:
    """The catalogue entry of ``scenario_id``; UnknownScenario names the known ids."""
    try:
        return CATALOGUE[scenario_id]
    except KeyError:
        raise UnknownScenario(f"unknown scenario id {scenario_id!r} (known: "
                              f"{', '.join(CATALOGUE)})") from None
