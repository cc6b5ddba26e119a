"""The event core: phases, the jobnet state machine (handlers), one event per transaction
(kernel) and the timeout/alert schedules. Free of pika and threads: the process around it
(consumer, outbox relay, driver threads) is built on top of `kernel.Kernel`."""
