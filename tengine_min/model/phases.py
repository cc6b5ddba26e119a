"""Tengine's phases (tengine-facts section 3): codes, console labels and the stop_reason refinement.

Jobs, jobnets, root jobnets and executions share one set of phases; edges have their own. Phases
are stored by key ("running"), which reads well in the store and in logs; the numeric code is
Tengine's and is what sorts them on the console.
"""

from __future__ import annotations

from dataclasses import dataclass

INITIALIZED = "initialized"
READY = "ready"
STARTING = "starting"
RUNNING = "running"
DYING = "dying"
SUCCESS = "success"
ERROR = "error"
STUCK = "stuck"


@dataclass(frozen=True)
class Phase:
    key: str
    code: int
    ja: str
    en: str


PHASES: dict[str, Phase] = {p.key: p for p in (
    Phase(INITIALIZED, 20, "初期化済", "initialized"),
    Phase(READY, 30, "準備中", "ready"),
    Phase(SUCCESS, 40, "正常終了", "success"),
    Phase(STARTING, 50, "開始中", "starting"),
    Phase(RUNNING, 60, "実行中", "running"),
    Phase(DYING, 70, "強制停止中", "dying"),
    Phase(ERROR, 80, "エラー終了", "error"),
    Phase(STUCK, 90, "状態不明", "stuck"),
)}

# Phases in which nothing moves any more without a person (rerun / status change).
FINAL = frozenset({SUCCESS, ERROR, STUCK})
# Phases a force stop acts on (the console offers 強制停止 for these).
STOPPABLE = frozenset({READY, STARTING, RUNNING})
# Phases from which the watcher's finished event decides the outcome.
AWAITING_RESULT = frozenset({STARTING, RUNNING, DYING})
# Phases a rerun may reset (Tengine: reset from initialized/success/error/stuck).
RESETTABLE = frozenset({INITIALIZED, SUCCESS, ERROR, STUCK})
# Phases a person may set by hand, in the order the console offers them (Tengine's ステータス変更:
# 初期化済 / 正常終了 / エラー終了).
SETTABLE = (INITIALIZED, SUCCESS, ERROR)

# Why a force stop happened; refines the label of dying and error.
USER_STOP = "user_stop"
TIMEOUT = "timeout"
STOP_REASONS = (USER_STOP, TIMEOUT)

# Edge phases. Tengine also has transmitting, suspended and keeping (docs/states.md says why
# we do without them).
EDGE_ACTIVE = "active"
EDGE_TRANSMITTED = "transmitted"
EDGE_CLOSING = "closing"
EDGE_CLOSED = "closed"
EDGE_PHASES = {EDGE_ACTIVE: 0, EDGE_TRANSMITTED: 20, EDGE_CLOSING: 40, EDGE_CLOSED: 50}
EDGE_FINAL = frozenset({EDGE_TRANSMITTED, EDGE_CLOSED})

_REFINED: dict[tuple[str, str | None], tuple[str, str]] = {
    # (phase, stop_reason): (ja, en). Tengine's human_phase_key: dying + user_stop keeps the
    # plain label; a stopped job whose process still exited 0 shows plain success.
    (ERROR, USER_STOP): ("エラー終了(強制停止済)", "error (force stopped)"),
    (DYING, TIMEOUT): ("強制停止中(タイムアウト強制停止中)", "dying (stopping on timeout)"),
    (ERROR, TIMEOUT): ("エラー終了(タイムアウト強制停止済)", "error (stopped by timeout)"),
}


def phase_code(phase: str) -> int:
    return _lookup(phase).code


def human_label(phase: str, stop_reason: str | None = None, lang: str = "ja") -> str:
    """The label the console shows for `phase`, refined by `stop_reason` as Tengine does:
    human_label("error", "user_stop") == "エラー終了(強制停止済)"."""
    if lang not in ("ja", "en"):
        raise ValueError(f"unknown label language {lang!r}: use 'ja' or 'en'")
    info = _lookup(phase)
    refined = _REFINED.get((phase, stop_reason))
    if refined is not None:
        return refined[0] if lang == "ja" else refined[1]
    return info.ja if lang == "ja" else info.en


def _lookup(phase: str) -> Phase:
    try:
        return PHASES[phase]
    except KeyError:
        known = ", ".join(PHASES)
        raise ValueError(f"unknown phase {phase!r} (known: {known})") from None
