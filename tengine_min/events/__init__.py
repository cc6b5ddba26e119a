"""What every process sends and reads: the event envelope (`envelope`: the `Event` dataclass, its
JSON form, levels and times) and the event type names (`names`). Below the store and the bus: it
imports nothing else of tengine_min."""
