"""Broker kill: the queue's node killed with SIGKILL (a crash; done once it has exited); its end
starts it again."""

from __future__ import annotations

from tengine_min.broker import Broker

from .base import Nemesis


class BrokerKill(Nemesis):
    kind = "broker-kill"

    def __init__(self, broker: Broker) -> None:
        super().__init__(name="queue killed", target="broker", subject=broker, source="broker",
                         how="SIGKILL")
        self.broker = broker

    def invoke(self) -> None:
        self.broker.kill()

    def teardown(self) -> None:
        self.broker.start()
