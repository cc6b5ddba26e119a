"""The fault-injection harness: a cluster on one machine, faults, observers and checks."""
