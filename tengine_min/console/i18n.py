"""Screen labels: Tengine's Japanese, with English beside them.

The language comes from `?lang=ja|en`, else the `tengine_lang` cookie (set whenever `lang` is
given), else Japanese. Phase labels come from model.phases.human_label.
"""

from __future__ import annotations

from ..model import phases as ph

LANGS = ("ja", "en")
DEFAULT_LANG = "ja"
COOKIE = "tengine_lang"

# key: (ja, en)
LABELS: dict[str, tuple[str, str]] = {
    # menu and screens
    "app": ("Tengine コンソール", "Tengine console"),
    "events": ("イベント一覧", "Events"),
    "events_title": ("イベント通知画面", "Event notification"),
    "executions": ("実行中のジョブ一覧", "Executions"),
    "executions_title": ("実行ジョブ一覧画面", "Job execution list"),
    "monitor_title": ("ジョブネット監視画面", "Jobnet monitor"),
    "job_title": ("実行中のジョブ", "Job detail"),
    "jobnets": ("テンプレートジョブ一覧", "Jobnets"),
    "jobnets_title": ("テンプレートジョブ一覧画面", "Jobnet list"),
    "run_title": ("ジョブネット実行設定", "Run settings"),
    "rerun_title": ("ジョブネット再実行設定", "Rerun settings"),
    "status_title": ("ステータス変更", "Status change"),
    "error_title": ("エラー", "Error"),
    # event columns
    "event_type_name": ("種別名", "Event type"),
    "key": ("イベントキー", "Key"),
    "source_name": ("発生源名", "Source"),
    "occurred_at": ("発生時刻", "Occurred at"),
    "level": ("通知レベル", "Level"),
    "confirmed": ("通知確認済み", "Confirmed"),
    "sender_name": ("送信者名", "Sender"),
    "properties": ("プロパティ", "Properties"),
    "show_properties": ("プロパティを開く", "open properties"),
    "confirm": ("確認", "Confirm"),
    "yes": ("済", "yes"),
    "no": ("未", "no"),
    "all": ("すべて", "all"),
    "to_job": ("ジョブ詳細", "job detail"),
    "to_execution": ("ジョブネット監視", "monitor"),
    # execution columns and fields
    "id": ("ID", "ID"),
    "jobnet_name": ("ジョブネット名", "Jobnet"),
    "job_name": ("ジョブ名", "Name"),
    "status": ("ステータス", "Status"),
    "started_at": ("開始日時", "Started"),
    "finished_at": ("終了日時", "Finished"),
    "description": ("説明", "Description"),
    "operations": ("操作", "Actions"),
    "script": ("実行スクリプト", "Script"),
    "server": ("接続サーバ名", "Server"),
    "credential": ("認証情報名", "Credential"),
    "next_jobs": ("次のジョブ", "Next"),
    "pid": ("実行時PID", "PID"),
    "exit_status": ("終了ステータス", "Exit status"),
    "signal": ("シグナル", "Signal"),
    "reason": ("エラーメッセージ", "Reason"),
    "stop_reason": ("停止理由", "Stop reason"),
    "late_result": ("遅れて届いた結果", "Late result"),
    "killing_signals": ("強制終了シグナル", "Kill signals"),
    "killing_signal_interval": ("強制終了シグナル送信間隔", "Kill signal interval"),
    "name_path": ("パス", "Path"),
    "kind": ("種類", "Kind"),
    "attempt": ("実行回数", "Attempt"),
    "execution": ("実行", "Execution"),
    "timeout_min": ("強制停止設定(分)", "Stop after (min)"),
    "alert_min": ("警告設定(分)", "Alert after (min)"),
    "created_at": ("作成日時", "Created"),
    "components": ("構成ジョブ", "Jobs"),
    "stuck_inside": ("状態が不明なジョブあり", "a job's state is unknown"),
    # output
    "output": ("出力", "Output"),
    "stdout": ("標準出力", "stdout"),
    "stderr": ("標準エラー出力", "stderr"),
    "head": ("先頭", "head"),
    "tail": ("末尾", "tail"),
    "dropped": ("省略", "dropped"),
    "bytes": ("バイト", "bytes"),
    "total": ("合計", "total"),
    "spool": ("ホスト上のファイル", "Files on the host"),
    "spool_incomplete": ("ホスト上のファイルは不完全です", "The file on the host is incomplete"),
    "not_written": ("書き込めなかった", "not written"),
    "watcher_log": ("ウォッチャのログ", "Watcher log"),
    "no_output": ("出力なし", "no output"),
    "job_events": ("このジョブのイベント", "Events of this job"),
    # actions
    "monitor": ("監視", "Monitor"),
    "show": ("表示", "Show"),
    "stop": ("強制停止", "Force stop"),
    "change_status": ("ステータス変更", "Change status"),
    "rerun": ("再実行", "Rerun"),
    "run": ("実行", "Run"),
    "update": ("更新する", "Update"),
    "back_to_list": ("一覧に戻る", "Back to the list"),
    "messages": ("メッセージ一覧", "Events of this execution"),
    "confirm_stop": ("本当に強制停止しますか？", "Really force stop?"),
    "confirm_status": ("ステータスを変更しますか？", "Change the status?"),
    "confirm_rerun": ("再実行しますか？", "Rerun?"),
    "rerun_method": ("再実行方法", "Rerun method"),
    "rerun_from": ("選択したジョブを起点として再実行する",
                   "rerun from the selected job"),
    "rerun_spot": ("選択したジョブのみを再実行する", "rerun the selected job only"),
    "minutes_hint": ("分。0 または空欄 = なし", "minutes; 0 or blank = none"),
    # filters and paging
    "filter": ("検索", "Search"),
    "clear": ("クリア", "Clear"),
    "since": ("から", "from"),
    "until": ("まで", "to"),
    "period": ("期間", "Period"),
    "refresh": ("画面の更新間隔(秒)", "Refresh every (s)"),
    "refresh_hint": ("0 = 更新しない", "0 = off"),
    "filter_hint": ("前方一致、/正規表現/ も可", "prefix, or /regex/"),
    "page": ("ページ", "Page"),
    "prev": ("前へ", "Previous"),
    "next": ("次へ", "Next"),
    "count": ("件", "rows"),
    "none": ("なし", "none"),
    "lang_switch": ("English", "日本語"),
    "times_in": ("時刻の表示", "Times in"),
}


def normalize(lang: str | None) -> str | None:
    """`ja`/`en` (any case, `ja-JP` too) or None when not one of them."""
    if not lang:
        return None
    code = lang.strip().lower()[:2]
    return code if code in LANGS else None


def t(key: str, lang: str) -> str:
    ja, en = LABELS[key]
    return en if lang == "en" else ja


def phase_label(phase: str, stop_reason: str | None, lang: str) -> str:
    return ph.human_label(phase, stop_reason, "en" if lang == "en" else "ja")


def status_with_notice(phase: str, stop_reason: str | None, stuck_inside: bool,
                       lang: str) -> str:
    """The status of an execution or jobnet, with Tengine's notice when a job inside is stuck:
    `実行中[状態が不明なジョブあり]`."""
    label = phase_label(phase, stop_reason, lang)
    if stuck_inside and phase != ph.STUCK:
        return f"{label}[{t('stuck_inside', lang)}]"
    return label


def label_pair(phase: str, stop_reason: str | None) -> dict[str, str]:
    """{"ja": ..., "en": ...} for the API."""
    return {lang: phase_label(phase, stop_reason, lang) for lang in LANGS}


def status_pair(phase: str, stop_reason: str | None, stuck_inside: bool) -> dict[str, str]:
    return {lang: status_with_notice(phase, stop_reason, stuck_inside, lang) for lang in LANGS}
