"""The jobnet state machine: one handler per event type, run inside the kernel's transaction.

A handler reads and writes the store through the connection it is given and returns what must
happen next: events to fire (they go to the outbox in the same transaction) and commands for the
driver (ssh start / kill, handed over only after the commit). It never does slow work itself.

The rules are Tengine's (tengine-facts sections 1, 3, 7); docs/states.md lists them with every
decision taken where Tengine was unclear. Bad input (an unknown id, an event for a job in a phase
where it means nothing) is logged and changes nothing; it never raises.

`registry.py` says which handler handles which event type, and `handle()` runs one. The handlers
are grouped by what they act on: `executions`, `jobnets`, `jobs` (start, stop and what the driver
reports), `results` (the watcher's result, late results, heartbeats and their expiry), `rerun`,
`status` (the console's status change). They share `context` (the context of one handling and
looking things up from an event) and `flow` (phase changes and the signal along the edges).
`commands` holds what a handling returns, `stuck` what a failed one marks stuck.
"""
