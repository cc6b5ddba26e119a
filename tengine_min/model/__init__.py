"""Jobnet templates: the DSL readers, the validator and instantiation into an execution tree."""
