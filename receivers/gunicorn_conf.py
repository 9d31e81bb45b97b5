"""Gunicorn settings for the receiver, shared by `stackwire up`, docker-compose and the benchmark.

Threaded workers (gthread): each request is a short burst of CPU and two local round trips
(PostgreSQL, Redis); threads overlap those waits and keep connections alive. Measured against
sync workers in `make bench` (docs/benchmarks.md).
"""

from __future__ import annotations

import os

bind = f"{os.environ.get('STACKWIRE_HOST', '127.0.0.1')}:{os.environ.get('STACKWIRE_PORT', '8000')}"
workers = int(os.environ.get("STACKWIRE_RECEIVER_WORKERS", "2"))
worker_class = os.environ.get("STACKWIRE_RECEIVER_WORKER_CLASS", "gthread")
threads = int(os.environ.get("STACKWIRE_RECEIVER_THREADS", "8"))
# a request that takes this long is stuck: the worker is replaced
timeout = 30
graceful_timeout = 20
keepalive = 5
backlog = 2048
# no access log on the hot path; the event log is the record of every accepted webhook
accesslog = None
errorlog = "-"
loglevel = "warning"
proc_name = "stackwire-receiver"
