"""tengine_min: a minimal, faithful re-implementation of the Tengine job system."""

__version__ = "0.1.0"
