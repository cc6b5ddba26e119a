"""The AMQP event bus on pika: topology, publisher with confirms + retry, consumer. The events it
carries are in `tengine_min.events`."""

import logging

# pika logs every failed connect at ERROR with a multi-line traceback; our publisher and consumer
# log each attempt as one key=value line, so pika's own lines would only repeat them as noise.
logging.getLogger("pika").setLevel(logging.CRITICAL)

from tengine_min.bus.consumer import Consumer
from tengine_min.bus.publisher import Publisher, PublishFailed

__all__ = ["Consumer", "PublishFailed", "Publisher"]
