"""The event core: the jobnet state machine (handlers/), one event per transaction (kernel),
the timeout/alert schedules, the monitors and the driver. The state machine is free of pika and
threads: the process around it (consumer, outbox relay, driver threads) is built on top of
`kernel.Kernel`."""
