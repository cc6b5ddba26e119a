"""Tengine's phases: codes, console labels and the stop_reason refinement."""

import pytest

from tengine_min.model import phases as ph


def test_codes_and_japanese_labels_are_tengines():
    table = {key: (ph.phase_code(key), ph.human_label(key)) for key in ph.PHASES}
    assert table == {
        "initialized": (20, "初期化済"), "ready": (30, "準備中"), "starting": (50, "開始中"),
        "running": (60, "実行中"), "dying": (70, "強制停止中"), "success": (40, "正常終了"),
        "error": (80, "エラー終了"), "stuck": (90, "状態不明"),
    }


@pytest.mark.parametrize("phase, stop_reason, ja, en", [
    ("error", "user_stop", "エラー終了(強制停止済)", "error (force stopped)"),
    ("dying", "user_stop", "強制停止中", "dying"),
    ("dying", "timeout", "強制停止中(タイムアウト強制停止中)", "dying (stopping on timeout)"),
    ("error", "timeout", "エラー終了(タイムアウト強制停止済)", "error (stopped by timeout)"),
    # A stopped job whose process still exited 0 shows plain success (Tengine).
    ("success", "user_stop", "正常終了", "success"),
    ("error", None, "エラー終了", "error"),
])
def test_stop_reason_refines_the_label(phase, stop_reason, ja, en):
    assert ph.human_label(phase, stop_reason) == ja
    assert ph.human_label(phase, stop_reason, lang="en") == en


def test_unknown_phase_or_language_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown phase 'finished'"):
        ph.human_label("finished")
    with pytest.raises(ValueError, match="unknown label language 'fr'"):
        ph.human_label("error", lang="fr")


def test_edge_phases_keep_tengines_codes():
    assert ph.EDGE_PHASES == {"active": 0, "transmitted": 20, "closing": 40, "closed": 50}
    assert {"transmitted", "closed"} == ph.EDGE_FINAL
