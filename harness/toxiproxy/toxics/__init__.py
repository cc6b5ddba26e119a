"""The toxic types this server knows, by the type name the API uses (as Toxiproxy's registry)."""

from __future__ import annotations

from .bandwidth import BandwidthToxic
from .base import BadAttributes, NoopToxic, Toxic
from .latency import LatencyToxic
from .limit_data import LimitDataToxic
from .reset_peer import ResetPeerToxic
from .slicer import SlicerToxic
from .slow_close import SlowCloseToxic
from .timeout import TimeoutToxic

REGISTRY: dict[str, type[Toxic]] = {
    cls.type_name: cls
    for cls in (NoopToxic, LatencyToxic, BandwidthToxic, SlowCloseToxic, TimeoutToxic,
                ResetPeerToxic, SlicerToxic, LimitDataToxic)
}


def toxic_type(type_name: object) -> type[Toxic] | None:
    """The toxic class registered under ``type_name``, or None."""
    return REGISTRY.get(type_name) if isinstance(type_name, str) else None


__all__ = ["REGISTRY", "BadAttributes", "Toxic", "toxic_type"]
