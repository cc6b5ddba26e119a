"""The AMQP event bus on pika: topology, publisher with confirms + retry, consumer. The events it
carries are in `tengine_min.events`."""

import logging

# pika logs every failed connect at ERROR with a multi-line traceback; our publisher and consumer
# log each attempt as one key=value line, so pika's own lines would only repeat them as noise.
# (Here, because Python runs this before any module of the bus.)
logging.getLogger("pika").setLevel(logging.CRITICAL)
