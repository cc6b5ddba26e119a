"""Broker stop: the queue (RabbitMQ) stopped gracefully, persistent messages kept; its end starts
it again (done once it accepts AMQP)."""

from __future__ import annotations

from tengine_min.broker import Broker

from .base import Nemesis


class BrokerStop(Nemesis):
    kind = "broker-stop"

    def __init__(self, broker: Broker) -> None:
        super().__init__(name="queue stopped", target="broker", subject=broker, source="broker",
                         how="graceful, persistent messages kept")
        self.broker = broker

    def invoke(self) -> None:
        self.broker.stop()

    def teardown(self) -> None:
        self.broker.start()
