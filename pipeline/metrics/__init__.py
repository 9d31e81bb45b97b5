"""Prometheus metrics: every definition in `definitions`, the scrape-time gauges in `collectors`,
multiprocess mode (one scrape target per host) in `multiproc`, the exposition in `exposition`.

docs/observability.md lists each metric, its labels and where it is computed.
"""
