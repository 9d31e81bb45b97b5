"""`stackwire bench` and the fault-injection suite: the whole system run as real processes."""
